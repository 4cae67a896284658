package auth

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode/utf8"
)

// Role mapping without a groups claim. Google Workspace ID tokens carry no
// groups, and some schools keep roles out of the IdP: the policy can then
// map a verified school e-mail address to roles by its domain (pupils often
// have their own sub-domain, such as pupils.school.sch.uk) or by a list of
// addresses (RoleList, read from a CSV file by ParseRoleList). The roles
// from groups, domains and the list add up; pupil with a staff role is still
// a conflict and refused.

// MaxRoleListBytes bounds a role list file: a school of 3,000 people needs
// about 150 kB.
const MaxRoleListBytes = 8 << 20

// ErrRoleList is wrapped by every error of ParseRoleList.
var ErrRoleList = errors.New("role list")

// knownRoles are the roles a role list or domain rule may give.
var knownRoles = []Role{RolePupil, RoleStaff, RoleSLT, RoleHead, RoleDSL, RoleAdmin}

// ParseRole reads a role name (pupil, staff, slt, head, dsl, admin).
func ParseRole(s string) (Role, bool) {
	r := Role(strings.ToLower(strings.TrimSpace(s)))
	return r, slices.Contains(knownRoles, r)
}

// ParseRoleList reads a role list: CSV with a header row naming the columns
// email and role (others are ignored, so an export from the Google Admin
// console with a role column added works), one row per person and role.
// A person may have several rows (head and dsl). Every row must be valid:
// one bad row refuses the file, naming its line.
func ParseRoleList(r io.Reader) (map[string][]Role, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxRoleListBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%w: read: %w", ErrRoleList, err)
	}
	if len(b) > MaxRoleListBytes {
		return nil, fmt.Errorf("%w: larger than %d MB", ErrRoleList, MaxRoleListBytes>>20)
	}
	if !utf8.Valid(b) {
		return nil, fmt.Errorf("%w: not UTF-8 text (save the file as CSV UTF-8)", ErrRoleList)
	}
	cr := csv.NewReader(strings.NewReader(strings.TrimPrefix(string(b), "\ufeff")))
	cr.FieldsPerRecord = -1
	header, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("%w: header row: %w", ErrRoleList, err)
	}
	emailCol, roleCol := -1, -1
	for i, h := range header {
		switch strings.ToLower(strings.TrimSpace(h)) {
		case "email", "email address", "email address [required]":
			emailCol = i
		case "role":
			roleCol = i
		}
	}
	if emailCol < 0 || roleCol < 0 {
		return nil, fmt.Errorf("%w: the header row must name the columns email and role", ErrRoleList)
	}
	out := map[string][]Role{}
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrRoleList, err)
		}
		line, _ := cr.FieldPos(0)
		if len(rec) <= max(emailCol, roleCol) {
			return nil, fmt.Errorf("%w: line %d: %d columns, the header has %d", ErrRoleList, line, len(rec), len(header))
		}
		email := strings.ToLower(strings.TrimSpace(rec[emailCol]))
		if at := strings.LastIndexByte(email, '@'); at <= 0 || at == len(email)-1 || strings.ContainsAny(email, " ,;<>") {
			return nil, fmt.Errorf("%w: line %d: %q is not an e-mail address", ErrRoleList, line, rec[emailCol])
		}
		role, ok := ParseRole(rec[roleCol])
		if !ok {
			return nil, fmt.Errorf("%w: line %d: %q is not a role (pupil, staff, slt, head, dsl, admin)", ErrRoleList, line, rec[roleCol])
		}
		if !slices.Contains(out[email], role) {
			out[email] = append(out[email], role)
		}
	}
	return out, nil
}

// emailDomain is the lower-case domain of an e-mail address, "" if none.
func emailDomain(email string) string {
	email = strings.ToLower(strings.TrimSpace(email))
	at := strings.LastIndexByte(email, '@')
	if at <= 0 || at == len(email)-1 {
		return ""
	}
	return email[at+1:]
}

// schoolDomain reports whether d is a domain of school accounts: allowed,
// or named by a domain rule.
func (p Policy) schoolDomain(d string) bool {
	return containsFold(p.AllowedDomains, d) || containsFold(p.PupilDomains, d) || containsFold(p.StaffDomains, d)
}

// RolesOf maps a school account to roles from its groups, its e-mail
// domain (PupilDomains, StaffDomains: the exact domain, so staff at
// school.sch.uk do not take in pupils at pupils.school.sch.uk) and the role
// list. An account given no role is refused, as is one that is both pupil
// and staff.
func (p Policy) RolesOf(email string, groups []string) ([]Role, *Refusal) {
	var roles []Role
	add := func(rs ...Role) {
		for _, r := range rs {
			if r == RoleSLT || r == RoleHead || r == RoleDSL {
				rs = append(rs, RoleStaff) // they are staff too
			}
		}
		for _, r := range rs {
			if !slices.Contains(roles, r) {
				roles = append(roles, r)
			}
		}
	}
	for _, g := range groups {
		if slices.Contains(p.HeadGroups, g) {
			add(RoleHead)
		}
		if slices.Contains(p.SLTGroups, g) {
			add(RoleSLT)
		}
		if slices.Contains(p.DSLGroups, g) {
			add(RoleDSL)
		}
		if slices.Contains(p.StaffGroups, g) {
			add(RoleStaff)
		}
		if slices.Contains(p.AdminGroups, g) {
			add(RoleAdmin)
		}
		if slices.Contains(p.PupilGroups, g) {
			add(RolePupil)
		}
	}
	if d := emailDomain(email); d != "" {
		if containsFold(p.PupilDomains, d) {
			add(RolePupil)
		}
		if containsFold(p.StaffDomains, d) {
			add(RoleStaff)
		}
		add(p.RoleList[strings.ToLower(strings.TrimSpace(email))]...)
	}
	if len(roles) == 0 {
		return nil, refuse(RefuseNoRole, "Your school account is not set up for live lessons: it is not in a pupil or staff group.", askIT)
	}
	if slices.Contains(roles, RolePupil) && len(roles) > 1 {
		return nil, refuse(RefuseRoleConflict, "Your school account is in both a pupil group and a staff group, so chaperone cannot tell which you are.", askIT)
	}
	slices.Sort(roles)
	return roles, nil
}
