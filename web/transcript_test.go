package web_test

import (
	"context"
	"encoding/csv"
	"html"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/chaperone-edu/chaperone/internal/testkit"
	"github.com/chaperone-edu/chaperone/recording"
	"github.com/chaperone-edu/chaperone/store"
)

// TestChatTranscriptStoredAndHeld (R12): a lesson with chat and no
// recording (two pupils, two staff). When the teacher stops it to raise a
// concern, the transcript — the deleted message included, marked with who
// deleted it — is stored next to the recordings in the real (versitygw)
// bucket under Object Lock, indexed, and on legal hold; the DSL sees it on
// the session page and downloads it (audited); the sweeper keeps it until
// the hold is released.
func TestChatTranscriptStoredAndHeld(t *testing.T) {
	t.Parallel()
	s3 := testkit.StartS3(t)
	sc := newRecordingSchool(t, s3, "teacher", "teacher2", "head", "pupil", "pupil2", "dsl")
	id := liveSession(t, sc, map[string]any{"co_staff": []string{"j.patel@oakfield.example"}})
	second, _ := joinRoom(t, sc, "teacher2", id) // two staff before any pupil: no recording is needed
	second.WaitState(map[string]any{"phase": "admitted"})
	tm, pupils := teacherAndPupils(t, sc, id, "pupil", "pupil2")
	amelia, zoe := pupils[0], pupils[1]
	require.NoError(t, amelia.rc.Send(map[string]any{"type": "chat", "text": "=1+1 <b>Hi</b> &"}))
	hi := nextChat(t, tm)
	nextChat(t, zoe)
	require.NoError(t, tm.rc.Send(map[string]any{"type": "chat_delete", "id": hi["id"]}))
	require.Equal(t, hi["id"], zoe.rc.NextType("chat_deleted")["id"])
	require.NoError(t, tm.rc.Send(map[string]any{"type": "chat", "text": "Listen please"}))
	nextChat(t, zoe)
	require.NoError(t, zoe.rc.Send(map[string]any{"type": "chat", "text": "Yes miss"}))
	tm.rc.Next(10*time.Second, func(m map[string]any) bool { return m["type"] == "chat" && m["text"] == "Yes miss" })
	require.Equal(t, "off", string(roomState(t, sc, id).Recording), "no recording in this lesson")

	// Stop and raise a concern.
	require.NoError(t, tm.rc.Send(map[string]any{"type": "concern"}))
	tm.rc.NextType("concern_form")
	teacher := sc.people["teacher"]
	resp, err := teacher.HTTP.PostForm(sc.gw.URL+"/sessions/"+id+"/concern", url.Values{"csrf_token": {teacher.CSRF},
		"about": {"Amelia Jones"}, "details": {"Amelia wrote something worrying in the chat."}})
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	// The transcript object: in the bucket, locked for at least 28 days, on hold.
	ctx := context.Background()
	key := recording.TranscriptKey(id)
	var obj recording.Object
	require.Eventually(t, func() bool {
		objs, err := sc.gw.Bucket.List(ctx, recording.SessionPrefix(id))
		if err != nil {
			return false
		}
		for _, o := range objs {
			if o.Key == key {
				obj = o
				return o.LegalHold
			}
		}
		return false
	}, 60*time.Second, 200*time.Millisecond, "transcript stored and held")
	require.Equal(t, recording.LockGovernance, obj.Mode)
	require.GreaterOrEqual(t, obj.RetainUntil.Sub(sc.clock.Now()), 28*24*time.Hour-time.Minute)
	rc, _, err := sc.gw.Bucket.Open(ctx, key, 0, -1)
	require.NoError(t, err)
	stored, err := io.ReadAll(rc)
	rc.Close()
	require.NoError(t, err)
	recs, err := csv.NewReader(strings.NewReader(string(stored))).ReadAll()
	require.NoError(t, err)
	require.Len(t, recs, 4, "header and three messages: %s", stored)
	require.Equal(t, []string{"time", "from", "role", "message", "deleted", "deleted_at", "deleted_by"}, recs[0])
	require.Equal(t, []string{"Amelia Jones", "pupil", "'=1+1 <b>Hi</b> &", "true"}, recs[1][1:5], "the deleted message is kept (a formula neutralised)")
	require.Equal(t, "Sarah Whitfield", recs[1][6])
	require.NotEmpty(t, recs[1][5])
	require.Equal(t, []string{"Sarah Whitfield", "staff", "Listen please", "false", "", ""}, recs[2][1:])
	require.Equal(t, []string{"Zoë Lefèvre", "pupil", "Yes miss", "false"}, recs[3][1:5])
	idx, err := sc.gw.Store.ListRecordingObjects(ctx, store.RecordingFilter{SessionID: id})
	require.NoError(t, err)
	require.Len(t, idx, 1)
	require.Equal(t, key, idx[0].Key)
	require.True(t, idx[0].Held, "indexed as held")
	require.Equal(t, obj.VersionID, idx[0].VersionID)

	// The DSL's session page shows it (as text), and the download is audited.
	dsl := sc.people["dsl"]
	status, page := get(t, dsl.HTTP, sc.gw.URL+"/recordings/"+id)
	require.Equal(t, http.StatusOK, status, page)
	require.Contains(t, page, "=1&#43;1 &lt;b&gt;Hi&lt;/b&gt; &amp;", "shown as text")
	require.Contains(t, page, "deleted by Sarah Whitfield at")
	require.Contains(t, page, "Stored with the recordings")
	require.Contains(t, html.UnescapeString(page), "Zoë Lefèvre (pupil)")
	status, body := get(t, dsl.HTTP, sc.gw.URL+"/recordings/"+id+"/chat.csv")
	require.Equal(t, http.StatusOK, status)
	require.Contains(t, body, "'=1+1 <b>Hi</b> &", "a formula is neutralised in the download")
	require.Contains(t, body, "Yes miss")
	require.Equal(t, 1, auditCount(t, sc.gw.Store, "chat.transcript_downloaded"))
	status, _ = get(t, teacher.HTTP, sc.gw.URL+"/recordings/"+id+"/chat.csv")
	require.Equal(t, http.StatusForbidden, status, "only the DSL downloads it")
	require.Equal(t, 1, auditCount(t, sc.gw.Store, "chat.transcript_downloaded"), "a refusal is not a download")
	_, list := get(t, dsl.HTTP, sc.gw.URL+"/recordings")
	require.Contains(t, list, `href="/recordings/`+id+`"`, "a session with only chat is found in the search")

	// Past retention the sweeper keeps it while held, and deletes it once released.
	later := schoolDay.Add(30 * 24 * time.Hour)
	n, err := sc.gw.Recordings.Sweep(ctx, later)
	require.NoError(t, err)
	require.Zero(t, n)
	kept, err := sc.gw.Store.ListChatMessages(ctx, id)
	require.NoError(t, err)
	require.Len(t, kept, 3, "held: the chat is kept")
	resp, err = dsl.HTTP.PostForm(sc.gw.URL+"/recordings/"+id+"/release", url.Values{"csrf_token": {dsl.CSRF}, "reason": {"Reviewed with the family; closed."}})
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	n, err = sc.gw.Recordings.Sweep(ctx, later)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	idx, err = sc.gw.Store.ListRecordingObjects(ctx, store.RecordingFilter{SessionID: id, Deleted: true})
	require.NoError(t, err)
	require.False(t, idx[0].Deleted.IsZero(), "index marks it deleted")

	// With the stored copy gone, the chat's text goes from the gateway too:
	// the table is empty, the DSL's page has no text, and the audit log never had it.
	left, err := sc.gw.Store.ListChatMessages(ctx, id)
	require.NoError(t, err)
	require.Empty(t, left, "chat text deleted with the transcript")
	require.Equal(t, 1, auditCount(t, sc.gw.Store, "chat.purged"))
	status, page = get(t, dsl.HTTP, sc.gw.URL+"/recordings/"+id)
	require.Equal(t, http.StatusOK, status, page)
	require.NotContains(t, page, "Yes miss")
	status, body = get(t, dsl.HTTP, sc.gw.URL+"/recordings/"+id+"/chat.csv")
	require.Equal(t, http.StatusOK, status)
	require.NotContains(t, body, "Yes miss")
	requireNoChatText(t, sc.gw.Store, id, "Yes miss", "Listen please", "<b>Hi</b>")
}

// requireNoChatText checks that no audit row of a session holds any of the
// chat texts (the chat table does; the audit log keeps hashes).
func requireNoChatText(t *testing.T, st store.Store, sessionID string, texts ...string) {
	t.Helper()
	rows, err := st.ListAudit(context.Background(), store.AuditFilter{SessionID: sessionID})
	require.NoError(t, err)
	require.NotEmpty(t, rows)
	for _, r := range rows {
		for _, text := range texts {
			require.NotContains(t, r.Detail, text, "audit %s", r.Action)
			require.NotContains(t, r.Detail, html.EscapeString(text), "audit %s", r.Action)
		}
	}
}
