package webm

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/chaperone-edu/chaperone/recording/webm/webmtest"
)

func TestVP8Size(t *testing.T) {
	t.Parallel()
	w, h, ok := vp8Size(webmtest.Keyframe())
	require.True(t, ok)
	require.Equal(t, webmtest.VP8Width, w)
	require.Equal(t, webmtest.VP8Height, h)

	for _, b := range [][]byte{nil, {0x00}, {0x01, 0, 0, 0x9d, 0x01, 0x2a, 1, 0, 1, 0}, {0x00, 0, 0, 0, 0, 0, 1, 0, 1, 0}} {
		_, _, ok := vp8Size(b)
		require.False(t, ok, "%x", b)
	}
}
