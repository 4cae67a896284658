package web_test

import (
	"context"
	"encoding/csv"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/chaperone-edu/chaperone/internal/testkit"
	"github.com/chaperone-edu/chaperone/store"
)

func newSchoolGrace(t *testing.T, grace time.Duration, users ...string) *school {
	clock := testkit.NewClock(schoolDay)
	gw := testkit.StartGateway(t, testkit.GatewayOptions{Now: clock.Now, StaffGrace: grace})
	sc := &school{gw: gw, clock: clock, people: map[string]*testkit.APIClient{}}
	for _, u := range users {
		sc.people[u] = testkit.APILogin(t, gw, u)
	}
	return sc
}

// participantID is the connection's participant ID from its welcome
// message, waiting for the message if it has not arrived yet.
func participantID(rc *testkit.RoomConn) string {
	deadline := time.Now().Add(15 * time.Second)
	for {
		if w := rc.Last("welcome"); w != nil {
			if you, ok := w["you"].(map[string]any); ok {
				if id, ok := you["id"].(string); ok {
					return id
				}
			}
		}
		if time.Now().After(deadline) {
			rc.T.Fatalf("no welcome message within 15 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestLobbyAdmitDenyAndStaffLeaving walks a lesson's lobby: pupils wait,
// staff admit one and deny another (who sees the reason), the lock keeps
// newcomers out, and when the teacher leaves media is held and the session
// ends after the grace period. The attendance register records it all.
func TestLobbyAdmitDenyAndStaffLeaving(t *testing.T) {
	t.Parallel()
	sc := newSchoolGrace(t, 300*time.Millisecond, "teacher", "head", "pupil", "pupil2", "pupil3", "pupil4")
	id := liveSession(t, sc, nil)
	teacher, _, err := testkit.DialRoom(t, sc.people["teacher"], id, "")
	require.NoError(t, err)
	teacher.WaitState(map[string]any{"phase": "admitted"})

	amelia, _, err := testkit.DialRoom(t, sc.people["pupil"], id, "")
	require.NoError(t, err)
	amelia.WaitState(map[string]any{"phase": "waiting"})
	zoe, _, err := testkit.DialRoom(t, sc.people["pupil2"], id, "")
	require.NoError(t, err)
	zoe.WaitState(map[string]any{"phase": "waiting"})
	oliver, _, err := testkit.DialRoom(t, sc.people["pupil3"], id, "")
	require.NoError(t, err)
	oliver.WaitState(map[string]any{"phase": "waiting"})
	lobbyMsg := teacher.Next(5*time.Second, func(m map[string]any) bool { return m["type"] == "lobby" && len(m["waiting"].([]any)) == 3 })
	onRoster := map[string]bool{}
	for _, w := range lobbyMsg["waiting"].([]any) {
		w := w.(map[string]any)
		onRoster[w["name"].(string)] = w["on_roster"].(bool)
		require.Contains(t, w["email"], "@oakfield.example")
	}
	require.Equal(t, map[string]bool{"Amelia Jones": true, "Zoë Lefèvre": true, "Oliver Smith-Baker": false}, onRoster)

	require.NoError(t, teacher.Send(map[string]any{"type": "admit", "id": participantID(amelia)}))
	require.NoError(t, teacher.Send(map[string]any{"type": "admit", "id": participantID(zoe)}))
	require.NoError(t, teacher.Send(map[string]any{"type": "deny", "id": participantID(oliver), "reason": "You are not in this class; join your own Year 9 lesson."}))
	amelia.WaitState(map[string]any{"phase": "admitted", "gate": "open"})
	zoe.WaitState(map[string]any{"phase": "admitted", "gate": "open"})
	denied := oliver.WaitState(map[string]any{"phase": "denied"})
	require.Contains(t, denied["reason"], "join your own Year 9 lesson")
	roster := amelia.Next(5*time.Second, func(m map[string]any) bool { return m["type"] == "roster" && len(m["participants"].([]any)) == 3 })
	require.Len(t, roster["participants"], 3)

	// Locked: a newcomer is refused.
	require.NoError(t, teacher.Send(map[string]any{"type": "lock", "locked": true}))
	teacher.WaitState(map[string]any{"locked": true})
	noah, _, err := testkit.DialRoom(t, sc.people["pupil4"], id, "")
	require.NoError(t, err)
	st := noah.WaitState(map[string]any{"phase": "denied"})
	require.Contains(t, st["banner"], "locked")

	// The teacher leaves: pupils' media is held, and the session ends after the grace period.
	teacher.WS.Close()
	held := amelia.WaitState(map[string]any{"gate": "held"})
	require.Contains(t, held["banner"], "Your teacher is not here at the moment")
	amelia.WaitState(map[string]any{"phase": "ended"})
	zoe.WaitState(map[string]any{"phase": "ended"})
	require.Eventually(t, func() bool {
		ss, err := sc.gw.Store.GetSession(context.Background(), id)
		return err == nil && ss.State == store.StateEnded
	}, 5*time.Second, 20*time.Millisecond)
	_, resp, err := testkit.DialRoom(t, sc.people["pupil"], id, "")
	require.Error(t, err, "an ended room refuses new joins")
	require.Equal(t, http.StatusConflict, resp.StatusCode)

	// The attendance register.
	resp2, err := sc.people["teacher"].HTTP.Get(sc.gw.URL + "/sessions/" + id + "/attendance.csv")
	require.NoError(t, err)
	defer resp2.Body.Close()
	require.Equal(t, http.StatusOK, resp2.StatusCode)
	require.Contains(t, resp2.Header.Get("Content-Type"), "text/csv")
	recs, err := csv.NewReader(resp2.Body).ReadAll()
	require.NoError(t, err)
	var lines []string
	for _, r := range recs[1:] {
		lines = append(lines, r[1]+": "+r[2]+" "+r[3]+" "+r[4])
	}
	all := strings.Join(lines, "\n")
	for _, want := range []string{"joined: Sarah Whitfield", "joined: Amelia Jones", "admitted: Amelia Jones Sarah Whitfield", "admitted: Zoë Lefèvre",
		"denied: Oliver Smith-Baker Sarah Whitfield You are not in this class", "joined: Oliver Smith-Baker  pupil, not on the class list",
		"refused entry: Noah O'Brien", "left: Sarah Whitfield", "session ended"} {
		require.Contains(t, all, want)
	}
	status, _ := get(t, sc.people["pupil"].HTTP, sc.gw.URL+"/sessions/"+id+"/attendance.csv")
	require.Equal(t, http.StatusNotFound, status, "pupils cannot see the register (nor, once ended, the session)")
	require.NoError(t, sc.gw.Store.VerifyAudit(context.Background()))
}
