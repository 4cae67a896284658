package web_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/chaperone-edu/chaperone/internal/testkit"
	"github.com/chaperone-edu/chaperone/lobby"
	"github.com/chaperone-edu/chaperone/web"
)

// liveSession makes an approved session (Year 8 roster) and opens its room
// as the teacher; the clock is inside its window.
func liveSession(t *testing.T, sc *school, extra map[string]any) string {
	t.Helper()
	id := sc.request(t, "teacher", extra)
	status, out := sc.people["head"].Call(http.MethodPost, "/api/sessions/"+id+"/approve", nil)
	require.Equal(t, http.StatusOK, status, "%v", out)
	sc.clock.Set(schoolDay.Add(2*time.Hour - 10*time.Minute))
	status, out = sc.people["teacher"].Call(http.MethodPost, "/api/sessions/"+id+"/open", nil)
	require.Equal(t, http.StatusOK, status, "%v", out)
	return id
}

func roomState(t *testing.T, sc *school, id string) lobby.RoomState {
	t.Helper()
	st, ok := sc.gw.Rooms.Snapshot(id)
	require.True(t, ok, "room is live")
	return st
}

func TestWebSocketRefusals(t *testing.T) {
	t.Parallel()
	sc := newSchool(t, "teacher", "head", "pupil", "itadmin")
	id := liveSession(t, sc, nil)

	// No cookie.
	anon := &testkit.APIClient{T: t, HTTP: testkit.CookieClient(t), Base: sc.gw.URL}
	_, resp, err := testkit.DialRoom(t, anon, id, "")
	require.Error(t, err)
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	// Wrong Origin.
	_, resp, err = testkit.DialRoom(t, sc.people["pupil"], id, "https://evil.example")
	require.Error(t, err)
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
	// Unknown session.
	_, resp, err = testkit.DialRoom(t, sc.people["pupil"], "nosuchsession", "")
	require.Error(t, err)
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
	// An account that is neither staff nor pupil.
	_, resp, err = testkit.DialRoom(t, sc.people["itadmin"], id, "")
	require.Error(t, err)
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
	_, ok := sc.gw.Rooms.Snapshot(id)
	require.False(t, ok, "no refused connection started the room")
}

// TestWebSocketBadMessages: each bad message gets its error (or a close)
// and changes no room state.
func TestWebSocketBadMessages(t *testing.T) {
	t.Parallel()
	sc := newSchool(t, "teacher", "head", "pupil", "pupil2")
	id := liveSession(t, sc, nil)
	teacher, _, err := testkit.DialRoom(t, sc.people["teacher"], id, "")
	require.NoError(t, err)
	teacher.WaitState(map[string]any{"phase": "admitted"})
	pupil, _, err := testkit.DialRoom(t, sc.people["pupil"], id, "")
	require.NoError(t, err)
	welcome := pupil.NextType("welcome")
	pupilID := welcome["you"].(map[string]any)["id"].(string)
	pupil.WaitState(map[string]any{"phase": "waiting", "banner": "Waiting for your teacher"})
	lobbyMsg := teacher.Next(5*time.Second, func(m map[string]any) bool { return m["type"] == "lobby" && len(m["waiting"].([]any)) == 1 })
	require.Equal(t, "Amelia Jones", lobbyMsg["waiting"].([]any)[0].(map[string]any)["name"])
	teacherID := teacher.Last("welcome")["you"].(map[string]any)["id"].(string)
	before := roomState(t, sc, id)

	expectError := func(rc *testkit.RoomConn, msg any, code string) {
		t.Helper()
		if b, ok := msg.(string); ok {
			require.NoError(t, rc.SendRaw([]byte(b)))
		} else {
			require.NoError(t, rc.Send(msg))
		}
		got := rc.NextType("error")
		require.Equal(t, code, got["code"], "%v", got)
		require.NotEmpty(t, got["message"])
	}
	expectError(pupil, map[string]any{"type": "admit", "id": pupilID}, "forbidden")
	expectError(pupil, map[string]any{"type": "remove", "id": teacherID, "reason": "x"}, "forbidden")
	expectError(pupil, map[string]any{"type": "lock", "locked": true}, "forbidden")
	expectError(pupil, map[string]any{"type": "end"}, "forbidden")
	expectError(pupil, map[string]any{"type": "deny", "id": pupilID, "reason": "no"}, "forbidden")
	expectError(pupil, map[string]any{"type": "dance"}, "unknown_type")
	expectError(pupil, `{"type": "admit", `, "bad_json")
	expectError(pupil, `[1,2,3]`, "bad_json")
	expectError(pupil, map[string]any{"type": "offer", "pc": "up", "sdp": "v=0 garbage"}, "not_admitted")
	expectError(teacher, map[string]any{"type": "offer", "pc": "up", "sdp": "this is not SDP"}, "bad_sdp")
	expectError(teacher, map[string]any{"type": "offer", "pc": "sideways", "sdp": "x"}, "unknown_pc")
	expectError(teacher, map[string]any{"type": "candidate", "pc": "left", "candidate": map[string]any{"candidate": "candidate:1 1 udp 1 127.0.0.1 9 typ host"}}, "unknown_pc")
	expectError(teacher, map[string]any{"type": "admit", "id": "nobody"}, "not_found")
	expectError(teacher, map[string]any{"type": "deny", "id": pupilID}, "invalid") // reason required
	require.Equal(t, before, roomState(t, sc, id), "no bad message changed the room")

	// A 1 MiB message closes that connection; the room stays as it was.
	big := `{"type":"ping","sdp":"` + strings.Repeat("x", 1<<20) + `"}`
	_ = pupil.SendRaw([]byte(big))
	select {
	case <-pupil.Closed():
	case <-time.After(5 * time.Second):
		t.Fatal("oversized message did not close the connection")
	}
	require.Eventually(t, func() bool {
		st := roomState(t, sc, id)
		for _, p := range st.Participants {
			if p.ID == pupilID {
				return !p.Connected && p.State == lobby.Waiting && !p.AwaySince.IsZero() // away: may come back within the rejoin grace
			}
		}
		return false
	}, 5*time.Second, 20*time.Millisecond)

	// 1,000 messages a second: an error, then the connection closes.
	flood, _, err := testkit.DialRoom(t, sc.people["pupil2"], id, "")
	require.NoError(t, err)
	flood.WaitState(map[string]any{"phase": "waiting"})
	for i := 0; i < 1000; i++ {
		if flood.Send(map[string]any{"type": "ping"}) != nil {
			break
		}
	}
	got := flood.NextType("error")
	require.Equal(t, "rate_limited", got["code"])
	select {
	case <-flood.Closed():
	case <-time.After(5 * time.Second):
		t.Fatal("flooding client was not disconnected")
	}
	// The teacher's connection is unaffected.
	require.NoError(t, teacher.Send(map[string]any{"type": "lock", "locked": true}))
	teacher.WaitState(map[string]any{"locked": true})
}

func FuzzDecodeMsg(f *testing.F) {
	for _, s := range []string{`{"type":"offer","pc":"up","sdp":"v=0"}`, `{"type":"candidate","pc":"down","candidate":{"candidate":"x"}}`,
		`{"type":"admit","id":"p1"}`, `{"type":"lock","locked":false}`, `{}`, `null`, `{"type":7}`,
		`{"type":"hand","raised":true}`, `{"type":"pupil_media","kind":"audio","allowed":false}`, `{"type":"screen_grant","id":"p1","allowed":true}`,
		`{"type":"offer","pc":"up","sdp":"v=0","screen_tracks":["a"]}`, `{"type":"spotlight","id":"p1","screen":true}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, e := web.DecodeMsg(b)
		if e != nil {
			if e.Code == "" || e.Message == "" || e.Type != "error" {
				t.Fatalf("error without code or message: %+v", e)
			}
			return
		}
		switch m.Type {
		case "offer", "answer", "candidate", "admit", "deny", "remove", "mute", "unmute", "lock", "end", "knock", "ack_recording_notice", "ping", "concern", "chat", "chat_delete", "chat_pupils",
			"admit_all", "mute_all", "pupil_media", "hand", "lower_hand", "let_speak", "unmute_self", "screen_grant", "spotlight":
		default:
			t.Fatalf("accepted unknown type %q", m.Type)
		}
	})
}
