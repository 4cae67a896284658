package web_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/minio/minio-go/v7"
	"github.com/stretchr/testify/require"

	"github.com/chaperone-edu/chaperone/audit"
	"github.com/chaperone-edu/chaperone/internal/testkit"
	"github.com/chaperone-edu/chaperone/recording"
	"github.com/chaperone-edu/chaperone/recording/webm"
	"github.com/chaperone-edu/chaperone/recording/webm/webmtest"
	"github.com/chaperone-edu/chaperone/store"
)

// recordedFixture stores an ended session with a real 4 s WebM recording of
// one pupil (Amelia Jones), indexed, with a manifest.
func recordedFixture(t *testing.T, sc *school) (sid, pid string) {
	t.Helper()
	ctx := context.Background()
	sid, pid = "fixture"+strings.ToLower(t.Name()[len(t.Name())-4:]), "pamelia01"
	start := schoolDay.Add(2 * time.Hour)
	require.NoError(t, sc.gw.Store.CreateSessions(ctx, []store.Session{{ID: sid, Title: "Year 8 maths (recorded)", Kind: "interactive",
		HostSub: "3f1c9a52-tch-0003", HostName: "Sarah Whitfield", HostEmail: "s.whitfield@oakfield.example", RosterGroup: "year-8",
		Start: start, End: start.Add(time.Hour), State: store.StateEnded, Created: start, Updated: start}}))
	path := filepath.Join(t.TempDir(), "rec.webm")
	w, err := webm.Create(webm.Options{Path: path})
	require.NoError(t, err)
	for _, p := range webmtest.Session(4*time.Second, 0, 30) {
		require.NoError(t, w.WriteRTP(p.Kind, p.Packet))
	}
	require.NoError(t, w.Close())
	b := sc.gw.Bucket
	key := recording.ObjectKey(sid, pid)
	info, err := b.UploadFile(ctx, key, path, b.RetainUntil(time.Now()), nil)
	require.NoError(t, err)
	require.NoError(t, b.PutJSON(ctx, recording.ManifestKey(sid), recording.Manifest{Session: sid, Participants: []recording.ManifestEntry{
		{Participant: recording.Participant{ID: pid, Name: "Amelia Jones", Role: "pupil"}, Key: key, Size: info.Size}}}, b.RetainUntil(time.Now())))
	require.NoError(t, sc.gw.Store.PutRecordingObject(ctx, store.RecordingObject{Key: key, SessionID: sid, ParticipantID: pid,
		ParticipantName: "Amelia Jones", Role: "pupil", Size: info.Size, RetainUntil: b.RetainUntil(time.Now()), Created: time.Now()}))
	return sid, pid
}

func auditCount(t *testing.T, st store.Store, action audit.Action) int {
	rows, err := st.ListAudit(context.Background(), store.AuditFilter{Action: action})
	require.NoError(t, err)
	return len(rows)
}

func rangeGet(t *testing.T, c *http.Client, u, rng string) (int, []byte, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	if rng != "" {
		req.Header.Set("Range", rng)
	}
	resp, err := c.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, b, resp.Header
}

// TestRecordingAccess: only the DSL lists, views, plays and downloads
// recordings; ranged reads return the object's bytes; every media request
// writes exactly one audit row; a bad Range gets 416 and no view row.
func TestRecordingAccess(t *testing.T) {
	t.Parallel()
	s3 := testkit.StartS3(t)
	sc := newRecordingSchool(t, s3, "teacher", "pupil", "head", "itadmin", "dsl")
	sid, pid := recordedFixture(t, sc)
	media := sc.gw.URL + "/recordings/" + sid + "/media/" + pid + ".webm"
	for _, u := range []string{"teacher", "pupil", "head", "itadmin"} {
		for _, path := range []string{"/recordings", "/recordings/" + sid, "/recordings/" + sid + "/media/" + pid + ".webm"} {
			status, _ := get(t, sc.people[u].HTTP, sc.gw.URL+path)
			require.Equal(t, http.StatusForbidden, status, "%s %s", u, path)
		}
	}
	require.Zero(t, auditCount(t, sc.gw.Store, "recording.viewed"))
	dsl := sc.people["dsl"].HTTP
	status, body := get(t, dsl, sc.gw.URL+"/recordings?pupil=amelia")
	require.Equal(t, http.StatusOK, status)
	require.Contains(t, body, "Year 8 maths (recorded)")
	status, body = get(t, dsl, sc.gw.URL+"/recordings?pupil=oliver")
	require.Equal(t, http.StatusOK, status)
	require.NotContains(t, body, "Year 8 maths (recorded)")
	status, body = get(t, dsl, sc.gw.URL+"/recordings/"+sid)
	require.Equal(t, http.StatusOK, status)
	require.Contains(t, body, "Amelia Jones")

	obj, err := s3.Client.GetObject(context.Background(), sc.gw.BucketName, recording.ObjectKey(sid, pid), minio.GetObjectOptions{})
	require.NoError(t, err)
	whole, err := io.ReadAll(obj)
	require.NoError(t, err)
	before := auditCount(t, sc.gw.Store, "recording.viewed")
	status, part, h := rangeGet(t, dsl, media, "bytes=100-1099")
	require.Equal(t, http.StatusPartialContent, status)
	require.True(t, bytes.Equal(whole[100:1100], part), "the 1000 bytes equal the object's")
	require.Equal(t, "bytes 100-1099/"+itoa(len(whole)), h.Get("Content-Range"))
	require.Equal(t, before+1, auditCount(t, sc.gw.Store, "recording.viewed"), "one audit row per request")
	status, all, _ := rangeGet(t, dsl, media, "")
	require.Equal(t, http.StatusOK, status)
	require.True(t, bytes.Equal(whole, all))
	require.Equal(t, before+2, auditCount(t, sc.gw.Store, "recording.viewed"))
	status, _, h = rangeGet(t, dsl, media+"?download=1", "")
	require.Equal(t, http.StatusOK, status)
	require.Contains(t, h.Get("Content-Disposition"), "attachment")
	require.Equal(t, 1, auditCount(t, sc.gw.Store, "recording.downloaded"))
	for _, bad := range []string{"bytes=abc", "bytes=5-2", "bytes=" + itoa(len(whole)+10) + "-", "bytes=0-1,5-6"} {
		status, _, h = rangeGet(t, dsl, media, bad)
		require.Equal(t, http.StatusRequestedRangeNotSatisfiable, status, bad)
		require.Equal(t, "bytes */"+itoa(len(whole)), h.Get("Content-Range"))
	}
	require.Equal(t, before+2, auditCount(t, sc.gw.Store, "recording.viewed"), "no view row for a bad range")
	status, body = get(t, dsl, sc.gw.URL+"/audit.csv?action=recording.")
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, 2, strings.Count(body, ",recording.viewed,"), "the CSV has the view rows")
	require.Contains(t, body, "bytes=100-1099")
	status, _ = get(t, dsl, sc.gw.URL+"/recordings/"+sid+"/media/nobody.webm")
	require.Equal(t, http.StatusNotFound, status)
	status, _ = get(t, dsl, sc.gw.URL+"/recordings/"+sid+"/media/..%2fmanifest.json")
	require.Equal(t, http.StatusNotFound, status)
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestLegalHoldAndAuditPage: the DSL places and releases a hold (a reason is
// required to release); the audit page shows the chain verifies and lists
// who did what; CSV export; others cannot read it.
func TestLegalHoldAndAuditPage(t *testing.T) {
	t.Parallel()
	s3 := testkit.StartS3(t)
	sc := newRecordingSchool(t, s3, "teacher", "dsl", "itadmin")
	sid, _ := recordedFixture(t, sc)
	dsl := sc.people["dsl"]
	post := func(path string, v url.Values) int {
		resp, err := dsl.HTTP.PostForm(sc.gw.URL+path, v)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	held := func() bool {
		objs, err := sc.gw.Bucket.List(context.Background(), recording.SessionPrefix(sid))
		require.NoError(t, err)
		for _, o := range objs {
			if !o.LegalHold {
				return false
			}
		}
		return len(objs) > 0
	}
	require.Equal(t, http.StatusForbidden, post("/recordings/"+sid+"/hold", url.Values{}), "no CSRF token")
	require.False(t, held())
	require.Equal(t, http.StatusOK, post("/recordings/"+sid+"/hold", url.Values{"csrf_token": {dsl.CSRF}}))
	require.True(t, held())
	require.Equal(t, http.StatusBadRequest, post("/recordings/"+sid+"/release", url.Values{"csrf_token": {dsl.CSRF}, "reason": {"ok"}}))
	require.True(t, held(), "no release without a reason")
	require.Equal(t, http.StatusOK, post("/recordings/"+sid+"/release", url.Values{"csrf_token": {dsl.CSRF}, "reason": {"Reviewed with the police: no further action."}}))
	require.False(t, held())

	status, body := get(t, dsl.HTTP, sc.gw.URL+"/audit?action=recording.")
	require.Equal(t, http.StatusOK, status)
	require.Contains(t, body, "hash chain verifies")
	require.Contains(t, body, "recording.hold_placed")
	require.Contains(t, body, "recording.hold_released")
	require.Contains(t, body, "Helen Murray")
	require.Equal(t, 1, auditCount(t, sc.gw.Store, "recording.hold_placed"))
	require.Equal(t, 1, auditCount(t, sc.gw.Store, "recording.hold_released"))
	objs, err := sc.gw.Store.ListRecordingObjects(context.Background(), store.RecordingFilter{SessionID: sid})
	require.NoError(t, err)
	for _, o := range objs {
		require.False(t, o.Held, "the index follows the release")
	}
	status, body = get(t, dsl.HTTP, sc.gw.URL+"/audit.csv?action=recording.hold_released")
	require.Equal(t, http.StatusOK, status)
	require.Contains(t, body, "Reviewed with the police")
	status, _ = get(t, sc.people["teacher"].HTTP, sc.gw.URL+"/audit.csv")
	require.Equal(t, http.StatusForbidden, status)
	status, _ = get(t, sc.people["teacher"].HTTP, sc.gw.URL+"/recordings/"+sid)
	require.Equal(t, http.StatusForbidden, status)
	resp, err := sc.people["teacher"].HTTP.PostForm(sc.gw.URL+"/recordings/"+sid+"/release",
		url.Values{"csrf_token": {sc.people["teacher"].CSRF}, "reason": {"I would like it released please."}})
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusForbidden, resp.StatusCode, "only the DSL releases")
	status, _ = get(t, sc.people["itadmin"].HTTP, sc.gw.URL+"/audit")
	require.Equal(t, http.StatusOK, status, "IT admins read the audit log")
	status, _ = get(t, sc.people["teacher"].HTTP, sc.gw.URL+"/audit")
	require.Equal(t, http.StatusForbidden, status)
}

// TestBrowserDSLPlaysRecording: the DSL finds the recording by the pupil's
// name, plays it, and the audit page then lists the view.
func TestBrowserDSLPlaysRecording(t *testing.T) {
	t.Parallel()
	s3 := testkit.StartS3(t)
	sc := newRecordingSchool(t, s3)
	sid, _ := recordedFixture(t, sc)
	ctx := signInBrowser(t, sc.gw, "dsl")
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(sc.gw.URL+"/"),
		chromedp.Click(chromedp.CSS(`a[href="/recordings"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#pupil`)),
		chromedp.SendKeys(chromedp.CSS(`#pupil`), "Amelia"),
		chromedp.Submit(chromedp.CSS(`#pupil`)),
		// The unfiltered page lists the session too: wait for the results.
		chromedp.WaitVisible(chromedp.CSS(`#pupil[value="Amelia"]`)),
		chromedp.Click(chromedp.CSS(`a[href="/recordings/`+sid+`"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#play-all`)),
		chromedp.Click(chromedp.CSS(`#play-all`)),
	))
	require.Eventually(t, func() bool {
		v, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`document.querySelector('#player video').currentTime`))
		return err == nil && v > 0.5
	}, 15*time.Second, 200*time.Millisecond, "the video plays")
	testkit.Screenshot(t, ctx, "dsl-player")
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(sc.gw.URL+"/audit?action=recording.viewed"), chromedp.WaitVisible(chromedp.CSS(`table.audit`))))
	require.Contains(t, text(t, ctx, `table.audit`), "Helen Murray")
	require.Contains(t, text(t, ctx, `table.audit`), "recording.viewed")
}

// TestRecordingSearchFilters: the DSL's search picks sessions by pupil,
// teacher, date, concern and hold, and lists everyone recorded in each;
// each search is audited; concerns show on the DSL's home page only.
func TestRecordingSearchFilters(t *testing.T) {
	t.Parallel()
	sc := newSchool(t, "dsl", "teacher")
	ctx := context.Background()
	st := sc.gw.Store
	day := func(d int) time.Time { return schoolDay.AddDate(0, 0, d).Add(2 * time.Hour) }
	type rec struct {
		id, title, host string
		start           time.Time
		people          []string
		held, concern   bool
	}
	for _, r := range []rec{
		{"srch1", "Maths with Amelia", "Sarah Whitfield", day(0), []string{"Sarah Whitfield", "Amelia Jones"}, false, true},
		{"srch2", "Physics catch-up", "Tom Baker", day(1), []string{"Tom Baker", "Zoë Ångström"}, true, false},
		{"srch3", "Chemistry tutorial", "Sarah Whitfield", day(3), []string{"Sarah Whitfield", "Oliver Smith"}, false, false},
	} {
		require.NoError(t, st.CreateSessions(ctx, []store.Session{{ID: r.id, Title: r.title, Kind: "interactive", HostName: r.host,
			Start: r.start, End: r.start.Add(time.Hour), State: store.StateEnded, Created: r.start, Updated: r.start}}))
		for i, p := range r.people {
			pid := r.id + "p" + itoa(i)
			require.NoError(t, st.PutRecordingObject(ctx, store.RecordingObject{Key: recording.ObjectKey(r.id, pid), SessionID: r.id,
				ParticipantID: pid, ParticipantName: p, Role: "pupil", Size: 1000, RetainUntil: r.start.AddDate(0, 0, 28),
				Held: r.held, Created: r.start.Add(time.Hour)}))
		}
		if r.concern {
			require.NoError(t, st.CreateConcern(ctx, store.Concern{ID: "c-" + r.id, SessionID: r.id, RaisedBy: r.host,
				About: "Amelia Jones", Details: "Worrying remark.", Created: r.start.Add(30 * time.Minute), Recorded: true}))
		}
	}
	dsl := sc.people["dsl"].HTTP
	search := func(query string) []string {
		t.Helper()
		status, body := get(t, dsl, sc.gw.URL+"/recordings?"+query)
		require.Equal(t, http.StatusOK, status, query)
		var found []string
		for _, part := range strings.Split(body, `href="/recordings/`)[1:] {
			if id, _, _ := strings.Cut(part, `"`); strings.HasPrefix(id, "srch") {
				found = append(found, id)
			}
		}
		return found
	}
	before := auditCount(t, st, "recordings.listed")
	require.Equal(t, []string{"srch3", "srch2", "srch1"}, search(""), "newest first")
	require.Equal(t, []string{"srch1"}, search("pupil=AMELIA"))
	require.Equal(t, []string{"srch2"}, search("pupil="+url.QueryEscape("zoë")))
	require.Equal(t, []string{"srch3", "srch1"}, search("teacher=whitfield"))
	require.Equal(t, []string{"srch2"}, search("from="+dayOf(1)+"&to="+dayOf(2)))
	require.Equal(t, []string{"srch1"}, search("has_concern=1"))
	require.Equal(t, []string{"srch2"}, search("on_hold=1"))
	require.Empty(t, search("teacher=baker&has_concern=1"))
	require.Equal(t, before+8, auditCount(t, st, "recordings.listed"), "one row per search")

	// A row lists everyone recorded, not just the one searched for.
	_, body := get(t, dsl, sc.gw.URL+"/recordings?pupil=oliver")
	require.Contains(t, body, "Sarah Whitfield, Oliver Smith")

	_, body = get(t, dsl, sc.gw.URL+"/")
	require.Contains(t, body, "Safeguarding concerns")
	require.Contains(t, body, `href="/recordings/srch1"`)
	require.Contains(t, body, "Maths with Amelia, raised by Sarah Whitfield about Amelia Jones")
	_, body = get(t, sc.people["teacher"].HTTP, sc.gw.URL+"/")
	require.NotContains(t, body, "Safeguarding concerns")
	require.NotContains(t, body, `href="/recordings`)

	status, body := get(t, dsl, sc.gw.URL+"/recordings/srch1")
	require.Equal(t, http.StatusOK, status)
	require.Contains(t, body, "Worrying remark.")
	status, _ = get(t, dsl, sc.gw.URL+"/recordings/no-such-session")
	require.Equal(t, http.StatusNotFound, status)
}

// TestAuditPageNameFilterAndPaging: the name filter finds rows beyond the
// newest page, and the page goes back through the log 200 rows at a time.
func TestAuditPageNameFilterAndPaging(t *testing.T) {
	t.Parallel()
	sc := newSchool(t, "itadmin")
	ctx := context.Background()
	for i := range 1500 {
		name := "Tom Baker"
		if i < 250 { // the oldest rows: more than a page, behind a full batch of others
			name = "Zoë Ångström"
		}
		_, err := sc.gw.Store.AppendAudit(ctx, store.AuditEntry{Time: schoolDay.Add(time.Duration(i) * time.Second), ActorName: name,
			Action: "test.row", Target: itoa(i)})
		require.NoError(t, err)
	}
	admin := sc.people["itadmin"].HTTP
	rowsOf := func(body string) int { return strings.Count(body, "<td>test.row</td>") }
	status, body := get(t, admin, sc.gw.URL+"/audit?action=test.row")
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, 200, rowsOf(body))
	require.Contains(t, body, "hash chain verifies")

	status, body = get(t, admin, sc.gw.URL+"/audit?action=test.row&who="+url.QueryEscape("ZOË"))
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, 200, rowsOf(body))
	require.NotContains(t, body, "Tom Baker")
	i := strings.Index(body, `rel="next"`)
	require.Positive(t, i, "an older page")
	href := body[strings.LastIndex(body[:i], `href="`)+len(`href="`):]
	href = strings.ReplaceAll(href[:strings.Index(href, `"`)], "&amp;", "&")
	status, body = get(t, admin, sc.gw.URL+href)
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, 50, rowsOf(body))
	require.NotContains(t, body, `rel="next"`)

	status, body = get(t, admin, sc.gw.URL+"/audit.csv?action=test.row&who=zo")
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, 250, strings.Count(body, ",test.row,"))
}
