package testkit

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/chaperone-edu/chaperone/internal/signin"
)

// APIClient is a signed-in person calling the gateway's JSON API.
type APIClient struct {
	T    testing.TB
	HTTP *http.Client
	Base string
	CSRF string
	Name string
}

// APILogin signs in as a demo user through the demo IdP (with the demo
// one-time code, so accounts with a second factor sign in with it) and
// fetches the CSRF token from /api/me.
func APILogin(t testing.TB, gw *Gateway, username string) *APIClient {
	t.Helper()
	return APILoginOTP(t, gw, username, DemoOTP)
}

// APILoginOTP signs in like APILogin with the given one-time code; "" is a
// sign-in with the password only (no second factor).
func APILoginOTP(t testing.TB, gw *Gateway, username, otp string) *APIClient {
	t.Helper()
	return apiLoginAt(t, gw.URL, username, otp)
}

// apiLoginAt signs in at the gateway at base (see APILoginOTP).
func apiLoginAt(t testing.TB, base, username, otp string) *APIClient {
	t.Helper()
	c := CookieClient(t)
	status, body := Login(t, c, base, username, DemoPassword, otp)
	if status != http.StatusOK {
		t.Fatalf("sign in as %s: status %d: %s", username, status, body)
	}
	a := &APIClient{T: t, HTTP: c, Base: base}
	st, me := a.Call(http.MethodGet, "/api/me", nil)
	if st != http.StatusOK {
		t.Fatalf("/api/me as %s: %d %v", username, st, me)
	}
	a.CSRF, _ = me["csrf_token"].(string)
	a.Name, _ = me["name"].(string)
	return a
}

// Call sends a request with the CSRF header and a JSON body (when body is
// not nil; a []byte or string is sent as is) and decodes a JSON object reply.
func (a *APIClient) Call(method, path string, body any) (int, map[string]any) {
	a.T.Helper()
	status, raw := a.Raw(method, path, body, a.CSRF)
	var out map[string]any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			a.T.Fatalf("%s %s: reply is not a JSON object (%d): %s", method, path, status, raw)
		}
	}
	return status, out
}

// Raw sends a request with the given CSRF token ("" for none) and returns
// the status and body.
func (a *APIClient) Raw(method, path string, body any, csrf string) (int, []byte) {
	a.T.Helper()
	status, raw, err := signin.Do(context.Background(), a.HTTP, a.Base, method, path, body, csrf)
	if err != nil {
		a.T.Fatalf("%v", err)
	}
	return status, raw
}
