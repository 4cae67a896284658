package auth_test

import (
	"context"
	"fmt"
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
