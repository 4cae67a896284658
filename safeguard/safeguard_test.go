package safeguard_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/chaperone-edu/chaperone/audit"
	"github.com/chaperone-edu/chaperone/auth"
	"github.com/chaperone-edu/chaperone/lobby"
	"github.com/chaperone-edu/chaperone/safeguard"
	"github.com/chaperone-edu/chaperone/store"
)

const issuer = "https://idp.oakfield.example"

var (
	t0      = time.Date(2026, 3, 3, 9, 0, 0, 0, time.UTC) // injected clock: a Tuesday
	teacher = auth.Identity{Issuer: issuer, Subject: "t1", Name: "Sarah Okafor", Email: "s.okafor@oakfield.example", Roles: []auth.Role{auth.RoleStaff}}
	lead    = auth.Identity{Issuer: issuer, Subject: "y8", Name: "Tom Reid", Email: "t.reid@oakfield.example", Roles: []auth.Role{auth.RoleStaff}}
	other   = auth.Identity{Issuer: issuer, Subject: "t2", Name: "Ann Lee", Email: "a.lee@oakfield.example", Roles: []auth.Role{auth.RoleStaff}}
	dsl     = auth.Identity{Issuer: issuer, Subject: "d1", Name: "Priya Shah", Email: "p.shah@oakfield.example", Roles: []auth.Role{auth.RoleStaff, auth.RoleDSL}}
)

type fixture struct {
	st  *store.SQL
	svc *safeguard.Service
	ss  store.Session
}

// newFixture is a real SQLite store with a live session that Amelia (year
// 8) and Ben (year 9) joined, and its teacher.
func newFixture(t *testing.T) fixture {
	t.Helper()
	ctx := context.Background()
	st, err := store.OpenSQLite(ctx, filepath.Join(t.TempDir(), "c.db"))
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	ss := store.Session{ID: "s1", Title: "Maths 8B", Kind: "interactive", HostSub: teacher.Subject, HostName: teacher.Name, HostEmail: teacher.Email,
		Start: t0, End: t0.Add(time.Hour), State: store.StateLive, Created: t0, Updated: t0}
	require.NoError(t, st.CreateSessions(ctx, []store.Session{ss}))
	for _, u := range []store.User{
		{Issuer: issuer, Subject: "p1", Name: "Amelia Jones", Email: "amelia.jones@oakfield.example", Roles: []string{"pupil"}, Groups: []string{"year-8"}, LastSeen: t0},
		{Issuer: issuer, Subject: "p2", Name: "Ben Carter", Email: "ben.carter@oakfield.example", Roles: []string{"pupil"}, Groups: []string{"year-9"}, LastSeen: t0},
		{Issuer: issuer, Subject: dsl.Subject, Name: dsl.Name, Email: dsl.Email, Roles: []string{"staff", "dsl"}, LastSeen: t0},
	} {
		require.NoError(t, st.UpsertUser(ctx, u))
	}
	join := func(sub, name, role string) {
		_, err := st.AppendAudit(ctx, store.AuditEntry{Time: t0, ActorSub: sub, ActorName: name, Action: audit.RoomJoin, Target: "s1:" + sub, SessionID: ss.ID,
			Detail: audit.Encode(audit.Join{Role: role, OnRoster: true})})
		require.NoError(t, err)
	}
	join(teacher.Subject, teacher.Name, "staff")
	join("p1", "Amelia Jones", "pupil")
	join("p2", "Ben Carter", "pupil")
	join("p1", "Amelia Jones", "pupil") // a rejoin is the same pupil
	svc := safeguard.New(safeguard.Config{Store: st, YearLeads: map[string]string{"year-8": lead.Email}, DSLEmails: []string{"dsl-team@oakfield.example"},
		PublicURL: "https://chaperone.oakfield.example", Now: func() time.Time { return t0.Add(10 * time.Minute) }})
	return fixture{st: st, svc: svc, ss: ss}
}

func (f fixture) count(t *testing.T, a audit.Action) int {
	rows, err := f.st.ListAudit(context.Background(), store.AuditFilter{Action: a})
	require.NoError(t, err)
	return len(rows)
}

func TestPupilsAreThoseWhoJoined(t *testing.T) {
	f := newFixture(t)
	require.Equal(t, []safeguard.Pupil{{Sub: "p1", Name: "Amelia Jones"}, {Sub: "p2", Name: "Ben Carter"}}, f.svc.Pupils(context.Background(), "s1"),
		"pupils by their join rows' typed role, first join first, each once; staff are not pupils")
	require.Equal(t, []string{"Sarah Okafor", "Amelia Jones", "Ben Carter"}, f.svc.Joined(context.Background(), "s1"))
}

// Raised in the room twice (a double click, a second tab), the concern is
// stored and told once; the form then completes that one concern and tells
// the year lead of the pupil ticked.
func TestRaiseInRoomThenFile(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.svc.RaiseInRoom(teacher, f.ss)
	f.svc.RaiseInRoom(teacher, f.ss)
	cs, err := f.st.ListConcerns(ctx, "s1")
	require.NoError(t, err)
	require.Len(t, cs, 1)
	require.Equal(t, store.ConcernPending, cs[0].State)
	require.Equal(t, 1, f.count(t, audit.ConcernPending))
	pending, ok := f.svc.Pending(ctx, "s1", teacher.Subject)
	require.True(t, ok)
	ns := f.svc.Notifications(ctx, pending.ID)
	require.Len(t, ns, 2, "the DSL who has signed in and dsl_emails, at once: %+v", ns)

	filed, err := f.svc.File(ctx, teacher, f.ss, safeguard.Filing{About: "Amelia", Details: "She said someone online asked to meet her.", Pupils: []string{"p1", "p1"}})
	require.NoError(t, err)
	require.Equal(t, pending.ID, filed.Concern.ID, "the pending concern is completed, not raised again")
	require.Equal(t, []safeguard.Pupil{{Sub: "p1", Name: "Amelia Jones"}}, filed.Ticked)
	require.Len(t, filed.Told, 1, "only the year lead is new: %+v", filed.Told)
	require.Equal(t, lead.Email, filed.Told[0].RecipientEmail)
	c, err := f.st.GetConcern(ctx, pending.ID)
	require.NoError(t, err)
	require.Equal(t, store.ConcernFiled, c.State)
	require.Equal(t, []string{"p1"}, c.Pupils)
	_, ok = f.svc.Pending(ctx, "s1", teacher.Subject)
	require.False(t, ok)

	require.True(t, f.svc.MayRead(ctx, dsl, c))
	require.True(t, f.svc.MayRead(ctx, lead, c), "the lead of the ticked pupil's year")
	require.False(t, f.svc.MayRead(ctx, other, c), "another member of staff")
	require.False(t, f.svc.MayRead(ctx, teacher, c), "raising it is not reading it")
}

// A bad filing is refused with what to fix, and changes nothing.
func TestFileRefusesBadInput(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	for name, in := range map[string]safeguard.Filing{
		"no details":         {About: "Amelia"},
		"too long":           {Details: string(make([]byte, 5001))},
		"pupil not joined":   {Details: "Something happened.", Pupils: []string{"p9"}},
		"invisible controls": {Details: "Some\u202ething happened."},
	} {
		_, err := f.svc.File(ctx, teacher, f.ss, in)
		var le *lobby.Error
		require.True(t, errors.As(err, &le), "%s: %v", name, err)
		require.NotEmpty(t, le.Message, name)
	}
	cs, err := f.st.ListConcerns(ctx, "s1")
	require.NoError(t, err)
	require.Empty(t, cs)
	require.Zero(t, f.count(t, audit.ConcernFiled))
	require.Zero(t, f.count(t, audit.ConcernNotified))
}

func TestMayRaise(t *testing.T) {
	f := newFixture(t)
	require.True(t, safeguard.MayRaise(teacher, f.ss))
	require.False(t, safeguard.MayRaise(other, f.ss), "staff of another session")
	require.True(t, safeguard.MayRaise(auth.Identity{Email: "head@oakfield.example", Roles: []auth.Role{auth.RoleStaff, auth.RoleHead}}, f.ss))
}

// A pupil's worry from a lesson whose teacher is also a DSL never reaches
// that teacher (they may be the worry): not told, cannot read it; the
// other DSLs can. A pupil past the hourly limit is still heard: the worry
// is kept (the DSLs see it on their home page), only not notified again.
func TestWorryKeptFromTheLessonsStaff(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	require.NoError(t, f.st.UpsertUser(ctx, store.User{Issuer: issuer, Subject: teacher.Subject, Name: teacher.Name, Email: teacher.Email,
		Roles: []string{"staff", "dsl"}, LastSeen: t0}))
	teacherDSL := teacher
	teacherDSL.Roles = []auth.Role{auth.RoleStaff, auth.RoleDSL}
	amelia := auth.Identity{Issuer: issuer, Subject: "p1", Name: "Amelia Jones", Email: "amelia.jones@oakfield.example", Roles: []auth.Role{auth.RolePupil}}

	c, err := f.svc.Worry(ctx, amelia, "s1", "My teacher said something that upset me.", "")
	require.NoError(t, err)
	for _, n := range f.svc.Notifications(ctx, c.ID) {
		require.NotEqual(t, teacher.Email, n.RecipientEmail, "the lesson's teacher is not told")
	}
	require.False(t, f.svc.MayRead(ctx, teacherDSL, c), "a DSL who taught the lesson cannot read it")
	require.True(t, f.svc.MayRead(ctx, dsl, c))
	require.False(t, f.svc.MayRead(ctx, lead, c), "a year lead cannot read a worry")

	// A bad worry changes nothing; past the limit, worries are still kept.
	_, err = f.svc.Worry(ctx, amelia, "s1", "   ", "")
	require.Error(t, err)
	_, err = f.svc.Worry(ctx, teacher, "", "I am staff.", "")
	require.Error(t, err)
	for i := range 6 {
		_, err := f.svc.Worry(ctx, amelia, "", "Still worried, message "+string(rune('a'+i)), "")
		require.NoError(t, err, "worry %d", i+2)
	}
	cs, err := f.st.ListConcerns(ctx, "")
	require.NoError(t, err)
	require.Len(t, cs, 7, "every worry is kept")
	require.Equal(t, 7, f.count(t, audit.ConcernWorry))
	require.Equal(t, 5, f.count(t, audit.ConcernNotified), "the DSLs are told of 5 an hour")
}

// A filing that names a pupil who did not join is refused before anything
// happens (the caller checks it before stopping a running lesson).
func TestCheckFiling(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	require.Error(t, f.svc.CheckFiling(ctx, f.ss, safeguard.Filing{Details: "x", Pupils: []string{"p9"}}))
	require.Error(t, f.svc.CheckFiling(ctx, f.ss, safeguard.Filing{Pupils: []string{"p1"}}))
	require.NoError(t, f.svc.CheckFiling(ctx, f.ss, safeguard.Filing{Details: "Something happened.", Pupils: []string{"p1", "p2"}}))
}
