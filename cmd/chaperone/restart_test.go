package main

import (
	"context"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/chaperone-edu/chaperone/internal/testkit"
	"github.com/chaperone-edu/chaperone/store"
)

// liveNow books a lesson that starts within the minute on the gateway's
// real clock (a binary has no test clock), has the head approve it and the
// teacher open it, and returns its ID.
func liveNow(t *testing.T, teacher, head *testkit.APIClient) string {
	t.Helper()
	start := time.Now().Truncate(time.Minute).Add(time.Minute)
	status, out := teacher.Call(http.MethodPost, "/api/sessions", map[string]any{"title": "Year 8 maths", "start": start.Format(time.RFC3339),
		"end": start.Add(time.Hour).Format(time.RFC3339), "roster_group": "year-8"})
	require.Equal(t, http.StatusCreated, status, "%v", out)
	id := out["sessions"].([]any)[0].(map[string]any)["id"].(string)
	status, out = head.Call(http.MethodPost, "/api/sessions/"+id+"/approve", nil)
	require.Equal(t, http.StatusOK, status, "%v", out)
	status, out = teacher.Call(http.MethodPost, "/api/sessions/"+id+"/open", nil)
	require.Equal(t, http.StatusOK, status, "%v", out)
	return id
}

func youOf(t *testing.T, rc *testkit.RoomConn) string {
	t.Helper()
	w := rc.NextType("welcome")
	return w["you"].(map[string]any)["id"].(string)
}

// TestRoomSurvivesRestart (R16): the gateway binary is killed (-9) and then
// stopped with SIGTERM during a lesson; each time it starts again on the same
// database, everyone reconnects: the removed pupil is still refused, the
// denied pupil is still denied, the admitted pupils are back in without being
// admitted again, the chat goes on with new message IDs, and the audit chain
// verifies.
func TestRoomSurvivesRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the gateway binary")
	}
	s3 := testkit.StartS3(t)
	gw := testkit.StartGatewayProcess(t, testkit.GatewayProcessOptions{S3: s3})
	people := map[string]*testkit.APIClient{}
	for _, u := range []string{"teacher", "head", "pupil", "pupil2", "pupil3", "pupil4"} {
		people[u] = gw.Login(t, u)
	}
	id := liveNow(t, people["teacher"], people["head"])

	dial := func(u string) *testkit.RoomConn {
		t.Helper()
		var rc *testkit.RoomConn
		require.Eventually(t, func() bool { // the gateway may still be starting its rooms
			var err error
			rc, _, err = testkit.DialRoom(t, people[u], id, "")
			return err == nil
		}, 20*time.Second, 200*time.Millisecond, "%s connects", u)
		return rc
	}
	teacher := dial("teacher")
	teacher.WaitState(map[string]any{"phase": "admitted"})
	ids := map[string]string{}
	conns := map[string]*testkit.RoomConn{}
	for _, u := range []string{"pupil", "pupil2", "pupil3", "pupil4"} {
		conns[u] = dial(u)
		ids[u] = youOf(t, conns[u])
		conns[u].WaitState(map[string]any{"phase": "waiting"})
	}
	for _, u := range []string{"pupil", "pupil2", "pupil3"} {
		require.NoError(t, teacher.Send(map[string]any{"type": "admit", "id": ids[u]}))
		conns[u].WaitState(map[string]any{"phase": "admitted"})
	}
	require.NoError(t, teacher.Send(map[string]any{"type": "remove", "id": ids["pupil3"], "reason": "Shared something unkind."}))
	conns["pupil3"].WaitState(map[string]any{"phase": "removed"})
	require.NoError(t, teacher.Send(map[string]any{"type": "deny", "id": ids["pupil4"], "reason": "This lesson is for Year 8."}))
	conns["pupil4"].WaitState(map[string]any{"phase": "denied"})
	require.NoError(t, teacher.Send(map[string]any{"type": "chat", "text": "Page 12, please."}))
	require.Equal(t, "m1", conns["pupil"].NextType("chat")["id"])
	time.Sleep(500 * time.Millisecond) // the room's state is saved off its goroutine, within milliseconds

	chatN := 1
	for _, restart := range []struct {
		name string
		stop func()
	}{{"kill -9", gw.Kill}, {"SIGTERM", gw.Term}} {
		t.Log("restart: " + restart.name)
		restart.stop()
		gw.Start()

		// The removed pupil, signing in again even, stays out.
		people["pupil3"] = gw.Login(t, "pupil3")
		removed, resp, err := testkit.DialRoom(t, people["pupil3"], id, "")
		if err == nil {
			removed.WaitState(map[string]any{"phase": "removed"})
		} else {
			require.Equal(t, http.StatusForbidden, resp.StatusCode)
		}
		teacher = dial("teacher")
		teacher.WaitState(map[string]any{"phase": "admitted"})
		for _, u := range []string{"pupil", "pupil2"} {
			conns[u] = dial(u)
			conns[u].WaitState(map[string]any{"phase": "admitted"}) // no admission again
		}
		conns["pupil4"] = dial("pupil4")
		conns["pupil4"].WaitState(map[string]any{"phase": "denied"})
		lobby := teacher.Next(5*time.Second, func(m map[string]any) bool { return m["type"] == "lobby" && len(m["waiting"].([]any)) > 0 })
		require.Len(t, lobby["waiting"], 1, "only the denied pupil is on the waiting list: %v", lobby)
		require.Equal(t, ids["pupil4"], lobby["waiting"].([]any)[0].(map[string]any)["id"])

		chatN++
		require.NoError(t, conns["pupil"].Send(map[string]any{"type": "chat", "text": "We are back after " + restart.name}))
		msg := conns["pupil2"].Next(5*time.Second, func(m map[string]any) bool {
			return m["type"] == "chat" && m["from"].(map[string]any)["id"] == ids["pupil"]
		})
		require.Equal(t, "m"+strconv.Itoa(chatN), msg["id"], "chat IDs never repeat")
	}
	gw.Term()

	st, err := store.Open(context.Background(), "sqlite:"+gw.DBPath)
	require.NoError(t, err)
	defer st.Close()
	require.NoError(t, st.VerifyAudit(context.Background()))
	admits, err := st.ListAudit(context.Background(), store.AuditFilter{Action: "room.admit", SessionID: id})
	require.NoError(t, err)
	require.Len(t, admits, 1+3, "the teacher and three pupils were admitted once, never again after a restart")
	rejoins, err := st.ListAudit(context.Background(), store.AuditFilter{Action: "room.rejoin", SessionID: id})
	require.NoError(t, err)
	require.Len(t, rejoins, 2*3, "the teacher and the two pupils came back after each restart")
	msgs, err := st.ListChatMessages(context.Background(), id)
	require.NoError(t, err)
	seen := map[string]bool{}
	for _, m := range msgs {
		require.False(t, seen[m.ID], "message ID %s used twice", m.ID)
		seen[m.ID] = true
	}
	require.Len(t, msgs, chatN)
}
