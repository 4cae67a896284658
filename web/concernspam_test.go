package web_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/chaperone-edu/chaperone/audit"
	"github.com/chaperone-edu/chaperone/auth"
	"github.com/chaperone-edu/chaperone/internal/testkit"
)

// TestConcernFromLobbyRefused (issue 18, finding 1): the head, waiting in
// another teacher's lobby, sends "concern" three times. Each is refused and
// nothing happens: no concern stored, no DSL told, no e-mail, the lesson
// goes on (before, each refusal came after a pending concern was stored and
// the DSLs were e-mailed).
func TestConcernFromLobbyRefused(t *testing.T) {
	t.Parallel()
	sc, smtpSrv, id, _ := concernLesson(t) // the teacher is in the lesson
	gw := sc.gw
	head, _, err := testkit.DialRoom(t, sc.people["head"], id, "")
	require.NoError(t, err)
	head.WaitState(map[string]any{"phase": "waiting"})

	for range 3 {
		require.NoError(t, head.Send(map[string]any{"type": "concern"}))
		require.Equal(t, "forbidden", head.NextType("error")["code"])
	}
	ctx := context.Background()
	cs, err := gw.Store.ListConcerns(ctx, id)
	require.NoError(t, err)
	require.Empty(t, cs, "a refused concern stores nothing")
	for _, action := range []audit.Action{"concern.pending", "concern.raised", "concern.notified"} {
		require.Zero(t, auditCount(t, gw.Store, action), string(action))
	}
	require.Nil(t, head.Last("concern_form"), "no form offered to a refused concern")
	time.Sleep(300 * time.Millisecond) // an e-mail would have arrived by now
	require.Empty(t, smtpSrv.Mails(), "nobody is told of a refused concern")
	require.Equal(t, "live", sc.state(t, id), "the lesson goes on")
}

// TestConcernRaisedOncePerPerson (issue 18, finding 1): a concern raised in
// the room and not yet filled in is not raised again by the same person,
// and each person told is e-mailed each kind of message about a concern
// once, however often it is sent.
func TestConcernRaisedOncePerPerson(t *testing.T) {
	t.Parallel()
	sc, smtpSrv, id, teacher := concernLesson(t)
	gw := sc.gw
	require.NoError(t, teacher.Send(map[string]any{"type": "concern"}))
	teacher.NextType("concern_form")
	smtpSrv.WaitMails(t, 2, 30*time.Second) // the DSL and dsl_emails

	ctx := context.Background()
	cs, err := gw.Store.ListConcerns(ctx, id)
	require.NoError(t, err)
	require.Len(t, cs, 1)
	ss, err := gw.Store.GetSession(ctx, id)
	require.NoError(t, err)
	who := auth.Identity{Subject: cs[0].RaisedBySub, Name: cs[0].RaisedBy, Roles: []auth.Role{auth.RoleStaff}}
	for range 3 {
		gw.Web.RaiseConcernInRoom(who, ss)
	}
	cs, err = gw.Store.ListConcerns(ctx, id)
	require.NoError(t, err)
	require.Len(t, cs, 1, "one pending concern per room and person")
	require.Equal(t, 1, auditCount(t, gw.Store, "concern.pending"))

	for range 3 {
		gw.Web.NotifyConcernCompleted(ctx, who, cs[0])
	}
	smtpSrv.WaitMails(t, 4, 30*time.Second) // "details added", once each
	time.Sleep(300 * time.Millisecond)      // a further e-mail would have arrived by now
	require.Len(t, smtpSrv.Mails(), 4, "each person e-mailed each kind of message once per concern")
}

// concernLesson starts a gateway that e-mails concerns to smtpSrv, signs in
// the teacher, the head and the DSL, and opens a live lesson the teacher is
// in.
func concernLesson(t *testing.T) (sc *school, smtpSrv *testkit.SMTPServer, id string, teacher *testkit.RoomConn) {
	t.Helper()
	smtpSrv = testkit.StartSMTP(t)
	clock := testkit.NewClock(schoolDay)
	gw := testkit.StartGateway(t, testkit.GatewayOptions{Now: clock.Now, SMTP: smtpSrv, DSLEmails: []string{"safeguarding@oakfield.example"}})
	sc = &school{gw: gw, clock: clock, people: map[string]*testkit.APIClient{}}
	for _, u := range []string{"teacher", "head", "dsl"} {
		sc.people[u] = testkit.APILogin(t, gw, u)
	}
	id = liveSession(t, sc, nil)
	teacher, _ = joinRoom(t, sc, "teacher", id)
	teacher.WaitState(map[string]any{"phase": "admitted"})
	return sc, smtpSrv, id, teacher
}
