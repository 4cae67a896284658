package web_test

import (
	"context"
	"fmt"
	"html"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/chaperone-edu/chaperone/auth"
	"github.com/chaperone-edu/chaperone/auth/demoidp"
	"github.com/chaperone-edu/chaperone/internal/testkit"
	"github.com/chaperone-edu/chaperone/store"
)

// googleUsers are shaped as Google Workspace sends them: hd, no groups.
var googleUsers = []demoidp.User{
	{Username: "g-pupil", Sub: "110248495921238986420", GivenName: "Amelia", FamilyName: "Jones", Email: "a.jones@pupils.oakfield.example", EmailVerified: true, HostedDomain: "oakfield.example", NoGroups: true},
	{Username: "g-teacher", Sub: "110248495921238986421", GivenName: "Sarah", FamilyName: "Whitfield", Email: "s.whitfield@oakfield.example", EmailVerified: true, HostedDomain: "oakfield.example", NoGroups: true},
	{Username: "g-other", Sub: "110248495921238986422", GivenName: "Eve", FamilyName: "Stranger", Email: "e.stranger@oakfield.example", EmailVerified: true, HostedDomain: "elsewhere.example", NoGroups: true},
}

// TestGoogleShapedTokenRoleByDomain signs in through the demo IdP with
// Google-shaped tokens: the role comes from the e-mail domain, and hd must
// be the school's Workspace domain.
func TestGoogleShapedTokenRoleByDomain(t *testing.T) {
	t.Parallel()
	pol := auth.Policy{AllowedDomains: []string{"oakfield.example"}, Tenant: "oakfield.example",
		PupilDomains: []string{"pupils.oakfield.example"}, StaffDomains: []string{"oakfield.example"}}
	gw := testkit.StartGateway(t, testkit.GatewayOptions{Policy: &pol, ExtraUsers: googleUsers})
	for _, tc := range []struct{ user, name, label, refusal string }{
		{user: "g-pupil", name: "Amelia Jones", label: "pupil"},
		{user: "g-teacher", name: "Sarah Whitfield", label: "teacher"},
		{user: "g-other", refusal: auth.RefuseTenant},
	} {
		t.Run(tc.user, func(t *testing.T) {
			c := testkit.CookieClient(t)
			status, body := testkit.Login(t, c, gw.URL, tc.user, testkit.DemoPassword, "")
			if tc.refusal != "" {
				require.Equal(t, http.StatusForbidden, status, body)
				require.Contains(t, body, "<code>"+tc.refusal+"</code>")
				return
			}
			require.Equal(t, http.StatusOK, status, body)
			require.Contains(t, html.UnescapeString(body), "Signed in as <strong>"+tc.name+"</strong> ("+tc.label+")")
		})
	}
}

// entraTeacher is in more groups than an Entra ID token carries: the token
// has the overage marker instead.
var entraTeacher = demoidp.User{Username: "e-teacher", Sub: "AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ", GivenName: "James", FamilyName: "Patel",
	Email: "j.patel@oakfield.example", EmailVerified: true, TenantID: "5b9d7c8e-1f2a-4b3c-9d8e-7f6a5b4c3d2e", ObjectID: "6f1e3a9c-0d2b-4e5f-8a7b-1c2d3e4f5a6b",
	GroupsOverage: true}

const entraStaffGroup = "0a1b2c3d-staff-4e5f-8a9b-0c1d2e3f4a5b"

func entraPolicy() auth.Policy {
	return auth.Policy{AllowedDomains: []string{"oakfield.example"}, Tenant: entraTeacher.TenantID,
		StaffGroups: []string{entraStaffGroup}, PupilGroups: []string{"0a1b2c3d-pupils-4e5f-8a9b-0c1d2e3f4a5b"}}
}

// TestEntraGroupOverageGraphLookup: the gateway looks the groups up in a
// fake Microsoft Graph with its own app credentials and maps them.
func TestEntraGroupOverageGraphLookup(t *testing.T) {
	t.Parallel()
	fg := testkit.NewFakeGraph(t, "chaperone", "test-secret")
	groups := []string{entraStaffGroup}
	for i := range 230 {
		groups = append(groups, fmt.Sprintf("11111111-2222-3333-4444-%012d", i))
	}
	fg.PageSize = 100
	fg.SetGroups(entraTeacher.ObjectID, groups)
	graph, err := auth.NewGraph(auth.GraphConfig{TokenURL: fg.TokenURL, BaseURL: fg.URL, ClientID: "chaperone", ClientSecret: "test-secret"})
	require.NoError(t, err)
	pol := entraPolicy()
	gw := testkit.StartGateway(t, testkit.GatewayOptions{Policy: &pol, ExtraUsers: []demoidp.User{entraTeacher}, Groups: graph})
	c := testkit.CookieClient(t)
	status, body := testkit.Login(t, c, gw.URL, "e-teacher", testkit.DemoPassword, "")
	require.Equal(t, http.StatusOK, status, body)
	require.Contains(t, html.UnescapeString(body), "Signed in as <strong>James Patel</strong> (teacher)")
	tokens, lists := fg.Calls()
	require.Equal(t, 1, tokens)
	require.Equal(t, 3, lists, "three pages of groups")

	// The Graph lookup failing (the account is not found) refuses, saying so.
	fg.SetGroups(entraTeacher.ObjectID, nil)
	fg2 := testkit.NewFakeGraph(t, "chaperone", "test-secret")
	graph2, err := auth.NewGraph(auth.GraphConfig{TokenURL: fg2.TokenURL, BaseURL: fg2.URL, ClientID: "chaperone", ClientSecret: "test-secret"})
	require.NoError(t, err)
	gw2 := testkit.StartGateway(t, testkit.GatewayOptions{Policy: &pol, ExtraUsers: []demoidp.User{entraTeacher}, Groups: graph2})
	status, body = testkit.Login(t, testkit.CookieClient(t), gw2.URL, "e-teacher", testkit.DemoPassword, "")
	require.Equal(t, http.StatusForbidden, status, body)
	require.Contains(t, body, "<code>"+auth.RefuseGroupsLookup+"</code>")
}

// TestEntraGroupOverageRefusedWithoutGraph: without Graph credentials the
// refusal page tells the IT admin what to change.
func TestEntraGroupOverageRefusedWithoutGraph(t *testing.T) {
	t.Parallel()
	pol := entraPolicy()
	gw := testkit.StartGateway(t, testkit.GatewayOptions{Policy: &pol, ExtraUsers: []demoidp.User{entraTeacher}})
	c := testkit.CookieClient(t)
	status, body := testkit.Login(t, c, gw.URL, "e-teacher", testkit.DemoPassword, "")
	require.Equal(t, http.StatusForbidden, status, body)
	text := html.UnescapeString(body)
	require.Contains(t, text, "<code>"+auth.RefuseGroupsOverage+"</code>")
	require.Contains(t, text, "Groups assigned to the application")
	require.Contains(t, text, "group_overage=graph")
	require.Contains(t, text, "GroupMember.Read.All")
	rows, err := gw.Store.ListAudit(context.Background(), store.AuditFilter{Action: "login.refused"})
	require.NoError(t, err)
	require.True(t, hasDetail(rows, "reason", auth.RefuseGroupsOverage))
}
