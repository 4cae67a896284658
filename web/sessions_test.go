package web_test

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/chaperone-edu/chaperone/internal/testkit"
	"github.com/chaperone-edu/chaperone/store"
)

// schoolDay is the test clock's start: a Tuesday morning in London, a few
// days from now (testkit.SchoolDay), so nothing here depends on today's date.
var schoolDay = testkit.SchoolDay()

// dayOf is the date schoolDay+days as a form field gives it (2006-01-02).
func dayOf(days int) string { return testkit.Day(schoolDay.AddDate(0, 0, days)) }

type school struct {
	gw     *testkit.Gateway
	clock  *testkit.Clock
	people map[string]*testkit.APIClient
}

func newSchool(t *testing.T, users ...string) *school {
	clock := testkit.NewClock(schoolDay)
	gw := testkit.StartGateway(t, testkit.GatewayOptions{Now: clock.Now})
	sc := &school{gw: gw, clock: clock, people: map[string]*testkit.APIClient{}}
	for _, u := range users {
		sc.people[u] = testkit.APILogin(t, gw, u)
	}
	return sc
}

func sessionBody(title string, start time.Time, extra map[string]any) map[string]any {
	b := map[string]any{"title": title, "start": start.Format(time.RFC3339), "end": start.Add(time.Hour).Format(time.RFC3339), "roster_group": "year-8"}
	for k, v := range extra {
		b[k] = v
	}
	return b
}

// request makes a session as user and returns its ID.
func (sc *school) request(t *testing.T, user string, extra map[string]any) string {
	t.Helper()
	status, out := sc.people[user].Call(http.MethodPost, "/api/sessions", sessionBody("Year 8 maths", schoolDay.Add(2*time.Hour), extra))
	require.Equal(t, http.StatusCreated, status, "%v", out)
	return out["sessions"].([]any)[0].(map[string]any)["id"].(string)
}

func (sc *school) state(t *testing.T, id string) string {
	t.Helper()
	ss, err := sc.gw.Store.GetSession(context.Background(), id)
	require.NoError(t, err)
	return ss.State
}

func (sc *school) auditCount(t *testing.T) int {
	t.Helper()
	rows, err := sc.gw.Store.ListAudit(context.Background(), store.AuditFilter{Action: "session."})
	require.NoError(t, err)
	rows2, err := sc.gw.Store.ListAudit(context.Background(), store.AuditFilter{Action: "delegation."})
	require.NoError(t, err)
	return len(rows) + len(rows2)
}

// TestRoleActionTable: who may request, approve, reject, see approvals and
// delegate, over the real API with real demo-IdP sign-ins. Every refusal is
// 403 with a message and changes nothing.
func TestRoleActionTable(t *testing.T) {
	t.Parallel()
	sc := newSchool(t, "pupil", "teacher", "teacher2", "slt", "head", "dsl", "itadmin")
	type want struct{ request, approve, reject, approvals, delegate int }
	table := map[string]want{
		"pupil":    {403, 403, 403, 403, 403},
		"teacher2": {201, 403, 403, 403, 403},
		"slt":      {201, 403, 403, 403, 403}, // not delegated (yet)
		"dsl":      {201, 403, 403, 403, 403},
		"itadmin":  {403, 403, 403, 403, 403},
		"head":     {201, 200, 200, 200, 201},
	}
	for user, w := range table {
		a := sc.people[user]
		status, out := a.Call(http.MethodPost, "/api/sessions", sessionBody("Study support", schoolDay.Add(3*time.Hour), nil))
		require.Equal(t, w.request, status, "%s request: %v", user, out)

		for _, act := range []struct {
			verb string
			want int
		}{{"approve", w.approve}, {"reject", w.reject}} {
			id := sc.request(t, "teacher", nil)
			before := sc.auditCount(t)
			status, out = a.Call(http.MethodPost, "/api/sessions/"+id+"/"+act.verb, map[string]any{"reason": "Not needed this week"})
			require.Equal(t, act.want, status, "%s %s: %v", user, act.verb, out)
			if status == http.StatusForbidden {
				require.NotEmpty(t, out["message"], "a refusal says why")
				require.Equal(t, store.StateRequested, sc.state(t, id), "a refusal changes nothing")
				require.Equal(t, before, sc.auditCount(t), "a refusal writes no session audit row")
			}
		}
		status, out = a.Call(http.MethodGet, "/api/approvals", nil)
		require.Equal(t, w.approvals, status, "%s approvals: %v", user, out)
		status, out = a.Call(http.MethodPost, "/api/delegations", map[string]any{"email": "d.chen@oakfield.example", "until": dayOf(30)})
		require.Equal(t, w.delegate, status, "%s delegate: %v", user, out)
		if status == http.StatusCreated && user == "head" {
			// Undo it: the slt row above tests the undelegated case.
			status, _ = a.Call(http.MethodPost, "/api/delegations/"+out["id"].(string)+"/revoke", nil)
			require.Equal(t, http.StatusOK, status)
		}
	}
	// The teacher cannot approve their own request, nor can the head approve theirs.
	id := sc.request(t, "teacher", nil)
	status, out := sc.people["teacher"].Call(http.MethodPost, "/api/sessions/"+id+"/approve", nil)
	require.Equal(t, http.StatusForbidden, status, "%v", out)
	headOwn := sc.request(t, "head", nil)
	status, out = sc.people["head"].Call(http.MethodPost, "/api/sessions/"+headOwn+"/approve", nil)
	require.Equal(t, http.StatusForbidden, status)
	require.Contains(t, out["message"], "cannot approve")
	require.Equal(t, store.StateRequested, sc.state(t, headOwn))
}

// TestDelegation: a senior leader approves only while delegated; the head's
// own request can be approved by the delegate; expired and revoked
// delegations are refused.
func TestDelegation(t *testing.T) {
	t.Parallel()
	sc := newSchool(t, "teacher", "slt", "head")
	slt, head := sc.people["slt"], sc.people["head"]
	first := sc.request(t, "teacher", nil)
	status, _ := slt.Call(http.MethodPost, "/api/sessions/"+first+"/approve", nil)
	require.Equal(t, http.StatusForbidden, status)

	// Delegated until the end of today (London).
	status, d := head.Call(http.MethodPost, "/api/delegations", map[string]any{"email": "D.Chen@oakfield.example", "name": "David Chen", "until": dayOf(0)})
	require.Equal(t, http.StatusCreated, status, "%v", d)
	status, out := slt.Call(http.MethodPost, "/api/sessions/"+first+"/approve", nil)
	require.Equal(t, http.StatusOK, status, "%v", out)
	require.Equal(t, store.StateApproved, sc.state(t, first))

	headOwn := sc.request(t, "head", nil)
	status, _ = slt.Call(http.MethodPost, "/api/sessions/"+headOwn+"/approve", nil)
	require.Equal(t, http.StatusOK, status, "a delegate can approve the head's request")

	// One second before midnight the delegation holds; at midnight it has ended.
	second := sc.request(t, "teacher", map[string]any{"start": schoolDay.AddDate(0, 0, 1).Format(time.RFC3339), "end": schoolDay.AddDate(0, 0, 1).Add(time.Hour).Format(time.RFC3339)})
	sc.clock.Set(time.Date(schoolDay.Year(), schoolDay.Month(), schoolDay.Day()+1, 0, 0, 0, 0, testkit.London))
	status, out = slt.Call(http.MethodPost, "/api/sessions/"+second+"/approve", nil)
	require.Equal(t, http.StatusForbidden, status, "expired delegation: %v", out)
	require.Contains(t, out["message"], "delegat")
	require.Equal(t, store.StateRequested, sc.state(t, second))

	// A new delegation, then revoked: refused again.
	status, d = head.Call(http.MethodPost, "/api/delegations", map[string]any{"email": "d.chen@oakfield.example", "until": dayOf(9)})
	require.Equal(t, http.StatusCreated, status)
	status, _ = head.Call(http.MethodPost, "/api/delegations/"+d["id"].(string)+"/revoke", nil)
	require.Equal(t, http.StatusOK, status)
	status, _ = head.Call(http.MethodPost, "/api/delegations/"+d["id"].(string)+"/revoke", nil)
	require.Equal(t, http.StatusConflict, status, "revoking twice")
	status, _ = slt.Call(http.MethodPost, "/api/sessions/"+second+"/approve", nil)
	require.Equal(t, http.StatusForbidden, status)
	status, list := head.Call(http.MethodGet, "/api/delegations", nil)
	require.Equal(t, http.StatusOK, status)
	require.Len(t, list["delegations"], 2)

	rows, err := sc.gw.Store.ListAudit(context.Background(), store.AuditFilter{Action: "delegation."})
	require.NoError(t, err)
	require.Len(t, rows, 3) // two created, one revoked
	require.NoError(t, sc.gw.Store.VerifyAudit(context.Background()))
}

// TestBadInput: each bad request is a clear 4xx and changes nothing.
func TestBadInput(t *testing.T) {
	t.Parallel()
	sc := newSchool(t, "teacher", "head")
	teacher, head := sc.people["teacher"], sc.people["head"]
	start := schoolDay.Add(2 * time.Hour)
	cases := []struct {
		name   string
		body   any
		status int
		field  string
	}{
		{"missing title", sessionBody("", start, nil), 400, "title"},
		{"oversized title", sessionBody(strings.Repeat("x", 121), start, nil), 400, "title"},
		{"end before start", sessionBody("Maths", start, map[string]any{"end": start.Add(-time.Hour).Format(time.RFC3339)}), 400, "end"},
		{"start in the past", sessionBody("Maths", schoolDay.Add(-time.Hour), nil), 400, "start"},
		{"unknown roster group", sessionBody("Maths", start, map[string]any{"roster_group": "year-13"}), 400, "roster_group"},
		{"no roster", sessionBody("Maths", start, map[string]any{"roster_group": ""}), 400, "roster_group"},
		{"pupil from another school", sessionBody("Maths", start, map[string]any{"roster_group": "", "roster_emails": []string{"kid@other.example"}}), 400, "roster_emails"},
		{"bad time", sessionBody("Maths", start, map[string]any{"start": "tomorrow"}), 400, "start"},
		{"bad kind", sessionBody("Maths", start, map[string]any{"kind": "party"}), 400, "kind"},
		{"unknown field", sessionBody("Maths", start, map[string]any{"approved": true}), 400, ""},
		{"not JSON", "title=Maths", 400, ""},
		{"trailing data", `{"title":"x"} {}`, 400, ""},
		{"oversized body", `{"title":"` + strings.Repeat("x", 70<<10) + `"}`, 413, ""},
	}
	for _, tc := range cases {
		status, raw := teacher.Raw(http.MethodPost, "/api/sessions", tc.body, teacher.CSRF)
		require.Equal(t, tc.status, status, "%s: %s", tc.name, raw)
		require.Contains(t, string(raw), `"message"`, tc.name)
		if tc.field != "" {
			require.Contains(t, string(raw), `"field":"`+tc.field+`"`, tc.name)
		}
	}
	list, err := sc.gw.Store.ListSessions(context.Background(), store.SessionFilter{})
	require.NoError(t, err)
	require.Empty(t, list, "no bad request created a session")

	// CSRF missing or wrong: 403, nothing created.
	status, _ := teacher.Raw(http.MethodPost, "/api/sessions", sessionBody("Maths", start, nil), "")
	require.Equal(t, http.StatusForbidden, status)
	status, _ = teacher.Raw(http.MethodPost, "/api/sessions", sessionBody("Maths", start, nil), "x"+teacher.CSRF)
	require.Equal(t, http.StatusForbidden, status)
	list, _ = sc.gw.Store.ListSessions(context.Background(), store.SessionFilter{})
	require.Empty(t, list)

	// Unknown session, double approval, approving a cancelled session, reject without reason.
	status, out := head.Call(http.MethodPost, "/api/sessions/doesnotexist/approve", nil)
	require.Equal(t, http.StatusNotFound, status, "%v", out)
	status, _ = head.Call(http.MethodGet, "/api/sessions/doesnotexist", nil)
	require.Equal(t, http.StatusNotFound, status)
	id := sc.request(t, "teacher", nil)
	status, out = head.Call(http.MethodPost, "/api/sessions/"+id+"/reject", nil)
	require.Equal(t, http.StatusBadRequest, status, "reject needs a reason: %v", out)
	require.Equal(t, store.StateRequested, sc.state(t, id))
	status, _ = head.Call(http.MethodPost, "/api/sessions/"+id+"/approve", nil)
	require.Equal(t, http.StatusOK, status)
	status, out = head.Call(http.MethodPost, "/api/sessions/"+id+"/approve", nil)
	require.Equal(t, http.StatusConflict, status, "double approval: %v", out)
	cancelled := sc.request(t, "teacher", nil)
	status, _ = teacher.Call(http.MethodPost, "/api/sessions/"+cancelled+"/cancel", map[string]any{"reason": "Trip"})
	require.Equal(t, http.StatusOK, status)
	status, out = head.Call(http.MethodPost, "/api/sessions/"+cancelled+"/approve", nil)
	require.Equal(t, http.StatusConflict, status, "%v", out)
	require.Equal(t, store.StateCancelled, sc.state(t, cancelled))
	status, _ = head.Call(http.MethodPost, "/api/no-such-thing", nil)
	require.Equal(t, http.StatusNotFound, status)
}

// TestOpenWindow: the room opens from 15 minutes before start until end,
// for the session's staff, and only once approved. Time is injected.
func TestOpenWindow(t *testing.T) {
	t.Parallel()
	sc := newSchool(t, "teacher", "teacher2", "head", "pupil", "pupil3")
	teacher, head, pupil := sc.people["teacher"], sc.people["head"], sc.people["pupil"]
	start := schoolDay.Add(2 * time.Hour) // 10:00
	id := sc.request(t, "teacher", map[string]any{"co_staff": []string{"j.patel@oakfield.example"}})

	open := func(a *testkit.APIClient) (int, map[string]any) {
		return a.Call(http.MethodPost, "/api/sessions/"+id+"/open", nil)
	}
	sc.clock.Set(start.Add(-5 * time.Minute))
	status, out := open(teacher)
	require.Equal(t, http.StatusConflict, status)
	require.Contains(t, out["message"], "not been approved")

	_, _ = head.Call(http.MethodPost, "/api/sessions/"+id+"/approve", nil)
	sc.clock.Set(start.Add(-15*time.Minute - time.Second))
	status, out = open(teacher)
	require.Equal(t, http.StatusConflict, status)
	require.Contains(t, out["message"], "too early")
	require.Contains(t, out["message"], "09:45")
	// The pupil sees the session but cannot join before staff open it.
	status, out = pupil.Call(http.MethodGet, "/api/sessions", nil)
	require.Equal(t, http.StatusOK, status)
	require.Len(t, out["sessions"], 1)
	require.Equal(t, false, out["sessions"].([]any)[0].(map[string]any)["can_open"])
	_, home := get(t, pupil.HTTP, sc.gw.URL+"/")
	require.Contains(t, home, "Year 8 maths")
	require.NotContains(t, home, "Join the lesson", "no join link before staff open the room")
	status, _ = sc.people["pupil3"].Call(http.MethodGet, "/api/sessions/"+id, nil)
	require.Equal(t, http.StatusNotFound, status, "a Year 9 pupil is not on the Year 8 roster")

	sc.clock.Set(start.Add(-15 * time.Minute))
	status, _ = open(head)
	require.Equal(t, http.StatusForbidden, status, "the head is not staff of this session")
	status, out = open(sc.people["teacher2"])
	require.Equal(t, http.StatusOK, status, "co-staff may open: %v", out)
	require.Equal(t, "live", out["state"])
	require.Equal(t, true, out["can_open"])
	status, _ = open(teacher)
	require.Equal(t, http.StatusOK, status, "opening an open room again is fine")

	status, out = pupil.Call(http.MethodGet, "/api/sessions/"+id, nil)
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, true, out["can_open"])
	require.Contains(t, out["room_url"], "/rooms/"+id)
	_, home = get(t, pupil.HTTP, sc.gw.URL+"/")
	require.Contains(t, home, `href="/rooms/`+id+`">Join the lesson`)
	status, _ = get(t, pupil.HTTP, sc.gw.URL+"/rooms/"+id)
	require.Equal(t, http.StatusOK, status)
	status, _ = get(t, sc.people["pupil3"].HTTP, sc.gw.URL+"/rooms/"+id)
	require.Equal(t, http.StatusOK, status, "a pupil not on the roster may knock; staff see they are not on the list")

	sc.clock.Set(start.Add(time.Hour)) // the end
	status, out = pupil.Call(http.MethodGet, "/api/sessions/"+id, nil)
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, false, out["can_open"])
	require.Contains(t, out["open_message"], "ended")
	status, _ = get(t, pupil.HTTP, sc.gw.URL+"/rooms/"+id)
	require.Equal(t, http.StatusConflict, status, "the room cannot be joined after the end")

	rows, err := sc.gw.Store.ListAudit(context.Background(), store.AuditFilter{Action: "session.opened"})
	require.NoError(t, err)
	require.Len(t, rows, 1)
}

// TestWeeklySeries: a series is requested and approved once.
func TestWeeklySeries(t *testing.T) {
	t.Parallel()
	sc := newSchool(t, "teacher", "head")
	status, out := sc.people["teacher"].Call(http.MethodPost, "/api/sessions", sessionBody("Tutor time", schoolDay.Add(time.Hour), map[string]any{"weekly_until": dayOf(21)}))
	require.Equal(t, http.StatusCreated, status, "%v", out)
	sessions := out["sessions"].([]any)
	require.Len(t, sessions, 4) // 1, 8, 15, 22 December
	first := sessions[0].(map[string]any)
	status, out = sc.people["head"].Call(http.MethodPost, "/api/sessions/"+first["id"].(string)+"/approve", nil)
	require.Equal(t, http.StatusOK, status)
	require.Len(t, out["sessions"], 4)
	all, err := sc.gw.Store.ListSessions(context.Background(), store.SessionFilter{SeriesID: first["series_id"].(string)})
	require.NoError(t, err)
	for _, ss := range all {
		require.Equal(t, store.StateApproved, ss.State)
		require.Equal(t, 9, ss.Start.In(testkit.London).Hour())
	}
}

// TestRequestFormPage: the HTML form needs the CSRF token, shows errors in
// place with the values kept, and redirects to the new session on success.
func TestRequestFormPage(t *testing.T) {
	t.Parallel()
	sc := newSchool(t, "teacher", "pupil")
	teacher := sc.people["teacher"]
	form := url.Values{"title": {"Revision"}, "date": {dayOf(0)}, "start_time": {"10:00"}, "end_time": {"11:00"}, "roster_group": {"year-8"}, "kind": {"interactive"}}
	resp, err := teacher.HTTP.PostForm(sc.gw.URL+"/sessions", form)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusForbidden, resp.StatusCode, "no CSRF token")

	bad := url.Values{"csrf_token": {teacher.CSRF}}
	for k, v := range form {
		bad[k] = v
	}
	bad.Set("end_time", "09:00")
	resp, err = teacher.HTTP.PostForm(sc.gw.URL+"/sessions", bad)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	require.Contains(t, string(body), "The session must end after it starts.")
	require.Contains(t, string(body), `value="Revision"`, "the form keeps what was typed")
	list, _ := sc.gw.Store.ListSessions(context.Background(), store.SessionFilter{})
	require.Empty(t, list)

	form.Set("csrf_token", teacher.CSRF)
	resp, err = teacher.HTTP.PostForm(sc.gw.URL+"/sessions", form)
	require.NoError(t, err)
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, resp.Request.URL.Path, "/sessions/")
	require.Contains(t, string(body), "waiting for approval")
	require.Contains(t, string(body), "sent to the headteacher")

	// A pupil cannot reach the request form.
	status, _ := get(t, sc.people["pupil"].HTTP, sc.gw.URL+"/sessions/new")
	require.Equal(t, http.StatusForbidden, status)
}
