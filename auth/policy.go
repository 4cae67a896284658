package auth

import (
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Role is what a signed-in person may do. A person can hold several roles:
// the headteacher holds head and staff.
type Role string

// The roles chaperone knows. slt, head and dsl are always also staff.
const (
	RolePupil Role = "pupil"
	RoleStaff Role = "staff"
	RoleSLT   Role = "slt"
	RoleHead  Role = "head"
	RoleDSL   Role = "dsl"
	RoleAdmin Role = "admin"
)

// EntraConsumerTenant is Microsoft's tenant for personal accounts. It is never
// a school.
const EntraConsumerTenant = "9188040d-6c67-4c5b-b112-36a304b66dad"

// DefaultPlaceholderWords are words that mark a name as a placeholder rather
// than a person's name. A name containing any of them is refused; a school
// whose pupil really is called "Guest" removes the word in configuration.
var DefaultPlaceholderWords = []string{
	"student", "students", "pupil", "pupils", "guest", "user", "test", "tester", "anonymous", "anon",
	"ipad", "chromebook", "laptop", "device", "unknown", "account", "demo", "temp", "temporary",
	"admin", "administrator", "teacher", "staff", "class", "classroom", "nobody", "none", "null",
	"name", "firstname", "lastname", "surname", "first", "last", "tbc", "default", "example",
}

// Claims are the facts about a person taken from a verified ID token.
type Claims struct {
	Issuer        string
	Subject       string
	Email         string
	EmailVerified *bool // nil when the IdP did not say
	Name          string
	GivenName     string
	FamilyName    string
	Groups        []string // groups claim, and roles claim (Entra app roles)
	TenantID      string   // Entra "tid"
	HostedDomain  string   // Google "hd"
	ObjectID      string   // Entra "oid": the account's object ID in Microsoft Graph
	// GroupsOverage is set when Entra ID left the groups out because the
	// account is in too many (the _claim_names or hasgroups overage marker).
	// The relying party fetches them from Microsoft Graph, when it may, and
	// clears it; the policy refuses a sign-in that still has it.
	GroupsOverage bool
	AMR           []string
	ACR           string
}

// Policy is the school's identity policy.
type Policy struct {
	AllowedDomains   []string // e-mail domains of school accounts; required
	Tenant           string   // when set, tid or hd must equal it
	PlaceholderWords []string // nil means DefaultPlaceholderWords
	PupilGroups      []string
	StaffGroups      []string
	SLTGroups        []string
	HeadGroups       []string
	DSLGroups        []string
	AdminGroups      []string
	// PupilDomains and StaffDomains give the pupil or staff role to every
	// school account whose e-mail domain is one of them (exactly: a
	// sub-domain is listed on its own). They are school domains too.
	PupilDomains []string
	StaffDomains []string
	// RoleList gives roles to e-mail addresses (lower case), for schools
	// whose IdP sends no groups (Google Workspace); see ParseRoleList.
	RoleList map[string][]Role
	// MFARoles are the roles that need a multi-factor sign-in (amr contains
	// "mfa", or acr is one of MFAACR). Without it the person is signed in
	// with their other roles only. nil means DefaultMFARoles; an empty,
	// non-nil slice means no role needs it.
	MFARoles []Role
	// MFAACR are acr values that also count as multi-factor.
	MFAACR []string
}

// DefaultMFARoles are the roles with access to sensitive data: recordings,
// concerns, the audit log, approvals.
var DefaultMFARoles = []Role{RoleDSL, RoleHead, RoleAdmin}

// Identity is a person the policy accepted.
type Identity struct {
	Issuer  string
	Subject string
	Name    string // verified full name: the display name everywhere
	Email   string
	Roles   []Role
	Groups  []string // the IdP groups as sent (class rosters match on them)
	// Withheld are roles the person's groups give but this sign-in did not
	// unlock: they need a multi-factor sign-in.
	Withheld []Role
}

// Has reports whether the identity holds role r.
func (id Identity) Has(r Role) bool { return slices.Contains(id.Roles, r) }

// Refusal codes: why a sign-in was refused. They are stable (audit rows and
// tests use them).
const (
	RefuseNoSubject       = "no_subject"
	RefuseNoEmail         = "no_email"
	RefuseEmailUnverified = "email_unverified"
	RefuseDomain          = "domain_not_allowed"
	RefuseConsumerTenant  = "personal_microsoft_account"
	RefuseTenant          = "wrong_tenant"
	RefuseNameMissing     = "name_missing"
	RefuseNameOneWord     = "name_one_word"
	RefuseNameDigits      = "name_has_digits"
	RefuseNameEmail       = "name_is_email"
	RefuseNameChars       = "name_invalid_characters"
	RefuseNameLong        = "name_too_long"
	RefuseNameInvisible   = "name_invisible_letters"
	RefuseNameMixed       = "name_mixed_scripts"
	RefuseNamePlaceholder = "name_placeholder"
	RefuseNoRole          = "no_role"
	RefuseRoleConflict    = "role_conflict"
	RefuseMFARequired     = "mfa_required"
	RefuseGroupsOverage   = "groups_overage"
	RefuseGroupsLookup    = "groups_lookup_failed"
)

// Refusal explains, in words for the person refused, why they cannot sign in.
type Refusal struct {
	Code    string // one of the Refuse* codes
	Message string // what happened, in plain words
	Action  string // what to do about it
}

func (r *Refusal) Error() string { return "sign-in refused: " + r.Code }

const askIT = "Please ask your school's IT team to check your school account."

// GroupsOverageAction tells the person, and their IT admin, how to fix an
// Entra ID group overage.
const GroupsOverageAction = "Please show this page to your school's IT admin. In the Microsoft Entra admin centre, under App registrations → chaperone → Token configuration, edit the groups claim to send “Groups assigned to the application” and assign the pupil and staff groups to the chaperone enterprise application (or map roles with app roles, which have no limit). Alternatively, let chaperone look the groups up in Microsoft Graph: set group_overage=graph and grant the app registration the GroupMember.Read.All application permission with admin consent."

func refuse(code, msg, action string) *Refusal {
	return &Refusal{Code: code, Message: msg, Action: action}
}

// Check applies the policy to verified claims. It returns the identity, or a
// refusal saying why not.
func (p Policy) Check(c Claims) (Identity, *Refusal) {
	if strings.TrimSpace(c.Subject) == "" {
		return Identity{}, refuse(RefuseNoSubject, "Your school's sign-in service did not say who you are.", askIT)
	}
	if r := p.checkAccount(c); r != nil {
		return Identity{}, r
	}
	name, r := p.FullName(c)
	if r != nil {
		return Identity{}, r
	}
	if c.GroupsOverage {
		return Identity{}, refuse(RefuseGroupsOverage, "Your school account is in so many groups that Microsoft Entra ID left the list of groups out of the sign-in, so chaperone cannot tell whether you are a pupil or staff.",
			GroupsOverageAction)
	}
	roles, r := p.RolesOf(c.Email, c.Groups)
	if r != nil {
		return Identity{}, r
	}
	roles, withheld := p.ApplyMFA(roles, c.AMR, c.ACR)
	if len(roles) == 0 {
		return Identity{}, refuse(RefuseMFARequired, "Your account needs a second factor: you signed in with your password only.",
			"Sign in again and give your one-time code (or approve the sign-in on your phone). If you have no second factor, ask your school's IT team to set one up.")
	}
	return Identity{Issuer: c.Issuer, Subject: c.Subject, Name: name, Email: strings.ToLower(strings.TrimSpace(c.Email)), Roles: roles, Groups: c.Groups, Withheld: withheld}, nil
}

// MultiFactor reports whether a sign-in with these amr and acr values counts
// as multi-factor under the policy.
func (p Policy) MultiFactor(amr []string, acr string) bool {
	if slices.Contains(amr, "mfa") {
		return true
	}
	return acr != "" && slices.Contains(p.MFAACR, acr)
}

// ApplyMFA splits roles into those this sign-in unlocks and those withheld
// because they need a multi-factor sign-in it did not have. The staff role
// that comes with a withheld head or DSL role stays: a headteacher without
// a second factor can still teach.
func (p Policy) ApplyMFA(roles []Role, amr []string, acr string) (kept, withheld []Role) {
	need := p.MFARoles
	if need == nil {
		need = DefaultMFARoles
	}
	if p.MultiFactor(amr, acr) {
		return roles, nil
	}
	if slices.Contains(need, RoleStaff) {
		// Head, senior leaders and the DSL are staff too: requiring a
		// second factor of staff requires it of them.
		need = append(slices.Clone(need), RoleHead, RoleSLT, RoleDSL)
	}
	if slices.Contains(need, RoleHead) {
		// A senior leader's one power is approving for the head under a
		// delegation: it needs what the head's role needs.
		need = append(slices.Clone(need), RoleSLT)
	}
	for _, r := range roles {
		if slices.Contains(need, r) {
			withheld = append(withheld, r)
		} else {
			kept = append(kept, r)
		}
	}
	return kept, withheld
}

func (p Policy) checkAccount(c Claims) *Refusal {
	if c.TenantID == EntraConsumerTenant {
		return refuse(RefuseConsumerTenant, "You signed in with a personal Microsoft account. Only school accounts can join lessons.",
			"Sign out of your personal account and sign in with your school account.")
	}
	email := strings.ToLower(strings.TrimSpace(c.Email))
	at := strings.LastIndexByte(email, '@')
	if email == "" || at <= 0 || at == len(email)-1 {
		return refuse(RefuseNoEmail, "Your account has no school e-mail address.", askIT)
	}
	if c.EmailVerified != nil && !*c.EmailVerified {
		return refuse(RefuseEmailUnverified, "Your account's e-mail address has not been verified.", askIT)
	}
	domain := email[at+1:]
	if !p.schoolDomain(domain) {
		return refuse(RefuseDomain, fmt.Sprintf("%s is not a school account for this school.", email),
			"Sign in with your school account (the one your school gave you), not a personal one.")
	}
	if p.Tenant != "" {
		got := c.TenantID
		if got == "" {
			got = c.HostedDomain
		}
		if !strings.EqualFold(got, p.Tenant) {
			return refuse(RefuseTenant, "This account does not belong to this school's organisation.",
				"Sign in with your school account. "+askIT)
		}
	}
	return nil
}

// FullName returns the verified full name from the claims: given and family
// name when both are present, otherwise name, NFKC-normalised. It refuses
// anonymous, one-word, e-mail-like and placeholder names, and names built to
// mislead: blank-looking (filler letters), longer than MaxNameRunes, a word
// mixing Latin, Cyrillic or Greek letters, a letter under a heap of marks.
func (p Policy) FullName(c Claims) (string, *Refusal) {
	raw := c.Name
	if g, f := strings.TrimSpace(c.GivenName), strings.TrimSpace(c.FamilyName); g != "" && f != "" {
		raw = g + " " + f
	}
	fixName := "Your school account needs your full name (first name and surname). " + askIT
	tooLong := refuse(RefuseNameLong, fmt.Sprintf("Your school account's name is longer than %d characters, far longer than a person's name.", MaxNameRunes), fixName)
	if len(raw) > maxNameBytes {
		return "", tooLong
	}
	words := strings.Fields(normaliseName(raw))
	name := strings.Join(words, " ")
	switch {
	case len(words) == 0:
		return "", refuse(RefuseNameMissing, "Your school account has no name.", fixName)
	case utf8.RuneCountInString(name) > MaxNameRunes:
		return "", tooLong
	case strings.ContainsFunc(name, invisible):
		return "", refuse(RefuseNameInvisible, "Your school account's name has letters that show as blank space, so staff could not see who you are.", fixName)
	case strings.ContainsRune(name, '@'):
		return "", refuse(RefuseNameEmail, "Your school account's name is an e-mail address, not your full name.", fixName)
	case strings.ContainsFunc(name, unicode.IsDigit):
		return "", refuse(RefuseNameDigits, fmt.Sprintf("The name %q has numbers in it, so it does not look like a person's full name.", name), fixName)
	}
	for _, w := range words {
		if !validNameWord(w) || tooManyMarks(w) {
			return "", refuse(RefuseNameChars, fmt.Sprintf("The name %q has characters a person's name does not have.", name), fixName)
		}
		if mixesScripts(w) {
			return "", refuse(RefuseNameMixed, fmt.Sprintf("The name %q mixes alphabets in one word (say, a Cyrillic letter among Latin ones), so it could pass for someone else's name.", name), fixName)
		}
	}
	placeholders := p.PlaceholderWords
	if placeholders == nil {
		placeholders = DefaultPlaceholderWords
	}
	for _, w := range words {
		// By skeleton too: a Cyrillic "Тest" is still "Test".
		if bare := strings.Trim(w, "-'’"); containsFold(placeholders, bare) || containsFold(placeholders, NameSkeleton(bare)) {
			return "", refuse(RefuseNamePlaceholder, fmt.Sprintf("%q is a placeholder, not a person's full name.", name), fixName)
		}
	}
	if len(words) < 2 {
		return "", refuse(RefuseNameOneWord, fmt.Sprintf("Your school account's name is just %q. Lessons need your full name so staff know who you are.", name), fixName)
	}
	return name, nil
}

// validNameWord reports whether w is made of letters (with combining marks),
// hyphens and apostrophes, and has at least one letter: a word of marks
// alone is not one.
func validNameWord(w string) bool {
	letters := 0
	for _, r := range w {
		switch {
		case unicode.IsLetter(r):
			letters++
		case isMark(r), r == '-', r == '\'', r == '’':
		default:
			return false
		}
	}
	return letters > 0
}

// Roles maps the IdP's groups to chaperone roles (RolesOf without an
// e-mail address). An account in no mapped group is refused, as is one
// mapped both to pupil and to a staff role.
func (p Policy) Roles(groups []string) ([]Role, *Refusal) { return p.RolesOf("", groups) }

// RoleLabel is how a person's main role is shown ("teacher", "headteacher").
func RoleLabel(roles []Role) string {
	for _, c := range []struct {
		r     Role
		label string
	}{{RoleHead, "headteacher"}, {RoleDSL, "designated safeguarding lead"}, {RoleSLT, "senior leader"}, {RoleStaff, "teacher"}, {RoleAdmin, "IT admin"}, {RolePupil, "pupil"}} {
		if slices.Contains(roles, c.r) {
			return c.label
		}
	}
	return "no role"
}

// RoleNames lists each role's label: "headteacher and designated
// safeguarding lead".
func RoleNames(roles []Role) string {
	var names []string
	for _, r := range roles {
		names = append(names, RoleLabel([]Role{r}))
	}
	switch len(names) {
	case 0:
		return ""
	case 1:
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}

func containsFold(list []string, s string) bool {
	for _, v := range list {
		if strings.EqualFold(v, s) {
			return true
		}
	}
	return false
}
