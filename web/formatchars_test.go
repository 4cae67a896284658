package web_test

import (
	"context"
	"html"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/chaperone-edu/chaperone/store"
)

// rlo is U+202E RIGHT-TO-LEFT OVERRIDE: "\u202egpj.exe" reads as "exe.jpg".
const rlo = "\u202e"

// TestFormatCharactersRefused (issue 18, finding 4): bidi controls and
// other format characters are refused, with a message that says so, in a
// session's title, a rejection reason, a deny reason, chat and the concern
// form; nothing is stored. An emoji ZWJ sequence in chat still goes through.
func TestFormatCharactersRefused(t *testing.T) {
	t.Parallel()
	sc := newSchool(t, "teacher", "head", "pupil")
	teacher, head := sc.people["teacher"], sc.people["head"]
	ctx := context.Background()

	status, out := teacher.Call(http.MethodPost, "/api/sessions", sessionBody("Maths "+rlo+"gpj.exe", schoolDay.Add(2*time.Hour), nil))
	require.Equal(t, http.StatusBadRequest, status, "%v", out)
	require.Contains(t, out["message"], "invisible formatting character (U+202E)")
	require.Equal(t, "title", out["field"])
	list, err := sc.gw.Store.ListSessions(ctx, store.SessionFilter{})
	require.NoError(t, err)
	require.Empty(t, list)

	id := sc.request(t, "teacher", nil)
	status, out = head.Call(http.MethodPost, "/api/sessions/"+id+"/reject", map[string]any{"reason": "Clashes " + rlo + "with"})
	require.Equal(t, http.StatusBadRequest, status, "%v", out)
	require.Contains(t, out["message"], "U+202E")
	require.Equal(t, store.StateRequested, sc.state(t, id))

	id = liveSession(t, sc, nil)
	tm, pupils := teacherAndPupils(t, sc, id, "pupil")
	require.NoError(t, pupils[0].rc.Send(map[string]any{"type": "chat", "text": "see " + rlo + "gpj.exe"}))
	e := pupils[0].rc.NextType("error")
	require.Equal(t, "invalid", e["code"])
	require.Contains(t, e["message"], "U+202E")
	require.NoError(t, pupils[0].rc.Send(map[string]any{"type": "chat", "text": "zero\u200bwidth"}))
	require.Contains(t, pupils[0].rc.NextType("error")["message"], "U+200B")
	require.NoError(t, pupils[0].rc.Send(map[string]any{"type": "chat", "text": "Thank you 👩\u200d🏫"}))
	require.Equal(t, "Thank you 👩\u200d🏫", pupils[0].rc.NextType("chat")["text"])
	msgs, err := sc.gw.Store.ListChatMessages(ctx, id)
	require.NoError(t, err)
	require.Len(t, msgs, 1, "only the emoji message is kept")

	// The teacher's reason to remove a pupil.
	require.NoError(t, tm.rc.Send(map[string]any{"type": "remove", "id": participantID(pupils[0].rc), "reason": "Be " + rlo + "kind"}))
	e = tm.rc.NextType("error")
	require.Equal(t, "invalid", e["code"])
	require.Contains(t, e["message"], "U+202E")

	// The concern form keeps what was typed and says what to remove.
	require.NoError(t, tm.rc.Send(map[string]any{"type": "concern"}))
	tm.rc.NextType("concern_form")
	status, body := postForm(t, teacher, sc.gw.URL+"/sessions/"+id+"/concern", url.Values{"details": {"He said " + rlo + "something"}})
	require.Equal(t, http.StatusBadRequest, status, body)
	require.Contains(t, html.UnescapeString(body), "U+202E")
	cs, err := sc.gw.Store.ListConcerns(ctx, id)
	require.NoError(t, err)
	require.Len(t, cs, 1)
	require.Equal(t, store.ConcernPending, cs[0].State, "not completed with the disguised text")
}
