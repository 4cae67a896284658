package recording_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/chaperone-edu/chaperone/recording"
	"github.com/chaperone-edu/chaperone/recording/webm/webmtest"
)

// TestRecordScreenShare: a participant's screen share (kinds "screen" and
// "screen_audio" from the SFU) is recorded like a camera, to a file of its
// own next to the camera's, named for the participant's screen.
func TestRecordScreenShare(t *testing.T) {
	t.Parallel()
	s3, b := lockedBucket(t, recording.LockGovernance)
	r := newRecorder(t, b, t.TempDir())
	var st states
	sess, err := r.Start(context.Background(), "sess-screen", time.Now(), who, st.on)
	require.NoError(t, err)
	screenKind := map[string]string{"audio": "screen_audio", "video": "screen"}
	for _, p := range webmtest.Session(3*time.Second, 0, 30) {
		raw, err := p.Marshal()
		require.NoError(t, err)
		sess.Packet("pA", p.Kind, raw)
		sess.Packet("pA", screenKind[p.Kind], raw)
		if p.Kind == "video" {
			time.Sleep(300 * time.Microsecond)
		}
	}
	require.Eventually(t, func() bool { return st.has(recording.StateConfirmed) }, 10*time.Second, 20*time.Millisecond)
	ps, err := sess.Close(ctxT(t, time.Minute))
	require.NoError(t, err)
	require.Len(t, ps, 2)
	byID := map[string]recording.Part{}
	for _, p := range ps {
		byID[p.Participant.ID] = p
	}
	screen, ok := byID[recording.ScreenFileID("pA")]
	require.True(t, ok, "a file for the screen: %+v", ps)
	require.Equal(t, "Name of pA — screen", screen.Participant.Name)
	require.Equal(t, recording.PartKey("sess-screen", "pA-screen", 1), screen.Key)
	require.Equal(t, "Name of pA", byID["pA"].Participant.Name)
	for _, p := range ps {
		probe := webmtest.Probe(t, download(t, s3, p.Key))
		require.ElementsMatch(t, []string{"opus", "vp8"}, probe.Codecs(), p.Participant.ID)
		require.InDelta(t, 3.0, probe.Duration.Seconds(), 0.3, p.Participant.ID)
	}
}
