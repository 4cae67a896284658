package web_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// rosterReconnecting reports whether the last roster rc got shows id
// reconnecting.
func rosterReconnecting(rc interface {
	Next(time.Duration, func(map[string]any) bool) map[string]any
}, id string, want bool) bool {
	m := rc.Next(5*time.Second, func(m map[string]any) bool {
		if m["type"] != "roster" {
			return false
		}
		ps, _ := m["participants"].([]any)
		for _, p := range ps {
			if p, ok := p.(map[string]any); ok && p["id"] == id {
				r, _ := p["reconnecting"].(bool)
				return r == want
			}
		}
		return false
	})
	return m != nil
}

// TestMediaICERestart, over real signalling: mid-lesson a pupil's client
// restarts ICE on new sockets (its address changes) and asks for a new down
// offer (ice_restart); media flows again both ways within 5 s on the same
// WebSocket, with no new sign-in, welcome or admission. While its page
// reports media_reconnecting, the teacher sees the pupil reconnecting.
func TestMediaICERestart(t *testing.T) {
	t.Parallel()
	sc := newSchool(t, "teacher", "head", "pupil", "pupil2")
	id := liveSession(t, sc, nil)
	tm, pupils := teacherAndPupils(t, sc, id, "pupil", "pupil2")
	pm := pupils[0]
	pupilID, teacherID := participantID(pm.rc), participantID(tm.rc)
	require.Eventually(t, func() bool { return received(tm.media, pupilID) > 0 && received(pm.media, teacherID) > 0 },
		10*time.Second, 50*time.Millisecond, "media flows before the restart")

	require.NoError(t, pm.rc.Send(map[string]any{"type": "media_reconnecting", "reconnecting": true}))
	require.True(t, rosterReconnecting(tm.rc, pupilID, true), "the teacher sees the pupil reconnecting")
	require.NoError(t, pm.media.RestartICE())
	start := time.Now()
	fromPupil, fromTeacher := received(tm.media, pupilID), received(pm.media, teacherID)
	require.Eventually(t, func() bool {
		return received(tm.media, pupilID) > fromPupil+20 && received(pm.media, teacherID) > fromTeacher+20
	}, 5*time.Second, 20*time.Millisecond, "media flows again both ways within 5 s")
	t.Logf("media back %v after the restart", time.Since(start).Round(time.Millisecond))
	require.NoError(t, pm.rc.Send(map[string]any{"type": "media_reconnecting", "reconnecting": false}))
	require.True(t, rosterReconnecting(tm.rc, pupilID, false), "the teacher sees the pupil back")
	select {
	case <-pm.rc.Closed():
		t.Fatal("the pupil's connection closed")
	default:
	}
	require.Equal(t, pupilID, participantID(pm.rc), "the same participant ID")
	require.NoError(t, pm.media.Err())
}
