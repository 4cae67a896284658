package demoidp

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/subtle"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

const (
	authRequestTTL = 10 * time.Minute // from authorize to code exchange
	accessTokenTTL = time.Hour
	idTokenTTL     = time.Hour
	groupsScope    = "groups"
)

var errNotFound = errors.New("demoidp: not found or expired")

// authRequest is one authorize request, completed by the login page.
// The storage hands out copies, so op never sees a value that changes.
type authRequest struct {
	id, clientID, redirectURI, state, nonce string
	scopes                                  []string
	responseType                            oidc.ResponseType
	responseMode                            oidc.ResponseMode
	challenge                               *oidc.CodeChallenge
	expires                                 time.Time

	done     bool // set by the login page
	sub      string
	authTime time.Time
	amr      []string
}

func (a *authRequest) GetID() string                         { return a.id }
func (a *authRequest) GetACR() string                        { return "" }
func (a *authRequest) GetAMR() []string                      { return a.amr }
func (a *authRequest) GetAudience() []string                 { return []string{a.clientID} }
func (a *authRequest) GetAuthTime() time.Time                { return a.authTime }
func (a *authRequest) GetClientID() string                   { return a.clientID }
func (a *authRequest) GetCodeChallenge() *oidc.CodeChallenge { return a.challenge }
func (a *authRequest) GetNonce() string                      { return a.nonce }
func (a *authRequest) GetRedirectURI() string                { return a.redirectURI }
func (a *authRequest) GetResponseType() oidc.ResponseType    { return a.responseType }
func (a *authRequest) GetResponseMode() oidc.ResponseMode    { return a.responseMode }
func (a *authRequest) GetScopes() []string                   { return a.scopes }
func (a *authRequest) GetState() string                      { return a.state }
func (a *authRequest) GetSubject() string                    { return a.sub }
func (a *authRequest) Done() bool                            { return a.done }

func (a *authRequest) clone() *authRequest {
	c := *a
	c.scopes, c.amr = slices.Clone(a.scopes), slices.Clone(a.amr)
	return &c
}

// client implements op.Client. A client without a secret is public: it must
// use PKCE (S256). Redirect URIs must match exactly; http is allowed (DevMode).
type client struct {
	id, secret string
	redirects  []string
	postLogout []string
	loginPath  string
}

func (c *client) GetID() string                    { return c.id }
func (c *client) RedirectURIs() []string           { return c.redirects }
func (c *client) PostLogoutRedirectURIs() []string { return c.postLogout }
func (c *client) public() bool                     { return c.secret == "" }
func (c *client) ApplicationType() op.ApplicationType {
	// Not ApplicationTypeNative: op lets a native client use any loopback port.
	if c.public() {
		return op.ApplicationTypeUserAgent
	}
	return op.ApplicationTypeWeb
}
func (c *client) AuthMethod() oidc.AuthMethod {
	if c.public() {
		return oidc.AuthMethodNone
	}
	return oidc.AuthMethodBasic // op also accepts the secret in the form body
}
func (c *client) ResponseTypes() []oidc.ResponseType {
	return []oidc.ResponseType{oidc.ResponseTypeCode}
}
func (c *client) GrantTypes() []oidc.GrantType { return []oidc.GrantType{oidc.GrantTypeCode} }
func (c *client) LoginURL(id string) string {
	return c.loginPath + "?authRequestID=" + id // id is URL-safe (rand.Text)
}
func (c *client) AccessTokenType() op.AccessTokenType { return op.AccessTokenTypeBearer }
func (c *client) IDTokenLifetime() time.Duration      { return idTokenTTL }
func (c *client) DevMode() bool                       { return true } // http redirect URIs; exact match still required
func (c *client) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (c *client) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (c *client) IsScopeAllowed(scope string) bool     { return scope == groupsScope }
func (c *client) IDTokenUserinfoClaimsAssertion() bool { return true }
func (c *client) ClockSkew() time.Duration             { return 0 }

type accessToken struct {
	sub, clientID string
	scopes        []string
	expires       time.Time
}

// signingKey is an RSA key; publicKey is its JWKS entry.
type signingKey struct {
	id  string
	key *rsa.PrivateKey
}

func (k *signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k *signingKey) Key() any                                    { return k.key }
func (k *signingKey) ID() string                                  { return k.id }

type publicKey struct{ *signingKey }

func (k publicKey) Algorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k publicKey) Use() string                        { return "sig" }
func (k publicKey) Key() any                           { return &k.key.PublicKey }

// storage implements op.Storage in memory. All fields behind mu.
type storage struct {
	mu       sync.Mutex
	usersSub map[string]User // by sub
	clients  map[string]*client
	requests map[string]*authRequest
	codes    map[string]string // code -> auth request id
	tokens   map[string]*accessToken
	keys     []*signingKey // the last one signs
}

var _ op.Storage = (*storage)(nil)
var _ op.CanSetUserinfoFromRequest = (*storage)(nil)

func newStorage(users []User, clients []*client) *storage {
	s := &storage{
		usersSub: map[string]User{}, clients: map[string]*client{},
		requests: map[string]*authRequest{}, codes: map[string]string{}, tokens: map[string]*accessToken{},
	}
	for _, u := range users {
		s.usersSub[u.Sub] = u
	}
	for _, c := range clients {
		s.clients[c.id] = c
	}
	return s
}

func (s *storage) addKey(k *signingKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys = append(s.keys, k)
}

// purgeLocked drops expired requests, codes and tokens.
func (s *storage) purgeLocked(now time.Time) {
	for id, r := range s.requests {
		if now.After(r.expires) {
			delete(s.requests, id)
		}
	}
	for code, id := range s.codes {
		if _, ok := s.requests[id]; !ok {
			delete(s.codes, code)
		}
	}
	for id, t := range s.tokens {
		if now.After(t.expires) {
			delete(s.tokens, id)
		}
	}
}

func (s *storage) CreateAuthRequest(_ context.Context, req *oidc.AuthRequest, _ string) (op.AuthRequest, error) {
	if slices.Contains(req.Prompt, oidc.PromptNone) {
		return nil, oidc.ErrLoginRequired().WithDescription("the demo provider has no sign-in session")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.clients[req.ClientID]
	if !ok {
		return nil, oidc.ErrInvalidClient()
	}
	var challenge *oidc.CodeChallenge
	switch {
	case req.CodeChallenge != "" && req.CodeChallengeMethod != oidc.CodeChallengeMethodS256:
		return nil, oidc.ErrInvalidRequest().WithDescription("code_challenge_method must be S256")
	case req.CodeChallenge != "":
		challenge = &oidc.CodeChallenge{Challenge: req.CodeChallenge, Method: oidc.CodeChallengeMethodS256}
	case c.public():
		return nil, oidc.ErrInvalidRequest().WithDescription("PKCE (code_challenge with S256) is required for public clients")
	}
	now := time.Now()
	s.purgeLocked(now)
	r := &authRequest{
		id: rand.Text(), clientID: req.ClientID, redirectURI: req.RedirectURI, state: req.State, nonce: req.Nonce,
		scopes: slices.Clone([]string(req.Scopes)), responseType: req.ResponseType, responseMode: req.ResponseMode,
		challenge: challenge, expires: now.Add(authRequestTTL),
	}
	s.requests[r.id] = r
	return r.clone(), nil
}

func (s *storage) requestLocked(id string) (*authRequest, error) {
	r, ok := s.requests[id]
	if !ok || time.Now().After(r.expires) {
		return nil, errNotFound
	}
	return r, nil
}

func (s *storage) AuthRequestByID(_ context.Context, id string) (op.AuthRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.requestLocked(id)
	if err != nil {
		return nil, err
	}
	return r.clone(), nil
}

// AuthRequestByCode consumes the code: a code works once, even if the
// exchange then fails.
func (s *storage) AuthRequestByCode(_ context.Context, code string) (op.AuthRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id, ok := s.codes[code]
	if !ok {
		return nil, errNotFound
	}
	delete(s.codes, code)
	r, err := s.requestLocked(id)
	if err != nil || !r.done {
		return nil, errNotFound
	}
	delete(s.requests, id) // no second code for the same sign-in
	return r.clone(), nil
}

func (s *storage) SaveAuthCode(_ context.Context, id, code string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.requestLocked(id); err != nil {
		return err
	}
	for c, rid := range s.codes {
		if rid == id {
			delete(s.codes, c) // the callback was reloaded: only the newest code counts
		}
	}
	s.codes[code] = id
	return nil
}

func (s *storage) DeleteAuthRequest(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.requests, id)
	for code, rid := range s.codes {
		if rid == id {
			delete(s.codes, code)
		}
	}
	return nil
}

// pending reports the client of an auth request still waiting for sign-in.
func (s *storage) pending(id string) (clientID string, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.requestLocked(id)
	if err != nil || r.done {
		return "", false
	}
	return r.clientID, true
}

// completeLogin marks the auth request as signed in by sub.
func (s *storage) completeLogin(id, sub string, amr []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.requestLocked(id)
	if err != nil || r.done {
		return errNotFound
	}
	r.done, r.sub, r.authTime, r.amr = true, sub, time.Now(), amr
	return nil
}

func (s *storage) CreateAccessToken(_ context.Context, req op.TokenRequest) (string, time.Time, error) {
	t := &accessToken{sub: req.GetSubject(), scopes: slices.Clone(req.GetScopes()), expires: time.Now().Add(accessTokenTTL)}
	if ar, ok := req.(*authRequest); ok {
		t.clientID = ar.clientID
	}
	id := rand.Text()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.purgeLocked(time.Now())
	s.tokens[id] = t
	return id, t.expires, nil
}

var errNoRefresh = errors.New("demoidp: refresh tokens are not issued")

func (s *storage) CreateAccessAndRefreshTokens(context.Context, op.TokenRequest, string) (string, string, time.Time, error) {
	return "", "", time.Time{}, errNoRefresh
}

func (s *storage) TokenRequestByRefreshToken(context.Context, string) (op.RefreshTokenRequest, error) {
	return nil, op.ErrInvalidRefreshToken
}

func (s *storage) GetRefreshTokenInfo(context.Context, string, string) (string, string, error) {
	return "", "", op.ErrInvalidRefreshToken
}

// TerminateSession ends the user's access tokens for the client (there is no SSO session).
func (s *storage) TerminateSession(_ context.Context, userID, clientID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, t := range s.tokens {
		if t.sub == userID && (clientID == "" || t.clientID == clientID) {
			delete(s.tokens, id)
		}
	}
	return nil
}

func (s *storage) RevokeToken(_ context.Context, tokenID, _ string, clientID string) *oidc.Error {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tokens[tokenID]
	if !ok {
		return nil // RFC 7009: unknown tokens are not an error
	}
	if t.clientID != clientID {
		return oidc.ErrInvalidClient().WithDescription("token was not issued to this client")
	}
	delete(s.tokens, tokenID)
	return nil
}

func (s *storage) SigningKey(context.Context) (op.SigningKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.keys) == 0 {
		return nil, errors.New("demoidp: no signing key")
	}
	return s.keys[len(s.keys)-1], nil
}

func (s *storage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{jose.RS256}, nil
}

func (s *storage) KeySet(context.Context) ([]op.Key, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	keys := make([]op.Key, len(s.keys))
	for i, k := range s.keys {
		keys[i] = publicKey{k}
	}
	return keys, nil
}

func (s *storage) GetClientByClientID(_ context.Context, id string) (op.Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.clients[id]; ok {
		return c, nil
	}
	return nil, fmt.Errorf("demoidp: unknown client %q", id)
}

func (s *storage) AuthorizeClientIDSecret(_ context.Context, id, secret string) error {
	s.mu.Lock()
	c, ok := s.clients[id]
	s.mu.Unlock()
	if !ok || c.public() || subtle.ConstantTimeCompare([]byte(c.secret), []byte(secret)) != 1 {
		return errors.New("demoidp: wrong client id or secret")
	}
	return nil
}

// SetUserinfoFromScopes is deprecated in op; SetUserinfoFromRequest does the work.
func (s *storage) SetUserinfoFromScopes(context.Context, *oidc.UserInfo, string, string, []string) error {
	return nil
}

// SetUserinfoFromRequest fills the ID token's claims (the client asks for
// userinfo claims to be asserted in the ID token).
func (s *storage) SetUserinfoFromRequest(_ context.Context, info *oidc.UserInfo, req op.IDTokenRequest, _ []string) error {
	return s.setUserinfo(info, req.GetSubject())
}

func (s *storage) SetUserinfoFromToken(_ context.Context, info *oidc.UserInfo, tokenID, subject, _ string) error {
	s.mu.Lock()
	t, ok := s.tokens[tokenID]
	s.mu.Unlock()
	if !ok || t.sub != subject || time.Now().After(t.expires) {
		return errors.New("demoidp: access token invalid or expired")
	}
	return s.setUserinfo(info, subject)
}

func (s *storage) SetIntrospectionFromToken(_ context.Context, resp *oidc.IntrospectionResponse, tokenID, subject, clientID string) error {
	s.mu.Lock()
	t, ok := s.tokens[tokenID]
	s.mu.Unlock()
	if !ok || t.sub != subject || t.clientID != clientID || time.Now().After(t.expires) {
		return errors.New("demoidp: access token invalid or expired")
	}
	info := new(oidc.UserInfo)
	if err := s.setUserinfo(info, subject); err != nil {
		return err
	}
	resp.SetUserInfo(info)
	resp.Active, resp.ClientID, resp.Scope = true, t.clientID, t.scopes
	resp.Expiration = oidc.FromTime(t.expires)
	return nil
}

// setUserinfo releases every claim regardless of scope: this is a demo provider
// and the gateway wants them all.
func (s *storage) setUserinfo(info *oidc.UserInfo, sub string) error {
	s.mu.Lock()
	u, ok := s.usersSub[sub]
	s.mu.Unlock()
	if !ok {
		return fmt.Errorf("demoidp: unknown subject %q", sub)
	}
	info.Subject = sub
	info.Name, info.GivenName, info.FamilyName = DisplayName(u), u.GivenName, u.FamilyName
	info.PreferredUsername = u.Username
	info.Email, info.EmailVerified = u.Email, oidc.Bool(u.EmailVerified)
	// op's typed email_verified is omitempty; the private claim keeps an explicit false.
	info.AppendClaims("email_verified", u.EmailVerified)
	switch {
	case u.GroupsOverage:
		info.AppendClaims("_claim_names", map[string]string{"groups": "src1"})
		info.AppendClaims("_claim_sources", map[string]any{"src1": map[string]string{
			"endpoint": "https://graph.windows.net/" + u.TenantID + "/users/" + u.ObjectID + "/getMemberObjects"}})
	case u.NoGroups:
	default:
		info.AppendClaims("groups", append([]string{}, u.Groups...)) // [] rather than null
	}
	for k, v := range map[string]string{"hd": u.HostedDomain, "tid": u.TenantID, "oid": u.ObjectID} {
		if v != "" {
			info.AppendClaims(k, v)
		}
	}
	return nil
}

func (s *storage) GetPrivateClaimsFromScopes(context.Context, string, string, []string) (map[string]any, error) {
	return nil, nil // only for JWT access tokens, which this provider does not issue
}

func (s *storage) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, errors.New("demoidp: JWT profile not supported")
}

func (s *storage) ValidateJWTProfileScopes(context.Context, string, []string) ([]string, error) {
	return nil, errors.New("demoidp: JWT profile not supported")
}

func (s *storage) Health(context.Context) error { return nil }
