package notify

import (
	"fmt"
	"net/mail"
	"slices"
	"sort"
	"strings"
)

// Recipient is a person to tell of a concern.
type Recipient struct {
	Email  string // lower case
	Name   string // "" when not known
	Reason string // why they are told, for the concern page
}

// Reasons a Recipient is told.
const (
	ReasonDSL = "safeguarding lead"
)

// ReasonYearLead is the reason of a year group's lead.
func ReasonYearLead(group string) string { return "year lead (" + group + ")" }

// YearLeads maps an IdP group of a year (e.g. "year-8") to the e-mail of that
// year's Director of Learning.
type YearLeads map[string]string

// ParseYearLeads reads "group=email,group=email". Every entry needs a group
// and a valid e-mail address; a group may appear once.
func ParseYearLeads(s string) (YearLeads, error) {
	out := YearLeads{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		group, email, ok := strings.Cut(part, "=")
		group, email = strings.TrimSpace(group), strings.TrimSpace(email)
		if !ok || group == "" || email == "" {
			return nil, fmt.Errorf("%q is not group=e-mail (e.g. year-8=j.lead@school.example)", part)
		}
		a, err := mail.ParseAddress(email)
		if err != nil || a.Address != email || a.Name != "" {
			return nil, fmt.Errorf("%q is not an e-mail address", email)
		}
		if _, dup := out[group]; dup {
			return nil, fmt.Errorf("group %q is given twice", group)
		}
		out[group] = strings.ToLower(email)
	}
	return out, nil
}

// ParseEmails reads a comma-separated list of bare e-mail addresses (such
// as dsl_emails), lower-cased, each once; "" is none.
func ParseEmails(s string) ([]string, error) {
	var out []string
	for _, part := range strings.Split(s, ",") {
		email := strings.TrimSpace(part)
		if email == "" {
			continue
		}
		a, err := mail.ParseAddress(email)
		if err != nil || a.Address != email || a.Name != "" {
			return nil, fmt.Errorf("%q is not an e-mail address (give bare addresses separated by commas)", email)
		}
		if email = strings.ToLower(email); !slices.Contains(out, email) {
			out = append(out, email)
		}
	}
	return out, nil
}

// Route returns who is told of a concern about pupils in pupilGroups (the
// IdP groups of every pupil it is about): every DSL, and the lead of each
// year group that a pupil is in. Each e-mail address appears once (its first
// reason wins), DSLs first, then leads by group.
func Route(dsls []Recipient, leads YearLeads, pupilGroups []string) []Recipient {
	var out []Recipient
	seen := map[string]bool{}
	add := func(r Recipient) {
		r.Email = strings.ToLower(strings.TrimSpace(r.Email))
		if r.Email == "" || seen[r.Email] {
			return
		}
		seen[r.Email] = true
		out = append(out, r)
	}
	for _, d := range dsls {
		d.Reason = ReasonDSL
		add(d)
	}
	groups := append([]string(nil), pupilGroups...)
	sort.Strings(groups)
	for _, g := range groups {
		if email, ok := leads[g]; ok {
			add(Recipient{Email: email, Reason: ReasonYearLead(g)})
		}
	}
	return out
}
