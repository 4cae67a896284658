package auth_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/chaperone-edu/chaperone/auth"
	"github.com/chaperone-edu/chaperone/internal/testkit"
)

func TestGraphMemberGroups(t *testing.T) {
	t.Parallel()
	fg := testkit.NewFakeGraph(t, "chaperone-app", "app-secret")
	fg.PageSize = 100
	var many []string
	for i := range 250 {
		many = append(many, fmt.Sprintf("g-%03d", i))
	}
	fg.SetGroups("oid-teacher", many)
	g, err := auth.NewGraph(auth.GraphConfig{TokenURL: fg.TokenURL, BaseURL: fg.URL, ClientID: "chaperone-app", ClientSecret: "app-secret"})
	require.NoError(t, err)
	ctx := context.Background()
	got, err := g.MemberGroups(ctx, auth.Claims{ObjectID: "oid-teacher"})
	require.NoError(t, err)
	require.Equal(t, many, got, "all three pages")
	_, err = g.MemberGroups(ctx, auth.Claims{ObjectID: "oid-teacher"})
	require.NoError(t, err)
	tokens, lists := fg.Calls()
	require.Equal(t, 1, tokens, "the app token is cached")
	require.Equal(t, 6, lists)

	_, err = g.MemberGroups(ctx, auth.Claims{ObjectID: "oid-unknown"})
	require.ErrorIs(t, err, auth.ErrGraph)
	require.ErrorContains(t, err, "Request_ResourceNotFound")
	_, err = g.MemberGroups(ctx, auth.Claims{})
	require.ErrorContains(t, err, "no usable oid")

	wrong, err := auth.NewGraph(auth.GraphConfig{TokenURL: fg.TokenURL, BaseURL: fg.URL, ClientID: "chaperone-app", ClientSecret: "wrong"})
	require.NoError(t, err)
	_, err = wrong.MemberGroups(ctx, auth.Claims{ObjectID: "oid-teacher"})
	require.ErrorContains(t, err, "invalid_client")
	require.NotContains(t, err.Error(), "wrong", "the secret is never in an error")

	_, err = auth.NewGraph(auth.GraphConfig{TokenURL: fg.TokenURL, ClientID: "chaperone-app"})
	require.ErrorContains(t, err, "client ID and secret are required")
}

// TestGraphNextLinkStaysOnGraph: a page link to another host is refused,
// so the app token never leaves Graph.
func TestGraphNextLinkStaysOnGraph(t *testing.T) {
	t.Parallel()
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("the token went to %s", r.URL)
	}))
	defer evil.Close()
	var base string
	graph := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.Method == http.MethodPost {
			fmt.Fprint(w, `{"access_token":"tok","expires_in":"3600"}`)
			return
		}
		fmt.Fprintf(w, `{"value":[{"id":"g1"}],"@odata.nextLink":%q}`, evil.URL+"/v1.0/next")
	}))
	defer graph.Close()
	base = graph.URL
	g, err := auth.NewGraph(auth.GraphConfig{TokenURL: base + "/token", BaseURL: base, ClientID: "c", ClientSecret: "s"})
	require.NoError(t, err)
	_, err = g.MemberGroups(context.Background(), auth.Claims{ObjectID: "o"})
	require.ErrorContains(t, err, "is not on")
}
