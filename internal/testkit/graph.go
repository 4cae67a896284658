package testkit

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// FakeGraph is a stand-in for Microsoft Graph and the Entra token endpoint:
// it issues app tokens for one client ID and secret (client credentials) and
// answers /v1.0/users/{oid}/transitiveMemberOf/microsoft.graph.group with
// the groups set for that account, PageSize to a page.
type FakeGraph struct {
	URL          string // base URL (Graph's https://graph.microsoft.com)
	TokenURL     string
	ClientID     string
	ClientSecret string
	PageSize     int

	mu           sync.Mutex
	groups       map[string][]string
	tokenCalls   int
	listCalls    int
	issuedTokens map[string]bool
}

// NewFakeGraph starts a fake Graph on loopback, closed when the test ends.
func NewFakeGraph(t testing.TB, clientID, secret string) *FakeGraph {
	g := &FakeGraph{ClientID: clientID, ClientSecret: secret, PageSize: 999, groups: map[string][]string{}, issuedTokens: map[string]bool{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /tenant/oauth2/v2.0/token", g.token)
	mux.HandleFunc("GET /v1.0/users/{oid}/transitiveMemberOf/microsoft.graph.group", g.list)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	g.URL, g.TokenURL = srv.URL, srv.URL+"/tenant/oauth2/v2.0/token"
	return g
}

// SetGroups sets the group IDs of the account with object ID oid.
func (g *FakeGraph) SetGroups(oid string, ids []string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.groups[oid] = ids
}

// Calls returns how many tokens were issued and group pages listed.
func (g *FakeGraph) Calls() (tokens, lists int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.tokenCalls, g.listCalls
}

func (g *FakeGraph) token(w http.ResponseWriter, r *http.Request) {
	if r.PostFormValue("grant_type") != "client_credentials" || r.PostFormValue("client_id") != g.ClientID ||
		r.PostFormValue("client_secret") != g.ClientSecret || r.PostFormValue("scope") != "https://graph.microsoft.com/.default" {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret provided."})
		return
	}
	g.mu.Lock()
	g.tokenCalls++
	tok := randToken()
	g.issuedTokens[tok] = true
	g.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"token_type": "Bearer", "expires_in": 3599, "access_token": tok})
}

func (g *FakeGraph) list(w http.ResponseWriter, r *http.Request) {
	tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.issuedTokens[tok] {
		writeJSON(w, http.StatusUnauthorized, map[string]any{"error": map[string]string{"code": "InvalidAuthenticationToken", "message": "Access token is empty."}})
		return
	}
	g.listCalls++
	ids, ok := g.groups[r.PathValue("oid")]
	if !ok {
		writeJSON(w, http.StatusNotFound, map[string]any{"error": map[string]string{"code": "Request_ResourceNotFound", "message": "Resource does not exist."}})
		return
	}
	skip := 0
	if s := r.URL.Query().Get("$skiptoken"); s != "" {
		_ = json.Unmarshal([]byte(s), &skip)
	}
	end := min(skip+g.PageSize, len(ids))
	value := []map[string]string{}
	for _, id := range ids[skip:end] {
		value = append(value, map[string]string{"@odata.type": "#microsoft.graph.group", "id": id})
	}
	body := map[string]any{"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#directoryObjects", "value": value}
	if end < len(ids) {
		q := r.URL.Query()
		q.Set("$skiptoken", strings.TrimSpace(jsonInt(end)))
		body["@odata.nextLink"] = "http://" + r.Host + r.URL.Path + "?" + q.Encode()
	}
	writeJSON(w, http.StatusOK, body)
}

func jsonInt(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}
