package web_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/chaperone-edu/chaperone/auth"
	"github.com/chaperone-edu/chaperone/internal/testkit"
	"github.com/chaperone-edu/chaperone/store"
)

func badGateway(t *testing.T, now func() time.Time) (*testkit.BadIdP, *testkit.Gateway) {
	bad := testkit.NewBadIdP(t)
	bad.RegisterClient("chaperone", "s3cret")
	gw := testkit.StartGateway(t, testkit.GatewayOptions{Issuer: bad.URL, ClientID: "chaperone", ClientSecret: "s3cret", AuthNow: now})
	return bad, gw
}

// assertRefused checks a refusal page, no session, and a login.refused audit
// row with the reason.
func assertRefused(t *testing.T, gw *testkit.Gateway, c *http.Client, status int, body, reason string) {
	t.Helper()
	require.Equal(t, http.StatusForbidden, status, body)
	require.Contains(t, body, "You cannot sign in")
	require.Contains(t, body, "<code>"+reason+"</code>")
	u, _ := url.Parse(gw.URL)
	require.Empty(t, sessionCookies(c, u), "no session cookie")
	_, home := get(t, c, gw.URL+"/")
	require.NotContains(t, home, "Signed in as")
	rows, err := gw.Store.ListAudit(context.Background(), store.AuditFilter{Action: "login.refused"})
	require.NoError(t, err)
	require.True(t, hasDetail(rows, "reason", reason), "audit row with reason %s", reason)
}

// TestBadTokensRefused runs the relying party against a provider that
// misbehaves one way per case.
func TestBadTokensRefused(t *testing.T) {
	t.Parallel()
	cases := []struct {
		mode   testkit.Mode
		reason string // "" = accepted
	}{
		{testkit.ModeOK, ""},
		{testkit.ModeNoKid, ""},
		{testkit.ModeMultiAudRightAzp, ""},
		{testkit.ModeOtherKey, auth.RefuseToken},
		{testkit.ModeBadSignature, auth.RefuseToken},
		{testkit.ModeWrongAudience, auth.RefuseToken},
		{testkit.ModeWrongIssuer, auth.RefuseToken},
		{testkit.ModeMissingIssuer, auth.RefuseToken},
		{testkit.ModeExpired, auth.RefuseToken},
		{testkit.ModeAlgNone, auth.RefuseToken},
		{testkit.ModeHS256, auth.RefuseToken},
		{testkit.ModeWrongNonce, auth.RefuseNonce},
		{testkit.ModeNoNonce, auth.RefuseNonce},
		{testkit.ModeNoSub, auth.RefuseNoSubject},
		{testkit.ModeNoIat, auth.RefuseIssuedAt},
		{testkit.ModeFutureIat, auth.RefuseIssuedAt},
		{testkit.ModeMultiAudNoAzp, auth.RefuseAudience},
		{testkit.ModeMultiAudWrongAzp, auth.RefuseAudience},
		{testkit.ModeErrorParam, auth.RefuseIdPError},
	}
	for _, tc := range cases {
		t.Run(string(tc.mode), func(t *testing.T) {
			t.Parallel()
			bad, gw := badGateway(t, nil)
			bad.SetMode(tc.mode)
			c := testkit.CookieClient(t)
			status, body := get(t, c, gw.URL+"/login")
			if tc.reason == "" {
				require.Equal(t, http.StatusOK, status, body)
				require.Contains(t, body, "Signed in as <strong>Alex Taylor</strong> (teacher)")
				return
			}
			assertRefused(t, gw, c, status, body, tc.reason)
		})
	}
}

// TestKeyRotation: the provider rotates its key; sign-in still works.
func TestKeyRotation(t *testing.T) {
	t.Parallel()
	bad, gw := badGateway(t, nil)
	status, _ := get(t, testkit.CookieClient(t), gw.URL+"/login")
	require.Equal(t, http.StatusOK, status)
	bad.RotateKey()
	status, body := get(t, testkit.CookieClient(t), gw.URL+"/login")
	require.Equal(t, http.StatusOK, status, body)
	require.Contains(t, body, "Signed in as")
}

// callbackURL starts a sign-in with c and returns the callback URL the
// provider redirected to, without following it.
func callbackURL(t *testing.T, c *http.Client, gw *testkit.Gateway) string {
	t.Helper()
	var cb string
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if req.URL.Path == "/auth/callback" {
			cb = req.URL.String()
			return http.ErrUseLastResponse
		}
		return nil
	}
	resp, err := c.Get(gw.URL + "/login")
	require.NoError(t, err)
	resp.Body.Close()
	c.CheckRedirect = nil
	require.NotEmpty(t, cb)
	return cb
}

func TestStateChecks(t *testing.T) {
	t.Parallel()
	t.Run("replayed state", func(t *testing.T) {
		t.Parallel()
		_, gw := badGateway(t, nil)
		c := testkit.CookieClient(t)
		cb := callbackURL(t, c, gw)
		status, body := get(t, c, cb)
		require.Equal(t, http.StatusOK, status, body)
		// Same browser, new sign-in cookie so only the state is replayed.
		c2 := testkit.CookieClient(t)
		cb2 := callbackURL(t, c2, gw)
		u, _ := url.Parse(cb2)
		old, _ := url.Parse(cb)
		q := u.Query()
		q.Set("state", old.Query().Get("state"))
		u.RawQuery = q.Encode()
		status, body = get(t, c2, u.String())
		assertRefused(t, gw, c2, status, body, auth.RefuseState)
		// And the state consumed by the first callback cannot be used again
		// even with its own cookie.
		c3 := testkit.CookieClient(t)
		gu, _ := url.Parse(gw.URL)
		c3.Jar.SetCookies(gu, []*http.Cookie{{Name: "chaperone_login", Value: old.Query().Get("state"), Path: "/auth/"}})
		status, body = get(t, c3, cb)
		assertRefused(t, gw, c3, status, body, auth.RefuseState)
	})
	t.Run("missing state", func(t *testing.T) {
		t.Parallel()
		_, gw := badGateway(t, nil)
		c := testkit.CookieClient(t)
		cb := callbackURL(t, c, gw)
		u, _ := url.Parse(cb)
		q := u.Query()
		q.Del("state")
		u.RawQuery = q.Encode()
		status, body := get(t, c, u.String())
		assertRefused(t, gw, c, status, body, auth.RefuseState)
	})
	t.Run("state from another browser", func(t *testing.T) {
		t.Parallel()
		_, gw := badGateway(t, nil)
		attacker := testkit.CookieClient(t)
		cb := callbackURL(t, attacker, gw) // the attacker's own, unused callback
		victim := testkit.CookieClient(t)
		_ = callbackURL(t, victim, gw) // the victim has a sign-in of their own going
		status, body := get(t, victim, cb)
		assertRefused(t, gw, victim, status, body, auth.RefuseState)
	})
	t.Run("expired sign-in", func(t *testing.T) {
		t.Parallel()
		clock := testkit.NewClock(time.Now())
		_, gw := badGateway(t, clock.Now)
		c := testkit.CookieClient(t)
		cb := callbackURL(t, c, gw)
		clock.Advance(11 * time.Minute)
		status, body := get(t, c, cb)
		assertRefused(t, gw, c, status, body, auth.RefuseState)
	})
	t.Run("no code", func(t *testing.T) {
		t.Parallel()
		_, gw := badGateway(t, nil)
		c := testkit.CookieClient(t)
		cb := callbackURL(t, c, gw)
		u, _ := url.Parse(cb)
		q := u.Query()
		q.Set("code", "made-up")
		u.RawQuery = q.Encode()
		status, body := get(t, c, u.String())
		assertRefused(t, gw, c, status, body, auth.RefuseExchange)
	})
}

// TestSessionIdleExpiry: a session unused for longer than the idle limit is gone.
func TestSessionIdleExpiry(t *testing.T) {
	t.Parallel()
	clock := testkit.NewClock(time.Now())
	_, gw := badGateway(t, clock.Now)
	c := testkit.CookieClient(t)
	status, _ := get(t, c, gw.URL+"/login")
	require.Equal(t, http.StatusOK, status)
	clock.Advance(7 * time.Hour)
	_, body := get(t, c, gw.URL+"/")
	require.Contains(t, body, "Signed in as")
	clock.Advance(7 * time.Hour) // 7 h since last use: still inside 8 h idle, but past 12 h absolute
	_, body = get(t, c, gw.URL+"/")
	require.NotContains(t, body, "Signed in as")
	_, err := gw.Store.GetWebSession(context.Background(), "nope", clock.Now(), time.Hour)
	require.True(t, errors.Is(err, store.ErrNotFound))
}
