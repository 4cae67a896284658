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
	details := "Amelia mentioned something at home that worries me."
	done := postConcernForm(t, sc, "teacher", id, url.Values{"pupil": {m[1]}, "details": {details}})
	require.Contains(t, done, "sent to the designated safeguarding lead and the pupil's year lead")
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

	// A concern about a Year 9 pupil, named in the text, while mail cannot be delivered:
	// it goes to the Year 9 lead, and the page says the e-mails were not sent.
	smtpSrv.FailNextRcpt(100)
	done = postConcernForm(t, sc, "teacher", id, url.Values{"about": {"Oliver Smith-Baker"}, "details": {"Oliver was upset by a message."}})
	require.Contains(t, done, "and the pupil's year lead")
	cs, err = gw.Store.ListConcerns(context.Background(), id)
	require.NoError(t, err)
	require.Len(t, cs, 2)
	second := gw.URL + "/concerns/" + cs[0].ID
	_, home = get(t, sc.people["year9lead"].HTTP, gw.URL+"/")
	require.Contains(t, home, `href="/concerns/`+cs[0].ID+`"`)
	_, home = get(t, sc.people["year8lead"].HTTP, gw.URL+"/")
	require.NotContains(t, home, cs[0].ID)
	require.Eventually(t, func() bool {
		_, page := get(t, sc.people["dsl"].HTTP, second)
		return strings.Count(html.UnescapeString(page), "e-mail not sent: ") == 2
	}, 20*time.Second, 100*time.Millisecond, "both e-mails shown as not sent")
	require.Len(t, smtpSrv.Mails(), 2, "no further mail got through")
	failed, err := gw.Store.ListAudit(context.Background(), store.AuditFilter{Action: "concern.email_failed", Target: cs[0].ID})
	require.NoError(t, err)
	require.Len(t, failed, 2)
}
