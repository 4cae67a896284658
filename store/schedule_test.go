package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// fullSession has every field set, times with full nanoseconds.
func fullSession(id string) Session {
	return Session{
		ID:           id,
		SeriesID:     "series-1",
		Title:        "Year 9 Physics",
		Kind:         "interactive",
		HostSub:      "sub-host",
		HostName:     "Ada Lovelace",
		HostEmail:    "ada@school.example",
		CoStaff:      []string{"Charles@School.example", "mary@school.example"},
		RosterGroup:  "9P1",
		RosterEmails: []string{"pupil1@school.example", "pupil2@school.example"},
		Start:        t0.Add(24 * time.Hour),
		End:          t0.Add(25 * time.Hour),
		State:        StateApproved,
		Created:      t0,
		Updated:      t0.Add(time.Minute),
		DecidedBySub: "sub-head",
		DecidedBy:    "Head Teacher",
		DecidedAt:    t0.Add(time.Minute),
		Reason:       "looks fine",
	}
}

func TestSessionRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	forEachBackend(t, func(t *testing.T, s *SQL) {
		full := fullSession("s-full")
		// A time in another zone and with a monotonic reading reads back as UTC.
		full.Start = time.Now().In(time.FixedZone("X", 3600))
		// Minimal: nil lists, no decision.
		minimal := Session{ID: "s-min", State: StateRequested, Start: t0, End: t0.Add(time.Hour), Created: t0, Updated: t0}
		empty := Session{ID: "s-empty", State: StateRequested, CoStaff: []string{}, RosterEmails: []string{}, Start: t0, End: t0, Created: t0, Updated: t0}
		require.NoError(t, s.CreateSessions(ctx, []Session{full, minimal, empty}))

		got, err := s.GetSession(ctx, full.ID)
		require.NoError(t, err)
		want := full
		want.Start = normalise(full.Start)
		require.Equal(t, want, got)
		require.True(t, got.Start.Equal(full.Start))

		got, err = s.GetSession(ctx, minimal.ID)
		require.NoError(t, err)
		require.Equal(t, minimal, got)
		require.Nil(t, got.CoStaff)
		require.Nil(t, got.RosterEmails)
		require.True(t, got.DecidedAt.IsZero())

		got, err = s.GetSession(ctx, empty.ID)
		require.NoError(t, err)
		require.Equal(t, empty, got)
		require.NotNil(t, got.CoStaff)
		require.NotNil(t, got.RosterEmails)

		_, err = s.GetSession(ctx, "nope")
		require.ErrorIs(t, err, ErrNotFound)

		require.NoError(t, s.CreateSessions(ctx, nil))
		require.Error(t, s.CreateSessions(ctx, []Session{{State: StateRequested}}), "empty ID")
		require.Error(t, s.CreateSessions(ctx, []Session{{ID: "x", State: "bogus"}}), "unknown state")
		bad := fullSession("s-bad-year")
		bad.End = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
		require.Error(t, s.CreateSessions(ctx, []Session{bad}))
	})
}

func TestCreateSessionsAtomic(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	forEachBackend(t, func(t *testing.T, s *SQL) {
		require.NoError(t, s.CreateSessions(ctx, []Session{fullSession("existing")}))
		err := s.CreateSessions(ctx, []Session{fullSession("w1"), fullSession("w2"), fullSession("existing"), fullSession("w3")})
		require.ErrorIs(t, err, ErrConflict)
		err = s.CreateSessions(ctx, []Session{fullSession("d1"), fullSession("d2"), fullSession("d1")})
		require.ErrorIs(t, err, ErrConflict)

		all, err := s.ListSessions(ctx, SessionFilter{})
		require.NoError(t, err)
		require.Len(t, all, 1, "a failed batch inserts none")
		require.Equal(t, "existing", all[0].ID)
		for _, id := range []string{"w1", "w2", "w3", "d1", "d2"} {
			_, err := s.GetSession(ctx, id)
			require.ErrorIs(t, err, ErrNotFound, id)
		}
	})
}

func ids(ss []Session) []string {
	out := make([]string, len(ss))
	for i, x := range ss {
		out[i] = x.ID
	}
	return out
}

func TestListSessionsFilters(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	forEachBackend(t, func(t *testing.T, s *SQL) {
		mk := func(id, series, host string, coStaff []string, state string, startH int) Session {
			return Session{
				ID: id, SeriesID: series, HostEmail: host, CoStaff: coStaff, State: state,
				Start: t0.Add(time.Duration(startH) * time.Hour), End: t0.Add(time.Duration(startH+1) * time.Hour),
				Created: t0, Updated: t0,
			}
		}
		// Inserted out of order; "b" and "a2" share a start to check the ID tie-break.
		require.NoError(t, s.CreateSessions(ctx, []Session{
			mk("c", "ser", "ada@school.example", nil, StateApproved, 3),
			mk("b", "", "bob@school.example", []string{"Ada@School.Example"}, StateRequested, 2),
			mk("a2", "ser", "ada@school.example", nil, StateRequested, 2),
			mk("a1", "ser", "ada@school.example", []string{}, StateLive, 1),
			mk("d", "", "carol@school.example", []string{"dave@school.example"}, StateCancelled, 4),
			mk("e", "other", "ADA@school.example", nil, StateEnded, 0),
		}))

		list := func(f SessionFilter) []string {
			t.Helper()
			ss, err := s.ListSessions(ctx, f)
			require.NoError(t, err)
			return ids(ss)
		}
		require.Equal(t, []string{"e", "a1", "a2", "b", "c", "d"}, list(SessionFilter{}))
		require.Equal(t, []string{"a2", "b", "c"}, list(SessionFilter{States: []string{StateRequested, StateApproved}}))
		require.Equal(t, []string{"d"}, list(SessionFilter{States: []string{StateCancelled}}))
		require.Empty(t, list(SessionFilter{States: []string{StateRejected}}))

		// Host (any case) or co-staff (any case).
		require.Equal(t, []string{"e", "a1", "a2", "b", "c"}, list(SessionFilter{StaffEmail: "ada@SCHOOL.example"}))
		require.Equal(t, []string{"b"}, list(SessionFilter{StaffEmail: "BOB@school.example"}))
		require.Equal(t, []string{"d"}, list(SessionFilter{StaffEmail: "Dave@school.example"}))
		require.Empty(t, list(SessionFilter{StaffEmail: "nobody@school.example"}))

		require.Equal(t, []string{"a1", "a2", "c"}, list(SessionFilter{SeriesID: "ser"}))
		// End strictly after: a1 ends at t0+2h, so EndAfter t0+2h excludes it.
		require.Equal(t, []string{"a2", "b", "c", "d"}, list(SessionFilter{EndAfter: t0.Add(2 * time.Hour)}))
		require.Equal(t, []string{"a1", "a2", "b", "c", "d"}, list(SessionFilter{EndAfter: t0.Add(2*time.Hour - time.Nanosecond)}))

		require.Equal(t, []string{"e", "a1"}, list(SessionFilter{Limit: 2}))
		require.Equal(t, []string{"e", "a1", "a2", "b", "c", "d"}, list(SessionFilter{Limit: 100}))
		// The limit counts matches of the staff filter, not rows read.
		require.Equal(t, []string{"a2", "b"}, list(SessionFilter{StaffEmail: "ada@school.example", EndAfter: t0.Add(2 * time.Hour), Limit: 2}))

		// Everything together.
		require.Equal(t, []string{"a2"}, list(SessionFilter{
			States: []string{StateRequested}, StaffEmail: "ADA@school.example", SeriesID: "ser",
			EndAfter: t0.Add(time.Hour), Limit: 1,
		}))
	})
}

func TestTransitionSession(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	forEachBackend(t, func(t *testing.T, s *SQL) {
		req := Session{ID: "s1", Title: "Maths", HostEmail: "ada@school.example", State: StateRequested,
			Start: t0, End: t0.Add(time.Hour), Created: t0, Updated: t0}
		require.NoError(t, s.CreateSessions(ctx, []Session{req}))

		// Approve.
		at1 := t0.Add(time.Minute)
		got, err := s.TransitionSession(ctx, "s1", []string{StateRequested}, StateApproved,
			SessionChange{At: at1, DecidedBySub: "sub-head", DecidedBy: "Head", Reason: "ok"})
		require.NoError(t, err)
		want := req
		want.State, want.Updated = StateApproved, at1
		want.DecidedBySub, want.DecidedBy, want.DecidedAt, want.Reason = "sub-head", "Head", at1, "ok"
		require.Equal(t, want, got)
		stored, err := s.GetSession(ctx, "s1")
		require.NoError(t, err)
		require.Equal(t, want, stored)

		// Approved → live by the system keeps who approved.
		at2 := t0.Add(time.Hour)
		got, err = s.TransitionSession(ctx, "s1", []string{StateApproved}, StateLive, SessionChange{At: at2})
		require.NoError(t, err)
		want.State, want.Updated = StateLive, at2
		require.Equal(t, want, got)

		// A wrong from state is a conflict, naming the current state; nothing changes.
		_, err = s.TransitionSession(ctx, "s1", []string{StateRequested, StateApproved}, StateCancelled,
			SessionChange{At: at2, DecidedBySub: "x", DecidedBy: "X", Reason: "no"})
		require.ErrorIs(t, err, ErrConflict)
		require.NotErrorIs(t, err, ErrNotFound)
		require.ErrorContains(t, err, "live")
		stored, err = s.GetSession(ctx, "s1")
		require.NoError(t, err)
		require.Equal(t, want, stored)

		// Live → ended with only a reason keeps the decider but updates the reason.
		at3 := at2.Add(time.Hour)
		got, err = s.TransitionSession(ctx, "s1", []string{StateLive}, StateEnded, SessionChange{At: at3, Reason: "finished"})
		require.NoError(t, err)
		want.State, want.Updated, want.Reason = StateEnded, at3, "finished"
		require.Equal(t, want, got)

		_, err = s.TransitionSession(ctx, "missing", []string{StateRequested}, StateApproved, SessionChange{At: at1})
		require.ErrorIs(t, err, ErrNotFound)
		require.NotErrorIs(t, err, ErrConflict)

		_, err = s.TransitionSession(ctx, "s1", nil, StateApproved, SessionChange{At: at1})
		require.Error(t, err)
		_, err = s.TransitionSession(ctx, "s1", []string{StateEnded}, "bogus", SessionChange{At: at1})
		require.Error(t, err)
		_, err = s.TransitionSession(ctx, "s1", []string{StateEnded}, StateCancelled, SessionChange{})
		require.Error(t, err, "no change time")
		stored, err = s.GetSession(ctx, "s1")
		require.NoError(t, err)
		require.Equal(t, want, stored)
	})
}

func TestTransitionSessionConcurrentApproversExactlyOneWins(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	forEachBackend(t, func(t *testing.T, s *SQL) {
		require.NoError(t, s.CreateSessions(ctx, []Session{{ID: "contested", State: StateRequested,
			Start: t0, End: t0.Add(time.Hour), Created: t0, Updated: t0}}))

		const approvers = 20
		var won, lost atomic.Int32
		var winner atomic.Value
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range approvers {
			wg.Go(func() {
				<-start
				sub := fmt.Sprintf("approver-%d", i)
				got, err := s.TransitionSession(ctx, "contested", []string{StateRequested}, StateApproved,
					SessionChange{At: t0.Add(time.Duration(i) * time.Second), DecidedBySub: sub, DecidedBy: sub})
				switch {
				case err == nil:
					won.Add(1)
					winner.Store(got.DecidedBySub)
				case errors.Is(err, ErrConflict):
					lost.Add(1)
				default:
					t.Errorf("transition: %v", err)
				}
			})
		}
		close(start)
		wg.Wait()
		require.EqualValues(t, 1, won.Load())
		require.EqualValues(t, approvers-1, lost.Load())

		stored, err := s.GetSession(ctx, "contested")
		require.NoError(t, err)
		require.Equal(t, StateApproved, stored.State)
		require.Equal(t, winner.Load(), stored.DecidedBySub)
	})
}

func TestDelegations(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	forEachBackend(t, func(t *testing.T, s *SQL) {
		d1 := Delegation{ID: "d1", HeadSub: "sub-head", HeadName: "Head", DelegateEmail: "Deputy@School.Example",
			DelegateName: "Deputy", Until: t0.Add(30 * 24 * time.Hour), Created: t0}
		d2 := Delegation{ID: "d2", HeadSub: "sub-head", HeadName: "Head", DelegateEmail: "senco@school.example",
			Until: t0.Add(time.Hour), Created: t0.Add(time.Minute)}
		d3 := Delegation{ID: "d3", HeadSub: "sub-head", HeadName: "Head", DelegateEmail: "ks3@school.example",
			Until: t0.Add(48 * time.Hour), Created: t0.Add(2 * time.Minute)}
		for _, d := range []Delegation{d1, d2, d3} {
			require.NoError(t, s.CreateDelegation(ctx, d))
		}
		require.ErrorIs(t, s.CreateDelegation(ctx, d1), ErrConflict)
		require.Error(t, s.CreateDelegation(ctx, Delegation{DelegateEmail: "x@y", Until: t0}), "empty ID")
		require.Error(t, s.CreateDelegation(ctx, Delegation{ID: "no-email", Until: t0}))
		require.Error(t, s.CreateDelegation(ctx, Delegation{ID: "no-until", DelegateEmail: "x@y"}))

		got, err := s.GetDelegation(ctx, "d1")
		require.NoError(t, err)
		want1 := d1
		want1.DelegateEmail = "deputy@school.example"
		require.Equal(t, want1, got)
		require.True(t, got.RevokedAt.IsZero())
		_, err = s.GetDelegation(ctx, "nope")
		require.ErrorIs(t, err, ErrNotFound)

		dids := func(ds []Delegation) []string {
			out := make([]string, len(ds))
			for i, d := range ds {
				out[i] = d.ID
			}
			return out
		}
		all, err := s.ListDelegations(ctx, time.Time{})
		require.NoError(t, err)
		require.Equal(t, []string{"d3", "d2", "d1"}, dids(all), "newest first")
		active, err := s.ListDelegations(ctx, t0.Add(time.Hour))
		require.NoError(t, err)
		require.Equal(t, []string{"d3", "d1"}, dids(active), "d2 ends exactly then")

		// Revoke d3.
		rat := t0.Add(3 * time.Hour)
		rev, err := s.RevokeDelegation(ctx, "d3", rat, "sub-head")
		require.NoError(t, err)
		want3 := d3
		want3.RevokedAt, want3.RevokedBy = rat, "sub-head"
		require.Equal(t, want3, rev)
		got, err = s.GetDelegation(ctx, "d3")
		require.NoError(t, err)
		require.Equal(t, want3, got)

		_, err = s.RevokeDelegation(ctx, "d3", rat.Add(time.Hour), "someone-else")
		require.ErrorIs(t, err, ErrConflict)
		got, err = s.GetDelegation(ctx, "d3")
		require.NoError(t, err)
		require.Equal(t, want3, got, "a second revoke changes nothing")
		_, err = s.RevokeDelegation(ctx, "nope", rat, "sub-head")
		require.ErrorIs(t, err, ErrNotFound)
		_, err = s.RevokeDelegation(ctx, "d1", time.Time{}, "sub-head")
		require.Error(t, err)

		active, err = s.ListDelegations(ctx, t0)
		require.NoError(t, err)
		require.Equal(t, []string{"d2", "d1"}, dids(active))
		all, err = s.ListDelegations(ctx, time.Time{})
		require.NoError(t, err)
		require.Equal(t, []string{"d3", "d2", "d1"}, dids(all), "revoked ones still listed without activeAt")
	})
}

func TestGroupsRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	forEachBackend(t, func(t *testing.T, s *SQL) {
		for i, groups := range [][]string{nil, {}, {"9P1", "staff"}} {
			u := User{Issuer: "iss", Subject: fmt.Sprintf("sub-%d", i), Groups: groups, LastSeen: t0}
			require.NoError(t, s.UpsertUser(ctx, u))
			got, err := s.GetUser(ctx, u.Issuer, u.Subject)
			require.NoError(t, err)
			require.Equal(t, u, got)
			require.Equal(t, groups == nil, got.Groups == nil)

			ws := WebSession{ID: "ws-" + u.Subject, Issuer: "iss", Subject: u.Subject, Groups: groups,
				Created: t0, LastSeen: t0, AuthTime: t0, Expires: t0.Add(time.Hour)}
			require.NoError(t, s.CreateWebSession(ctx, ws))
			gotWS, err := s.GetWebSession(ctx, ws.ID, t0, 0)
			require.NoError(t, err)
			require.Equal(t, ws, gotWS)
			require.Equal(t, groups == nil, gotWS.Groups == nil)
		}

		// A later sign-in replaces the groups.
		u := User{Issuer: "iss", Subject: "sub-2", Groups: []string{"10Q2"}, LastSeen: t0.Add(time.Hour)}
		require.NoError(t, s.UpsertUser(ctx, u))
		got, err := s.GetUser(ctx, "iss", "sub-2")
		require.NoError(t, err)
		require.Equal(t, []string{"10Q2"}, got.Groups)
	})
}

func TestCountUsersInGroup(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	forEachBackend(t, func(t *testing.T, s *SQL) {
		users := []User{
			{Issuer: "iss", Subject: "a", Groups: []string{"9P1", "choir"}},
			{Issuer: "iss", Subject: "b", Groups: []string{"9P1"}},
			{Issuer: "other", Subject: "a", Groups: []string{"9p1"}},
			{Issuer: "iss", Subject: "c", Groups: []string{"9P10", "x9P1"}},
			{Issuer: "iss", Subject: "d", Groups: nil},
			{Issuer: "iss", Subject: "e", Groups: []string{}},
		}
		for _, u := range users {
			u.LastSeen = t0
			require.NoError(t, s.UpsertUser(ctx, u))
		}
		for group, want := range map[string]int{"9P1": 2, "9p1": 1, "choir": 1, "9P10": 1, "9P": 0, "": 0, "nobody": 0} {
			n, err := s.CountUsersInGroup(ctx, group)
			require.NoError(t, err)
			require.Equal(t, want, n, "group %q", group)
		}

		// Leaving the group at the next sign-in stops counting.
		require.NoError(t, s.UpsertUser(ctx, User{Issuer: "iss", Subject: "b", Groups: []string{"10P1"}, LastSeen: t0}))
		n, err := s.CountUsersInGroup(ctx, "9P1")
		require.NoError(t, err)
		require.Equal(t, 1, n)
	})
}

// oldDatabase makes a database as an older binary left it, with the
// migrations up to version upTo applied, and returns it open.
func oldDatabase(t *testing.T, path string, upTo int64) *sql.DB {
	t.Helper()
	ctx := context.Background()
	ms, err := migrations(sqliteDialect.migrations)
	require.NoError(t, err)
	require.NoError(t, createFile(path))
	db, err := sql.Open("sqlite", path+"?"+connParams)
	require.NoError(t, err)
	_, err = db.ExecContext(ctx, `CREATE TABLE schema_migrations (
		version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)`)
	require.NoError(t, err)
	for _, m := range ms {
		if m.version <= upTo {
			require.NoError(t, applyMigration(ctx, db, sqliteDialect, m))
		}
	}
	return db
}

func TestMigrationFrom0001(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "chaperone.db")
	ms, err := migrations(sqliteDialect.migrations)
	require.NoError(t, err)
	require.Greater(t, len(ms), 1)
	require.EqualValues(t, 1, ms[0].version)

	// A database as an older binary left it: only 0001 applied, with rows.
	db := oldDatabase(t, path, 1)
	_, err = db.ExecContext(ctx, `
		INSERT INTO users (issuer, subject, name, email, roles, first_seen, last_seen)
		VALUES ('iss', 'old', 'Old User', 'old@school.example', '["teacher"]', $1, $1)`, mustEncodeTime(t0))
	require.NoError(t, err)
	_, err = db.ExecContext(ctx, `
		INSERT INTO web_sessions (id, issuer, subject, name, email, roles, csrf_token,
			auth_time, amr, created, last_seen, expires)
		VALUES ('ws-old', 'iss', 'old', 'Old User', 'old@school.example', '["teacher"]', 'csrf',
			$1, 'null', $1, $1, $2)`, mustEncodeTime(t0), mustEncodeTime(t0.Add(time.Hour)))
	require.NoError(t, err)
	require.NoError(t, db.Close())

	s, err := OpenSQLite(ctx, path)
	require.NoError(t, err)
	defer s.Close()

	var n int
	require.NoError(t, s.DB().QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations`).Scan(&n))
	require.Equal(t, len(ms), n)

	u, err := s.GetUser(ctx, "iss", "old")
	require.NoError(t, err)
	require.Equal(t, User{Issuer: "iss", Subject: "old", Name: "Old User", Email: "old@school.example",
		Roles: []string{"teacher"}, Groups: []string{}, LastSeen: t0}, u)
	ws, err := s.GetWebSession(ctx, "ws-old", t0, 0)
	require.NoError(t, err)
	require.Equal(t, []string{}, ws.Groups)
	require.Equal(t, "csrf", ws.CSRFToken)

	// The new tables work.
	require.NoError(t, s.CreateSessions(ctx, []Session{fullSession("after-upgrade")}))
	_, err = s.GetSession(ctx, "after-upgrade")
	require.NoError(t, err)
	require.NoError(t, s.CreateDelegation(ctx, Delegation{ID: "d", DelegateEmail: "x@school.example", Until: t0, Created: t0}))
	cnt, err := s.CountUsersInGroup(ctx, "anything")
	require.NoError(t, err)
	require.Zero(t, cnt)
}
