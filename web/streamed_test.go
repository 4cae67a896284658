package web_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestStreamedSession: in a streamed session pupils watch only: the SFU
// forwards none of a pupil's packets (counted at the SFU) although the
// pupil's client publishes audio and video, while the teacher's reach them.
func TestStreamedSession(t *testing.T) {
	t.Parallel()
	sc := newSchool(t, "teacher", "head", "pupil", "pupil2")
	id := liveSession(t, sc, map[string]any{"kind": "streamed"})
	tm, pupils := teacherAndPupils(t, sc, id, "pupil", "pupil2")
	teacherID := participantID(tm.rc)
	for _, p := range pupils {
		require.Eventually(t, func() bool {
			st := p.rc.Last("state")
			b, _ := st["banner"].(string)
			return strings.Contains(b, "You can watch and listen. Others can't see or hear you.") && st["watch_only"] == true
		}, 5*time.Second, 20*time.Millisecond, "the pupil is told they watch only")
	}
	require.Eventually(t, func() bool {
		return received(pupils[0].media, teacherID) > 0 && received(pupils[1].media, teacherID) > 0
	}, 10*time.Second, 50*time.Millisecond, "pupils receive the teacher")
	time.Sleep(time.Second)
	ts, es, _ := sc.gw.Rooms.MediaStats(id)
	published := map[string]uint64{}
	for _, tr := range ts {
		published[tr.Publisher] += tr.PacketsIn
	}
	for _, p := range pupils {
		pid := participantID(p.rc)
		require.Greater(t, published[pid], uint64(0), "the pupil's client does send media")
		require.Zero(t, edgeFrom(es, pid, "audio")+edgeFrom(es, pid, "video"), "no packet of a pupil is forwarded")
		require.Zero(t, received(tm.media, pid))
	}
}
