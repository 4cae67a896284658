package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/chaperone-edu/chaperone/audit"
	"github.com/chaperone-edu/chaperone/store"
)

// Cookie names.
const (
	SessionCookie = "chaperone_session"
	loginCookie   = "chaperone_login"
)

// Sign-in failure codes beyond the identity policy's.
const (
	RefuseIdPError     = "idp_error"
	RefuseState        = "state_invalid"
	RefuseExchange     = "code_exchange_failed"
	RefuseToken        = "id_token_invalid"
	RefuseNonce        = "nonce_mismatch"
	RefuseIssuedAt     = "iat_invalid"
	RefuseAudience     = "audience_invalid"
	RefuseInternal     = "internal_error"
	RefuseAuthTooOld   = "auth_time_too_old"
	RefuseTooMany      = "too_many_sign_ins"
	loginStateLifetime = 10 * time.Minute
	maxClockSkew       = 60 * time.Second
)

// ErrNoSession means the request carries no valid signed-in session.
var ErrNoSession = errors.New("auth: not signed in")

// ErrCSRF means a state-changing request lacked a valid CSRF token.
var ErrCSRF = errors.New("auth: missing or wrong CSRF token")

// Config configures the relying party.
type Config struct {
	Issuer        string
	ClientID      string
	ClientSecret  string
	RedirectURL   string   // public URL of /auth/callback
	Scopes        []string // nil means openid, profile, email
	SigningAlgs   []string // accepted ID token algorithms; nil means RS256
	Policy        Policy
	SessionIdle   time.Duration // 0 means 8 h
	SessionMax    time.Duration // absolute lifetime; 0 means 12 h
	SecureCookies bool          // set Secure on cookies (served over TLS)
	Now           func() time.Time
	HTTPClient    *http.Client // for talking to the IdP; nil means a client with a 15 s timeout
	Logger        *slog.Logger
	// Groups, when set, fetches the groups of an account whose ID token
	// left them out (Entra ID group overage); without it such a sign-in is
	// refused with what the IT admin should change.
	Groups GroupSource
	// Memberships, when set, adds groups the IdP does not know of (the
	// classes of an imported class list) to a signed-in person's groups,
	// looked up at every request so an import takes effect at once.
	Memberships MembershipSource
	// SigninsPerAccount limits completed sign-ins per account per minute
	// (0 means 20): a stolen IdP session cannot mint sessions in bulk.
	SigninsPerAccount int
}

// Service is the relying party and session manager.
type Service struct {
	cfg      Config
	store    store.Store
	provider *oidc.Provider
	verifier *oidc.IDTokenVerifier
	oauth    oauth2.Config
	log      *slog.Logger
	perAcct  *Throttle
}

// Session is a signed-in browser.
type Session struct {
	ID        string // hash of the cookie value
	Identity  Identity
	CSRFToken string
	AuthTime  time.Time
	AMR       []string
	Created   time.Time
}

// New discovers the provider at cfg.Issuer and returns the service.
func New(ctx context.Context, cfg Config, st store.Store) (*Service, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.SessionIdle == 0 {
		cfg.SessionIdle = 8 * time.Hour
	}
	if cfg.SessionMax == 0 {
		cfg.SessionMax = 12 * time.Hour
	}
	if len(cfg.Scopes) == 0 {
		cfg.Scopes = []string{oidc.ScopeOpenID, "profile", "email"}
	}
	if len(cfg.SigningAlgs) == 0 {
		cfg.SigningAlgs = []string{oidc.RS256}
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 15 * time.Second}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	pctx := oidc.ClientContext(ctx, cfg.HTTPClient)
	provider, err := oidc.NewProvider(pctx, cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("discover OIDC provider %s: %w", cfg.Issuer, err)
	}
	if cfg.SigninsPerAccount <= 0 {
		cfg.SigninsPerAccount = 20
	}
	s := &Service{cfg: cfg, store: st, provider: provider, log: cfg.Logger, perAcct: NewThrottle(cfg.SigninsPerAccount, time.Minute, cfg.Now)}
	s.verifier = provider.Verifier(&oidc.Config{
		ClientID:             cfg.ClientID,
		SupportedSigningAlgs: cfg.SigningAlgs,
		// go-oidc compares exp with Now exactly; allow our clock skew.
		Now: func() time.Time { return cfg.Now().Add(-maxClockSkew) },
	})
	s.oauth = oauth2.Config{
		ClientID:     cfg.ClientID,
		ClientSecret: cfg.ClientSecret,
		Endpoint:     provider.Endpoint(),
		RedirectURL:  cfg.RedirectURL,
		Scopes:       cfg.Scopes,
	}
	return s, nil
}

// Now is the relying party's clock: the one sign-in times (auth_time)
// are judged by.
func (s *Service) Now() time.Time { return s.cfg.Now() }

// Ping checks that the provider's discovery document is reachable.
func (s *Service) Ping(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(s.cfg.Issuer, "/")+"/.well-known/openid-configuration", nil)
	if err != nil {
		return err
	}
	resp, err := s.cfg.HTTPClient.Do(req)
	if err != nil {
		return fmt.Errorf("identity provider: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("identity provider: discovery answered %s", resp.Status)
	}
	return nil
}

// LoginOptions ask the IdP for a particular kind of sign-in.
type LoginOptions struct {
	// MaxAge, when not zero, is sent as max_age: the person must have
	// authenticated at the IdP within it, and the callback checks the ID
	// token's auth_time against it.
	MaxAge time.Duration
	// Again sends prompt=login: the IdP asks for credentials even if it
	// has a session (used to sign in again with a second factor).
	Again bool
}

// BeginLogin starts a sign-in: it stores state, nonce and PKCE verifier and
// returns the IdP URL to redirect to and a cookie binding the state to this
// browser (so a state from another browser fails: login CSRF).
func (s *Service) BeginLogin(ctx context.Context, returnTo string, lo LoginOptions) (string, *http.Cookie, error) {
	state, nonce, verifier := randomToken(), randomToken(), oauth2.GenerateVerifier()
	if lo.MaxAge < 0 {
		lo.MaxAge = 0
	}
	lo.MaxAge = lo.MaxAge.Truncate(time.Second)
	err := s.store.CreateLoginState(ctx, store.LoginState{
		ID: hashToken(state), Nonce: nonce, PKCEVerifier: verifier, ReturnTo: SafeReturnTo(returnTo), Created: s.cfg.Now(), MaxAge: lo.MaxAge,
	})
	if err != nil {
		return "", nil, fmt.Errorf("begin sign-in: %w", err)
	}
	opts := []oauth2.AuthCodeOption{oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier)}
	if lo.MaxAge > 0 {
		opts = append(opts, oauth2.SetAuthURLParam("max_age", strconv.FormatInt(int64(lo.MaxAge/time.Second), 10)))
	}
	if lo.Again || lo.MaxAge > 0 {
		opts = append(opts, oauth2.SetAuthURLParam("prompt", "login"))
		if len(s.cfg.Policy.MFAACR) > 0 {
			// Ask for the multi-factor level the policy counts (IdPs such
			// as Keycloak step up on acr_values).
			opts = append(opts, oauth2.SetAuthURLParam("acr_values", strings.Join(s.cfg.Policy.MFAACR, " ")))
		}
	}
	u := s.oauth.AuthCodeURL(state, opts...)
	c := &http.Cookie{Name: loginCookie, Value: state, Path: "/auth/", MaxAge: int(loginStateLifetime / time.Second),
		HttpOnly: true, Secure: s.cfg.SecureCookies, SameSite: http.SameSiteLaxMode}
	return u, c, nil
}

// ClearLoginCookie is the cookie that removes the login-state cookie.
func (s *Service) ClearLoginCookie() *http.Cookie {
	return &http.Cookie{Name: loginCookie, Value: "", Path: "/auth/", MaxAge: -1, HttpOnly: true, Secure: s.cfg.SecureCookies, SameSite: http.SameSiteLaxMode}
}

// StateBound reports whether a callback request carries the state that
// this browser's sign-in started with (the login cookie). It says nothing
// about whether that sign-in will succeed.
func StateBound(r *http.Request) bool {
	state := r.URL.Query().Get("state")
	c, err := r.Cookie(loginCookie)
	return state != "" && err == nil && subtle.ConstantTimeCompare([]byte(c.Value), []byte(state)) == 1
}

// LoginResult is a finished sign-in.
type LoginResult struct {
	Session  Session
	Cookie   *http.Cookie
	ReturnTo string
}

// FinishLogin handles the IdP's redirect back. Every failure is a *Refusal
// (audited here); on success the new session is stored and its cookie
// returned. A refused sign-in creates no session.
func (s *Service) FinishLogin(ctx context.Context, r *http.Request) (LoginResult, error) {
	res, claims, ref := s.finishLogin(ctx, r)
	ip := ClientIP(r)
	if ref != nil {
		detail := audit.Login{Reason: ref.Code}
		if claims.Subject != "" {
			detail.Email = claims.Email
		}
		s.audit(ctx, store.AuditEntry{ActorSub: claims.Subject, ActorName: claims.Name, Action: audit.LoginRefused, Target: claims.Subject, Detail: audit.Encode(detail), RemoteIP: ip})
		s.log.Info("sign-in refused", slog.String("reason", ref.Code), slog.String("sub", claims.Subject))
		return LoginResult{}, ref
	}
	id := res.Session.Identity
	s.audit(ctx, store.AuditEntry{ActorSub: id.Subject, ActorName: id.Name, Action: audit.LoginAccepted, Target: id.Subject,
		Detail: audit.Encode(audit.Login{Roles: roleNames(id.Roles), Withheld: roleNames(id.Withheld), Email: id.Email, AMR: res.Session.AMR}), RemoteIP: ip})
	return res, nil
}

func (s *Service) finishLogin(ctx context.Context, r *http.Request) (LoginResult, Claims, *Refusal) {
	q := r.URL.Query()
	retry := "Go back to the start page and sign in again."
	state := q.Get("state")
	c, err := r.Cookie(loginCookie)
	if state == "" || err != nil || subtle.ConstantTimeCompare([]byte(c.Value), []byte(state)) != 1 {
		return LoginResult{}, Claims{}, refuse(RefuseState, "This sign-in link has expired or was started in another browser.", retry)
	}
	ls, err := s.store.TakeLoginState(ctx, hashToken(state), s.cfg.Now(), loginStateLifetime)
	if err != nil {
		return LoginResult{}, Claims{}, refuse(RefuseState, "This sign-in link has expired or was already used.", retry)
	}
	if e := q.Get("error"); e != "" {
		return LoginResult{}, Claims{}, refuse(RefuseIdPError, fmt.Sprintf("Your school's sign-in service did not sign you in (%s).", truncate(e, 64)), retry)
	}
	code := q.Get("code")
	if code == "" {
		return LoginResult{}, Claims{}, refuse(RefuseExchange, "The sign-in service sent no sign-in code.", retry)
	}
	octx := oidc.ClientContext(ctx, s.cfg.HTTPClient)
	tok, err := s.oauth.Exchange(octx, code, oauth2.VerifierOption(ls.PKCEVerifier))
	if err != nil {
		s.log.Warn("code exchange failed", slog.Any("err", err))
		return LoginResult{}, Claims{}, refuse(RefuseExchange, "Your school's sign-in service could not complete the sign-in.", retry)
	}
	rawID, _ := tok.Extra("id_token").(string)
	if rawID == "" {
		return LoginResult{}, Claims{}, refuse(RefuseToken, "The sign-in service sent no identity token.", askIT)
	}
	idt, err := s.verifier.Verify(octx, rawID)
	if err != nil {
		s.log.Warn("ID token rejected", slog.Any("err", err))
		return LoginResult{}, Claims{}, refuse(RefuseToken, "The sign-in service's answer could not be verified.", askIT)
	}
	var payload json.RawMessage
	if err := idt.Claims(&payload); err != nil {
		return LoginResult{}, Claims{}, refuse(RefuseToken, "The sign-in service's answer could not be read.", askIT)
	}
	tc, err := ParseClaims(payload)
	if err != nil {
		return LoginResult{}, Claims{}, refuse(RefuseToken, "The sign-in service's answer could not be read.", askIT)
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(ls.Nonce)) != 1 {
		return LoginResult{}, tc.Claims, refuse(RefuseNonce, "The sign-in service's answer did not match this sign-in.", retry)
	}
	now := s.cfg.Now()
	if tc.IssuedAt.IsZero() || tc.IssuedAt.After(now.Add(maxClockSkew)) {
		return LoginResult{}, tc.Claims, refuse(RefuseIssuedAt, "The sign-in service's answer has a wrong time.", "Check the computer's clock, then sign in again. "+askIT)
	}
	if len(tc.Audience) > 1 && tc.AZP != s.cfg.ClientID {
		return LoginResult{}, tc.Claims, refuse(RefuseAudience, "The sign-in service's answer was meant for another application.", askIT)
	}
	if tc.Subject == "" {
		return LoginResult{}, tc.Claims, refuse(RefuseNoSubject, "Your school's sign-in service did not say who you are.", askIT)
	}
	if tc.GroupsOverage && s.cfg.Groups != nil {
		groups, err := s.cfg.Groups.MemberGroups(ctx, tc.Claims)
		if err != nil {
			s.log.Warn("group lookup for overage failed", slog.String("sub", tc.Subject), slog.Any("err", err))
			return LoginResult{}, tc.Claims, refuse(RefuseGroupsLookup, "Your school account is in so many groups that Microsoft Entra ID left them out of the sign-in, and chaperone could not look them up in Microsoft Graph.",
				"Try again in a minute. If it keeps happening, show this page to your school's IT admin: the gateway's log says what Microsoft Graph answered (the app registration needs the GroupMember.Read.All application permission with admin consent).")
		}
		tc.Groups = append(groups, tc.Groups...) // the roles claim (app roles) still counts
		tc.GroupsOverage = false
	}
	ident, ref := s.cfg.Policy.Check(tc.Claims)
	if ref != nil {
		return LoginResult{}, tc.Claims, ref
	}
	if !s.perAcct.Allow(ident.Issuer + "|" + ident.Subject) {
		return LoginResult{}, tc.Claims, refuse(RefuseTooMany, "There have been too many sign-ins to your account in the last minute.",
			"Wait a minute, then sign in again. If you did not try to sign in several times, tell your school's IT team.")
	}
	authTime := tc.AuthTime
	if ls.MaxAge > 0 && (authTime.IsZero() || now.Sub(authTime) > ls.MaxAge+maxClockSkew) {
		// The IdP ignored max_age (or sent no auth_time): the fresh sign-in
		// this was for did not happen, so no session comes of it.
		return LoginResult{}, tc.Claims, refuse(RefuseAuthTooOld, "chaperone asked your school's sign-in service to check your password again, and it did not confirm that it did.",
			"Sign out of your school account, then sign in again. "+askIT)
	}
	// Without auth_time the session's authentication time stays unknown
	// (zero): it never counts as a recent sign-in, so recordings ask for one
	// with max_age, which obliges the IdP to send auth_time.
	sess, cookie, err := s.createSession(ctx, ident, authTime, tc.AMR, now)
	if err != nil {
		s.log.Error("create session", slog.Any("err", err))
		return LoginResult{}, tc.Claims, refuse(RefuseInternal, "chaperone could not complete your sign-in.", "Try again in a minute. If it keeps happening, tell your school's IT team.")
	}
	return LoginResult{Session: sess, Cookie: cookie, ReturnTo: ls.ReturnTo}, tc.Claims, nil
}

func (s *Service) createSession(ctx context.Context, id Identity, authTime time.Time, amr []string, now time.Time) (Session, *http.Cookie, error) {
	raw := randomToken()
	sess := Session{ID: hashToken(raw), Identity: id, CSRFToken: randomToken(), AuthTime: authTime, AMR: amr, Created: now}
	roles := make([]string, len(id.Roles))
	for i, r := range id.Roles {
		roles[i] = string(r)
	}
	// The user row keeps the classes too (as of this sign-in), so checks
	// over known pupils (a look-alike name on the class list) see them; the
	// session's own groups get them afresh at every request.
	known := id.Groups
	if s.cfg.Memberships != nil && id.Has(RolePupil) {
		extra, err := s.cfg.Memberships.GroupsOf(ctx, id.Email)
		if err != nil {
			return Session{}, nil, fmt.Errorf("load class memberships: %w", err)
		}
		known = append(slices.Clip(known), extra...)
	}
	if err := s.store.UpsertUser(ctx, store.User{Issuer: id.Issuer, Subject: id.Subject, Name: id.Name, Email: id.Email, Roles: roles, Groups: known, LastSeen: now}); err != nil {
		return Session{}, nil, fmt.Errorf("record user: %w", err)
	}
	err := s.store.CreateWebSession(ctx, store.WebSession{ID: sess.ID, Issuer: id.Issuer, Subject: id.Subject, Name: id.Name, Email: id.Email,
		Roles: roles, Groups: id.Groups, CSRFToken: sess.CSRFToken, AuthTime: authTime, AMR: amr, Created: now, LastSeen: now, Expires: now.Add(s.cfg.SessionMax)})
	if err != nil {
		return Session{}, nil, fmt.Errorf("store session: %w", err)
	}
	return sess, s.sessionCookie(raw, int(s.cfg.SessionMax/time.Second)), nil
}

func (s *Service) sessionCookie(value string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: SessionCookie, Value: value, Path: "/", MaxAge: maxAge, HttpOnly: true, Secure: s.cfg.SecureCookies, SameSite: http.SameSiteLaxMode}
}

// ClearSessionCookie is the cookie that signs a browser out.
func (s *Service) ClearSessionCookie() *http.Cookie { return s.sessionCookie("", -1) }

// SessionFromRequest returns the signed-in session of r, or ErrNoSession.
func (s *Service) SessionFromRequest(r *http.Request) (*Session, error) {
	c, err := r.Cookie(SessionCookie)
	if err != nil || c.Value == "" || len(c.Value) > 128 {
		return nil, ErrNoSession
	}
	now := s.cfg.Now()
	ws, err := s.store.GetWebSession(r.Context(), hashToken(c.Value), now, s.cfg.SessionIdle)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrNoSession
	}
	if err != nil {
		return nil, fmt.Errorf("load session: %w", err)
	}
	if now.Sub(ws.LastSeen) > time.Minute {
		if err := s.store.TouchWebSession(r.Context(), ws.ID, now); err != nil {
			s.log.Warn("touch session", slog.Any("err", err))
		}
	}
	roles := make([]Role, len(ws.Roles))
	for i, r := range ws.Roles {
		roles[i] = Role(r)
	}
	// Roles the groups give but this sign-in did not unlock (no second
	// factor): shown to the person so they know why, never granted.
	var withheld []Role
	if all, ref := s.cfg.Policy.RolesOf(ws.Email, ws.Groups); ref == nil {
		for _, r := range all {
			if !slices.Contains(roles, r) {
				withheld = append(withheld, r)
			}
		}
	}
	groups := ws.Groups
	if s.cfg.Memberships != nil && slices.Contains(roles, RolePupil) {
		extra, err := s.cfg.Memberships.GroupsOf(r.Context(), ws.Email)
		if err != nil {
			return nil, fmt.Errorf("load class memberships: %w", err)
		}
		groups = append(slices.Clip(groups), extra...)
	}
	return &Session{ID: ws.ID, CSRFToken: ws.CSRFToken, AuthTime: ws.AuthTime, AMR: ws.AMR, Created: ws.Created,
		Identity: Identity{Issuer: ws.Issuer, Subject: ws.Subject, Name: ws.Name, Email: ws.Email, Roles: roles, Groups: groups, Withheld: withheld}}, nil
}

// Supersede deletes a browser's previous session when it signs in again, so
// the session ID changes at every sign-in and the old cookie is worthless.
func (s *Service) Supersede(ctx context.Context, old *Session) error {
	if err := s.store.DeleteWebSession(ctx, old.ID); err != nil {
		return fmt.Errorf("end previous session: %w", err)
	}
	return nil
}

// Logout deletes the session and audits it.
func (s *Service) Logout(ctx context.Context, sess *Session, ip string) error {
	if err := s.store.DeleteWebSession(ctx, sess.ID); err != nil {
		return fmt.Errorf("sign out: %w", err)
	}
	s.audit(ctx, store.AuditEntry{ActorSub: sess.Identity.Subject, ActorName: sess.Identity.Name, Action: audit.Logout, Target: sess.Identity.Subject, RemoteIP: ip})
	return nil
}

// CSRFField is the form field (and X-CSRF-Token the header) carrying the token.
const CSRFField = "csrf_token"

// CheckCSRF verifies the request's CSRF token against the session's.
func CheckCSRF(r *http.Request, sess *Session) error {
	tok := r.Header.Get("X-CSRF-Token")
	if tok == "" {
		tok = r.PostFormValue(CSRFField)
	}
	if sess == nil || tok == "" || subtle.ConstantTimeCompare([]byte(tok), []byte(sess.CSRFToken)) != 1 {
		return ErrCSRF
	}
	return nil
}

func (s *Service) audit(ctx context.Context, e store.AuditEntry) {
	e.Time = s.cfg.Now()
	if _, err := s.store.AppendAudit(ctx, e); err != nil {
		s.log.Error("audit append failed", slog.String("action", string(e.Action)), slog.Any("err", err))
	}
}

// SafeReturnTo keeps only local absolute paths, so a sign-in cannot be used
// to redirect someone off-site.
func SafeReturnTo(p string) string {
	u, err := url.Parse(p)
	if err != nil || p == "" || !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.HasPrefix(p, "/\\") || u.Host != "" || u.Scheme != "" {
		return "/"
	}
	return u.RequestURI()
}

// ClientIP is the request's remote address without the port.
func ClientIP(r *http.Request) string {
	h := r.RemoteAddr
	if i := strings.LastIndexByte(h, ':'); i > 0 {
		h = h[:i]
	}
	return strings.Trim(h, "[]")
}

func randomToken() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func hashToken(t string) string {
	h := sha256.Sum256([]byte(t))
	return hex.EncodeToString(h[:])
}

// roleNames are roles as the audit log writes them.
func roleNames(rs []Role) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = string(r)
	}
	return out
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// HasAny reports whether roles includes any of want.
func HasAny(roles []Role, want ...Role) bool {
	return slices.ContainsFunc(roles, func(r Role) bool { return slices.Contains(want, r) })
}
