package web_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/stretchr/testify/require"

	"github.com/chaperone-edu/chaperone/auth"
	"github.com/chaperone-edu/chaperone/internal/testkit"
	"github.com/chaperone-edu/chaperone/recording"
	"github.com/chaperone-edu/chaperone/store"
	"github.com/chaperone-edu/chaperone/web"
)

// noFollow is c without following redirects, to look at where they go.
func noFollow(c *http.Client) *http.Client {
	nc := *c
	nc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &nc
}

// TestDSLNeedsMFAForRecordings: a DSL who signed in with the password only
// keeps the staff role (can request a session) but cannot list recordings
// or read the audit log, and is told why and how to fix it; with the second
// factor they can. A head without it cannot approve.
func TestDSLNeedsMFAForRecordings(t *testing.T) {
	t.Parallel()
	gw := testkit.StartGateway(t, testkit.GatewayOptions{})
	dsl := testkit.APILoginOTP(t, gw, "dsl", "")
	status, body := get(t, dsl.HTTP, gw.URL+"/")
	require.Equal(t, http.StatusOK, status)
	require.Contains(t, body, `id="mfa-needed"`)
	require.Contains(t, body, "designated safeguarding lead access is switched off")
	require.NotContains(t, body, `href="/recordings"`)

	status, body = get(t, dsl.HTTP, gw.URL+"/recordings")
	require.Equal(t, http.StatusForbidden, status)
	require.Contains(t, body, "second factor")
	require.Contains(t, body, `href="/login?again=1&amp;next=%2Frecordings"`)
	status, _ = get(t, dsl.HTTP, gw.URL+"/audit")
	require.Equal(t, http.StatusForbidden, status)

	// The staff role still works.
	status, out := dsl.Call(http.MethodPost, "/api/sessions", sessionBody("Pastoral check-in", schoolDay.Add(2*time.Hour), nil))
	require.Equal(t, http.StatusCreated, status, "%v", out)

	// "Sign in again with your second factor" asks the IdP for a new login.
	resp, err := noFollow(dsl.HTTP).Get(gw.URL + "/login?again=1&next=%2Frecordings")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusFound, resp.StatusCode)
	require.Contains(t, resp.Header.Get("Location"), "prompt=login")

	withMFA := testkit.APILogin(t, gw, "dsl")
	status, body = get(t, withMFA.HTTP, gw.URL+"/recordings")
	require.Equal(t, http.StatusOK, status, body)
	status, _ = get(t, withMFA.HTTP, gw.URL+"/audit")
	require.Equal(t, http.StatusOK, status)

	head := testkit.APILoginOTP(t, gw, "head", "")
	status, _ = head.Call(http.MethodGet, "/api/approvals", nil)
	require.Equal(t, http.StatusForbidden, status, "approving needs the head's second factor")
	status, _ = testkit.APILogin(t, gw, "head").Call(http.MethodGet, "/api/approvals", nil)
	require.Equal(t, http.StatusOK, status)

	rows, err := gw.Store.ListAudit(context.Background(), store.AuditFilter{Action: "login.accepted"})
	require.NoError(t, err)
	require.True(t, slicesContainsDetail(rows, `"withheld":["dsl"]`), "the audit row records the withheld role")
}

func slicesContainsDetail(rows []store.AuditRecord, s string) bool {
	for _, r := range rows {
		if strings.Contains(r.Detail, s) {
			return true
		}
	}
	return false
}

// TestRecordingsNeedFreshSignIn: 16 minutes after signing in, a download,
// the recording page and releasing a hold each send the DSL back through
// the IdP (max_age, prompt=login) before any byte is served or anything
// changes; a player opened with a fresh sign-in keeps playing; after a new
// sign-in the same download is served.
func TestRecordingsNeedFreshSignIn(t *testing.T) {
	t.Parallel()
	s3 := testkit.StartS3(t)
	clock := testkit.NewClock(schoolDay)
	authClock := testkit.NewClock(time.Now())
	gw := testkit.StartGateway(t, testkit.GatewayOptions{Now: clock.Now, AuthNow: authClock.Now, S3: s3})
	sc := &school{gw: gw, clock: clock, people: map[string]*testkit.APIClient{"dsl": testkit.APILogin(t, gw, "dsl")}}
	sid, pid := recordedFixture(t, sc)
	dsl := sc.people["dsl"]
	otherBrowser := testkit.APILogin(t, gw, "dsl") // signed in too, never opened the page
	media := gw.URL + "/recordings/" + sid + "/media/" + pid + ".webm"
	obj, err := s3.Client.GetObject(context.Background(), gw.BucketName, recording.ObjectKey(sid, pid), minio.GetObjectOptions{})
	require.NoError(t, err)
	whole, err := io.ReadAll(obj)
	require.NoError(t, err)

	// Fresh: the page and its player work.
	status, _ := get(t, dsl.HTTP, gw.URL+"/recordings/"+sid)
	require.Equal(t, http.StatusOK, status)
	status, _, _ = rangeGet(t, dsl.HTTP, media, "bytes=0-99")
	require.Equal(t, http.StatusPartialContent, status)
	status, _ = dsl.Raw(http.MethodPost, "/recordings/"+sid+"/hold", "", dsl.CSRF)
	require.Equal(t, http.StatusOK, status, "hold placed (no fresh sign-in needed to protect)")
	viewed, downloaded := auditCount(t, gw.Store, "recording.viewed"), auditCount(t, gw.Store, "recording.downloaded")

	authClock.Advance(16 * time.Minute)
	nf := noFollow(dsl.HTTP)
	// The player of the page opened while fresh keeps playing (Range
	// requests), audited as such...
	status, _, _ = rangeGet(t, dsl.HTTP, media, "bytes=100-199")
	require.Equal(t, http.StatusPartialContent, status, "the open player keeps playing")
	viewed++
	rows, err := gw.Store.ListAudit(context.Background(), store.AuditFilter{Action: "recording.viewed", Limit: 1})
	require.NoError(t, err)
	require.Contains(t, rows[0].Detail, `"via":"playback_grant"`)
	// ...but not in a browser that never opened the page while fresh.
	status, _, _ = rangeGet(t, otherBrowser.HTTP, media, "bytes=100-199")
	require.Equal(t, http.StatusUnauthorized, status, "no grant in another browser")
	// A download, a whole-file fetch, the page itself, and releasing the
	// hold need a new sign-in.
	for _, u := range []string{media + "?download=1", media, gw.URL + "/recordings/" + sid} {
		resp, err := nf.Get(u)
		require.NoError(t, err)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(t, http.StatusSeeOther, resp.StatusCode, u)
		require.True(t, strings.HasPrefix(resp.Header.Get("Location"), "/login?fresh=1&next="), resp.Header.Get("Location"))
		require.False(t, bytes.Contains(b, whole[:64]), "no recording byte before the new sign-in")
	}
	req, _ := http.NewRequest(http.MethodPost, gw.URL+"/recordings/"+sid+"/release", strings.NewReader(url.Values{"reason": {"The concern was resolved by the DSL"}, "csrf_token": {dsl.CSRF}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := nf.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	require.Contains(t, resp.Header.Get("Location"), "/login?fresh=1")
	objs, err := gw.Store.ListRecordingObjects(context.Background(), store.RecordingFilter{SessionID: sid})
	require.NoError(t, err)
	require.True(t, objs[0].Held, "the hold stays until a fresh sign-in")
	require.Zero(t, auditCount(t, gw.Store, "recording.hold_released"))
	require.Equal(t, viewed, auditCount(t, gw.Store, "recording.viewed"))
	require.Equal(t, downloaded, auditCount(t, gw.Store, "recording.downloaded"))

	// The grant lasts the session's length (1 h) past the window, counted
	// from the sign-in; then the player is told to sign in again.
	authClock.Advance(time.Hour)
	status, _, _ = rangeGet(t, dsl.HTTP, media, "bytes=100-199")
	require.Equal(t, http.StatusUnauthorized, status, "the grant has run out")
	require.Equal(t, viewed, auditCount(t, gw.Store, "recording.viewed"))

	// The sign-in asks the IdP for a fresh authentication.
	resp, err = nf.Get(gw.URL + "/login?fresh=1&next=" + url.QueryEscape("/recordings/"+sid))
	require.NoError(t, err)
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	require.NoError(t, err)
	require.Equal(t, "900", loc.Query().Get("max_age"))
	require.Equal(t, "login", loc.Query().Get("prompt"))

	// The DSL signs in again (now): the download is served.
	authClock.Set(time.Now())
	status, body := testkit.LoginAt(t, dsl.HTTP, gw.URL+"/login?fresh=1&next="+url.QueryEscape("/recordings/"+sid+"/media/"+pid+".webm?download=1"),
		"dsl", testkit.DemoPassword, testkit.DemoOTP)
	require.Equal(t, http.StatusOK, status)
	require.True(t, bytes.Equal(whole, []byte(body)), "the download after a fresh sign-in is the recording")
	require.Equal(t, downloaded+1, auditCount(t, gw.Store, "recording.downloaded"))
}

// TestFreshSignInChecksAuthTime: when the gateway asked for max_age, an ID
// token whose auth_time is older (an IdP that ignored it) or missing is
// refused; without max_age an old auth_time is fine.
func TestFreshSignInChecksAuthTime(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		path     string
		authTime any
		refusal  string
	}{
		{"ignored max_age", "/login?fresh=1", time.Now().Add(-time.Hour).Unix(), auth.RefuseAuthTooOld},
		{"no auth_time", "/login?fresh=1", nil, auth.RefuseAuthTooOld},
		{"recent auth_time", "/login?fresh=1", time.Now().Add(-2 * time.Minute).Unix(), ""},
		{"old auth_time without max_age", "/login", time.Now().Add(-time.Hour).Unix(), ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			bad, gw := badGateway(t, nil)
			bad.SetClaims(map[string]any{"auth_time": tc.authTime})
			c := testkit.CookieClient(t)
			status, body := get(t, c, gw.URL+tc.path)
			if tc.refusal == "" {
				require.Equal(t, http.StatusOK, status, body)
				require.Contains(t, body, "Signed in as")
				return
			}
			assertRefused(t, gw, c, status, body, tc.refusal)
			require.Equal(t, "900", bad.LastAuthorize().Get("max_age"))
		})
	}
}

// TestSignInBruteForce: the 11th failed sign-in within a minute from one
// address gets 429 (a forged callback before any work, a real refused
// sign-in after it); a person really signing in from that address still
// gets in; a minute later the count starts again.
func TestSignInBruteForce(t *testing.T) {
	t.Parallel()
	clock := testkit.NewClock(schoolDay)
	gw := testkit.StartGateway(t, testkit.GatewayOptions{Now: clock.Now})
	c := testkit.CookieClient(t)
	for i := 1; i <= 10; i++ {
		status, body := get(t, c, gw.URL+"/auth/callback?state=forged"+itoa(i)+"&code=guess")
		require.Equal(t, http.StatusForbidden, status, "attempt %d: %s", i, body)
		require.Contains(t, body, auth.RefuseState)
		clock.Advance(time.Second)
	}
	resp, err := c.Get(gw.URL + "/auth/callback?state=forged11&code=guess")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode, "the 11th failed attempt")
	require.Equal(t, "60", resp.Header.Get("Retry-After"))
	require.Contains(t, string(body), "Wait a minute")
	require.Equal(t, 10, auditCount(t, gw.Store, "login.refused"), "a blocked forged attempt never reaches the sign-in check")

	// A real sign-in that is refused (one-word name) is also answered 429...
	status, body2 := testkit.Login(t, testkit.CookieClient(t), gw.URL, "oneword", testkit.DemoPassword, "")
	require.Equal(t, http.StatusTooManyRequests, status, body2)
	require.Contains(t, body2, auth.RefuseNameOneWord, "the page still says why")
	// ...while a pupil who really signs in from the same network gets in.
	status, body2 = testkit.Login(t, testkit.CookieClient(t), gw.URL, "pupil", testkit.DemoPassword, "")
	require.Equal(t, http.StatusOK, status, body2)
	require.Contains(t, body2, "Signed in as")

	clock.Advance(time.Minute)
	status, body2 = get(t, c, gw.URL+"/auth/callback?state=forged12&code=guess")
	require.Equal(t, http.StatusForbidden, status, "a minute later the count starts again: %s", body2)
}

// TestSignInsPerAccountLimited: the 21st completed sign-in to one account
// within a minute is refused with 429 and creates no session.
func TestSignInsPerAccountLimited(t *testing.T) {
	t.Parallel()
	frozen := time.Now() // all 21 sign-ins fall in one minute however slow the machine
	gw := testkit.StartGateway(t, testkit.GatewayOptions{AuthNow: func() time.Time { return frozen }})
	u, _ := url.Parse(gw.URL)
	for i := 1; i <= 20; i++ {
		status, _ := testkit.Login(t, testkit.CookieClient(t), gw.URL, "teacher2", testkit.DemoPassword, "")
		require.Equal(t, http.StatusOK, status, "sign-in %d", i)
	}
	c := testkit.CookieClient(t)
	status, body := testkit.Login(t, c, gw.URL, "teacher2", testkit.DemoPassword, "")
	require.Equal(t, http.StatusTooManyRequests, status)
	require.Contains(t, body, auth.RefuseTooMany)
	require.Empty(t, sessionCookies(c, u))
	status, _ = testkit.Login(t, testkit.CookieClient(t), gw.URL, "teacher", testkit.DemoPassword, "")
	require.Equal(t, http.StatusOK, status, "other accounts are not affected")
}

// TestRoomConnectionLimit: the 31st room connection attempt in a minute
// from one account gets 429 before anything else is looked at.
func TestRoomConnectionLimit(t *testing.T) {
	t.Parallel()
	gw := testkit.StartGateway(t, testkit.GatewayOptions{Now: testkit.NewClock(schoolDay).Now})
	pupil := testkit.APILogin(t, gw, "pupil")
	other := testkit.APILogin(t, gw, "pupil2")
	for i := 1; i <= 30; i++ {
		_, resp, err := testkit.DialRoom(t, pupil, "no-such-session", "")
		require.Error(t, err)
		require.Equal(t, http.StatusNotFound, resp.StatusCode, "attempt %d", i)
	}
	_, resp, err := testkit.DialRoom(t, pupil, "no-such-session", "")
	require.Error(t, err)
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
	_, resp, err = testkit.DialRoom(t, other, "no-such-session", "")
	require.Error(t, err)
	require.Equal(t, http.StatusNotFound, resp.StatusCode, "another account on the same address is not blocked")
}

// TestSessionRotatedAtSignIn: signing in again in the same browser gives a
// new session cookie and ends the old session; the cookie is HttpOnly and
// SameSite.
func TestSessionRotatedAtSignIn(t *testing.T) {
	t.Parallel()
	gw := testkit.StartGateway(t, testkit.GatewayOptions{})
	c := testkit.CookieClient(t)
	u, _ := url.Parse(gw.URL)
	var setCookies []string
	var mu sync.Mutex
	c.Transport = roundTripFunc(func(r *http.Request) (*http.Response, error) {
		resp, err := http.DefaultTransport.RoundTrip(r)
		if err == nil && r.URL.Path == "/auth/callback" {
			mu.Lock()
			setCookies = append(setCookies, resp.Header.Values("Set-Cookie")...)
			mu.Unlock()
		}
		return resp, err
	})
	status, _ := testkit.Login(t, c, gw.URL, "teacher", testkit.DemoPassword, "")
	require.Equal(t, http.StatusOK, status)
	first := sessionCookies(c, u)[0].Value
	status, _ = testkit.Login(t, c, gw.URL, "teacher", testkit.DemoPassword, "")
	require.Equal(t, http.StatusOK, status)
	second := sessionCookies(c, u)[0].Value
	require.NotEqual(t, first, second, "a new session ID at sign-in")

	old := testkit.CookieClient(t)
	old.Jar.SetCookies(u, []*http.Cookie{{Name: auth.SessionCookie, Value: first, Path: "/"}})
	status, body := get(t, old, gw.URL+"/")
	require.Equal(t, http.StatusOK, status)
	require.NotContains(t, body, "Signed in as", "the previous session ended")

	mu.Lock()
	defer mu.Unlock()
	var sess []string
	for _, sc := range setCookies {
		if strings.HasPrefix(sc, auth.SessionCookie+"=") {
			sess = append(sess, sc)
		}
	}
	require.Len(t, sess, 2)
	for _, sc := range sess {
		require.Contains(t, sc, "HttpOnly")
		require.Contains(t, sc, "SameSite=Lax")
		require.Contains(t, sc, "Path=/")
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestSecurityHeadersEveryPage signs in as each kind of person and follows
// every same-site link and form page from the home page (and a list of
// addresses no link leads to), checking the browser defences on every
// response, that no page has inline script or inline event handlers, and
// that no page shows an internal error or a stack trace.
func TestSecurityHeadersEveryPage(t *testing.T) {
	t.Parallel()
	s3 := testkit.StartS3(t)
	clock := testkit.NewClock(schoolDay)
	// The crawl hits forged callbacks for every person: no attempt limit.
	gw := testkit.StartGateway(t, testkit.GatewayOptions{Now: clock.Now, S3: s3, Limits: web.Limits{SigninFailures: 1000}})
	sc := &school{gw: gw, clock: clock, people: map[string]*testkit.APIClient{}}
	for _, u := range []string{"teacher", "pupil", "head", "dsl", "itadmin", "year8lead"} {
		sc.people[u] = testkit.APILogin(t, gw, u)
	}
	sid := sc.request(t, "teacher", nil)
	status, _ := sc.people["head"].Call(http.MethodPost, "/api/sessions/"+sid+"/approve", map[string]any{})
	require.Equal(t, http.StatusOK, status)
	rec, _ := recordedFixture(t, sc)
	extra := []string{
		"/login", "/auth/callback", "/auth/callback?state=x&code=y", "/no-such-page", "/healthz", "/readyz", "/metrics",
		"/static/room.js", "/static/style.css", "/sessions/" + sid, "/rooms/" + sid, "/sessions/" + sid + "/concern",
		"/sessions/" + sid + "/attendance.csv", "/recordings/" + rec, "/audit.csv", "/api/me", "/api/sessions", "/api/nope",
		"/sessions/nope", "/recordings/nope",
	}
	linkRe := regexp.MustCompile(`(?:href|action|src)="(/[^"]*)"`)
	checked := 0
	for _, who := range []string{"", "teacher", "pupil", "head", "dsl", "itadmin", "year8lead"} {
		c := testkit.CookieClient(t)
		if who != "" {
			c = sc.people[who].HTTP
		}
		c = noFollow(c)
		seen := map[string]bool{}
		queue := append([]string{"/"}, extra...)
		for len(queue) > 0 && len(seen) < 80 {
			p := queue[0]
			queue = queue[1:]
			p = strings.ReplaceAll(p, "&amp;", "&")
			if seen[p] || strings.HasPrefix(p, "/logout") || strings.Contains(p, "download=1") {
				continue
			}
			seen[p] = true
			resp, err := c.Get(sc.gw.URL + p)
			require.NoError(t, err)
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
			resp.Body.Close()
			body := string(b)
			checked++
			ctx := who + " " + p
			h := resp.Header
			csp := h.Get("Content-Security-Policy")
			require.Contains(t, csp, "script-src 'self'", ctx)
			require.Contains(t, csp, "frame-ancestors 'none'", ctx)
			require.NotContains(t, csp, "unsafe-inline", ctx)
			require.NotContains(t, csp, "unsafe-eval", ctx)
			require.Equal(t, "nosniff", h.Get("X-Content-Type-Options"), ctx)
			require.Equal(t, "no-referrer", h.Get("Referrer-Policy"), ctx)
			require.Equal(t, "DENY", h.Get("X-Frame-Options"), ctx)
			require.Less(t, resp.StatusCode, 500, ctx)
			if ct := h.Get("Content-Type"); strings.HasPrefix(ct, "text/html") || strings.HasPrefix(ct, "application/json") {
				for _, leak := range []string{"goroutine ", ".go:", "panic", "runtime error", "sql:", "SQLITE", "minio"} {
					require.NotContains(t, body, leak, ctx) // pages and API answers: no internals
				}
			}
			if strings.HasPrefix(h.Get("Content-Type"), "text/html") {
				require.NotRegexp(t, `<script(?:\s[^>]*)?>\s*[^<\s]`, body, "inline script on %s", ctx)
				require.NotRegexp(t, `\son[a-z]+\s*=\s*"`, body, "inline event handler on %s", ctx)
				if resp.StatusCode == http.StatusOK {
					require.Equal(t, "no-store", h.Get("Cache-Control"), ctx)
				}
				for _, m := range linkRe.FindAllStringSubmatch(body, -1) {
					queue = append(queue, m[1])
				}
			}
		}
	}
	require.Greater(t, checked, 80, "pages checked")

	// HSTS when served over TLS, or when the public URL is https (TLS ends
	// at a proxy): tested on the middleware itself.
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {})
	for _, tc := range []struct {
		tls, httpsURL, want bool
	}{{false, false, false}, {true, false, true}, {false, true, true}} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		if tc.tls {
			r.TLS = &tls.ConnectionState{}
		}
		w := httptest.NewRecorder()
		web.SecurityHeaders(ok, tc.httpsURL).ServeHTTP(w, r)
		require.Equal(t, tc.want, strings.Contains(w.Header().Get("Strict-Transport-Security"), "max-age="), "%+v", tc)
	}
}

// TestNoSecretsLogged runs sign-ins (good and refused) and a room
// connection with every log line captured at debug level, and checks that
// no client secret, cookie, state, code or token appears.
func TestNoSecretsLogged(t *testing.T) {
	t.Parallel()
	bad := testkit.NewBadIdP(t)
	bad.RegisterClient("chaperone", "s3cret-client-Value-42")
	var buf testkit.SyncBuffer
	gw := testkit.StartGateway(t, testkit.GatewayOptions{Issuer: bad.URL, ClientID: "chaperone", ClientSecret: "s3cret-client-Value-42", LogTo: &buf})
	c := testkit.CookieClient(t)
	status, body := get(t, c, gw.URL+"/login")
	require.Equal(t, http.StatusOK, status, body)
	u, _ := url.Parse(gw.URL)
	cookie := sessionCookies(c, u)[0].Value
	bad.SetMode(testkit.ModeBadSignature)
	c2 := testkit.CookieClient(t)
	status, _ = get(t, c2, gw.URL+"/login")
	require.Equal(t, http.StatusForbidden, status)
	last := bad.LastAuthorize()
	logs := buf.String()
	require.NotEmpty(t, logs, "the gateway logged something")
	for name, secret := range map[string]string{"client secret": "s3cret-client-Value-42", "session cookie": cookie, "state": last.Get("state"),
		"nonce": last.Get("nonce"), "PKCE challenge": last.Get("code_challenge")} {
		require.NotEmpty(t, secret, name)
		require.NotContains(t, logs, secret, "%s in the logs", name)
	}
	require.NotContains(t, logs, "eyJ", "no JWT in the logs")
}

// TestRealIPFromTrustedProxy: X-Forwarded-For is believed only from a
// trusted proxy, and then only its rightmost address that is not a proxy.
func TestRealIPFromTrustedProxy(t *testing.T) {
	t.Parallel()
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}
	var got string
	h := web.RealIP(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { got = auth.ClientIP(r) }), trusted)
	for _, tc := range []struct{ peer, xff, want string }{
		{"203.0.113.9:5000", "198.51.100.1", "203.0.113.9"},                  // not a proxy: header ignored
		{"10.1.2.3:5000", "198.51.100.1", "198.51.100.1"},                    // proxy: client from the header
		{"10.1.2.3:5000", "6.6.6.6, 198.51.100.1, 10.9.9.9", "198.51.100.1"}, // a made-up left part is skipped
		{"10.1.2.3:5000", "", "10.1.2.3"},                                    // no header
		{"10.1.2.3:5000", "not-an-ip", "10.1.2.3"},                           // garbage
		{"[fd00::1]:5000", "2001:db8::7", "2001:db8::7"},                     // IPv6
		{"10.1.2.3:5000", "10.4.4.4, 10.5.5.5", "10.4.4.4"},                  // all proxies: the leftmost
	} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = tc.peer
		if tc.xff != "" {
			r.Header.Set("X-Forwarded-For", tc.xff)
		}
		h.ServeHTTP(httptest.NewRecorder(), r)
		require.Equal(t, tc.want, got, "%+v", tc)
	}
}

// TestHTTPSCookiesAndHSTS: served over TLS, the session cookie is Secure and
// every response carries HSTS (through the gateway's real handler).
func TestHTTPSCookiesAndHSTS(t *testing.T) {
	t.Parallel()
	gw := testkit.StartGateway(t, testkit.GatewayOptions{TLS: true})
	c := gw.TLSClient(t)
	status, body := testkit.Login(t, c, gw.URL, "teacher", testkit.DemoPassword, "")
	require.Equal(t, http.StatusOK, status, body)
	u, _ := url.Parse(gw.URL)
	require.Len(t, sessionCookies(c, u), 1)
	resp, err := noFollow(c).Get(gw.URL + "/sessions")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "max-age=31536000", resp.Header.Get("Strict-Transport-Security"))

	// The cookie as set: Secure, HttpOnly, SameSite.
	var setCookie string
	c2 := gw.TLSClient(t)
	inner := c2.Transport
	c2.Transport = roundTripFunc(func(r *http.Request) (*http.Response, error) {
		resp, err := inner.RoundTrip(r)
		if err == nil && r.URL.Path == "/auth/callback" {
			for _, v := range resp.Header.Values("Set-Cookie") {
				if strings.HasPrefix(v, auth.SessionCookie+"=") {
					setCookie = v
				}
			}
		}
		return resp, err
	})
	status, _ = testkit.Login(t, c2, gw.URL, "pupil", testkit.DemoPassword, "")
	require.Equal(t, http.StatusOK, status)
	for _, attr := range []string{"Secure", "HttpOnly", "SameSite=Lax"} {
		require.Contains(t, setCookie, attr)
	}
}
