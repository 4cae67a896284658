package auth

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestRolesOf(t *testing.T) {
	t.Parallel()
	p := Policy{
		AllowedDomains: []string{"oakfield.sch.uk"},
		PupilGroups:    []string{"pupils"}, StaffGroups: []string{"staff"}, HeadGroups: []string{"head"},
		PupilDomains: []string{"pupils.oakfield.sch.uk"}, StaffDomains: []string{"oakfield.sch.uk"},
		RoleList: map[string][]Role{"m.okafor@oakfield.sch.uk": {RoleHead}, "h.murray@oakfield.sch.uk": {RoleDSL, RoleAdmin},
			"a.jones@pupils.oakfield.sch.uk": {RoleStaff}},
	}
	cases := []struct {
		name, email string
		groups      []string
		want        []Role
		refusal     string
	}{
		{"pupil by sub-domain", "z.lefevre@pupils.oakfield.sch.uk", nil, []Role{RolePupil}, ""},
		{"staff by domain", "s.whitfield@oakfield.sch.uk", nil, []Role{RoleStaff}, ""},
		{"domain is case-insensitive", "S.Whitfield@OAKFIELD.sch.uk", nil, []Role{RoleStaff}, ""},
		{"a parent domain does not take in the sub-domain", "x@year7.pupils.oakfield.sch.uk", nil, nil, RefuseNoRole},
		{"head by list, staff by domain", "m.okafor@oakfield.sch.uk", nil, []Role{RoleHead, RoleStaff}, ""},
		{"list with two roles", "h.murray@oakfield.sch.uk", nil, []Role{RoleAdmin, RoleDSL, RoleStaff}, ""},
		{"pupil domain and staff list conflict", "a.jones@pupils.oakfield.sch.uk", nil, nil, RefuseRoleConflict},
		{"groups still count", "x@other.example", []string{"head"}, []Role{RoleHead, RoleStaff}, ""},
		{"no rule matches", "x@other.example", []string{"chess-club"}, nil, RefuseNoRole},
		{"no e-mail, no groups", "", nil, nil, RefuseNoRole},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, ref := p.RolesOf(tc.email, tc.groups)
			if tc.refusal != "" {
				require.NotNil(t, ref)
				require.Equal(t, tc.refusal, ref.Code)
				return
			}
			require.Nil(t, ref)
			require.ElementsMatch(t, tc.want, got)
		})
	}
}

// TestCheckGoogleShape: a Google ID token has hd and no groups; the domain
// rules give the role, the hd claim must match tenant, and the pupil
// sub-domain counts as a school domain.
func TestCheckGoogleShape(t *testing.T) {
	t.Parallel()
	yes := true
	p := Policy{AllowedDomains: []string{"oakfield.sch.uk"}, Tenant: "oakfield.sch.uk",
		PupilDomains: []string{"pupils.oakfield.sch.uk"}, StaffDomains: []string{"oakfield.sch.uk"}}
	c := Claims{Subject: "1098", Email: "amelia.jones@pupils.oakfield.sch.uk", EmailVerified: &yes, GivenName: "Amelia", FamilyName: "Jones", HostedDomain: "oakfield.sch.uk"}
	id, ref := p.Check(c)
	require.Nil(t, ref)
	require.Equal(t, []Role{RolePupil}, id.Roles)
	c.HostedDomain = "elsewhere.sch.uk"
	_, ref = p.Check(c)
	require.NotNil(t, ref)
	require.Equal(t, RefuseTenant, ref.Code)
}

func TestCheckGroupsOverage(t *testing.T) {
	t.Parallel()
	p := Policy{AllowedDomains: []string{"oakfield.sch.uk"}, StaffGroups: []string{"g-staff"}}
	c := Claims{Subject: "s", Email: "s.whitfield@oakfield.sch.uk", GivenName: "Sarah", FamilyName: "Whitfield", GroupsOverage: true}
	_, ref := p.Check(c)
	require.NotNil(t, ref)
	require.Equal(t, RefuseGroupsOverage, ref.Code)
	require.Contains(t, ref.Action, "Groups assigned to the application")
	require.Contains(t, ref.Action, "GroupMember.Read.All")
	c.GroupsOverage, c.Groups = false, []string{"g-staff"}
	id, ref := p.Check(c)
	require.Nil(t, ref)
	require.Equal(t, []Role{RoleStaff}, id.Roles)
}

func TestParseClaimsOverage(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, payload string
		overage       bool
		err           bool
	}{
		{"claim names", `{"sub":"s","_claim_names":{"groups":"src1"},"_claim_sources":{"src1":{"endpoint":"https://graph.windows.net/t/users/o/getMemberObjects"}}}`, true, false},
		{"hasgroups", `{"sub":"s","hasgroups":true}`, true, false},
		{"hasgroups as string", `{"sub":"s","hasgroups":"true"}`, true, false},
		{"other distributed claim", `{"sub":"s","_claim_names":{"roles":"src1"}}`, false, false},
		{"plain groups", `{"sub":"s","groups":["a"]}`, false, false},
		{"claim names not an object", `{"sub":"s","_claim_names":"groups"}`, false, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseClaims([]byte(tc.payload))
			if tc.err {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.overage, got.GroupsOverage)
		})
	}
	got, err := ParseClaims([]byte(`{"sub":"s","oid":"0b1c-oid","hd":"oakfield.sch.uk"}`))
	require.NoError(t, err)
	require.Equal(t, "0b1c-oid", got.ObjectID)
	require.Equal(t, "oakfield.sch.uk", got.HostedDomain)
}

func TestParseRoleList(t *testing.T) {
	t.Parallel()
	good := "\ufeffEmail,Role,Notes\r\nM.Okafor@oakfield.sch.uk,head,\r\nm.okafor@oakfield.sch.uk,dsl,also DSL\r\nm.okafor@oakfield.sch.uk,head,dup\r\ns.whitfield@oakfield.sch.uk, Staff ,\r\n"
	list, err := ParseRoleList(strings.NewReader(good))
	require.NoError(t, err)
	require.Equal(t, map[string][]Role{"m.okafor@oakfield.sch.uk": {RoleHead, RoleDSL}, "s.whitfield@oakfield.sch.uk": {RoleStaff}}, list)

	// The Google Admin console's user export, with a role column added.
	google := "First Name [Required],Last Name [Required],Email Address [Required],Org Unit Path [Required],Role\nSarah,Whitfield,s.whitfield@oakfield.sch.uk,/Staff,staff\n"
	list, err = ParseRoleList(strings.NewReader(google))
	require.NoError(t, err)
	require.Equal(t, []Role{RoleStaff}, list["s.whitfield@oakfield.sch.uk"])

	bad := []struct{ name, in, want string }{
		{"no header columns", "mail,what\nx@y.z,staff\n", "must name the columns email and role"},
		{"unknown role", "email,role\nx@oakfield.sch.uk,janitor\n", `line 2: "janitor" is not a role`},
		{"not an address", "email,role\nx@oakfield.sch.uk,staff\nnobody,staff\n", `line 3: "nobody" is not an e-mail address`},
		{"short row", "email,notes,role\nx@oakfield.sch.uk\n", "line 2: 1 columns"},
		{"latin-1", "email,role\nzo\xeb@oakfield.sch.uk,pupil\n", "not UTF-8"},
		{"empty", "", "header row"},
		{"too big", "email,role\n" + strings.Repeat("x", MaxRoleListBytes), "larger than"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseRoleList(strings.NewReader(tc.in))
			require.ErrorIs(t, err, ErrRoleList)
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func FuzzParseRoleList(f *testing.F) {
	f.Add("email,role\nm.okafor@oakfield.sch.uk,head\n")
	f.Add("\ufeffEmail Address [Required],Role\nx@y.z,staff\nx@y.z,dsl\n")
	f.Add("role,email\n\"staff\",\"a@b\"\"c\"\n")
	f.Fuzz(func(t *testing.T, in string) {
		list, err := ParseRoleList(strings.NewReader(in))
		if err != nil {
			return
		}
		for email, roles := range list {
			if email != strings.ToLower(email) || !strings.Contains(email, "@") || len(roles) == 0 {
				t.Fatalf("bad entry %q: %v", email, roles)
			}
			for _, r := range roles {
				if _, ok := ParseRole(string(r)); !ok {
					t.Fatalf("unknown role %q", r)
				}
			}
		}
	})
}
