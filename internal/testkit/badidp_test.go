package testkit

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"
)

const (
	testClientID     = "chaperone-test"
	testClientSecret = "s3cret"
)

// rpResult is what the toy relying party below saw at the end of a login.
type rpResult struct {
	stage  string // where it failed: "authorize", "exchange", "verify", "nonce"; "" when go-oidc and the nonce check accepted
	err    error
	token  *oidc.IDToken
	claims map[string]any
	query  url.Values // the callback's query
}

// toyRP is a minimal relying party built only from go-oidc and oauth2, with
// state, nonce and PKCE (S256), used to see which broken tokens go-oidc
// rejects on its own.
type toyRP struct {
	srv      *httptest.Server
	conf     oauth2.Config
	verifier *oidc.IDTokenVerifier

	mu   sync.Mutex
	last *rpResult
}

func newToyRP(t *testing.T, idp *BadIdP, authStyle oauth2.AuthStyle, extraAuthParams ...oauth2.AuthCodeOption) *toyRP {
	t.Helper()
	provider, err := oidc.NewProvider(t.Context(), idp.URL)
	require.NoError(t, err)
	rp := &toyRP{verifier: provider.Verifier(&oidc.Config{ClientID: testClientID})}
	ep := provider.Endpoint()
	ep.AuthStyle = authStyle
	rp.conf = oauth2.Config{
		ClientID:     testClientID,
		ClientSecret: testClientSecret,
		Endpoint:     ep,
		Scopes:       []string{oidc.ScopeOpenID, "email", "profile"},
	}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /login", func(w http.ResponseWriter, r *http.Request) {
		state, nonce, pkce := randToken(), randToken(), oauth2.GenerateVerifier()
		http.SetCookie(w, &http.Cookie{Name: "rp", Value: state + "." + nonce + "." + pkce, Path: "/", HttpOnly: true})
		opts := append([]oauth2.AuthCodeOption{oidc.Nonce(nonce), oauth2.S256ChallengeOption(pkce)}, extraAuthParams...)
		http.Redirect(w, r, rp.conf.AuthCodeURL(state, opts...), http.StatusFound)
	})
	mux.HandleFunc("GET /callback", func(w http.ResponseWriter, r *http.Request) {
		res := rp.callback(r)
		rp.mu.Lock()
		rp.last = res
		rp.mu.Unlock()
		io.WriteString(w, "done")
	})
	rp.srv = httptest.NewServer(mux)
	t.Cleanup(rp.srv.Close)
	rp.conf.RedirectURL = rp.srv.URL + "/callback"
	return rp
}

func (rp *toyRP) callback(r *http.Request) *rpResult {
	q := r.URL.Query()
	res := &rpResult{query: q}
	c, err := r.Cookie("rp")
	if err != nil {
		res.stage, res.err = "authorize", err
		return res
	}
	parts := strings.Split(c.Value, ".")
	state, nonce, pkce := parts[0], parts[1], parts[2]
	if q.Get("state") != state {
		res.stage, res.err = "authorize", errors.New("state mismatch")
		return res
	}
	if e := q.Get("error"); e != "" {
		res.stage, res.err = "authorize", fmt.Errorf("%s: %s", e, q.Get("error_description"))
		return res
	}
	tok, err := rp.conf.Exchange(r.Context(), q.Get("code"), oauth2.VerifierOption(pkce))
	if err != nil {
		res.stage, res.err = "exchange", err
		return res
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := rp.verifier.Verify(r.Context(), raw)
	if err != nil {
		res.stage, res.err = "verify", err
		return res
	}
	res.token = idt
	if err := idt.Claims(&res.claims); err != nil {
		res.stage, res.err = "verify", err
		return res
	}
	// go-oidc leaves the nonce to the caller.
	if idt.Nonce != nonce {
		res.stage, res.err = "nonce", fmt.Errorf("nonce %q, want %q", idt.Nonce, nonce)
	}
	return res
}

// login drives the whole flow with a cookie client, as a browser would.
func (rp *toyRP) login(t *testing.T) *rpResult {
	t.Helper()
	rp.mu.Lock()
	rp.last = nil
	rp.mu.Unlock()
	resp, err := CookieClient(t).Get(rp.srv.URL + "/login")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	rp.mu.Lock()
	defer rp.mu.Unlock()
	require.NotNil(t, rp.last, "callback not reached: %d %s", resp.StatusCode, body)
	return rp.last
}

// extraRPChecks are the ID token checks that go-oidc's Verify does NOT make,
// so the relying party has to make them itself (OpenID Core 3.1.3.7 and 2):
// sub present; iat present and not in the future; with several audiences,
// azp present; when azp is present, it is the client id. The nonce check is
// the caller's too (done in toyRP.callback).
func extraRPChecks(claims map[string]any, clientID string, now time.Time) error {
	if s, _ := claims["sub"].(string); s == "" {
		return errors.New("no sub")
	}
	iat, ok := claims["iat"].(float64)
	if !ok {
		return errors.New("no iat")
	}
	if time.Unix(int64(iat), 0).After(now.Add(2 * time.Minute)) {
		return errors.New("iat in the future")
	}
	var aud []string
	switch a := claims["aud"].(type) {
	case string:
		aud = []string{a}
	case []any:
		for _, v := range a {
			s, _ := v.(string)
			aud = append(aud, s)
		}
	}
	azp, hasAzp := claims["azp"].(string)
	if len(aud) > 1 && !hasAzp {
		return errors.New("several audiences and no azp")
	}
	if hasAzp && azp != clientID {
		return fmt.Errorf("azp %q is not this client", azp)
	}
	return nil
}

// TestBadIdPModes proves that ModeOK passes go-oidc and the nonce check, and
// finds out which broken modes go-oidc v3 rejects on its own.
//
// Findings (go-oidc v3.21.0, IDTokenVerifier.Verify with ClientID set):
//   - rejected by Verify: other-key, bad-signature, alg-none, hs256 (alg not in
//     the provider's id_token_signing_alg_values_supported), wrong-iss, no-iss,
//     wrong-aud, expired.
//   - NOT checked by Verify, the caller must: nonce (wrong-nonce, no-nonce);
//     sub present (no-sub); iat present and not in the future (no-iat,
//     future-iat); azp with several audiences (multi-aud-no-azp,
//     multi-aud-wrong-azp). extraRPChecks shows the checks.
//   - accepted, and rightly: ok, no-kid (Verify tries every published key),
//     multi-aud-right-azp.
//   - error-param never reaches the token endpoint: the callback must handle
//     ?error=.
func TestBadIdPModes(t *testing.T) {
	idp := NewBadIdP(t)
	idp.RegisterClient(testClientID, testClientSecret)
	rp := newToyRP(t, idp, oauth2.AuthStyleInHeader)

	cases := []struct {
		mode Mode
		// stage where the toy RP (go-oidc + nonce check) refuses, "" if it accepts
		stage string
		// whether the token is bad even though go-oidc and the nonce check accept it
		needsRPCheck bool
	}{
		{ModeOK, "", false},
		{ModeOtherKey, "verify", false},
		{ModeWrongAudience, "verify", false},
		{ModeWrongIssuer, "verify", false},
		{ModeMissingIssuer, "verify", false},
		{ModeExpired, "verify", false},
		{ModeWrongNonce, "nonce", false},
		{ModeNoNonce, "nonce", false},
		{ModeNoSub, "", true},
		{ModeNoIat, "", true},
		{ModeFutureIat, "", true},
		{ModeAlgNone, "verify", false},
		{ModeHS256, "verify", false},
		{ModeNoKid, "", false},
		{ModeMultiAudNoAzp, "", true},
		{ModeMultiAudWrongAzp, "", true},
		{ModeMultiAudRightAzp, "", false},
		{ModeErrorParam, "authorize", false},
		{ModeBadSignature, "verify", false},
	}
	for _, tc := range cases {
		t.Run(string(tc.mode), func(t *testing.T) {
			idp.SetMode(tc.mode)
			res := rp.login(t)
			if tc.stage != "" {
				require.Error(t, res.err)
				assert.Equal(t, tc.stage, res.stage, "refused at the wrong stage: %v", res.err)
				t.Logf("refused at %s: %v", res.stage, res.err)
				return
			}
			require.NoError(t, res.err, "stage %s", res.stage)
			err := extraRPChecks(res.claims, testClientID, time.Now())
			if tc.needsRPCheck {
				require.Error(t, err, "go-oidc accepted it and so did the extra checks")
				t.Logf("go-oidc accepts %s; the relying party must refuse it itself: %v", tc.mode, err)
			} else {
				require.NoError(t, err)
			}
		})
	}

	t.Run("error-param details", func(t *testing.T) {
		idp.SetMode(ModeErrorParam)
		res := rp.login(t)
		assert.Equal(t, "access_denied", res.query.Get("error"))
		assert.NotEmpty(t, res.query.Get("error_description"))
		assert.Empty(t, res.query.Get("code"))
		assert.Equal(t, idp.LastAuthorize().Get("state"), res.query.Get("state"))
	})
}

func TestBadIdPDefaultClaimsAndSetClaims(t *testing.T) {
	idp := NewBadIdP(t)
	idp.RegisterClient(testClientID, testClientSecret)
	rp := newToyRP(t, idp, oauth2.AuthStyleInParams) // client_secret_post

	res := rp.login(t)
	require.NoError(t, res.err)
	c := res.claims
	assert.Equal(t, idp.URL, c["iss"])
	assert.Equal(t, "badidp-user-1", c["sub"])
	assert.Equal(t, []any{testClientID}, c["aud"])
	assert.Equal(t, "alex.taylor@oakfield.example", c["email"])
	assert.Equal(t, true, c["email_verified"])
	assert.Equal(t, "Alex Taylor", c["name"])
	assert.Equal(t, "Alex", c["given_name"])
	assert.Equal(t, "Taylor", c["family_name"])
	assert.Equal(t, []any{"staff"}, c["groups"])
	assert.Equal(t, []any{"pwd"}, c["amr"])
	assert.Contains(t, c, "auth_time")
	assert.WithinDuration(t, time.Now().Add(5*time.Minute), res.token.Expiry, 10*time.Second)

	idp.SetClaims(map[string]any{"email_verified": false, "groups": nil, "hd": "oakfield.example", "amr": []string{"pwd", "mfa"}})
	res = rp.login(t)
	require.NoError(t, res.err)
	assert.Equal(t, false, res.claims["email_verified"])
	assert.NotContains(t, res.claims, "groups")
	assert.Equal(t, "oakfield.example", res.claims["hd"])
	assert.Equal(t, []any{"pwd", "mfa"}, res.claims["amr"])

	idp.SetClaims(nil)
	res = rp.login(t)
	require.NoError(t, res.err)
	assert.Equal(t, true, res.claims["email_verified"])
	assert.Equal(t, []any{"staff"}, res.claims["groups"])
}

func TestBadIdPLastAuthorize(t *testing.T) {
	idp := NewBadIdP(t)
	assert.Nil(t, idp.LastAuthorize())
	idp.RegisterClient(testClientID, testClientSecret)
	rp := newToyRP(t, idp, oauth2.AuthStyleInHeader,
		oauth2.SetAuthURLParam("max_age", "300"), oauth2.SetAuthURLParam("prompt", "login"))
	res := rp.login(t)
	require.NoError(t, res.err)
	q := idp.LastAuthorize()
	assert.Equal(t, testClientID, q.Get("client_id"))
	assert.Equal(t, rp.conf.RedirectURL, q.Get("redirect_uri"))
	assert.Equal(t, "S256", q.Get("code_challenge_method"))
	assert.NotEmpty(t, q.Get("code_challenge"))
	assert.NotEmpty(t, q.Get("nonce"))
	assert.Equal(t, res.query.Get("state"), q.Get("state"))
	assert.Equal(t, "300", q.Get("max_age"))
	assert.Equal(t, "login", q.Get("prompt"))
	assert.Equal(t, res.token.Nonce, q.Get("nonce"))
}

// authorizeCode runs the authorization request by hand and returns the code.
func authorizeCode(t *testing.T, idp *BadIdP, q url.Values) string {
	t.Helper()
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(idp.URL + "/authorize?" + q.Encode())
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusFound, resp.StatusCode)
	loc, err := url.Parse(resp.Header.Get("Location"))
	require.NoError(t, err)
	require.NotEmpty(t, loc.Query().Get("code"), "redirect %s", loc)
	return loc.Query().Get("code")
}

func postToken(t *testing.T, idp *BadIdP, form url.Values, basicUser, basicPass string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, idp.URL+"/token", strings.NewReader(form.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basicUser != "" {
		req.SetBasicAuth(url.QueryEscape(basicUser), url.QueryEscape(basicPass))
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var body map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	return resp.StatusCode, body
}

func TestBadIdPTokenEndpoint(t *testing.T) {
	idp := NewBadIdP(t)
	idp.RegisterClient(testClientID, testClientSecret)
	const redirect = "http://rp.example/callback"
	verifier := oauth2.GenerateVerifier()
	authz := func(challenge bool) string {
		q := url.Values{"client_id": {testClientID}, "redirect_uri": {redirect}, "response_type": {"code"},
			"scope": {"openid"}, "state": {"st"}, "nonce": {"n"}}
		if challenge {
			q.Set("code_challenge", oauth2.S256ChallengeFromVerifier(verifier))
			q.Set("code_challenge_method", "S256")
		}
		return authorizeCode(t, idp, q)
	}
	form := func(code, v string) url.Values {
		f := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirect}}
		if v != "" {
			f.Set("code_verifier", v)
		}
		return f
	}

	t.Run("basic auth, right verifier, then code reuse", func(t *testing.T) {
		code := authz(true)
		st, body := postToken(t, idp, form(code, verifier), testClientID, testClientSecret)
		require.Equal(t, http.StatusOK, st, "%v", body)
		assert.NotEmpty(t, body["access_token"])
		assert.NotEmpty(t, body["id_token"])
		assert.Equal(t, "Bearer", body["token_type"])
		st, body = postToken(t, idp, form(code, verifier), testClientID, testClientSecret)
		assert.Equal(t, http.StatusBadRequest, st)
		assert.Equal(t, "invalid_grant", body["error"])
	})
	t.Run("post auth", func(t *testing.T) {
		f := form(authz(true), verifier)
		f.Set("client_id", testClientID)
		f.Set("client_secret", testClientSecret)
		st, body := postToken(t, idp, f, "", "")
		assert.Equal(t, http.StatusOK, st, "%v", body)
	})
	t.Run("wrong verifier", func(t *testing.T) {
		st, body := postToken(t, idp, form(authz(true), oauth2.GenerateVerifier()), testClientID, testClientSecret)
		assert.Equal(t, http.StatusBadRequest, st)
		assert.Equal(t, "invalid_grant", body["error"])
	})
	t.Run("missing verifier", func(t *testing.T) {
		st, body := postToken(t, idp, form(authz(true), ""), testClientID, testClientSecret)
		assert.Equal(t, http.StatusBadRequest, st)
		assert.Equal(t, "invalid_grant", body["error"])
	})
	t.Run("no PKCE at all", func(t *testing.T) {
		st, body := postToken(t, idp, form(authz(false), ""), testClientID, testClientSecret)
		assert.Equal(t, http.StatusOK, st, "%v", body)
	})
	t.Run("wrong secret", func(t *testing.T) {
		st, body := postToken(t, idp, form(authz(true), verifier), testClientID, "nope")
		assert.Equal(t, http.StatusUnauthorized, st)
		assert.Equal(t, "invalid_client", body["error"])
	})
	t.Run("redirect_uri differs", func(t *testing.T) {
		f := form(authz(true), verifier)
		f.Set("redirect_uri", "http://evil.example/cb")
		st, body := postToken(t, idp, f, testClientID, testClientSecret)
		assert.Equal(t, http.StatusBadRequest, st)
		assert.Equal(t, "invalid_grant", body["error"])
	})
	t.Run("unknown client at authorize gets no redirect", func(t *testing.T) {
		c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		q := url.Values{"client_id": {"stranger"}, "redirect_uri": {redirect}, "response_type": {"code"}}
		resp, err := c.Get(idp.URL + "/authorize?" + q.Encode())
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	})
}

func jwtHeader(t *testing.T, raw string) map[string]any {
	t.Helper()
	h, err := base64.RawURLEncoding.DecodeString(strings.SplitN(raw, ".", 2)[0])
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(h, &m))
	return m
}

func jwksKids(t *testing.T, idp *BadIdP) []string {
	t.Helper()
	resp, err := http.Get(idp.URL + "/jwks")
	require.NoError(t, err)
	defer resp.Body.Close()
	var set struct {
		Keys []struct {
			Kid string `json:"kid"`
		} `json:"keys"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&set))
	var kids []string
	for _, k := range set.Keys {
		kids = append(kids, k.Kid)
	}
	return kids
}

// rawIDToken gets an ID token straight from the token endpoint.
func rawIDToken(t *testing.T, idp *BadIdP) string {
	t.Helper()
	const redirect = "http://rp.example/callback"
	code := authorizeCode(t, idp, url.Values{"client_id": {testClientID}, "redirect_uri": {redirect},
		"response_type": {"code"}, "nonce": {"n"}})
	st, body := postToken(t, idp, url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"redirect_uri": {redirect}}, testClientID, testClientSecret)
	require.Equal(t, http.StatusOK, st, "%v", body)
	return body["id_token"].(string)
}

func TestBadIdPKeys(t *testing.T) {
	ctx := context.Background()
	idp := NewBadIdP(t)
	idp.RegisterClient(testClientID, testClientSecret)
	provider, err := oidc.NewProvider(ctx, idp.URL)
	require.NoError(t, err)
	v := provider.Verifier(&oidc.Config{ClientID: testClientID})

	first := rawIDToken(t, idp)
	assert.Equal(t, "k1", jwtHeader(t, first)["kid"])
	assert.Equal(t, "RS256", jwtHeader(t, first)["alg"])
	_, err = v.Verify(ctx, first)
	require.NoError(t, err)

	t.Run("rotate", func(t *testing.T) {
		idp.RotateKey()
		assert.Equal(t, []string{"k1", "k2"}, jwksKids(t, idp))
		second := rawIDToken(t, idp)
		assert.Equal(t, "k2", jwtHeader(t, second)["kid"])
		_, err := v.Verify(ctx, second) // unknown kid: go-oidc refetches the JWKS
		require.NoError(t, err)
		_, err = v.Verify(ctx, first) // the old key is still published
		require.NoError(t, err)
	})

	t.Run("no kid, several keys", func(t *testing.T) {
		idp.SetMode(ModeNoKid)
		defer idp.SetMode(ModeOK)
		tok := rawIDToken(t, idp)
		assert.NotContains(t, jwtHeader(t, tok), "kid")
		_, err := v.Verify(ctx, tok)
		require.NoError(t, err, "go-oidc tries every key when kid is absent")
	})

	t.Run("single key without kid", func(t *testing.T) {
		idp.SetSingleKeyNoKidInJWKS(true)
		defer idp.SetSingleKeyNoKidInJWKS(false)
		assert.Equal(t, []string{""}, jwksKids(t, idp))
		tok := rawIDToken(t, idp)
		assert.NotContains(t, jwtHeader(t, tok), "kid")
		// A fresh provider, so that no cached JWKS with kids helps.
		p, err := oidc.NewProvider(ctx, idp.URL)
		require.NoError(t, err)
		_, err = p.Verifier(&oidc.Config{ClientID: testClientID}).Verify(ctx, tok)
		require.NoError(t, err)
	})

	t.Run("headers of the broken algorithms", func(t *testing.T) {
		defer idp.SetMode(ModeOK)
		idp.SetMode(ModeAlgNone)
		tok := rawIDToken(t, idp)
		assert.Equal(t, "none", jwtHeader(t, tok)["alg"])
		assert.True(t, strings.HasSuffix(tok, "."))
		idp.SetMode(ModeHS256)
		assert.Equal(t, "HS256", jwtHeader(t, rawIDToken(t, idp))["alg"])
		idp.SetMode(ModeOtherKey)
		tok = rawIDToken(t, idp)
		assert.True(t, slices.Contains(jwksKids(t, idp), jwtHeader(t, tok)["kid"].(string)))
	})
}

func TestBadIdPUserinfo(t *testing.T) {
	idp := NewBadIdP(t)
	idp.RegisterClient(testClientID, testClientSecret)
	provider, err := oidc.NewProvider(t.Context(), idp.URL)
	require.NoError(t, err)
	const redirect = "http://rp.example/callback"
	code := authorizeCode(t, idp, url.Values{"client_id": {testClientID}, "redirect_uri": {redirect}, "response_type": {"code"}})
	st, body := postToken(t, idp, url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirect}}, testClientID, testClientSecret)
	require.Equal(t, http.StatusOK, st)
	ui, err := provider.UserInfo(t.Context(), oauth2.StaticTokenSource(&oauth2.Token{AccessToken: body["access_token"].(string), TokenType: "Bearer"}))
	require.NoError(t, err)
	assert.Equal(t, "badidp-user-1", ui.Subject)
	assert.Equal(t, "alex.taylor@oakfield.example", ui.Email)
	assert.True(t, ui.EmailVerified)
}
