package auth

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
	"golang.org/x/text/unicode/norm"
)

func ptr[T any](v T) *T { return &v }

var testPolicy = Policy{
	AllowedDomains: []string{"oakfield.example", "pupils.oakfield.example"},
	PupilGroups:    []string{"pupils"}, StaffGroups: []string{"staff"}, SLTGroups: []string{"slt"},
	HeadGroups: []string{"head"}, DSLGroups: []string{"dsl"}, AdminGroups: []string{"it-admins"},
}

func TestFullName(t *testing.T) {
	t.Parallel()
	cases := []struct {
		given, family, name string
		want, code          string
	}{
		{given: "Sarah", family: "Whitfield", want: "Sarah Whitfield"},
		{given: "Zoë", family: "O'Brien-Ng", want: "Zoë O'Brien-Ng"},
		{name: "Zoë O'Brien-Ng", want: "Zoë O'Brien-Ng"},
		{name: "  Mary   Anne  Smith ", want: "Mary Anne Smith"},
		{name: "José María García", want: "José María García"},
		{name: "Siobhán Ní Bhriain", want: "Siobhán Ní Bhriain"},
		{name: "Дмитрий Иванов", want: "Дмитрий Иванов"},
		{name: "D’Arcy Jones", want: "D’Arcy Jones"},
		{given: "Amelia", name: "Amelia Jones", want: "Amelia Jones"}, // family missing: use name
		{given: "Amelia", family: "Jones", name: "Student 1", want: "Amelia Jones"},
		{name: "", code: RefuseNameMissing},
		{name: "   ", code: RefuseNameMissing},
		{name: "Madonna", code: RefuseNameOneWord},
		{given: "Madonna", code: RefuseNameMissing},
		{name: "Student", code: RefuseNamePlaceholder},
		{name: "Guest", code: RefuseNamePlaceholder},
		{name: "iPad", code: RefuseNamePlaceholder},
		{name: "User 3", code: RefuseNameDigits},
		{name: "Student 12", code: RefuseNameDigits},
		{name: "Guest User", code: RefuseNamePlaceholder},
		{name: "Anonymous Pupil", code: RefuseNamePlaceholder},
		{name: "Unknown Person", code: RefuseNamePlaceholder},
		{name: "Test Account", code: RefuseNamePlaceholder},
		{given: "Year", family: "Student", code: RefuseNamePlaceholder},
		{name: "amelia.jones@oakfield.example", code: RefuseNameEmail},
		{name: "Amelia Jones@school", code: RefuseNameEmail},
		{name: "Amelia J0nes", code: RefuseNameDigits},
		{name: "Amelia ٣ Jones", code: RefuseNameDigits},
		{name: "Amelia_Jones Smith", code: RefuseNameChars},
		{name: "Amelia (Jones)", code: RefuseNameChars},
		{name: "<b>Amelia</b> Jones", code: RefuseNameChars},
		{name: "- '", code: RefuseNameChars},
		{name: "Amelia 🙂", code: RefuseNameChars},
	}
	for _, tc := range cases {
		got, ref := testPolicy.FullName(Claims{GivenName: tc.given, FamilyName: tc.family, Name: tc.name})
		if tc.code != "" {
			require.NotNil(t, ref, "%+v should be refused", tc)
			require.Equal(t, tc.code, ref.Code, "%+v", tc)
			require.NotEmpty(t, ref.Message)
			require.Contains(t, ref.Action, "IT team")
			continue
		}
		require.Nil(t, ref, "%+v: %v", tc, ref)
		require.Equal(t, tc.want, got)
	}
}

func TestPlaceholderWordsConfigurable(t *testing.T) {
	t.Parallel()
	p := testPolicy
	_, ref := p.FullName(Claims{Name: "Clare Guest"})
	require.NotNil(t, ref)
	p.PlaceholderWords = []string{"student", "ipad"}
	name, ref := p.FullName(Claims{Name: "Clare Guest"})
	require.Nil(t, ref)
	require.Equal(t, "Clare Guest", name)
	_, ref = p.FullName(Claims{Name: "IPAD Air"})
	require.NotNil(t, ref)
}

func TestCheckAccount(t *testing.T) {
	t.Parallel()
	base := Claims{Issuer: "https://idp", Subject: "s1", Email: "a.b@oakfield.example", EmailVerified: ptr(true), GivenName: "Ann", FamilyName: "Bell", Groups: []string{"staff"}, AMR: []string{"pwd", "mfa"}}
	with := func(f func(*Claims)) Claims { c := base; f(&c); return c }
	tenant := testPolicy
	tenant.Tenant = "0b3f-tenant"
	acr := testPolicy
	acr.MFAACR = []string{"possessionorinherence"}
	noMFA := testPolicy
	noMFA.MFARoles = []Role{}
	sltMFA := testPolicy
	sltMFA.MFARoles = []Role{RoleSLT}
	pwd := func(groups ...string) func(*Claims) {
		return func(c *Claims) { c.Groups, c.AMR = groups, []string{"pwd"} }
	}
	cases := []struct {
		name   string
		policy Policy
		c      Claims
		code   string
		roles  []Role
	}{
		{"teacher", testPolicy, base, "", []Role{RoleStaff}},
		{"email upper case", testPolicy, with(func(c *Claims) { c.Email = "A.B@OAKFIELD.EXAMPLE" }), "", []Role{RoleStaff}},
		{"verified not stated", testPolicy, with(func(c *Claims) { c.EmailVerified = nil }), "", []Role{RoleStaff}},
		{"second domain", testPolicy, with(func(c *Claims) { c.Email = "x@pupils.oakfield.example"; c.Groups = []string{"pupils"} }), "", []Role{RolePupil}},
		{"head", testPolicy, with(func(c *Claims) { c.Groups = []string{"staff", "head"} }), "", []Role{RoleHead, RoleStaff}},
		{"dsl only group", testPolicy, with(func(c *Claims) { c.Groups = []string{"dsl"} }), "", []Role{RoleDSL, RoleStaff}},
		{"admin", testPolicy, with(func(c *Claims) { c.Groups = []string{"it-admins"} }), "", []Role{RoleAdmin}},
		{"unmapped groups ignored", testPolicy, with(func(c *Claims) { c.Groups = []string{"year-8", "pupils"} }), "", []Role{RolePupil}},
		{"no subject", testPolicy, with(func(c *Claims) { c.Subject = "" }), RefuseNoSubject, nil},
		{"no email", testPolicy, with(func(c *Claims) { c.Email = "" }), RefuseNoEmail, nil},
		{"email no at", testPolicy, with(func(c *Claims) { c.Email = "ab.oakfield.example" }), RefuseNoEmail, nil},
		{"email trailing at", testPolicy, with(func(c *Claims) { c.Email = "ab@" }), RefuseNoEmail, nil},
		{"unverified", testPolicy, with(func(c *Claims) { c.EmailVerified = ptr(false) }), RefuseEmailUnverified, nil},
		{"personal domain", testPolicy, with(func(c *Claims) { c.Email = "ann@gmail.com" }), RefuseDomain, nil},
		{"lookalike domain", testPolicy, with(func(c *Claims) { c.Email = "ann@evil-oakfield.example" }), RefuseDomain, nil},
		{"suffix domain", testPolicy, with(func(c *Claims) { c.Email = "ann@oakfield.example.evil.com" }), RefuseDomain, nil},
		{"two ats", testPolicy, with(func(c *Claims) { c.Email = "ann@oakfield.example@gmail.com" }), RefuseDomain, nil},
		{"consumer tenant", testPolicy, with(func(c *Claims) { c.TenantID = EntraConsumerTenant }), RefuseConsumerTenant, nil},
		{"consumer tenant with tenant set", tenant, with(func(c *Claims) { c.TenantID = EntraConsumerTenant }), RefuseConsumerTenant, nil},
		{"right tenant", tenant, with(func(c *Claims) { c.TenantID = "0b3f-tenant" }), "", []Role{RoleStaff}},
		{"right hd", tenant, with(func(c *Claims) { c.HostedDomain = "0b3f-tenant" }), "", []Role{RoleStaff}},
		{"other tenant", tenant, with(func(c *Claims) { c.TenantID = "other" }), RefuseTenant, nil},
		{"no tenant claim", tenant, base, RefuseTenant, nil},
		{"one-word name", testPolicy, with(func(c *Claims) { c.GivenName, c.FamilyName, c.Name = "", "", "Ann" }), RefuseNameOneWord, nil},
		{"no group", testPolicy, with(func(c *Claims) { c.Groups = nil }), RefuseNoRole, nil},
		{"unmapped group only", testPolicy, with(func(c *Claims) { c.Groups = []string{"year-8"} }), RefuseNoRole, nil},
		{"group case differs", testPolicy, with(func(c *Claims) { c.Groups = []string{"Staff"} }), RefuseNoRole, nil},
		{"pupil and staff", testPolicy, with(func(c *Claims) { c.Groups = []string{"pupils", "staff"} }), RefuseRoleConflict, nil},
		// Multi-factor sign-in for sensitive roles (default dsl, head, admin).
		{"head without mfa teaches", testPolicy, with(pwd("staff", "head")), "", []Role{RoleStaff}},
		{"dsl without mfa teaches", testPolicy, with(pwd("dsl")), "", []Role{RoleStaff}},
		{"admin without mfa refused", testPolicy, with(pwd("it-admins")), RefuseMFARequired, nil},
		{"slt without mfa acts for no head", testPolicy, with(pwd("slt")), "", []Role{RoleStaff}},
		{"slt with mfa", testPolicy, with(func(c *Claims) { c.Groups = []string{"slt"} }), "", []Role{RoleSLT, RoleStaff}},
		{"teacher and pupil need none", testPolicy, with(pwd("pupils")), "", []Role{RolePupil}},
		{"amr without mfa value", testPolicy, with(func(c *Claims) { c.Groups, c.AMR = []string{"dsl"}, []string{"pwd", "otp"} }), "", []Role{RoleStaff}},
		{"no amr at all", testPolicy, with(func(c *Claims) { c.Groups, c.AMR = []string{"dsl"}, nil }), "", []Role{RoleStaff}},
		{"configured acr counts", acr, with(func(c *Claims) { c.Groups, c.AMR, c.ACR = []string{"dsl"}, nil, "possessionorinherence" }), "", []Role{RoleDSL, RoleStaff}},
		{"other acr does not", acr, with(func(c *Claims) { c.Groups, c.AMR, c.ACR = []string{"dsl"}, nil, "1" }), "", []Role{RoleStaff}},
		{"mfa roles none", noMFA, with(pwd("it-admins")), "", []Role{RoleAdmin}},
		{"mfa roles slt only", sltMFA, with(pwd("slt", "dsl")), "", []Role{RoleDSL, RoleStaff}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id, ref := tc.policy.Check(tc.c)
			if tc.code != "" {
				require.NotNil(t, ref)
				require.Equal(t, tc.code, ref.Code)
				require.Equal(t, Identity{}, id)
				return
			}
			require.Nil(t, ref, "%v", ref)
			require.Equal(t, tc.roles, id.Roles)
			require.Equal(t, "Ann Bell", id.Name)
			require.Equal(t, strings.ToLower(tc.c.Email), id.Email)
		})
	}
}

func TestRoleLabel(t *testing.T) {
	t.Parallel()
	require.Equal(t, "teacher", RoleLabel([]Role{RoleStaff}))
	require.Equal(t, "headteacher", RoleLabel([]Role{RoleStaff, RoleHead}))
	require.Equal(t, "pupil", RoleLabel([]Role{RolePupil}))
	require.Equal(t, "no role", RoleLabel(nil))
}

func TestSafeReturnTo(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"": "/", "/": "/", "/sessions?x=1": "/sessions?x=1", "//evil.com/x": "/", "https://evil.com": "/",
		"/\\evil.com": "/", "javascript:alert(1)": "/", "sessions": "/",
	} {
		require.Equal(t, want, SafeReturnTo(in), in)
	}
}

func TestParseClaims(t *testing.T) {
	t.Parallel()
	tc, err := ParseClaims([]byte(`{"iss":"i","sub":"s","aud":"c","iat":1700000000,"email":"a@b.c","email_verified":"true",
		"name":"A B","groups":"staff","roles":["head"],"amr":["pwd","mfa"],"tid":"t","auth_time":1700000000.5}`))
	require.NoError(t, err)
	require.Equal(t, []string{"c"}, tc.Audience)
	require.True(t, *tc.EmailVerified)
	require.Equal(t, []string{"staff", "head"}, tc.Groups)
	require.Equal(t, int64(1700000000), tc.IssuedAt.Unix())
	require.Equal(t, "t", tc.TenantID)

	tc, err = ParseClaims([]byte(`{"sub":"s","email_verified":false,"aud":["a","b"]}`))
	require.NoError(t, err)
	require.False(t, *tc.EmailVerified)
	require.Len(t, tc.Audience, 2)
	require.True(t, tc.IssuedAt.IsZero())

	for _, bad := range []string{`[]`, `{"email_verified":"maybe"}`, `{"groups":[1,2]}`, `{"iat":"yesterday"}`, `{"iat":-5}`, `{"aud":{}}`, `not json`} {
		_, err := ParseClaims([]byte(bad))
		require.Error(t, err, bad)
	}
}

func FuzzFullName(f *testing.F) {
	for _, s := range []string{"Sarah Whitfield", "Zoë O'Brien-Ng", "Student 12", "Madonna", "a@b", "  ", "Guest User", "Дмитрий Иванов",
		"\u3164 \u3164", "Аmelia Jones", "Ѕtudent Тest", "Amelia J\u0301\u0301\u0301\u0301\u0301ones", "Ｚｏë Ｏ'Ｂｒｉｅｎ", "Nguye\u0302\u0303n Anh", "सिद्धार्थ शर्मा"} {
		f.Add(s, "", "")
	}
	f.Add("", "Zoë", "Lefèvre")
	f.Fuzz(func(t *testing.T, name, given, family string) {
		got, ref := testPolicy.FullName(Claims{Name: name, GivenName: given, FamilyName: family})
		if ref != nil {
			if got != "" || ref.Code == "" || ref.Message == "" {
				t.Fatalf("refusal must have a code and message and no name: %q %+v", got, ref)
			}
			return
		}
		// An accepted name is at least two words, trimmed, with no digits, no @ and only letters, marks, - and '.
		if !utf8.ValidString(got) && utf8.ValidString(name+given+family) {
			t.Fatalf("invalid UTF-8 from valid input: %q", got)
		}
		words := strings.Fields(got)
		if len(words) < 2 || strings.Join(words, " ") != got {
			t.Fatalf("accepted %q: not two or more single-spaced words", got)
		}
		for _, w := range words {
			if !validNameWord(w) || containsFold(DefaultPlaceholderWords, strings.Trim(w, "-'’")) {
				t.Fatalf("accepted %q with bad word %q", got, w)
			}
			// Issue 18: no word mixing look-alike alphabets, no heap of marks.
			if mixesScripts(w) || tooManyMarks(w) || containsFold(DefaultPlaceholderWords, NameSkeleton(strings.Trim(w, "-'’"))) {
				t.Fatalf("accepted %q with deceptive word %q", got, w)
			}
		}
		// Issue 18: normalised, short, nothing that shows as blank.
		if !norm.NFKC.IsNormalString(got) || utf8.RuneCountInString(got) > MaxNameRunes || strings.ContainsFunc(got, invisible) {
			t.Fatalf("accepted %q: not NFKC, too long or with invisible letters", got)
		}
		if sk := NameSkeleton(got); NameSkeleton(sk) != sk {
			// The skeleton is a fixed point: once mapped, nothing maps further.
			t.Fatalf("skeleton of %q is not stable: %q, then %q", got, sk, NameSkeleton(sk))
		}
	})
}

func FuzzParseClaims(f *testing.F) {
	f.Add([]byte(`{"iss":"i","sub":"s","aud":["c"],"iat":1,"email":"a@b.c","email_verified":true,"groups":["staff"]}`))
	f.Add([]byte(`{"email_verified":"false","groups":"x","amr":null}`))
	f.Add([]byte(`{"iat":1e300}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		tc, err := ParseClaims(b)
		if err != nil {
			return
		}
		// Whatever parses must go through the policy without panicking.
		id, ref := testPolicy.Check(tc.Claims)
		if ref == nil && (id.Name == "" || len(id.Roles) == 0 || id.Subject == "") {
			t.Fatalf("accepted an identity without name, role or subject: %+v", id)
		}
	})
}

// TestWithheldRoles: a sign-in without a second factor names the roles it
// did not unlock, so the person can be told why.
func TestWithheldRoles(t *testing.T) {
	t.Parallel()
	c := Claims{Issuer: "https://idp", Subject: "s1", Email: "h.m@oakfield.example", GivenName: "Helen", FamilyName: "Murray", Groups: []string{"dsl", "head"}, AMR: []string{"pwd"}}
	id, ref := testPolicy.Check(c)
	require.Nil(t, ref)
	require.Equal(t, []Role{RoleStaff}, id.Roles)
	require.ElementsMatch(t, []Role{RoleDSL, RoleHead}, id.Withheld)
	c.AMR = []string{"pwd", "mfa", "otp"}
	id, ref = testPolicy.Check(c)
	require.Nil(t, ref)
	require.Equal(t, []Role{RoleDSL, RoleHead, RoleStaff}, id.Roles)
	require.Empty(t, id.Withheld)
}

func TestMFAStaffCoversSeniorRoles(t *testing.T) {
	t.Parallel()
	p := testPolicy
	p.MFARoles = []Role{RoleStaff}
	kept, withheld := p.ApplyMFA([]Role{RoleDSL, RoleHead, RoleStaff}, []string{"pwd"}, "")
	require.Empty(t, kept)
	require.ElementsMatch(t, []Role{RoleDSL, RoleHead, RoleStaff}, withheld)
	kept, _ = p.ApplyMFA([]Role{RolePupil}, []string{"pwd"}, "")
	require.Equal(t, []Role{RolePupil}, kept)
}
