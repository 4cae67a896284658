package web_test

import (
	"context"
	"html"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/chaperone-edu/chaperone/auth/demoidp"
	"github.com/chaperone-edu/chaperone/internal/testkit"
	"github.com/chaperone-edu/chaperone/store"
)

// postConcernForm files a concern on the session's concern page as user and
// returns the page it answers with.
func postConcernForm(t *testing.T, sc *school, user, id string, form url.Values) string {
	t.Helper()
	c := sc.people[user]
	form.Set("csrf_token", c.CSRF)
	start := time.Now()
	resp, err := c.HTTP.PostForm(sc.gw.URL+"/sessions/"+id+"/concern", form)
	require.NoError(t, err)
	defer resp.Body.Close()
	b := new(strings.Builder)
	_, err = io.Copy(b, resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, b.String())
	require.Less(t, time.Since(start), 5*time.Second, "filing a concern does not wait for e-mail")
	return html.UnescapeString(b.String())
}

// TestConcernRouting (R14): a concern about a Year 8 pupil reaches the DSL
// and the Year 8 lead — on their home pages and by e-mail through a real
// (in-process) SMTP server — and not the Year 9 lead; the concern page shows
// who was told and when each opened it; an e-mail that cannot be sent shows
// there as not sent. Everyone signs in through the demo IdP over HTTP.
func TestConcernRouting(t *testing.T) {
	t.Parallel()
	smtpSrv := testkit.StartSMTP(t)
	clock := testkit.NewClock(schoolDay)
	gw := testkit.StartGateway(t, testkit.GatewayOptions{Now: clock.Now, SMTP: smtpSrv})
	sc := &school{gw: gw, clock: clock, people: map[string]*testkit.APIClient{}}
	for _, u := range []string{"teacher", "head", "dsl", "year8lead", "year9lead", "pupil", "pupil3"} {
		sc.people[u] = testkit.APILogin(t, gw, u)
	}
	id := liveSession(t, sc, nil)
	_, _ = teacherAndPupils(t, sc, id, "pupil", "pupil3") // Amelia Jones (year 8), Oliver Smith-Baker (year 9)

	// The form offers the pupils who joined; the teacher ticks Amelia.
	status, form := get(t, sc.people["teacher"].HTTP, gw.URL+"/sessions/"+id+"/concern")
	require.Equal(t, http.StatusOK, status, form)
	m := regexp.MustCompile(`name="pupil" value="([^"]+)"> Amelia Jones`).FindStringSubmatch(html.UnescapeString(form))
	require.NotNil(t, m, "Amelia is offered on the form: %s", form)
	require.Contains(t, html.UnescapeString(form), "Oliver Smith-Baker")
	olivers := regexp.MustCompile(`name="pupil" value="([^"]+)"> Oliver Smith-Baker`).FindStringSubmatch(html.UnescapeString(form))
	require.NotNil(t, olivers)
	// Before sending, the form says who will be told.
	require.Contains(t, html.UnescapeString(form), "Who will be told:</strong> the designated safeguarding lead(s) and, for each pupil you tick, their year group's lead.")
	require.NotContains(t, html.UnescapeString(form), "and the pupil's year lead", "no promise of a year lead when no pupil is ticked")

	// A pupil who did not join cannot be ticked (the form is refused, nothing stored).
	status, bad := postForm(t, sc.people["teacher"], gw.URL+"/sessions/"+id+"/concern", url.Values{"pupil": {"3f1c9a52-pup-0008"}, "details": {"x"}})
	require.Equal(t, http.StatusBadRequest, status, bad)
	require.Contains(t, html.UnescapeString(bad), "did not join this session")
	none, err := gw.Store.ListConcerns(context.Background(), id)
	require.NoError(t, err)
	require.Empty(t, none)

	details := "Amelia mentioned something at home that worries me."
	done := postConcernForm(t, sc, "teacher", id, url.Values{"pupil": {m[1]}, "details": {details}})
	require.Contains(t, done, "sent to the designated safeguarding lead and the year lead of each pupil you ticked")
	cs, err := gw.Store.ListConcerns(context.Background(), id)
	require.NoError(t, err)
	require.Len(t, cs, 1)
	concernURL := gw.URL + "/concerns/" + cs[0].ID

	// Home pages: the DSL and the Year 8 lead see it; the Year 9 lead and the teacher do not.
	for _, who := range []string{"dsl", "year8lead"} {
		_, home := get(t, sc.people[who].HTTP, gw.URL+"/")
		require.Contains(t, home, "Safeguarding concerns", who)
		require.Contains(t, home, `href="/concerns/`+cs[0].ID+`"`, who)
		require.Contains(t, home, "New: not opened yet", who)
	}
	for _, who := range []string{"year9lead", "teacher"} {
		_, home := get(t, sc.people[who].HTTP, gw.URL+"/")
		require.NotContains(t, home, "Safeguarding concerns", who)
		require.NotContains(t, home, cs[0].ID, who)
		status, _ := get(t, sc.people[who].HTTP, concernURL)
		require.Equal(t, http.StatusForbidden, status, "%s cannot open the concern", who)
	}

	// Both e-mails arrive; they say there is a concern and where to sign in, nothing more.
	mails := smtpSrv.WaitMails(t, 2, 30*time.Second)
	byTo := map[string]string{}
	for _, ml := range mails {
		require.Len(t, ml.To, 1)
		byTo[ml.To[0]] = ml.Data
	}
	require.Len(t, byTo, 2, "one e-mail each: %v", byTo)
	for _, to := range []string{"h.murray@oakfield.example", "p.sharma@oakfield.example"} {
		data, ok := byTo[to]
		require.True(t, ok, "e-mail to %s", to)
		require.Contains(t, data, "From: chaperone@oakfield.example\r\n")
		require.Contains(t, data, concernURL)
		require.NotContains(t, data, "Amelia")
		require.NotContains(t, data, "worries")
		require.NotContains(t, data, "Year 8 maths")
	}
	require.Contains(t, byTo["p.sharma@oakfield.example"], "a pupil in your year group")
	require.Eventually(t, func() bool {
		ns, err := gw.Store.ListNotifications(context.Background(), store.NotificationFilter{ConcernID: cs[0].ID})
		return err == nil && len(ns) == 2 && ns[0].EmailStatus == store.EmailSent && ns[1].EmailStatus == store.EmailSent
	}, 10*time.Second, 50*time.Millisecond, "both e-mails recorded as sent")

	// The Year 8 lead opens it: they see the details, and the DSL sees when they opened it.
	clock.Advance(7 * time.Minute)
	status, page := get(t, sc.people["year8lead"].HTTP, concernURL)
	require.Equal(t, http.StatusOK, status, page)
	require.Contains(t, page, details)
	require.NotContains(t, page, "/recordings/", "recordings stay the DSL's")
	_, home := get(t, sc.people["year8lead"].HTTP, gw.URL+"/")
	require.NotContains(t, home, "New: not opened yet")
	status, page = get(t, sc.people["dsl"].HTTP, concernURL)
	require.Equal(t, http.StatusOK, status, page)
	page = html.UnescapeString(page)
	opened := clock.Now().In(testkit.London).Format("Mon 2 Jan 15:04")
	require.Regexp(t, `Priya Sharma \(p.sharma@oakfield.example\)</td><td>year lead \(year-8\)</td><td>[^<]+</td><td>e-mail sent [0-9:]+</td><td>opened `+opened, page)
	require.Regexp(t, `Helen Murray \(h.murray@oakfield.example\)</td><td>safeguarding lead</td>.*opened `+opened, page)
	require.NotContains(t, page, "d.hughes@oakfield.example", "the Year 9 lead was not told")
	require.Contains(t, page, `href="/recordings/`+id+`"`)
	views, err := gw.Store.ListAudit(context.Background(), store.AuditFilter{Action: "concern.viewed", Target: cs[0].ID})
	require.NoError(t, err)
	require.Len(t, views, 2)

	// A pupil named only in the text is not routed (names are never matched):
	// the DSL alone is told, and the page says so.
	done = postConcernForm(t, sc, "teacher", id, url.Values{"about": {"Oliver Smith-Baker"}, "details": {"Oliver was upset by a message."}})
	require.Contains(t, done, "sent to the designated safeguarding lead.")
	require.NotContains(t, done, "year lead")
	cs, err = gw.Store.ListConcerns(context.Background(), id)
	require.NoError(t, err)
	require.Len(t, cs, 2)
	ns, err := gw.Store.ListNotifications(context.Background(), store.NotificationFilter{ConcernID: cs[0].ID})
	require.NoError(t, err)
	require.Len(t, ns, 1)
	require.Equal(t, "h.murray@oakfield.example", ns[0].RecipientEmail)
	_, home = get(t, sc.people["year9lead"].HTTP, gw.URL+"/")
	require.NotContains(t, home, cs[0].ID)
	smtpSrv.WaitMails(t, 3, 30*time.Second)

	// A concern about a ticked Year 9 pupil while mail cannot be delivered:
	// it goes to the Year 9 lead, and the page says the e-mails were not sent.
	smtpSrv.FailNextRcpt(100)
	clock.Advance(time.Minute) // concerns list newest first
	done = postConcernForm(t, sc, "teacher", id, url.Values{"pupil": {olivers[1]}, "details": {"Oliver was upset by a message."}})
	require.Contains(t, done, "and the year lead of each pupil you ticked")
	cs, err = gw.Store.ListConcerns(context.Background(), id)
	require.NoError(t, err)
	require.Len(t, cs, 3)
	second := gw.URL + "/concerns/" + cs[0].ID
	_, home = get(t, sc.people["year9lead"].HTTP, gw.URL+"/")
	require.Contains(t, home, `href="/concerns/`+cs[0].ID+`"`)
	_, home = get(t, sc.people["year8lead"].HTTP, gw.URL+"/")
	require.NotContains(t, home, cs[0].ID)
	require.Eventually(t, func() bool {
		_, page := get(t, sc.people["dsl"].HTTP, second)
		return strings.Count(html.UnescapeString(page), "e-mail not sent: ") == 2
	}, 20*time.Second, 100*time.Millisecond, "both e-mails shown as not sent")
	require.Len(t, smtpSrv.Mails(), 3, "no further mail got through")
	failed, err := gw.Store.ListAudit(context.Background(), store.AuditFilter{Action: "concern.email_failed", Target: cs[0].ID})
	require.NoError(t, err)
	require.Len(t, failed, 2)
}

// postForm posts a form with the user's CSRF token and returns the status
// and the page.
func postForm(t *testing.T, c *testkit.APIClient, u string, form url.Values) (int, string) {
	t.Helper()
	form.Set("csrf_token", c.CSRF)
	resp, err := c.HTTP.PostForm(u, form)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

// TestConcernRaisedInRoomTellsDSLAtOnce (R14 "at once"): "stop and raise a
// concern" in the room stores the concern as pending and tells the DSLs —
// the DSL who has signed in and the configured dsl_emails address — on the
// home page and by e-mail before any form is filled in; the form then
// completes that same concern, tells the ticked pupil's year lead, and
// e-mails those told in the room that the details are in.
func TestConcernRaisedInRoomTellsDSLAtOnce(t *testing.T) {
	t.Parallel()
	smtpSrv := testkit.StartSMTP(t)
	clock := testkit.NewClock(schoolDay)
	gw := testkit.StartGateway(t, testkit.GatewayOptions{Now: clock.Now, SMTP: smtpSrv, DSLEmails: []string{"safeguarding@oakfield.example"}})
	sc := &school{gw: gw, clock: clock, people: map[string]*testkit.APIClient{}}
	for _, u := range []string{"teacher", "head", "dsl", "year8lead", "pupil"} {
		sc.people[u] = testkit.APILogin(t, gw, u)
	}
	id := liveSession(t, sc, nil)
	tm, _ := teacherAndPupils(t, sc, id, "pupil")
	require.NoError(t, tm.rc.Send(map[string]any{"type": "concern"}))
	require.Equal(t, "/sessions/"+id+"/concern", tm.rc.NextType("concern_form")["url"])

	// No form yet: the concern exists, pending, and the DSLs know.
	ctx := context.Background()
	cs, err := gw.Store.ListConcerns(ctx, id)
	require.NoError(t, err)
	require.Len(t, cs, 1)
	require.Equal(t, store.ConcernPending, cs[0].State)
	require.Equal(t, "Sarah Whitfield", cs[0].RaisedBy)
	concernURL := gw.URL + "/concerns/" + cs[0].ID
	mails := smtpSrv.WaitMails(t, 2, 30*time.Second)
	byTo := map[string]string{}
	for _, ml := range mails {
		byTo[ml.To[0]] = ml.Data
	}
	for _, to := range []string{"h.murray@oakfield.example", "safeguarding@oakfield.example"} {
		require.Contains(t, byTo[to], "stopped a lesson and raised a safeguarding concern; details to follow", to)
		require.Contains(t, byTo[to], concernURL, to)
	}
	_, home := get(t, sc.people["dsl"].HTTP, gw.URL+"/")
	require.Contains(t, html.UnescapeString(home), "raised by Sarah Whitfield: the lesson was stopped; details to follow")
	require.Contains(t, home, `href="/concerns/`+cs[0].ID+`"`)
	_, home = get(t, sc.people["year8lead"].HTTP, gw.URL+"/")
	require.NotContains(t, home, cs[0].ID, "no pupil ticked yet: no year lead told")
	status, page := get(t, sc.people["dsl"].HTTP, concernURL)
	require.Equal(t, http.StatusOK, status, page)
	require.Contains(t, html.UnescapeString(page), "Sarah Whitfield stopped the lesson and raised a concern. Details to follow")
	require.Equal(t, 1, auditCount(t, gw.Store, "concern.pending"))

	// The form completes it (no second concern) and routes to Amelia's year lead.
	_, form := get(t, sc.people["teacher"].HTTP, gw.URL+"/sessions/"+id+"/concern")
	form = html.UnescapeString(form)
	require.Contains(t, form, "The safeguarding lead has already been told")
	m := regexp.MustCompile(`name="pupil" value="([^"]+)"> Amelia Jones`).FindStringSubmatch(form)
	require.NotNil(t, m)
	done := postConcernForm(t, sc, "teacher", id, url.Values{"pupil": {m[1]}, "details": {"Amelia said something worrying."}})
	require.Contains(t, done, "and the year lead of each pupil you ticked")
	cs, err = gw.Store.ListConcerns(ctx, id)
	require.NoError(t, err)
	require.Len(t, cs, 1, "completed, not raised twice")
	require.Equal(t, store.ConcernFiled, cs[0].State)
	require.Equal(t, "Amelia said something worrying.", cs[0].Details)
	require.Equal(t, []string{m[1]}, cs[0].Pupils)
	// Amelia's year lead is told, and the two told in the room are told
	// the details are in (the e-mail still says nothing of them).
	mails = smtpSrv.WaitMails(t, 5, 30*time.Second)
	later := map[string]string{}
	for _, ml := range mails[2:] {
		require.Len(t, ml.To, 1)
		later[ml.To[0]] = ml.Data
	}
	require.Len(t, later, 3)
	require.Contains(t, later["p.sharma@oakfield.example"], "about a pupil in your year group")
	for _, to := range []string{"h.murray@oakfield.example", "safeguarding@oakfield.example"} {
		require.Contains(t, later[to], "Details added to the safeguarding concern", to)
		require.Contains(t, later[to], concernURL, to)
		require.NotContains(t, later[to], "worrying", to)
	}
	ns, err := gw.Store.ListNotifications(ctx, store.NotificationFilter{ConcernID: cs[0].ID})
	require.NoError(t, err)
	require.Len(t, ns, 3, "one notification each: the second e-mail is on the same one")
	require.Eventually(t, func() bool {
		ns, err := gw.Store.ListNotifications(ctx, store.NotificationFilter{ConcernID: cs[0].ID})
		if err != nil {
			return false
		}
		for _, n := range ns {
			if n.EmailStatus != store.EmailSent {
				return false
			}
		}
		return true
	}, 10*time.Second, 50*time.Millisecond, "every e-mail recorded as sent")
	_, home = get(t, sc.people["year8lead"].HTTP, gw.URL+"/")
	require.Contains(t, home, `href="/concerns/`+cs[0].ID+`"`)
	status, page = get(t, sc.people["year8lead"].HTTP, concernURL)
	require.Equal(t, http.StatusOK, status, page)
	require.Contains(t, page, "Amelia said something worrying.")
	require.NotContains(t, page, "Details to follow")
	time.Sleep(300 * time.Millisecond) // a further e-mail would have arrived by now
	require.Len(t, smtpSrv.Mails(), 5, "no one is e-mailed a third time")
}

// TestConcernFormerDSLRefused: someone whose stored roles still say DSL
// (they have not signed in since they left the DSL group) is told of a
// concern — the gateway knows no better — but when they sign in, their
// current roles decide: the concern page refuses them (audited) and their
// home page does not list it.
func TestConcernFormerDSLRefused(t *testing.T) {
	t.Parallel()
	clock := testkit.NewClock(schoolDay)
	former := demoidp.User{Username: "formerdsl", Sub: "3f1c9a52-tch-0098", GivenName: "Karen", FamilyName: "Old", Email: "k.old@oakfield.example",
		EmailVerified: true, Groups: []string{"staff"}}
	gw := testkit.StartGateway(t, testkit.GatewayOptions{Now: clock.Now, ExtraUsers: []demoidp.User{former}})
	sc := &school{gw: gw, clock: clock, people: map[string]*testkit.APIClient{}}
	for _, u := range []string{"teacher", "head", "dsl", "pupil"} {
		sc.people[u] = testkit.APILogin(t, gw, u)
	}
	ctx := context.Background()
	dsls, err := gw.Store.ListUsersWithRole(ctx, "dsl")
	require.NoError(t, err)
	require.Len(t, dsls, 1)
	// Karen's last sign-in was while she was a DSL.
	require.NoError(t, gw.Store.UpsertUser(ctx, store.User{Issuer: dsls[0].Issuer, Subject: former.Sub, Name: "Karen Old", Email: former.Email,
		Roles: []string{"staff", "dsl"}, Groups: []string{"staff", "dsl"}, LastSeen: schoolDay.Add(-30 * 24 * time.Hour)}))

	id := liveSession(t, sc, nil)
	_, _ = teacherAndPupils(t, sc, id, "pupil")
	postConcernForm(t, sc, "teacher", id, url.Values{"details": {"Something worrying."}})
	cs, err := gw.Store.ListConcerns(ctx, id)
	require.NoError(t, err)
	require.Len(t, cs, 1)
	ns, err := gw.Store.ListNotifications(ctx, store.NotificationFilter{ConcernID: cs[0].ID, Email: former.Email})
	require.NoError(t, err)
	require.Len(t, ns, 1, "told, by her stored roles")

	// She signs in now, without the DSL role: refused, and the refusal is audited.
	karen := testkit.APILogin(t, gw, "formerdsl")
	status, page := get(t, karen.HTTP, gw.URL+"/concerns/"+cs[0].ID)
	require.Equal(t, http.StatusForbidden, status, page)
	require.NotContains(t, page, "Something worrying.")
	refused, err := gw.Store.ListAudit(ctx, store.AuditFilter{Action: "concern.view_refused", Target: cs[0].ID})
	require.NoError(t, err)
	require.Len(t, refused, 1)
	require.Equal(t, "Karen Old", refused[0].ActorName)
	_, home := get(t, karen.HTTP, gw.URL+"/")
	require.NotContains(t, home, cs[0].ID)
	ns, err = gw.Store.ListNotifications(ctx, store.NotificationFilter{ConcernID: cs[0].ID, Email: former.Email})
	require.NoError(t, err)
	require.True(t, ns[0].Opened.IsZero(), "a refused view is not an opening")
	// The DSL (role from her current sign-in) reads it.
	status, page = get(t, sc.people["dsl"].HTTP, gw.URL+"/concerns/"+cs[0].ID)
	require.Equal(t, http.StatusOK, status, page)
	require.Contains(t, page, "Something worrying.")
}
