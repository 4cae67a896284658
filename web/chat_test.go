package web_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/chaperone-edu/chaperone/internal/testkit"
	"github.com/chaperone-edu/chaperone/store"
)

func nextChat(t *testing.T, m member) map[string]any {
	t.Helper()
	return m.rc.NextType("chat")
}

// TestChat: a pupil's message reaches everyone with their verified name,
// whatever the page claims or addresses; staff delete a message (gone from
// the room, kept in the record) and turn pupils' chat off; limits hold.
func TestChat(t *testing.T) {
	t.Parallel()
	sc := newSchool(t, "teacher", "head", "pupil", "pupil2", "pupil3")
	id := liveSession(t, sc, nil)
	tm, pupils := teacherAndPupils(t, sc, id, "pupil", "pupil2")
	amelia, zoe := pupils[0], pupils[1]
	// A message addressed to one person (and claiming another name) still goes to everyone, as sent by Amelia.
	require.NoError(t, amelia.rc.Send(map[string]any{"type": "chat", "text": "<b>Hello</b> miss", "to": participantID(zoe.rc), "name": "Mrs Head"}))
	for _, m := range []member{tm, amelia, zoe} {
		got := nextChat(t, m)
		require.Equal(t, "<b>Hello</b> miss", got["text"])
		require.Equal(t, "Amelia Jones", got["from"].(map[string]any)["name"])
		require.Equal(t, "pupil", got["from"].(map[string]any)["role"])
	}
	msgID := tm.rc.Last("chat")["id"].(string)

	// Staff delete it: it disappears from the room but stays in the record.
	require.NoError(t, amelia.rc.Send(map[string]any{"type": "chat_delete", "id": msgID}))
	require.Equal(t, "forbidden", amelia.rc.NextType("error")["code"])
	require.NoError(t, tm.rc.Send(map[string]any{"type": "chat_delete", "id": msgID}))
	for _, m := range []member{tm, amelia, zoe} {
		require.Equal(t, msgID, m.rc.NextType("chat_deleted")["id"])
	}
	rows, err := sc.gw.Store.ListAudit(context.Background(), store.AuditFilter{SessionID: id, Action: "chat."})
	require.NoError(t, err)
	var actions []string
	for _, r := range rows {
		actions = append(actions, string(r.Action)+":"+r.Detail)
	}
	// The audit log proves what was said (SHA-256 of the text) without
	// holding the words; the text is in the chat table, deletion marked.
	sum := sha256.Sum256([]byte("<b>Hello</b> miss"))
	hash := hex.EncodeToString(sum[:])
	require.Contains(t, strings.Join(actions, "\n"), `chat.message:{"role":"pupil","sha256":"`+hash+`"}`)
	require.Contains(t, strings.Join(actions, "\n"), `chat.deleted:{"sha256":"`+hash+`","whom":"Amelia Jones"}`)
	require.NotContains(t, strings.Join(actions, "\n"), "Hello", "no chat text in the audit log")
	stored, err := sc.gw.Store.ListChatMessages(context.Background(), id)
	require.NoError(t, err)
	require.Len(t, stored, 1)
	require.Equal(t, "<b>Hello</b> miss", stored[0].Text)
	require.Equal(t, "Amelia Jones", stored[0].SenderName)
	require.Equal(t, msgID, stored[0].ID)
	require.Equal(t, "Sarah Whitfield", stored[0].DeletedBy)
	require.False(t, stored[0].DeletedAt.IsZero())

	// Limits: length, and a pupil's rate.
	require.NoError(t, zoe.rc.Send(map[string]any{"type": "chat", "text": strings.Repeat("é", 1001)}))
	require.Equal(t, "invalid", zoe.rc.NextType("error")["code"])
	for i := 0; i < 5; i++ {
		require.NoError(t, zoe.rc.Send(map[string]any{"type": "chat", "text": "ok"}))
		nextChat(t, zoe)
	}
	require.NoError(t, zoe.rc.Send(map[string]any{"type": "chat", "text": "one too many"}))
	require.Contains(t, zoe.rc.NextType("error")["message"], "too quickly")

	// Pupils' chat off: pupils refused, staff can still write.
	require.NoError(t, tm.rc.Send(map[string]any{"type": "chat_pupils", "allowed": false}))
	amelia.rc.WaitState(map[string]any{"chat_pupils": false})
	require.NoError(t, amelia.rc.Send(map[string]any{"type": "chat", "text": "can I?"}))
	require.Contains(t, amelia.rc.NextType("error")["message"], "turned the chat off")
	require.NoError(t, tm.rc.Send(map[string]any{"type": "chat", "text": "Listen please"}))
	require.Equal(t, "Listen please", nextChat(t, amelia)["text"])

	// A pupil admitted later gets the history, without the deleted message.
	late, _, err := testkit.DialRoom(t, sc.people["pupil3"], id, "")
	require.NoError(t, err)
	late.WaitState(map[string]any{"phase": "waiting"})
	require.NoError(t, tm.rc.Send(map[string]any{"type": "admit", "id": participantID(late)}))
	hist := late.NextType("chat_history")["messages"].([]any)
	var texts []string
	for _, m := range hist {
		texts = append(texts, m.(map[string]any)["text"].(string))
	}
	require.NotContains(t, texts, "<b>Hello</b> miss")
	require.Contains(t, texts, "Listen please")
}
