package web_test

import (
	"context"
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/chaperone-edu/chaperone/auth"
	"github.com/chaperone-edu/chaperone/internal/testkit"
	"github.com/chaperone-edu/chaperone/store"
)

// TestSignInDemoAccounts signs in as every seeded demo account through the
// real demo IdP and checks the admitted role or the refusal, and the audit row.
func TestSignInDemoAccounts(t *testing.T) {
	t.Parallel()
	gw := testkit.StartGateway(t, testkit.GatewayOptions{})
	cases := []struct {
		user, otp, name, label, refusal string
	}{
		{user: "head", otp: testkit.DemoOTP, name: "Margaret Okafor", label: "headteacher"},
		{user: "slt", otp: testkit.DemoOTP, name: "David Chen", label: "senior leader"},
		{user: "teacher", name: "Sarah Whitfield", label: "teacher"},
		{user: "teacher2", name: "James Patel", label: "teacher"},
		{user: "dsl", otp: testkit.DemoOTP, name: "Helen Murray", label: "designated safeguarding lead"},
		{user: "itadmin", otp: testkit.DemoOTP, name: "Tom Briggs", label: "IT admin"},
		// Without the second factor: the sensitive role is withheld.
		{user: "head", name: "Margaret Okafor", label: "teacher"},
		{user: "slt", name: "David Chen", label: "teacher"}, // approving for the head needs what the head needs
		{user: "dsl", name: "Helen Murray", label: "teacher"},
		{user: "itadmin", refusal: auth.RefuseMFARequired},
		{user: "year8lead", name: "Priya Sharma", label: "teacher"},
		{user: "year9lead", name: "Daniel Hughes", label: "teacher"},
		{user: "pupil", name: "Amelia Jones", label: "pupil"},
		{user: "pupil2", name: "Zoë Lefèvre", label: "pupil"},
		{user: "pupil3", name: "Oliver Smith-Baker", label: "pupil"},
		{user: "pupil4", name: "Noah O'Brien", label: "pupil"},
		{user: "oneword", refusal: auth.RefuseNameOneWord},
		{user: "placeholder", refusal: auth.RefuseNameDigits},
		{user: "personal", refusal: auth.RefuseDomain},
		{user: "unverified", refusal: auth.RefuseEmailUnverified},
		{user: "nogroup", refusal: auth.RefuseNoRole},
	}
	for _, tc := range cases {
		name := tc.user
		if tc.otp == "" && (tc.user == "head" || tc.user == "slt" || tc.user == "dsl" || tc.user == "itadmin") {
			name += "-without-mfa"
		}
		t.Run(name, func(t *testing.T) {
			c := testkit.CookieClient(t)
			accepted := func() int {
				rows, err := gw.Store.ListAudit(context.Background(), store.AuditFilter{Action: "login.accepted"})
				require.NoError(t, err)
				n := 0
				for _, r := range rows {
					if r.ActorName == tc.name {
						n++
					}
				}
				return n
			}
			before := accepted()
			status, body := testkit.Login(t, c, gw.URL, tc.user, testkit.DemoPassword, tc.otp)
			u, _ := url.Parse(gw.URL)
			if tc.refusal != "" {
				require.Equal(t, http.StatusForbidden, status, body)
				require.Contains(t, body, "You cannot sign in")
				require.Contains(t, body, "<code>"+tc.refusal+"</code>")
				require.Contains(t, body, "IT team")
				require.Empty(t, sessionCookies(c, u), "a refused sign-in sets no session cookie")
				rows, err := gw.Store.ListAudit(context.Background(), store.AuditFilter{Action: "login.refused"})
				require.NoError(t, err)
				require.True(t, hasDetail(rows, "reason", tc.refusal), "audit row with reason %s", tc.refusal)
				return
			}
			require.Equal(t, http.StatusOK, status, body)
			require.Contains(t, html.UnescapeString(body), "Signed in as <strong>"+tc.name+"</strong> ("+tc.label+")")
			require.Len(t, sessionCookies(c, u), 1)
			require.Equal(t, before+1, accepted(), "one login.accepted audit row for %s", tc.name)
			if tc.otp == "" && name != tc.user {
				require.Contains(t, body, `id="mfa-needed"`, "the page says why a role is missing")
			} else {
				require.NotContains(t, body, `id="mfa-needed"`)
			}
		})
	}
	require.NoError(t, gw.Store.VerifyAudit(context.Background()))
}

func sessionCookies(c *http.Client, u *url.URL) []*http.Cookie {
	var out []*http.Cookie
	for _, ck := range c.Jar.Cookies(u) {
		if ck.Name == auth.SessionCookie {
			out = append(out, ck)
		}
	}
	return out
}

func hasDetail(rows []store.AuditRecord, key, want string) bool {
	for _, r := range rows {
		var d map[string]any
		if json.Unmarshal([]byte(r.Detail), &d) == nil && d[key] == want {
			return true
		}
	}
	return false
}

func get(t *testing.T, c *http.Client, u string) (int, string) {
	t.Helper()
	resp, err := c.Get(u)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

// TestLogoutNeedsCSRF: signing out is a state change, so it needs the token.
func TestLogoutNeedsCSRF(t *testing.T) {
	t.Parallel()
	gw := testkit.StartGateway(t, testkit.GatewayOptions{})
	c := testkit.CookieClient(t)
	status, body := testkit.Login(t, c, gw.URL, "teacher", testkit.DemoPassword, "")
	require.Equal(t, http.StatusOK, status)
	tok := testkit.CSRFToken(body)
	require.NotEmpty(t, tok)

	resp, err := c.PostForm(gw.URL+"/logout", url.Values{})
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
	resp, err = c.PostForm(gw.URL+"/logout", url.Values{"csrf_token": {"forged" + tok}})
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
	_, body = get(t, c, gw.URL+"/")
	require.Contains(t, body, "Signed in as", "a refused sign-out leaves the session")

	resp, err = c.PostForm(gw.URL+"/logout", url.Values{"csrf_token": {tok}})
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	_, body = get(t, c, gw.URL+"/")
	require.NotContains(t, body, "Signed in as")
	require.Contains(t, body, "Sign in with your school account")
}

// TestTamperedSessionCookie: a cookie that names no session is no session.
func TestTamperedSessionCookie(t *testing.T) {
	t.Parallel()
	gw := testkit.StartGateway(t, testkit.GatewayOptions{})
	c := testkit.CookieClient(t)
	status, _ := testkit.Login(t, c, gw.URL, "teacher", testkit.DemoPassword, "")
	require.Equal(t, http.StatusOK, status)
	u, _ := url.Parse(gw.URL)
	ck := sessionCookies(c, u)[0]
	flipped := []byte(ck.Value)
	flipped[3] ^= 1
	c2 := testkit.CookieClient(t)
	c2.Jar.SetCookies(u, []*http.Cookie{{Name: auth.SessionCookie, Value: string(flipped), Path: "/"}})
	_, body := get(t, c2, gw.URL+"/")
	require.NotContains(t, body, "Signed in as")
	require.Empty(t, sessionCookies(c2, u), "the bad cookie is cleared")
	resp, err := c2.PostForm(gw.URL+"/logout", url.Values{"csrf_token": {"x"}})
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
}

func TestHealthAndReady(t *testing.T) {
	t.Parallel()
	gw := testkit.StartGateway(t, testkit.GatewayOptions{})
	c := testkit.CookieClient(t)
	status, body := get(t, c, gw.URL+"/healthz")
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, "ok", strings.TrimSpace(body))
	status, body = get(t, c, gw.URL+"/readyz")
	require.Equal(t, http.StatusOK, status, body)
	require.Contains(t, body, `"ready":true`)
	status, _ = get(t, c, gw.URL+"/no-such-page")
	require.Equal(t, http.StatusNotFound, status)
}
