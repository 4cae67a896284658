package lobby

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/chaperone-edu/chaperone/auth"
	"github.com/chaperone-edu/chaperone/store"
)

var (
	london, _ = time.LoadLocation("Europe/London")
	pol       = DefaultSchedulePolicy([]string{"oakfield.example"}, london)
	teacher   = auth.Identity{Subject: "t1", Name: "Sarah Whitfield", Email: "s.whitfield@oakfield.example", Roles: []auth.Role{auth.RoleStaff}}
	teacher2  = auth.Identity{Subject: "t2", Name: "James Patel", Email: "j.patel@oakfield.example", Roles: []auth.Role{auth.RoleStaff}}
	head      = auth.Identity{Subject: "h1", Name: "Margaret Okafor", Email: "m.okafor@oakfield.example", Roles: []auth.Role{auth.RoleHead, auth.RoleStaff}}
	slt       = auth.Identity{Subject: "s1", Name: "David Chen", Email: "d.chen@oakfield.example", Roles: []auth.Role{auth.RoleSLT, auth.RoleStaff}}
	pupil     = auth.Identity{Subject: "p1", Name: "Amelia Jones", Email: "amelia.jones@oakfield.example", Roles: []auth.Role{auth.RolePupil}, Groups: []string{"pupils", "year-8"}}
	now       = time.Date(2026, 11, 25, 9, 0, 0, 0, london)
	known     = func(g string) bool { return g == "year-8" }
)

func kind(t *testing.T, err error) ErrorKind {
	t.Helper()
	var e *Error
	require.True(t, errors.As(err, &e), "want *lobby.Error, got %v", err)
	require.NotEmpty(t, e.Message)
	return e.Kind
}

func TestValidateRequest(t *testing.T) {
	t.Parallel()
	good := Request{Title: "  Year 8   maths ", Start: now.Add(time.Hour), End: now.Add(2 * time.Hour), RosterGroup: "year-8",
		CoStaff: []string{"J.Patel@oakfield.example", "j.patel@oakfield.example"}}
	req, occ, err := ValidateRequest(good, teacher, pol, known, now)
	require.NoError(t, err)
	require.Equal(t, "Year 8 maths", req.Title)
	require.Equal(t, KindInteractive, req.Kind)
	require.Equal(t, []string{"j.patel@oakfield.example"}, req.CoStaff)
	require.Len(t, occ, 1)

	mod := func(f func(*Request)) Request { r := good; f(&r); return r }
	cases := []struct {
		name  string
		req   Request
		who   auth.Identity
		kind  ErrorKind
		field string
	}{
		{"pupil", good, pupil, Forbidden, ""},
		{"missing title", mod(func(r *Request) { r.Title = "  " }), teacher, Invalid, "title"},
		{"oversized title", mod(func(r *Request) { r.Title = strings.Repeat("é", 121) }), teacher, Invalid, "title"},
		{"control in title", mod(func(r *Request) { r.Title = "a\x00b" }), teacher, Invalid, "title"},
		{"bad kind", mod(func(r *Request) { r.Kind = "party" }), teacher, Invalid, "kind"},
		{"no start", mod(func(r *Request) { r.Start = time.Time{} }), teacher, Invalid, "start"},
		{"start in past", mod(func(r *Request) { r.Start = now.Add(-2 * time.Minute) }), teacher, Invalid, "start"},
		{"end before start", mod(func(r *Request) { r.End = r.Start.Add(-time.Minute) }), teacher, Invalid, "end"},
		{"end equals start", mod(func(r *Request) { r.End = r.Start }), teacher, Invalid, "end"},
		{"too long", mod(func(r *Request) { r.End = r.Start.Add(9 * time.Hour) }), teacher, Invalid, "end"},
		{"no roster", mod(func(r *Request) { r.RosterGroup = "" }), teacher, Invalid, "roster_group"},
		{"unknown group", mod(func(r *Request) { r.RosterGroup = "year-13" }), teacher, Invalid, "roster_group"},
		{"bad roster email", mod(func(r *Request) { r.RosterEmails = []string{"not-an-email"} }), teacher, Invalid, "roster_emails"},
		{"personal roster email", mod(func(r *Request) { r.RosterEmails = []string{"kid@gmail.com"} }), teacher, Invalid, "roster_emails"},
		{"host as co-staff", mod(func(r *Request) { r.CoStaff = []string{"S.Whitfield@oakfield.example"} }), teacher, Invalid, "co_staff"},
		{"series ends before start", mod(func(r *Request) { r.WeeklyUntil = now.AddDate(0, 0, -1) }), teacher, Invalid, "weekly_until"},
		{"series too long", mod(func(r *Request) { r.WeeklyUntil = now.AddDate(2, 0, 0) }), teacher, Invalid, "weekly_until"},
	}
	for _, tc := range cases {
		_, _, err := ValidateRequest(tc.req, tc.who, pol, known, now)
		require.Error(t, err, tc.name)
		require.Equal(t, tc.kind, kind(t, err), tc.name)
		if tc.field != "" {
			var e *Error
			errors.As(err, &e)
			require.Equal(t, tc.field, e.Field, tc.name)
		}
	}
	// Start in the current minute is fine.
	_, _, err = ValidateRequest(mod(func(r *Request) { r.Start = now.Add(30 * time.Second).Truncate(time.Minute) }), teacher, pol, known, now.Add(30*time.Second))
	require.NoError(t, err)
}

func TestWeeklySeriesAcrossClockChange(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 10, 13, 9, 0, 0, 0, london) // BST; clocks go back on 25 October
	req := Request{Title: "Tutor time", Start: start, End: start.Add(time.Hour), RosterGroup: "year-8", WeeklyUntil: time.Date(2026, 11, 3, 0, 0, 0, 0, london)}
	_, occ, err := ValidateRequest(req, teacher, pol, known, start.Add(-time.Hour))
	require.NoError(t, err)
	require.Len(t, occ, 4) // 13, 20, 27 Oct, 3 Nov (until is inclusive)
	for _, o := range occ {
		require.Equal(t, 9, o.Start.In(london).Hour(), "every occurrence starts at 09:00 local time")
		require.Equal(t, time.Hour, o.End.Sub(o.Start))
	}
}

func session(state string) store.Session {
	return store.Session{ID: "s", Title: "t", HostSub: teacher.Subject, HostEmail: teacher.Email, HostName: teacher.Name,
		CoStaff: []string{teacher2.Email}, RosterGroup: "year-8", Start: now.Add(time.Hour), End: now.Add(2 * time.Hour), State: state}
}

func TestCanDecide(t *testing.T) {
	t.Parallel()
	active := []store.Delegation{{DelegateEmail: slt.Email, Until: now.Add(24 * time.Hour)}}
	expired := []store.Delegation{{DelegateEmail: slt.Email, Until: now}}
	revoked := []store.Delegation{{DelegateEmail: slt.Email, Until: now.Add(24 * time.Hour), RevokedAt: now.Add(-time.Minute)}}
	headOwn := session(store.StateRequested)
	headOwn.HostSub, headOwn.HostEmail = head.Subject, head.Email
	cases := []struct {
		name string
		who  auth.Identity
		s    store.Session
		ds   []store.Delegation
		want ErrorKind // 0 = allowed
	}{
		{"head approves", head, session(store.StateRequested), nil, 0},
		{"slt delegated", slt, session(store.StateRequested), active, 0},
		{"slt not delegated", slt, session(store.StateRequested), nil, Forbidden},
		{"slt delegation expired (edge)", slt, session(store.StateRequested), expired, Forbidden},
		{"slt delegation revoked", slt, session(store.StateRequested), revoked, Forbidden},
		{"teacher", teacher2, session(store.StateRequested), active, Forbidden},
		{"pupil", pupil, session(store.StateRequested), nil, Forbidden},
		{"head own request", head, headOwn, nil, Forbidden},
		{"already approved", head, session(store.StateApproved), nil, Conflict},
		{"cancelled", head, session(store.StateCancelled), nil, Conflict},
		{"rejected", head, session(store.StateRejected), nil, Conflict},
	}
	for _, tc := range cases {
		err := CanDecide(tc.who, tc.s, tc.ds, now)
		if tc.want == 0 {
			require.NoError(t, err, tc.name)
			continue
		}
		require.Equal(t, tc.want, kind(t, err), tc.name)
	}
	// A delegate who is co-staff on the session cannot approve it.
	s := session(store.StateRequested)
	s.CoStaff = []string{slt.Email}
	require.Equal(t, Forbidden, kind(t, CanDecide(slt, s, active, now)))
	// A delegation held by a person without the slt role does not count.
	require.Equal(t, Forbidden, kind(t, CanDecide(teacher2, session(store.StateRequested), []store.Delegation{{DelegateEmail: teacher2.Email, Until: now.Add(time.Hour)}}, now)))
}

func TestOpenWindowEdges(t *testing.T) {
	t.Parallel()
	s := session(store.StateApproved)
	opens := s.Start.Add(-15 * time.Minute)
	require.Equal(t, Conflict, kind(t, CanOpen(teacher, s, opens.Add(-time.Nanosecond), pol)))
	require.Contains(t, CanOpen(teacher, s, opens.Add(-time.Second), pol).Error(), "too early")
	require.NoError(t, CanOpen(teacher, s, opens, pol))
	require.NoError(t, CanOpen(teacher2, s, s.End.Add(-time.Nanosecond), pol), "co-staff may open")
	require.Contains(t, CanOpen(teacher, s, s.End, pol).Error(), "ended")
	require.Equal(t, Forbidden, kind(t, CanOpen(head, s, opens, pol)), "staff not on the session")
	require.Equal(t, Forbidden, kind(t, CanOpen(pupil, s, opens, pol)))
	for state, words := range map[string]string{store.StateRequested: "not been approved", store.StateRejected: "not approved", store.StateCancelled: "cancelled", store.StateEnded: "ended"} {
		err := CanOpen(teacher, session(state), opens, pol)
		require.Equal(t, Conflict, kind(t, err))
		require.Contains(t, err.Error(), words)
	}
	require.NoError(t, OpenCheck(session(store.StateLive), s.Start, pol))
}

func TestRosterAndStaff(t *testing.T) {
	t.Parallel()
	s := session(store.StateLive)
	require.True(t, OnRoster(pupil, s))
	s.RosterGroup, s.RosterEmails = "", []string{pupil.Email}
	require.True(t, OnRoster(pupil, s))
	s.RosterEmails = nil
	require.False(t, OnRoster(pupil, s))
	require.True(t, IsSessionStaff(teacher, s))
	require.True(t, IsSessionStaff(teacher2, s))
	require.False(t, IsSessionStaff(head, s))
	require.False(t, IsSessionStaff(auth.Identity{Email: teacher2.Email, Roles: []auth.Role{auth.RolePupil}}, s), "a pupil never counts as staff")
}

func TestCanCancel(t *testing.T) {
	t.Parallel()
	require.NoError(t, CanCancel(teacher, session(store.StateApproved), nil, now))
	require.NoError(t, CanCancel(head, session(store.StateRequested), nil, now))
	require.Equal(t, Forbidden, kind(t, CanCancel(teacher2, session(store.StateRequested), nil, now)))
	require.Equal(t, Conflict, kind(t, CanCancel(teacher, session(store.StateLive), nil, now)))
}

// TestRecordingExpectation: what an approver is told about recording
// follows the one-to-one rule as the room applies it (R5): a lesson for one
// pupil with one teacher is recorded; a class lesson is not unless the
// teacher chooses; policy "always" records everything.
func TestRecordingExpectation(t *testing.T) {
	t.Parallel()
	one := store.Session{RosterEmails: []string{"amelia.jones@oakfield.example"}}
	oneWithTwo := store.Session{RosterEmails: []string{"amelia.jones@oakfield.example"}, CoStaff: []string{"ta@oakfield.example"}}
	class := store.Session{RosterGroup: "Year 8"}
	classOfOne := store.Session{RosterGroup: "class:c1"} // an imported class, even of one: still a class lesson
	require.Contains(t, RecordingExpectation(one, "one_to_one"), "Yes")
	require.Contains(t, RecordingExpectation(oneWithTwo, "one_to_one"), "Only while fewer than two")
	require.Contains(t, RecordingExpectation(class, "one_to_one"), "No, unless the teacher chooses")
	require.Contains(t, RecordingExpectation(classOfOne, "one_to_one"), "No, unless the teacher chooses")
	require.Contains(t, RecordingExpectation(class, "always"), "every session is recorded")
}
