package demoidp

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"
)

const (
	publicID, confID, confSecret = "chaperone-public", "chaperone-web", "s3cret-for-tests"
)

type env struct {
	idp      *Provider
	srv, cb  *httptest.Server
	ctx      context.Context
	provider *oidc.Provider
	redirect string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	cb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "callback reached") }))
	t.Cleanup(cb.Close)
	srv := httptest.NewUnstartedServer(nil)
	issuer := "http://" + srv.Listener.Addr().String()
	redirect := cb.URL + "/auth/callback"
	idp, err := New(t.Context(), Config{
		Issuer: issuer,
		Clients: []Client{
			{ID: publicID, RedirectURIs: []string{redirect}, PostLogoutRedirectURIs: []string{cb.URL + "/bye"}},
			{ID: confID, Secret: confSecret, RedirectURIs: []string{redirect}},
		},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	require.NoError(t, err)
	srv.Config.Handler = idp.Handler()
	srv.Start()
	t.Cleanup(srv.Close)
	ctx := oidc.ClientContext(t.Context(), srv.Client())
	provider, err := oidc.NewProvider(ctx, issuer)
	require.NoError(t, err)
	return &env{idp: idp, srv: srv, cb: cb, ctx: ctx, provider: provider, redirect: redirect}
}

func (e *env) oauth(id, secret string, style oauth2.AuthStyle) *oauth2.Config {
	ep := e.provider.Endpoint()
	ep.AuthStyle = style
	return &oauth2.Config{ClientID: id, ClientSecret: secret, Endpoint: ep, RedirectURL: e.redirect,
		Scopes: []string{oidc.ScopeOpenID, "profile", "email"}}
}

func browser(t *testing.T) *http.Client {
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	return &http.Client{Jar: jar, Timeout: 10 * time.Second}
}

func readBody(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(b)
}

// startLogin follows authorize to the login page and returns the auth request id.
func (e *env) startLogin(t *testing.T, hc *http.Client, authURL string) string {
	t.Helper()
	resp, err := hc.Get(authURL)
	require.NoError(t, err)
	body := readBody(t, resp)
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	require.Equal(t, loginPath, resp.Request.URL.Path)
	require.Contains(t, body, "<title>Oakfield demo school sign-in</title>")
	id := resp.Request.URL.Query().Get("authRequestID")
	require.NotEmpty(t, id)
	return id
}

func (e *env) postLogin(t *testing.T, hc *http.Client, id, user, pass, otp string) (*http.Response, string) {
	t.Helper()
	resp, err := hc.PostForm(e.srv.URL+loginPath, url.Values{"id": {id}, "username": {user}, "password": {pass}, "otp": {otp}})
	require.NoError(t, err)
	return resp, readBody(t, resp)
}

type flow struct {
	verifier, nonce, state string
	conf                   *oauth2.Config
}

// signIn runs authorize + login and returns the code delivered to the client.
func (e *env) signIn(t *testing.T, conf *oauth2.Config, pkce bool, user, otp string) (string, flow) {
	t.Helper()
	f := flow{verifier: oauth2.GenerateVerifier(), nonce: "n-" + oauth2.GenerateVerifier()[:12], state: "st-" + user, conf: conf}
	opts := []oauth2.AuthCodeOption{oidc.Nonce(f.nonce)}
	if pkce {
		opts = append(opts, oauth2.S256ChallengeOption(f.verifier))
	}
	hc := browser(t)
	id := e.startLogin(t, hc, conf.AuthCodeURL(f.state, opts...))
	resp, body := e.postLogin(t, hc, id, user, DefaultPassword, otp)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "callback reached", body)
	q := resp.Request.URL.Query()
	require.Equal(t, e.redirect, strings.Split(resp.Request.URL.String(), "?")[0])
	require.Equal(t, f.state, q.Get("state"))
	require.NotEmpty(t, q.Get("code"), q.Encode())
	return q.Get("code"), f
}

type claims struct {
	Sub           string   `json:"sub"`
	Email         string   `json:"email"`
	EmailVerified *bool    `json:"email_verified"`
	Name          string   `json:"name"`
	GivenName     string   `json:"given_name"`
	FamilyName    string   `json:"family_name"`
	Groups        []string `json:"groups"`
	AuthTime      int64    `json:"auth_time"`
	AMR           []string `json:"amr"`
	Nonce         string   `json:"nonce"`
}

func (e *env) exchange(t *testing.T, code string, f flow, pkce bool) (*oauth2.Token, *oidc.IDToken, claims, map[string]any) {
	t.Helper()
	var opts []oauth2.AuthCodeOption
	if pkce {
		opts = append(opts, oauth2.VerifierOption(f.verifier))
	}
	tok, err := f.conf.Exchange(e.ctx, code, opts...)
	require.NoError(t, err)
	raw, ok := tok.Extra("id_token").(string)
	require.True(t, ok, "id_token in token response")
	require.Empty(t, tok.RefreshToken)
	idt, err := e.provider.Verifier(&oidc.Config{ClientID: f.conf.ClientID}).Verify(e.ctx, raw)
	require.NoError(t, err)
	require.Equal(t, f.nonce, idt.Nonce)
	var c claims
	require.NoError(t, idt.Claims(&c))
	var all map[string]any
	require.NoError(t, idt.Claims(&all))
	return tok, idt, c, all
}

func (e *env) login(t *testing.T, user, otp string) (claims, map[string]any) {
	t.Helper()
	code, f := e.signIn(t, e.oauth(publicID, "", oauth2.AuthStyleInParams), true, user, otp)
	_, _, c, all := e.exchange(t, code, f, true)
	return c, all
}

func TestDiscovery(t *testing.T) {
	e := newEnv(t)
	resp, err := http.Get(e.srv.URL + "/.well-known/openid-configuration")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var d struct {
		Issuer            string   `json:"issuer"`
		Authorization     string   `json:"authorization_endpoint"`
		Token             string   `json:"token_endpoint"`
		Userinfo          string   `json:"userinfo_endpoint"`
		EndSession        string   `json:"end_session_endpoint"`
		JWKS              string   `json:"jwks_uri"`
		Scopes            []string `json:"scopes_supported"`
		ResponseTypes     []string `json:"response_types_supported"`
		GrantTypes        []string `json:"grant_types_supported"`
		SigningAlgs       []string `json:"id_token_signing_alg_values_supported"`
		TokenAuthMethods  []string `json:"token_endpoint_auth_methods_supported"`
		Claims            []string `json:"claims_supported"`
		CodeChallengeMeth []string `json:"code_challenge_methods_supported"`
	}
	require.NoError(t, json.Unmarshal([]byte(readBody(t, resp)), &d))
	iss := e.srv.URL
	require.Equal(t, iss, d.Issuer)
	require.Equal(t, iss+"/authorize", d.Authorization)
	require.Equal(t, iss+"/oauth/token", d.Token)
	require.Equal(t, iss+"/userinfo", d.Userinfo)
	require.Equal(t, iss+"/end_session", d.EndSession)
	require.Equal(t, iss+"/keys", d.JWKS)
	require.Equal(t, []string{"RS256"}, d.SigningAlgs)
	require.Equal(t, []string{"S256"}, d.CodeChallengeMeth)
	require.Subset(t, d.TokenAuthMethods, []string{"none", "client_secret_basic", "client_secret_post"})
	require.Contains(t, d.GrantTypes, "authorization_code")
	require.NotContains(t, d.GrantTypes, "refresh_token")
	require.Contains(t, d.ResponseTypes, "code")
	require.Subset(t, d.Scopes, []string{"openid", "profile", "email", "groups"})
	require.NotContains(t, d.Scopes, "offline_access")
	require.Subset(t, d.Claims, []string{"sub", "email", "email_verified", "name", "groups", "amr", "auth_time", "nonce"})

	resp, err = http.Get(d.JWKS)
	require.NoError(t, err)
	var jwks struct {
		Keys []struct{ Kid, Alg, Use, Kty, D string }
	}
	require.NoError(t, json.Unmarshal([]byte(readBody(t, resp)), &jwks))
	require.Len(t, jwks.Keys, 1)
	k := jwks.Keys[0]
	require.NotEmpty(t, k.Kid)
	require.Equal(t, []string{"RS256", "sig", "RSA", ""}, []string{k.Alg, k.Use, k.Kty, k.D}) // public only
}

func TestCodeFlowPKCETeacher(t *testing.T) {
	e := newEnv(t)
	before := time.Now().Add(-time.Second).Unix()
	code, f := e.signIn(t, e.oauth(publicID, "", oauth2.AuthStyleInParams), true, "teacher", "")
	tok, idt, c, _ := e.exchange(t, code, f, true)
	require.Equal(t, e.srv.URL, idt.Issuer)
	require.Equal(t, []string{publicID}, idt.Audience)
	require.Equal(t, "3f1c9a52-tch-0003", c.Sub)
	require.Equal(t, "Sarah Whitfield", c.Name)
	require.Equal(t, "Sarah", c.GivenName)
	require.Equal(t, "Whitfield", c.FamilyName)
	require.Equal(t, "s.whitfield@oakfield.example", c.Email)
	require.NotNil(t, c.EmailVerified)
	require.True(t, *c.EmailVerified)
	require.Equal(t, []string{"staff"}, c.Groups)
	require.Equal(t, []string{"pwd"}, c.AMR)
	require.Equal(t, f.nonce, c.Nonce)
	var dump map[string]any
	require.NoError(t, idt.Claims(&dump))
	t.Logf("ID token claims: %v", dump)
	require.GreaterOrEqual(t, c.AuthTime, before)
	require.LessOrEqual(t, c.AuthTime, time.Now().Unix())

	// userinfo answers the same person
	ui, err := e.provider.UserInfo(e.ctx, oauth2.StaticTokenSource(tok))
	require.NoError(t, err)
	require.Equal(t, c.Sub, ui.Subject)
	require.Equal(t, c.Email, ui.Email)
	var uc claims
	require.NoError(t, ui.Claims(&uc))
	require.Equal(t, "Sarah Whitfield", uc.Name)
	require.Equal(t, []string{"staff"}, uc.Groups)
}

func TestConfidentialClient(t *testing.T) {
	e := newEnv(t)
	for name, style := range map[string]oauth2.AuthStyle{"basic": oauth2.AuthStyleInHeader, "post": oauth2.AuthStyleInParams} {
		t.Run(name, func(t *testing.T) {
			code, f := e.signIn(t, e.oauth(confID, confSecret, style), false, "teacher2", "")
			_, idt, c, _ := e.exchange(t, code, f, false)
			require.Equal(t, []string{confID}, idt.Audience)
			require.Equal(t, "James Patel", c.Name)
		})
	}
	t.Run("wrong secret", func(t *testing.T) {
		code, f := e.signIn(t, e.oauth(confID, "wrong", oauth2.AuthStyleInHeader), false, "teacher2", "")
		_, err := f.conf.Exchange(e.ctx, code)
		var re *oauth2.RetrieveError
		require.ErrorAs(t, err, &re)
		require.Equal(t, "invalid_client", re.ErrorCode)
	})
}

func TestWrongPasswordAndUnknownUser(t *testing.T) {
	e := newEnv(t)
	conf := e.oauth(publicID, "", oauth2.AuthStyleInParams)
	hc := browser(t)
	id := e.startLogin(t, hc, conf.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
	for _, try := range [][2]string{{"teacher", "wrong"}, {"nobody", DefaultPassword}, {"", ""}} {
		resp, body := e.postLogin(t, hc, id, try[0], try[1], "")
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Contains(t, body, "Wrong username or password.")
		require.Contains(t, body, `name="id" value="`+id+`"`)
	}
	// the same request still signs in afterwards
	resp, body := e.postLogin(t, hc, id, "Teacher", DefaultPassword, "")
	require.Equal(t, "callback reached", body)
	require.NotEmpty(t, resp.Request.URL.Query().Get("code"))
	// and cannot be used a second time
	resp, body = e.postLogin(t, hc, id, "teacher", DefaultPassword, "")
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	require.Contains(t, body, "expired")
}

// TestPasswordGuessingLimited: the 11th wrong password or code within a
// minute from one address gets 429 and is not even checked (the right
// password is refused too until the minute is over).
func TestPasswordGuessingLimited(t *testing.T) {
	e := newEnv(t)
	conf := e.oauth(publicID, "", oauth2.AuthStyleInParams)
	hc := browser(t)
	id := e.startLogin(t, hc, conf.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
	for i := 0; i < maxFailures; i++ {
		user, pass, otp := "teacher", "guess"+strconv.Itoa(i), ""
		if i%2 == 1 {
			user, pass, otp = "dsl", DefaultPassword, "000000" // a wrong code counts too
		}
		resp, _ := e.postLogin(t, hc, id, user, pass, otp)
		require.Equal(t, http.StatusOK, resp.StatusCode, "attempt %d", i+1)
	}
	resp, body := e.postLogin(t, hc, id, "teacher", DefaultPassword, "")
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
	require.Equal(t, "60", resp.Header.Get("Retry-After"))
	require.Contains(t, body, "Too many wrong attempts")
}

func TestLoginFormFields(t *testing.T) {
	e := newEnv(t)
	hc := browser(t)
	resp, err := hc.Get(e.oauth(publicID, "", 0).AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
	require.NoError(t, err)
	body := readBody(t, resp)
	for _, want := range []string{
		`<form method="post" action="/login/username">`, `name="id"`,
		`<label for="username">Username</label>`, `id="username" name="username"`,
		`<label for="password">Password</label>`, `name="password" type="password"`,
		`<label for="otp">One-time code (demo: 123456)</label>`, `name="otp"`, "Optional",
	} {
		require.Contains(t, body, want)
	}
	resp, err = hc.Get(e.srv.URL + loginPath + "?authRequestID=nope")
	require.NoError(t, err)
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	readBody(t, resp)
}

func TestUnicodeName(t *testing.T) {
	e := newEnv(t)
	c, _ := e.login(t, "pupil2", "")
	require.Equal(t, "Zoë Lefèvre", c.Name)
	require.Equal(t, []string{"pupils", "year-8"}, c.Groups)
}

func TestRefusedAccountsKeepTheirClaims(t *testing.T) {
	e := newEnv(t)
	c, all := e.login(t, "unverified", "")
	require.NotNil(t, c.EmailVerified, "email_verified=false must be explicit")
	require.False(t, *c.EmailVerified)
	require.Contains(t, all, "email_verified")

	c, all = e.login(t, "nogroup", "")
	require.Equal(t, []any{}, all["groups"])
	require.Empty(t, c.Groups)

	c, all = e.login(t, "oneword", "")
	require.Equal(t, "Madonna", c.Name)
	require.NotContains(t, all, "given_name")
	require.NotContains(t, all, "family_name")
}

func TestMFA(t *testing.T) {
	e := newEnv(t)
	c, _ := e.login(t, "head", "123456")
	require.Equal(t, []string{"pwd", "mfa", "otp"}, c.AMR)
	require.Equal(t, "Margaret Okafor", c.Name)

	c, _ = e.login(t, "head", "")
	require.Equal(t, []string{"pwd"}, c.AMR)

	c, _ = e.login(t, "teacher", "123456") // no second factor on this account
	require.Equal(t, []string{"pwd"}, c.AMR)

	hc := browser(t)
	id := e.startLogin(t, hc, e.oauth(publicID, "", 0).AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
	resp, body := e.postLogin(t, hc, id, "head", DefaultPassword, "000000")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, body, "Wrong one-time code.")
	resp, body = e.postLogin(t, hc, id, "head", "wrong", "123456")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, body, "Wrong username or password.")
}

func noRedirect() *http.Client {
	return &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func TestUnregisteredRedirectURIRefused(t *testing.T) {
	e := newEnv(t)
	for _, bad := range []string{e.cb.URL + "/other", "http://evil.example/auth/callback", e.redirect + "/", e.redirect + "?x=1"} {
		conf := e.oauth(publicID, "", 0)
		conf.RedirectURL = bad
		resp, err := noRedirect().Get(conf.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
		require.NoError(t, err)
		readBody(t, resp)
		require.Equal(t, http.StatusBadRequest, resp.StatusCode, bad)
		require.Empty(t, resp.Header.Get("Location"))
	}
}

func TestPKCERequiredForPublicClient(t *testing.T) {
	e := newEnv(t)
	conf := e.oauth(publicID, "", 0)
	for name, opts := range map[string][]oauth2.AuthCodeOption{
		"missing": nil,
		"plain": {oauth2.SetAuthURLParam("code_challenge", "abcdefghijabcdefghijabcdefghijabcdefghij123"),
			oauth2.SetAuthURLParam("code_challenge_method", "plain")},
	} {
		resp, err := noRedirect().Get(conf.AuthCodeURL("st", opts...))
		require.NoError(t, err, name)
		readBody(t, resp)
		require.Equal(t, http.StatusFound, resp.StatusCode, name)
		loc, err := url.Parse(resp.Header.Get("Location"))
		require.NoError(t, err)
		require.Equal(t, "invalid_request", loc.Query().Get("error"), name)
		require.Equal(t, "st", loc.Query().Get("state"))
	}
	// prompt=none cannot work without a session
	resp, err := noRedirect().Get(conf.AuthCodeURL("st", oauth2.S256ChallengeOption("v"), oauth2.SetAuthURLParam("prompt", "none")))
	require.NoError(t, err)
	readBody(t, resp)
	loc, _ := url.Parse(resp.Header.Get("Location"))
	require.Equal(t, "login_required", loc.Query().Get("error"))
}

func TestCodeIsSingleUse(t *testing.T) {
	e := newEnv(t)
	code, f := e.signIn(t, e.oauth(publicID, "", oauth2.AuthStyleInParams), true, "teacher", "")
	e.exchange(t, code, f, true)
	_, err := f.conf.Exchange(e.ctx, code, oauth2.VerifierOption(f.verifier))
	var re *oauth2.RetrieveError
	require.ErrorAs(t, err, &re)
	require.Equal(t, "invalid_grant", re.ErrorCode)

	// a wrong verifier burns the code too
	code, f = e.signIn(t, f.conf, true, "teacher", "")
	_, err = f.conf.Exchange(e.ctx, code, oauth2.VerifierOption(oauth2.GenerateVerifier()))
	require.ErrorAs(t, err, &re)
	_, err = f.conf.Exchange(e.ctx, code, oauth2.VerifierOption(f.verifier))
	require.ErrorAs(t, err, &re)
	require.Equal(t, "invalid_grant", re.ErrorCode)
}

func TestRotateKey(t *testing.T) {
	e := newEnv(t)
	conf := e.oauth(publicID, "", oauth2.AuthStyleInParams)
	code, f := e.signIn(t, conf, true, "teacher", "")
	oldTok, oldIDT, _, _ := e.exchange(t, code, f, true) // the verifier has cached the first key

	require.NoError(t, e.idp.RotateKey())
	code, f = e.signIn(t, conf, true, "dsl", "123456")
	tok, err := f.conf.Exchange(e.ctx, code, oauth2.VerifierOption(f.verifier))
	require.NoError(t, err)
	raw := tok.Extra("id_token").(string)
	verifier := e.provider.Verifier(&oidc.Config{ClientID: publicID})
	idt, err := verifier.Verify(e.ctx, raw) // unknown kid: go-oidc refetches the JWKS
	require.NoError(t, err)
	require.Equal(t, "3f1c9a52-dsl-0005", idt.Subject)

	resp, err := http.Get(e.srv.URL + "/keys")
	require.NoError(t, err)
	var jwks struct{ Keys []struct{ Kid string } }
	require.NoError(t, json.Unmarshal([]byte(readBody(t, resp)), &jwks))
	require.Len(t, jwks.Keys, 2)
	require.NotEqual(t, jwks.Keys[0].Kid, jwks.Keys[1].Kid)

	// a token signed with the old key still verifies against a fresh JWKS fetch
	fresh, err := oidc.NewProvider(e.ctx, e.srv.URL)
	require.NoError(t, err)
	again, err := fresh.Verifier(&oidc.Config{ClientID: publicID}).Verify(e.ctx, oldTok.Extra("id_token").(string))
	require.NoError(t, err)
	require.Equal(t, oldIDT.Subject, again.Subject)
}

func TestEndSession(t *testing.T) {
	e := newEnv(t)
	code, f := e.signIn(t, e.oauth(publicID, "", oauth2.AuthStyleInParams), true, "teacher", "")
	tok, err := f.conf.Exchange(e.ctx, code, oauth2.VerifierOption(f.verifier))
	require.NoError(t, err)
	q := url.Values{"id_token_hint": {tok.Extra("id_token").(string)}, "post_logout_redirect_uri": {e.cb.URL + "/bye"}, "state": {"x"}}
	resp, err := noRedirect().Get(e.srv.URL + "/end_session?" + q.Encode())
	require.NoError(t, err)
	readBody(t, resp)
	require.Equal(t, http.StatusFound, resp.StatusCode)
	require.Equal(t, e.cb.URL+"/bye?state=x", resp.Header.Get("Location"))
	// the access token no longer works
	_, err = e.provider.UserInfo(e.ctx, oauth2.StaticTokenSource(tok))
	require.Error(t, err)

	q.Set("post_logout_redirect_uri", "http://evil.example/")
	resp, err = noRedirect().Get(e.srv.URL + "/end_session?" + q.Encode())
	require.NoError(t, err)
	readBody(t, resp)
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
}

func TestConcurrentSignIns(t *testing.T) {
	e := newEnv(t)
	for _, u := range []string{"head", "slt", "teacher", "teacher2", "dsl", "itadmin", "pupil", "pupil2", "pupil3", "pupil4"} {
		t.Run(u, func(t *testing.T) {
			t.Parallel()
			c, _ := e.login(t, u, "")
			require.Contains(t, c.Sub, "3f1c9a52-")
		})
	}
}

func TestUsers(t *testing.T) {
	seed, err := SeedUsers()
	require.NoError(t, err)
	require.Len(t, seed, 17)
	byName := map[string]User{}
	for _, u := range seed {
		byName[u.Username] = u
	}
	require.True(t, byName["head"].MFA)
	require.False(t, byName["teacher"].MFA)
	require.Equal(t, "one-word name", byName["oneword"].Refused)
	require.Equal(t, "Noah O'Brien", DisplayName(byName["pupil4"]))
	require.Equal(t, "Student 12", DisplayName(byName["placeholder"]))
	require.Equal(t, "Ann", DisplayName(User{GivenName: "Ann"}))
	require.Equal(t, "Ann Lee", DisplayName(User{GivenName: "Ann", FamilyName: "Lee", Name: "ignored"}))

	dir := t.TempDir()
	good := filepath.Join(dir, "users.json")
	require.NoError(t, os.WriteFile(good, []byte(`{"users":[{"username":"a","sub":"s-1","name":"A B","email":"a@x","email_verified":true,"groups":["staff"]}]}`), 0o600))
	us, err := LoadUsers(good)
	require.NoError(t, err)
	require.Equal(t, []User{{Username: "a", Sub: "s-1", Name: "A B", Email: "a@x", EmailVerified: true, Groups: []string{"staff"}}}, us)

	for name, content := range map[string]string{
		"dup":   `{"users":[{"username":"a","sub":"1"},{"username":"A","sub":"2"}]}`,
		"colon": `{"users":[{"username":"a","sub":"x:y"}]}`,
		"empty": `{"users":[]}`,
		"bad":   `{`,
	} {
		p := filepath.Join(dir, name+".json")
		require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
		_, err := LoadUsers(p)
		require.Error(t, err, name)
	}
}

func TestNewValidatesConfig(t *testing.T) {
	ok := []Client{{ID: "c", RedirectURIs: []string{"http://localhost:8080/cb"}}}
	for name, cfg := range map[string]Config{
		"no issuer":    {Clients: ok},
		"bad issuer":   {Issuer: "localhost:8081", Clients: ok},
		"no clients":   {Issuer: "http://localhost:8081"},
		"no redirects": {Issuer: "http://localhost:8081", Clients: []Client{{ID: "c"}}},
		"relative":     {Issuer: "http://localhost:8081", Clients: []Client{{ID: "c", RedirectURIs: []string{"/cb"}}}},
	} {
		_, err := New(t.Context(), cfg)
		require.Error(t, err, name)
	}
}

func TestIssuerWithPath(t *testing.T) {
	srv := httptest.NewUnstartedServer(nil)
	issuer := "http://" + srv.Listener.Addr().String() + "/idp"
	idp, err := New(t.Context(), Config{Issuer: issuer, Clients: []Client{{ID: "c", RedirectURIs: []string{"http://localhost/cb"}}}})
	require.NoError(t, err)
	srv.Config.Handler = idp.Handler()
	srv.Start()
	defer srv.Close()
	p, err := oidc.NewProvider(t.Context(), issuer)
	require.NoError(t, err)
	conf := oauth2.Config{ClientID: "c", Endpoint: p.Endpoint(), RedirectURL: "http://localhost/cb", Scopes: []string{"openid"}}
	resp, err := browser(t).Get(conf.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
	require.NoError(t, err)
	body := readBody(t, resp)
	require.Equal(t, "/idp"+loginPath, resp.Request.URL.Path)
	require.Contains(t, body, `action="/idp/login/username"`)
}
