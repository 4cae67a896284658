package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/chaperone-edu/chaperone/auth"
)

// TestIdPGuideConfigs parses the example configuration of each IdP guide in
// deploy/idp (secret files replaced by temporary ones, the role file by the
// example beside it) and checks what the guide says it sets up.
func TestIdPGuideConfigs(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		guide string
		check func(t *testing.T, c Config)
	}{
		{"entra", func(t *testing.T, c Config) {
			require.Equal(t, groupOverageGraph, c.GroupOverage)
			require.Equal(t, "https://login.microsoftonline.com/"+c.Tenant+"/v2.0", c.OIDCIssuer, "issuer and tenant match")
			require.Equal(t, auth.GraphTokenURL(c.Tenant), c.GraphTokenURL)
			require.NotEmpty(t, c.RosterDir)
			for _, g := range [][]string{c.PupilGroups, c.StaffGroups, c.HeadGroups, c.DSLGroups} {
				require.Regexp(t, `^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`, g[0], "Entra groups are object IDs")
			}
		}},
		{"google", func(t *testing.T, c Config) {
			require.Equal(t, "https://accounts.google.com", c.OIDCIssuer)
			require.Empty(t, c.PupilGroups, "Google sends no groups")
			require.Equal(t, []string{"pupils.oakfield.sch.uk"}, c.PupilDomains)
			require.Equal(t, c.AllowedDomains[0], c.Tenant, "hd is the primary domain")
			require.Equal(t, []auth.Role{auth.RoleHead}, c.RoleList["m.okafor@oakfield.sch.uk"])
			require.ElementsMatch(t, []auth.Role{auth.RoleAdmin, auth.RoleStaff}, c.RoleList["t.briggs@oakfield.sch.uk"])
			// The policy the configuration makes maps a pupil and the head.
			p := auth.Policy{AllowedDomains: c.AllowedDomains, PupilDomains: c.PupilDomains, StaffDomains: c.StaffDomains, RoleList: c.RoleList}
			roles, ref := p.RolesOf("a.jones@pupils.oakfield.sch.uk", nil)
			require.Nil(t, ref)
			require.Equal(t, []auth.Role{auth.RolePupil}, roles)
			roles, ref = p.RolesOf("m.okafor@oakfield.sch.uk", nil)
			require.Nil(t, ref)
			require.Equal(t, []auth.Role{auth.RoleHead, auth.RoleStaff}, roles)
		}},
		{"keycloak", func(t *testing.T, c Config) {
			require.True(t, strings.HasSuffix(c.OIDCIssuer, "/realms/school"))
			require.Equal(t, []string{"pupils"}, c.PupilGroups)
			require.Equal(t, []string{"mfa"}, c.MFAACR)
		}},
	} {
		t.Run(tc.guide, func(t *testing.T) {
			t.Parallel()
			guide := readDeploy(t, filepath.Join("idp", tc.guide+".md"))
			require.Contains(t, guide, "("+tc.guide+".env)", "the guide links its configuration")
			env := dotEnv(t, readDeploy(t, filepath.Join("idp", tc.guide+".env")))
			// Every key the guide names is set in its example (or is one it
			// explains as an alternative).
			for _, k := range regexp.MustCompile(`CHAPERONE_[A-Z0-9_]+`).FindAllString(guide, -1) {
				if _, ok := env[k]; !ok {
					require.Contains(t, []string{"CHAPERONE_ROSTER_INTERVAL", "CHAPERONE_ROSTER_DIR", "CHAPERONE_PUPIL_DOMAINS", "CHAPERONE_STAFF_DOMAINS",
						"CHAPERONE_GROUP_OVERAGE", "CHAPERONE_PUPIL_GROUPS", "CHAPERONE_STAFF_GROUPS", "CHAPERONE_HEAD_GROUPS", "CHAPERONE_SLT_GROUPS", "CHAPERONE_DSL_GROUPS", "CHAPERONE_ADMIN_GROUPS",
						"CHAPERONE_MFA_ROLES", "CHAPERONE_MFA_ACR", "CHAPERONE_TENANT"}, k, "%s.md names %s, which %s.env does not set", tc.guide, k, tc.guide)
				}
			}
			dir := t.TempDir()
			for k, v := range env {
				switch {
				case k == "CHAPERONE_ROLE_FILE":
					env[k] = filepath.Join(deployDir, "idp", "roles.example.csv")
				case strings.HasSuffix(k, "_FILE"):
					p := filepath.Join(dir, strings.ToLower(k))
					require.NoError(t, os.WriteFile(p, []byte("placeholder\n"), 0o600))
					env[k] = p
					require.True(t, strings.HasPrefix(v, "/etc/chaperone/"), "%s: secrets live in /etc/chaperone", k)
				}
			}
			c, err := parseConfig("serve", nil, func(k string) string { return env[k] }, nil)
			require.NoError(t, err)
			tc.check(t, c)
		})
	}
}
