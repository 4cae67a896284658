package auth

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestThrottle(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	th := NewThrottle(10, time.Minute, func() time.Time { return now })
	for i := 0; i < 10; i++ {
		require.False(t, th.Blocked("10.0.0.1"), "attempt %d", i+1)
		th.Add("10.0.0.1")
		now = now.Add(time.Second)
	}
	require.True(t, th.Blocked("10.0.0.1"), "the 11th attempt within a minute is blocked")
	require.False(t, th.Blocked("10.0.0.2"), "other addresses are not")
	// The first event (t=0) leaves the window at t=60s.
	now = now.Add(49 * time.Second) // t = 59 s
	require.True(t, th.Blocked("10.0.0.1"))
	now = now.Add(time.Second) // t = 60 s
	require.False(t, th.Blocked("10.0.0.1"), "one slot frees when the oldest event is a minute old")

	// Allow counts and refuses in one step.
	a := NewThrottle(3, time.Minute, func() time.Time { return now })
	require.True(t, a.Allow("k"))
	require.True(t, a.Allow("k"))
	require.True(t, a.Allow("k"))
	require.False(t, a.Allow("k"))
	require.False(t, a.Allow("k"), "refused attempts do not extend the block")
	now = now.Add(time.Minute)
	require.True(t, a.Allow("k"))
}

func TestThrottleForgetsIdleKeys(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	th := NewThrottle(5, time.Minute, func() time.Time { return now })
	for i := 0; i < 1000; i++ {
		th.Add(fmt.Sprintf("10.0.%d.%d", i/256, i%256))
	}
	now = now.Add(2 * time.Minute)
	th.Add("10.9.9.9")
	require.Len(t, th.events, 1, "keys idle for a window are dropped")
}
