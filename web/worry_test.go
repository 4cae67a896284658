package web_test

import (
	"context"
	"html"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/stretchr/testify/require"

	"github.com/chaperone-edu/chaperone/audit"
	"github.com/chaperone-edu/chaperone/internal/testkit"
	"github.com/chaperone-edu/chaperone/notify"
	"github.com/chaperone-edu/chaperone/store"
)

// TestPupilWorry (R17): during a recorded lesson the pupil presses "I'm
// worried" and writes to the safeguarding team. The DSL sees it on their
// home page and can read it; the lesson's teacher cannot (403, and it is on
// none of their pages); the lesson's recordings are on legal hold once
// stored; the audit log says a worry was sent, never what it says. Bad
// input is refused and changes nothing.
func TestPupilWorry(t *testing.T) {
	t.Parallel()
	s3 := testkit.StartS3(t)
	sc := newRecordingSchool(t, s3, "teacher", "head", "pupil", "pupil2", "dsl")
	id := liveSession(t, sc, onePupil)
	tm, pupils := teacherAndPupils(t, sc, id, "pupil")
	ackNotice(t, pupils[0].rc)
	watchGate(t, sc, id, 30*time.Second)

	pupil := sc.people["pupil"]
	status, page := get(t, pupil.HTTP, sc.gw.URL+"/rooms/"+id)
	require.Equal(t, http.StatusOK, status)
	require.Contains(t, page, `href="/worried?session=`+id+`"`, "the lesson page has the button")
	status, page = get(t, pupil.HTTP, sc.gw.URL+"/worried?session="+id)
	require.Equal(t, http.StatusOK, status)
	require.Contains(t, page, `value="`+id+`" selected`, "the lesson it came from is chosen")

	const words = "Someone in the chat sent me a message that scared me."
	// Bad input: nothing stored.
	st, body := postForm(t, pupil, sc.gw.URL+"/worried", url.Values{"text": {"   "}, "session": {id}})
	require.Equal(t, http.StatusBadRequest, st)
	require.Contains(t, body, "Write a few words")
	st, _ = postForm(t, pupil, sc.gw.URL+"/worried", url.Values{"text": {strings.Repeat("a", 2001)}})
	require.Equal(t, http.StatusBadRequest, st)
	st, _ = postForm(t, sc.people["pupil2"], sc.gw.URL+"/worried", url.Values{"text": {words}, "session": {id}})
	require.Equal(t, http.StatusBadRequest, st, "a lesson the pupil did not join")
	st, _ = postForm(t, sc.people["teacher"], sc.gw.URL+"/worried", url.Values{"text": {words}})
	require.Equal(t, http.StatusForbidden, st, "staff raise concerns, not worries")
	ctx := context.Background()
	cs, err := sc.gw.Store.ListConcerns(ctx, "")
	require.NoError(t, err)
	require.Empty(t, cs)

	st, body = postForm(t, pupil, sc.gw.URL+"/worried", url.Values{"text": {words}, "session": {id}})
	require.Equal(t, http.StatusOK, st, body)
	require.Contains(t, html.UnescapeString(body), "A safeguarding adult will read this.")
	cs, err = sc.gw.Store.ListConcerns(ctx, "")
	require.NoError(t, err)
	require.Len(t, cs, 1)
	worry := cs[0]
	require.Equal(t, store.ConcernKindWorry, worry.Kind)
	require.Equal(t, id, worry.SessionID)
	require.Equal(t, "Amelia Jones", worry.RaisedBy)
	require.Equal(t, words, worry.Details)

	// The DSL sees and reads it; the teacher of the lesson cannot.
	_, home := get(t, sc.people["dsl"].HTTP, sc.gw.URL+"/")
	require.Contains(t, home, "A pupil is worried")
	require.Contains(t, home, "/concerns/"+worry.ID)
	st, view := get(t, sc.people["dsl"].HTTP, sc.gw.URL+"/concerns/"+worry.ID)
	require.Equal(t, http.StatusOK, st)
	require.Contains(t, html.UnescapeString(view), words)
	st, view = get(t, sc.people["teacher"].HTTP, sc.gw.URL+"/concerns/"+worry.ID)
	require.Equal(t, http.StatusForbidden, st)
	require.NotContains(t, view, "scared me")
	for _, p := range []string{"/", "/sessions", "/sessions/" + id} {
		_, pg := get(t, sc.people["teacher"].HTTP, sc.gw.URL+p)
		require.NotContains(t, pg, worry.ID, p)
		require.NotContains(t, pg, "scared me", p)
	}
	ns, err := sc.gw.Store.ListNotifications(ctx, store.NotificationFilter{ConcernID: worry.ID})
	require.NoError(t, err)
	require.NotEmpty(t, ns)
	for _, n := range ns {
		require.Equal(t, notify.ReasonDSL, n.Reason, "the DSLs only: %s", n.RecipientEmail)
	}

	// The lesson ends: what it recorded is on legal hold.
	require.NoError(t, tm.rc.Send(map[string]any{"type": "end"}))
	pupils[0].rc.WaitState(map[string]any{"phase": "ended"})
	require.Eventually(t, func() bool {
		objs, err := sc.gw.Store.ListRecordingObjects(ctx, store.RecordingFilter{SessionID: id})
		if err != nil || len(objs) < 2 {
			return false
		}
		for _, o := range objs {
			if !o.Held {
				return false
			}
		}
		return true
	}, 60*time.Second, 200*time.Millisecond, "every object of the lesson is held")
	objs, err := sc.gw.Store.ListRecordingObjects(ctx, store.RecordingFilter{SessionID: id})
	require.NoError(t, err)
	for _, o := range objs {
		lh, err := s3.Client.GetObjectLegalHold(ctx, sc.gw.BucketName, o.Key, minio.GetObjectLegalHoldOptions{VersionID: o.VersionID})
		require.NoError(t, err, o.Key)
		require.Equal(t, minio.LegalHoldEnabled, *lh, "%s held in S3", o.Key)
	}

	// The audit log says a worry was sent, and nowhere what it says.
	require.NoError(t, sc.gw.Web.AuditWritten(ctx))
	rows, err := sc.gw.Store.ListAudit(ctx, store.AuditFilter{Action: audit.ConcernWorry})
	require.NoError(t, err)
	require.Len(t, rows, 1)
	require.Equal(t, "Amelia Jones", rows[0].ActorName)
	all, err := sc.gw.Store.ListAudit(ctx, store.AuditFilter{})
	require.NoError(t, err)
	for _, r := range all {
		require.NotContains(t, r.Detail, "scared", "%s keeps no text", r.Action)
	}
}
