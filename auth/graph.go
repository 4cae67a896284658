package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// GroupSource fetches the groups of an account whose ID token left them
// out (Entra ID group overage). The relying party calls it during the
// sign-in callback.
type GroupSource interface {
	MemberGroups(ctx context.Context, c Claims) ([]string, error)
}

// MembershipSource gives the groups a person has outside the IdP: the
// classes of an imported class list.
type MembershipSource interface {
	GroupsOf(ctx context.Context, email string) ([]string, error)
}

// Microsoft Graph defaults.
const (
	DefaultGraphURL = "https://graph.microsoft.com"
	graphScope      = "https://graph.microsoft.com/.default"
	// maxGraphPages bounds the paging through transitiveMemberOf (999
	// groups a page).
	maxGraphPages = 20
	maxGraphBody  = 4 << 20
)

// ErrGraph is wrapped by every error of the Graph client.
var ErrGraph = errors.New("microsoft graph")

// GraphConfig configures a Graph client. It signs in as the gateway's own
// app registration (client credentials flow), which needs the application
// permission GroupMember.Read.All with admin consent.
type GraphConfig struct {
	// TokenURL is the tenant's token endpoint,
	// https://login.microsoftonline.com/<tenant>/oauth2/v2.0/token.
	TokenURL     string
	BaseURL      string // "" means DefaultGraphURL
	ClientID     string
	ClientSecret string
	HTTPClient   *http.Client // nil means a client with a 15 s timeout
	Now          func() time.Time
}

// GraphTokenURL is the token endpoint of an Entra tenant.
func GraphTokenURL(tenant string) string {
	return "https://login.microsoftonline.com/" + url.PathEscape(tenant) + "/oauth2/v2.0/token"
}

// Graph looks up group memberships in Microsoft Graph. It is safe for
// concurrent use; its app token is cached until shortly before it expires.
type Graph struct {
	cfg  GraphConfig
	base *url.URL

	mu      sync.Mutex
	token   string
	expires time.Time
}

// NewGraph checks cfg and returns the client.
func NewGraph(cfg GraphConfig) (*Graph, error) {
	if cfg.BaseURL == "" {
		cfg.BaseURL = DefaultGraphURL
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 15 * time.Second}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	base, err := url.Parse(strings.TrimSuffix(cfg.BaseURL, "/"))
	if err != nil || (base.Scheme != "https" && base.Scheme != "http") || base.Host == "" {
		return nil, fmt.Errorf("%w: base URL %q is not an http(s) URL", ErrGraph, cfg.BaseURL)
	}
	if _, err := url.Parse(cfg.TokenURL); err != nil || cfg.TokenURL == "" {
		return nil, fmt.Errorf("%w: token URL %q is not a URL", ErrGraph, cfg.TokenURL)
	}
	if cfg.ClientID == "" || cfg.ClientSecret == "" {
		return nil, fmt.Errorf("%w: the app's client ID and secret are required", ErrGraph)
	}
	return &Graph{cfg: cfg, base: base}, nil
}

// MemberGroups returns the IDs of the groups the account (by its oid
// claim) belongs to, directly or through nested groups.
func (g *Graph) MemberGroups(ctx context.Context, c Claims) ([]string, error) {
	oid := strings.TrimSpace(c.ObjectID)
	if oid == "" || strings.ContainsAny(oid, "/?#") {
		return nil, fmt.Errorf("%w: the ID token has no usable oid claim", ErrGraph)
	}
	tok, err := g.appToken(ctx)
	if err != nil {
		return nil, err
	}
	next := g.base.String() + "/v1.0/users/" + url.PathEscape(oid) + "/transitiveMemberOf/microsoft.graph.group?$select=id&$top=999"
	var ids []string
	for page := 0; next != ""; page++ {
		if page == maxGraphPages {
			return nil, fmt.Errorf("%w: more than %d pages of groups", ErrGraph, maxGraphPages)
		}
		var body struct {
			Value []struct {
				ID string `json:"id"`
			} `json:"value"`
			Next string `json:"@odata.nextLink"`
		}
		if err := g.get(ctx, next, tok, &body); err != nil {
			return nil, err
		}
		for _, v := range body.Value {
			if v.ID != "" {
				ids = append(ids, v.ID)
			}
		}
		next = body.Next
		if next != "" {
			// The app token goes to Graph only, never to a host a reply names.
			u, err := url.Parse(next)
			if err != nil || u.Scheme != g.base.Scheme || u.Host != g.base.Host {
				return nil, fmt.Errorf("%w: next page link %q is not on %s", ErrGraph, next, g.base.Host)
			}
		}
	}
	return ids, nil
}

func (g *Graph) get(ctx context.Context, u, tok string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrGraph, err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Accept", "application/json")
	resp, err := g.cfg.HTTPClient.Do(req)
	if err != nil {
		return fmt.Errorf("%w: list groups: %w", ErrGraph, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxGraphBody))
	if err != nil {
		return fmt.Errorf("%w: list groups: %w", ErrGraph, err)
	}
	if resp.StatusCode != http.StatusOK {
		if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
			g.mu.Lock()
			g.token = "" // perhaps revoked, or consent withdrawn: fetch a new one next time
			g.mu.Unlock()
		}
		return fmt.Errorf("%w: list groups answered %s: %s (does the app have GroupMember.Read.All with admin consent?)", ErrGraph, resp.Status, graphError(b))
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%w: list groups: %w", ErrGraph, err)
	}
	return nil
}

// appToken returns the cached app token or fetches one.
func (g *Graph) appToken(ctx context.Context) (string, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.cfg.Now()
	if g.token != "" && now.Before(g.expires) {
		return g.token, nil
	}
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {g.cfg.ClientID}, "client_secret": {g.cfg.ClientSecret}, "scope": {graphScope}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, g.cfg.TokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrGraph, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := g.cfg.HTTPClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("%w: app token: %w", ErrGraph, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxGraphBody))
	if err != nil {
		return "", fmt.Errorf("%w: app token: %w", ErrGraph, err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%w: app token answered %s: %s", ErrGraph, resp.Status, graphError(b))
	}
	var t struct {
		AccessToken string          `json:"access_token"`
		ExpiresIn   json.RawMessage `json:"expires_in"`
	}
	if err := json.Unmarshal(b, &t); err != nil || t.AccessToken == "" {
		return "", fmt.Errorf("%w: app token: no access_token in the answer", ErrGraph)
	}
	secs, _ := strconv.Atoi(strings.Trim(string(t.ExpiresIn), `"`))
	if secs <= 0 {
		secs = 300
	}
	g.token, g.expires = t.AccessToken, now.Add(time.Duration(secs)*time.Second-time.Minute)
	return g.token, nil
}

// graphError picks the error code and message from a Graph or token
// endpoint answer, never echoing the whole body.
func graphError(b []byte) string {
	var e struct {
		Error json.RawMessage `json:"error"`
		Desc  string          `json:"error_description"`
	}
	if json.Unmarshal(b, &e) != nil {
		return "(no JSON error)"
	}
	var code string
	if json.Unmarshal(e.Error, &code) == nil {
		return truncate(code+": "+e.Desc, 200)
	}
	var obj struct{ Code, Message string }
	if json.Unmarshal(e.Error, &obj) == nil {
		return truncate(obj.Code+": "+obj.Message, 200)
	}
	return "(unknown error)"
}
