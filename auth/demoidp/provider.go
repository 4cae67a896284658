package demoidp

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/chaperone-edu/chaperone/auth"
)

// DefaultPassword is every demo account's password unless Config.Password is set.
const DefaultPassword = "oakfield"

// Client is a relying party registered with the provider. A client without a
// Secret is public and must use PKCE (S256); with a Secret it authenticates at
// the token endpoint with client_secret_basic or client_secret_post.
type Client struct {
	ID, Secret   string
	RedirectURIs []string // matched exactly; http is allowed
	// PostLogoutRedirectURIs are allowed as end_session post_logout_redirect_uri (optional).
	PostLogoutRedirectURIs []string
}

// Config configures a Provider.
type Config struct {
	Issuer   string // e.g. "http://localhost:8081"; http is allowed
	Users    []User // nil = SeedUsers()
	Password string // password for every user; "" means "oakfield"
	Clients  []Client
	Logger   *slog.Logger // nil = discard
}

// Provider is a running demo OpenID Provider. It is safe for concurrent use.
type Provider struct {
	issuer   string
	base     string // issuer path, "" at the root
	password string
	users    map[string]User // by normalised username
	st       *storage
	op       *op.Provider
	log      *slog.Logger
	handler  http.Handler
	failures *auth.Throttle // wrong passwords and codes per address
}

// maxFailures is how many wrong passwords or codes one address may send in
// a minute before the login form answers 429.
const maxFailures = 10

// New builds a provider with one fresh RS256 signing key.
func New(ctx context.Context, cfg Config) (*Provider, error) {
	iss, err := url.Parse(cfg.Issuer)
	if err != nil || (iss.Scheme != "http" && iss.Scheme != "https") || iss.Host == "" || iss.RawQuery != "" || iss.Fragment != "" {
		return nil, fmt.Errorf("demoidp: issuer %q must be an absolute http(s) URL", cfg.Issuer)
	}
	base := strings.TrimSuffix(iss.Path, "/")
	users := cfg.Users
	if users == nil {
		if users, err = SeedUsers(); err != nil {
			return nil, fmt.Errorf("demoidp: seed users: %w", err)
		}
	}
	if err := validateUsers(users); err != nil {
		return nil, fmt.Errorf("demoidp: %w", err)
	}
	clients, err := buildClients(cfg.Clients, base+loginPath)
	if err != nil {
		return nil, err
	}
	p := &Provider{issuer: cfg.Issuer, base: base, password: cfg.Password, users: map[string]User{}, log: cfg.Logger,
		failures: auth.NewThrottle(maxFailures, time.Minute, nil)}
	if p.password == "" {
		p.password = DefaultPassword
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	for _, u := range users {
		p.users[normUsername(u.Username)] = u
	}
	p.st = newStorage(users, clients)
	if err := p.RotateKey(); err != nil {
		return nil, err
	}

	conf := &op.Config{
		// AES key for op's opaque artefacts (authorization codes, bearer access tokens).
		CryptoKeyId:              "demoidp",
		DefaultLogoutRedirectURI: base + loggedOutPath,
		CodeMethodS256:           true,
		AuthMethodPost:           true,
		GrantTypeRefreshToken:    false,
		SupportedScopes:          []string{oidc.ScopeOpenID, oidc.ScopeProfile, oidc.ScopeEmail, groupsScope},
		SupportedClaims:          append(slices.Clone(op.DefaultSupportedClaims), "groups"),
	}
	if _, err := rand.Read(conf.CryptoKey[:]); err != nil {
		return nil, err
	}
	var opts []op.Option
	if iss.Scheme == "http" {
		opts = append(opts, op.WithAllowInsecure()) // op refuses an http issuer otherwise
	}
	if p.op, err = op.NewProvider(conf, p.st, op.StaticIssuer(cfg.Issuer), opts...); err != nil {
		return nil, fmt.Errorf("demoidp: %w", err)
	}

	mux := http.NewServeMux()
	// The login handler needs the issuer in its context for op.AuthCallbackURL.
	mux.Handle(loginPath, op.NewIssuerInterceptor(p.op.IssuerFromRequest).Handler(http.HandlerFunc(p.serveLogin)))
	mux.HandleFunc(loggedOutPath, serveLoggedOut)
	mux.Handle("/", p.op)
	p.handler = mux
	if base != "" {
		p.handler = http.StripPrefix(base, mux)
	}
	p.log.InfoContext(ctx, "demo identity provider ready", "issuer", cfg.Issuer, "users", len(users), "clients", len(clients))
	return p, nil
}

func buildClients(cs []Client, loginURL string) ([]*client, error) {
	if len(cs) == 0 {
		return nil, errors.New("demoidp: no clients")
	}
	seen := map[string]bool{}
	var out []*client
	for _, c := range cs {
		if c.ID == "" || seen[c.ID] {
			return nil, fmt.Errorf("demoidp: client id %q empty or duplicate", c.ID)
		}
		seen[c.ID] = true
		if len(c.RedirectURIs) == 0 {
			return nil, fmt.Errorf("demoidp: client %q has no redirect URIs", c.ID)
		}
		for _, r := range slices.Concat(c.RedirectURIs, c.PostLogoutRedirectURIs) {
			u, err := url.Parse(r)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Fragment != "" {
				return nil, fmt.Errorf("demoidp: client %q: redirect URI %q must be an absolute http(s) URL", c.ID, r)
			}
		}
		out = append(out, &client{
			id: c.ID, secret: c.Secret, loginPath: loginURL,
			redirects: slices.Clone(c.RedirectURIs), postLogout: slices.Clone(c.PostLogoutRedirectURIs),
		})
	}
	return out, nil
}

// Handler serves the provider; mount it at the root of the issuer URL.
func (p *Provider) Handler() http.Handler { return p.handler }

// Issuer returns the configured issuer URL.
func (p *Provider) Issuer() string { return p.issuer }

// RotateKey makes a new RSA key the signing key. Earlier keys stay in the
// JWKS, so tokens they signed still verify.
func (p *Provider) RotateKey() error {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return fmt.Errorf("demoidp: generate key: %w", err)
	}
	id := strings.ToLower(rand.Text()[:16])
	p.st.addKey(&signingKey{id: id, key: k})
	p.log.Info("demo identity provider signing key", "kid", id)
	return nil
}
