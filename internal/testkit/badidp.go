// Package testkit holds the helpers that tests across the repository share:
// a deliberately misbehaving OpenID Provider, headless Chromium, and small
// network helpers. Tests reuse these instead of copying them.
package testkit

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Mode selects how the BadIdP breaks (or does not break) the next responses.
// The modes follow the OpenID Foundation's relying-party conformance cases.
type Mode string

// Modes. All but ModeOK, ModeNoKid and ModeMultiAudRightAzp produce a response
// that a correct relying party must refuse.
const (
	// ModeOK issues a valid ID token.
	ModeOK Mode = "ok"
	// ModeOtherKey signs with a key that is not in the JWKS, under the kid of
	// the published key.
	ModeOtherKey Mode = "other-key"
	// ModeWrongAudience sets aud to a client other than the caller.
	ModeWrongAudience Mode = "wrong-aud"
	// ModeWrongIssuer sets iss to another issuer.
	ModeWrongIssuer Mode = "wrong-iss"
	// ModeMissingIssuer leaves iss out.
	ModeMissingIssuer Mode = "no-iss"
	// ModeExpired issues a token whose exp has passed.
	ModeExpired Mode = "expired"
	// ModeWrongNonce sets nonce to a value the client did not send.
	ModeWrongNonce Mode = "wrong-nonce"
	// ModeNoNonce leaves nonce out although the client sent one.
	ModeNoNonce Mode = "no-nonce"
	// ModeNoSub leaves sub out.
	ModeNoSub Mode = "no-sub"
	// ModeNoIat leaves iat out.
	ModeNoIat Mode = "no-iat"
	// ModeFutureIat sets iat to an hour from now.
	ModeFutureIat Mode = "future-iat"
	// ModeAlgNone issues an unsigned token with alg "none".
	ModeAlgNone Mode = "alg-none"
	// ModeHS256 signs with HMAC-SHA256 keyed with the client secret.
	ModeHS256 Mode = "hs256"
	// ModeNoKid signs with the current key but leaves kid out of the header.
	// A relying party may accept this (OpenID Core 10.1); with several keys
	// published it has to try each of them.
	ModeNoKid Mode = "no-kid"
	// ModeMultiAudNoAzp sets aud to the client and another client, with no azp.
	ModeMultiAudNoAzp Mode = "multi-aud-no-azp"
	// ModeMultiAudWrongAzp sets aud to the client and another client, with
	// azp naming the other client.
	ModeMultiAudWrongAzp Mode = "multi-aud-wrong-azp"
	// ModeMultiAudRightAzp sets aud to the client and another client, with
	// azp naming the client. A relying party must accept this.
	ModeMultiAudRightAzp Mode = "multi-aud-right-azp"
	// ModeErrorParam answers the authorization request with
	// error=access_denied instead of a code.
	ModeErrorParam Mode = "error-param"
	// ModeBadSignature issues a valid token with one signature byte flipped.
	ModeBadSignature Mode = "bad-signature"
)

// BadIDPOtherClient is the extra audience of the multi-audience modes and the
// audience of ModeWrongAudience.
const BadIDPOtherClient = "badidp-other-client"

// BadIdP is a configurable OpenID Provider for negative tests of a relying
// party. It has no login page: the authorization endpoint records the request
// and redirects straight back with a code (or an error, in ModeErrorParam).
// The token endpoint builds the ID token from the settings at the time of the
// token request. All methods are safe for concurrent use.
//
// Endpoints, under URL: /.well-known/openid-configuration, /authorize,
// /token, /jwks, /userinfo.
type BadIdP struct {
	// URL is the issuer: the base URL of the test server, without a trailing
	// slash.
	URL string

	srv *httptest.Server

	mu           sync.Mutex
	mode         Mode
	extra        map[string]any
	clients      map[string]string  // client id -> secret
	keys         []*jose.JSONWebKey // private keys, oldest first; the last signs
	otherKey     *rsa.PrivateKey    // for ModeOtherKey
	singleNoKid  bool
	lastAuthz    url.Values
	codes        map[string]*authzCode
	accessTokens map[string]map[string]any // access token -> claims for userinfo
}

type authzCode struct {
	clientID      string
	redirectURI   string
	nonce         string
	challenge     string
	challengeMeth string
	scope         string
	issued        time.Time
}

const codeTTL = time.Minute

// NewBadIdP starts a BadIdP on an httptest server that t.Cleanup closes. It
// signs with an RSA key of kid "k1" and starts in ModeOK with no registered
// client.
func NewBadIdP(t testing.TB) *BadIdP {
	t.Helper()
	b := &BadIdP{
		mode:         ModeOK,
		clients:      map[string]string{},
		codes:        map[string]*authzCode{},
		accessTokens: map[string]map[string]any{},
	}
	b.keys = []*jose.JSONWebKey{{Key: newRSAKey(t), KeyID: "k1", Algorithm: string(jose.RS256), Use: "sig"}}
	b.otherKey = newRSAKey(t)

	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", b.handleDiscovery)
	mux.HandleFunc("GET /jwks", b.handleJWKS)
	mux.HandleFunc("GET /authorize", b.handleAuthorize)
	mux.HandleFunc("POST /token", b.handleToken)
	mux.HandleFunc("/userinfo", b.handleUserinfo)
	b.srv = httptest.NewServer(mux)
	b.URL = b.srv.URL
	t.Cleanup(b.srv.Close)
	return b
}

func newRSAKey(t testing.TB) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatalf("testkit: generate RSA key: %v", err)
	}
	return k
}

// SetMode chooses how the next responses break.
func (b *BadIdP) SetMode(m Mode) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.mode = m
}

// SetClaims sets claims that are merged into the next ID tokens (and the
// userinfo response) over the defaults: email, email_verified, name, groups,
// amr, acr, auth_time, tid, hd and so on. A nil value removes that claim. The
// mode is applied after the merge. SetClaims(nil) clears the extra claims.
func (b *BadIdP) SetClaims(c map[string]any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.extra = maps.Clone(c)
}

// RegisterClient adds (or replaces) accepted client credentials. In ModeOK the
// ID token's aud is the client id of the token request.
func (b *BadIdP) RegisterClient(id, secret string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.clients[id] = secret
}

// RotateKey makes a new key sign from now on ("k2", then "k3", ...). The JWKS
// keeps publishing the old keys too.
func (b *BadIdP) RotateKey() {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic("testkit: generate RSA key: " + err.Error())
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.keys = append(b.keys, &jose.JSONWebKey{
		Key: k, KeyID: fmt.Sprintf("k%d", len(b.keys)+1), Algorithm: string(jose.RS256), Use: "sig",
	})
}

// SetSingleKeyNoKidInJWKS, when on, makes the JWKS publish only the current
// signing key, without a kid, and the tokens carry no kid either: the
// conformance case "kid absent, single key in JWKS", which a relying party
// must accept.
func (b *BadIdP) SetSingleKeyNoKidInJWKS(on bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.singleNoKid = on
}

// LastAuthorize returns a copy of the query of the last authorization
// request, or nil if there was none.
func (b *BadIdP) LastAuthorize() url.Values {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.lastAuthz == nil {
		return nil
	}
	v := url.Values{}
	for k, vs := range b.lastAuthz {
		v[k] = append([]string(nil), vs...)
	}
	return v
}

func (b *BadIdP) handleDiscovery(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                b.URL,
		"authorization_endpoint":                b.URL + "/authorize",
		"token_endpoint":                        b.URL + "/token",
		"jwks_uri":                              b.URL + "/jwks",
		"userinfo_endpoint":                     b.URL + "/userinfo",
		"response_types_supported":              []string{"code"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"scopes_supported":                      []string{"openid", "email", "profile", "groups"},
		"token_endpoint_auth_methods_supported": []string{"client_secret_basic", "client_secret_post"},
		"code_challenge_methods_supported":      []string{"S256"},
		"grant_types_supported":                 []string{"authorization_code"},
		"claims_supported": []string{"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce",
			"email", "email_verified", "name", "given_name", "family_name", "groups", "amr", "acr"},
	})
}

func (b *BadIdP) handleJWKS(w http.ResponseWriter, r *http.Request) {
	b.mu.Lock()
	var set jose.JSONWebKeySet
	if b.singleNoKid {
		pub := b.keys[len(b.keys)-1].Public()
		pub.KeyID = ""
		set.Keys = append(set.Keys, pub)
	} else {
		for _, k := range b.keys {
			set.Keys = append(set.Keys, k.Public())
		}
	}
	b.mu.Unlock()
	writeJSON(w, http.StatusOK, set)
}

func (b *BadIdP) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	b.mu.Lock()
	b.lastAuthz = q
	mode := b.mode
	_, known := b.clients[q.Get("client_id")]
	b.mu.Unlock()

	// Without a known client or a usable redirect_uri, a provider must not
	// redirect (OpenID Core 3.1.2.6): show an error page.
	redirect, err := url.Parse(q.Get("redirect_uri"))
	if !known || err != nil || !redirect.IsAbs() {
		http.Error(w, "badidp: unknown client_id or bad redirect_uri", http.StatusBadRequest)
		return
	}
	back := redirect.Query()
	switch {
	case mode == ModeErrorParam:
		back.Set("error", "access_denied")
		back.Set("error_description", "badidp: the user refused (mode "+string(ModeErrorParam)+")")
	case q.Get("response_type") != "code":
		back.Set("error", "unsupported_response_type")
	default:
		code := randToken()
		b.mu.Lock()
		b.codes[code] = &authzCode{
			clientID:      q.Get("client_id"),
			redirectURI:   q.Get("redirect_uri"),
			nonce:         q.Get("nonce"),
			challenge:     q.Get("code_challenge"),
			challengeMeth: q.Get("code_challenge_method"),
			scope:         q.Get("scope"),
			issued:        time.Now(),
		}
		b.mu.Unlock()
		back.Set("code", code)
	}
	if s := q.Get("state"); s != "" {
		back.Set("state", s)
	}
	redirect.RawQuery = back.Encode()
	http.Redirect(w, r, redirect.String(), http.StatusFound)
}

func (b *BadIdP) handleToken(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		tokenError(w, http.StatusBadRequest, "invalid_request", "bad form")
		return
	}
	clientID, secret, ok := r.BasicAuth()
	if ok {
		// RFC 6749 2.3.1: both parts are form-urlencoded before base64.
		clientID, _ = url.QueryUnescape(clientID)
		secret, _ = url.QueryUnescape(secret)
	} else {
		clientID, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}

	b.mu.Lock()
	want, known := b.clients[clientID]
	b.mu.Unlock()
	if !known || subtle.ConstantTimeCompare([]byte(want), []byte(secret)) != 1 {
		w.Header().Set("WWW-Authenticate", `Basic realm="badidp"`)
		tokenError(w, http.StatusUnauthorized, "invalid_client", "unknown client or wrong secret")
		return
	}
	if gt := r.PostForm.Get("grant_type"); gt != "authorization_code" {
		tokenError(w, http.StatusBadRequest, "unsupported_grant_type", "only authorization_code")
		return
	}

	code := r.PostForm.Get("code")
	b.mu.Lock()
	c := b.codes[code]
	delete(b.codes, code) // single use, even when the exchange fails
	b.mu.Unlock()
	switch {
	case c == nil:
		tokenError(w, http.StatusBadRequest, "invalid_grant", "unknown or used code")
		return
	case time.Since(c.issued) > codeTTL:
		tokenError(w, http.StatusBadRequest, "invalid_grant", "code expired")
		return
	case c.clientID != clientID:
		tokenError(w, http.StatusBadRequest, "invalid_grant", "code was issued to another client")
		return
	case c.redirectURI != r.PostForm.Get("redirect_uri"):
		tokenError(w, http.StatusBadRequest, "invalid_grant", "redirect_uri differs from the authorization request")
		return
	}
	if msg := checkPKCE(c, r.PostForm.Get("code_verifier")); msg != "" {
		tokenError(w, http.StatusBadRequest, "invalid_grant", msg)
		return
	}

	idToken, claims, err := b.idToken(clientID, secret, c.nonce)
	if err != nil {
		tokenError(w, http.StatusInternalServerError, "server_error", err.Error())
		return
	}
	at := randToken()
	b.mu.Lock()
	b.accessTokens[at] = claims
	b.mu.Unlock()
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": at,
		"token_type":   "Bearer",
		"expires_in":   300,
		"scope":        c.scope,
		"id_token":     idToken,
	})
}

// checkPKCE returns why the verifier does not match, or "".
func checkPKCE(c *authzCode, verifier string) string {
	if c.challenge == "" {
		if verifier != "" {
			return "code_verifier sent but the authorization request had no code_challenge"
		}
		return ""
	}
	if verifier == "" {
		return "code_verifier missing"
	}
	var got string
	switch c.challengeMeth {
	case "S256":
		sum := sha256.Sum256([]byte(verifier))
		got = base64.RawURLEncoding.EncodeToString(sum[:])
	case "", "plain":
		got = verifier
	default:
		return "unsupported code_challenge_method " + c.challengeMeth
	}
	if subtle.ConstantTimeCompare([]byte(got), []byte(c.challenge)) != 1 {
		return "code_verifier does not match code_challenge"
	}
	return ""
}

func (b *BadIdP) handleUserinfo(w http.ResponseWriter, r *http.Request) {
	at, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	b.mu.Lock()
	claims := b.accessTokens[at]
	b.mu.Unlock()
	if !ok || claims == nil {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		http.Error(w, "invalid_token", http.StatusUnauthorized)
		return
	}
	info := map[string]any{}
	for k, v := range claims {
		switch k {
		case "iss", "aud", "exp", "iat", "nonce", "azp", "auth_time":
		default:
			info[k] = v
		}
	}
	writeJSON(w, http.StatusOK, info)
}

// idToken builds and signs an ID token from the current settings. It returns
// the claims too, for userinfo.
func (b *BadIdP) idToken(clientID, secret, nonce string) (string, map[string]any, error) {
	b.mu.Lock()
	mode := b.mode
	extra := maps.Clone(b.extra)
	key := b.keys[len(b.keys)-1]
	other := b.otherKey
	singleNoKid := b.singleNoKid
	b.mu.Unlock()

	now := time.Now()
	claims := map[string]any{
		"iss":            b.URL,
		"sub":            "badidp-user-1",
		"aud":            []string{clientID},
		"exp":            now.Add(5 * time.Minute).Unix(),
		"iat":            now.Unix(),
		"auth_time":      now.Unix(),
		"email":          "alex.taylor@oakfield.example",
		"email_verified": true,
		"name":           "Alex Taylor",
		"given_name":     "Alex",
		"family_name":    "Taylor",
		"groups":         []string{"staff"},
		"amr":            []string{"pwd"},
	}
	if nonce != "" {
		claims["nonce"] = nonce
	}
	for k, v := range extra {
		if v == nil {
			delete(claims, k)
		} else {
			claims[k] = v
		}
	}

	switch mode {
	case ModeWrongAudience:
		claims["aud"] = []string{BadIDPOtherClient}
	case ModeWrongIssuer:
		claims["iss"] = "https://evil-idp.example"
	case ModeMissingIssuer:
		delete(claims, "iss")
	case ModeExpired:
		claims["iat"] = now.Add(-15 * time.Minute).Unix()
		claims["auth_time"] = now.Add(-15 * time.Minute).Unix()
		claims["exp"] = now.Add(-10 * time.Minute).Unix()
	case ModeWrongNonce:
		claims["nonce"] = "badidp-wrong-" + randToken()
	case ModeNoNonce:
		delete(claims, "nonce")
	case ModeNoSub:
		delete(claims, "sub")
	case ModeNoIat:
		delete(claims, "iat")
	case ModeFutureIat:
		claims["iat"] = now.Add(time.Hour).Unix()
	case ModeMultiAudNoAzp:
		claims["aud"] = []string{clientID, BadIDPOtherClient}
		delete(claims, "azp")
	case ModeMultiAudWrongAzp:
		claims["aud"] = []string{clientID, BadIDPOtherClient}
		claims["azp"] = BadIDPOtherClient
	case ModeMultiAudRightAzp:
		claims["aud"] = []string{clientID, BadIDPOtherClient}
		claims["azp"] = clientID
	}

	payload, err := json.Marshal(claims)
	if err != nil {
		return "", nil, err
	}

	var tok string
	switch mode {
	case ModeAlgNone:
		tok = signingInput(map[string]any{"alg": "none", "typ": "JWT"}, payload) + "."
	case ModeHS256:
		// By hand: go-jose refuses HMAC keys shorter than the hash.
		in := signingInput(map[string]any{"alg": "HS256", "typ": "JWT", "kid": key.KeyID}, payload)
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write([]byte(in))
		tok = in + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
	case ModeOtherKey:
		tok, err = signRS256(other, key.KeyID, payload)
	case ModeNoKid:
		tok, err = signRS256(key.Key, "", payload)
	default:
		kid := key.KeyID
		if singleNoKid {
			kid = ""
		}
		tok, err = signRS256(key.Key, kid, payload)
	}
	if err != nil {
		return "", nil, err
	}
	if mode == ModeBadSignature {
		tok = flipSignatureByte(tok)
	}
	return tok, claims, nil
}

func signRS256(key any, kid string, payload []byte) (string, error) {
	jwk := jose.JSONWebKey{Key: key, KeyID: kid, Algorithm: string(jose.RS256)}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jwk},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return "", err
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return "", err
	}
	return jws.CompactSerialize()
}

// signingInput is the JWS signing input: base64url(header) "." base64url(payload).
func signingInput(header map[string]any, payload []byte) string {
	h, _ := json.Marshal(header)
	return base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(payload)
}

func flipSignatureByte(tok string) string {
	i := strings.LastIndexByte(tok, '.')
	sig, err := base64.RawURLEncoding.DecodeString(tok[i+1:])
	if err != nil || len(sig) == 0 {
		return tok + "x"
	}
	sig[len(sig)/2] ^= 0x01
	return tok[:i+1] + base64.RawURLEncoding.EncodeToString(sig)
}

func randToken() string {
	return rand.Text()
}

func tokenError(w http.ResponseWriter, status int, code, desc string) {
	writeJSON(w, status, map[string]string{"error": code, "error_description": "badidp: " + desc})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
