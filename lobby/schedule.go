package lobby

import (
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/chaperone-edu/chaperone/auth"
	"github.com/chaperone-edu/chaperone/store"
)

// ErrorKind says what sort of refusal an Error is, so the web layer can
// choose a status code without parsing messages.
type ErrorKind int

// The kinds of refusal.
const (
	Invalid   ErrorKind = iota + 1 // bad input: 400
	Forbidden                      // not allowed for this person: 403
	Conflict                       // not in this state: 409
	NotFound                       // no such thing: 404
)

// Error is a refusal with a message for the person who asked.
type Error struct {
	Kind    ErrorKind
	Field   string // the input field at fault, for Invalid
	Message string
}

func (e *Error) Error() string { return e.Message }

func invalid(field, format string, a ...any) *Error {
	return &Error{Kind: Invalid, Field: field, Message: fmt.Sprintf(format, a...)}
}

func forbidden(msg string) *Error { return &Error{Kind: Forbidden, Message: msg} }

// Session kinds.
const (
	KindInteractive = "interactive"
	KindStreamed    = "streamed"
)

// SchedulePolicy holds the school's settings for requesting sessions.
type SchedulePolicy struct {
	AllowedDomains []string      // e-mail domains of school accounts
	OpenEarly      time.Duration // how long before start the room may open (15 min)
	MaxTitle       int           // characters (120)
	MaxDuration    time.Duration // of one session (8 h)
	MaxRoster      int           // pupils listed by e-mail (60)
	MaxCoStaff     int           // (10)
	MaxOccurrences int           // of a weekly series (52)
	Location       *time.Location
	RecordPolicy   string // "one_to_one" or "always"
}

// DefaultSchedulePolicy returns the defaults for the given domains and zone.
func DefaultSchedulePolicy(domains []string, loc *time.Location) SchedulePolicy {
	return SchedulePolicy{AllowedDomains: domains, OpenEarly: 15 * time.Minute, MaxTitle: 120, MaxDuration: 8 * time.Hour,
		MaxRoster: 60, MaxCoStaff: 10, MaxOccurrences: 52, Location: loc, RecordPolicy: "one_to_one"}
}

// Request is what a member of staff asks for.
type Request struct {
	Title        string
	Kind         string
	Start, End   time.Time
	CoStaff      []string // e-mails
	RosterGroup  string
	RosterEmails []string
	WeeklyUntil  time.Time // zero for a single session; else the last date of a weekly series
}

// Occurrence is one session's time slot.
type Occurrence struct{ Start, End time.Time }

// CanRequest reports whether id may request sessions: staff only.
func CanRequest(id auth.Identity) error {
	if !id.Has(auth.RoleStaff) {
		return forbidden("Only staff can request live sessions.")
	}
	return nil
}

// ValidateRequest checks a request and normalises it (trimmed title,
// lower-case e-mails without duplicates). knownGroup reports whether an IdP
// group can be used as a roster. It returns the occurrences to create.
func ValidateRequest(req Request, requester auth.Identity, p SchedulePolicy, knownGroup func(string) bool, now time.Time) (Request, []Occurrence, error) {
	if err := CanRequest(requester); err != nil {
		return req, nil, err
	}
	req.Title = strings.Join(strings.Fields(req.Title), " ")
	switch n := utf8.RuneCountInString(req.Title); {
	case n == 0:
		return req, nil, invalid("title", "Give the session a title, for example “Year 8 maths catch-up”.")
	case n > p.MaxTitle:
		return req, nil, invalid("title", "The title is %d characters long; keep it to %d.", n, p.MaxTitle)
	case strings.ContainsFunc(req.Title, unicode.IsControl):
		return req, nil, invalid("title", "The title has characters that cannot be shown.")
	}
	if err := CheckText("title", "title", req.Title); err != nil {
		return req, nil, err
	}
	switch req.Kind {
	case "":
		req.Kind = KindInteractive
	case KindInteractive, KindStreamed:
	default:
		return req, nil, invalid("kind", "The kind of session must be interactive or streamed.")
	}
	if req.Start.IsZero() || req.End.IsZero() {
		return req, nil, invalid("start", "Give the start and end time.")
	}
	if req.Start.Before(now.Truncate(time.Minute)) {
		return req, nil, invalid("start", "The start time is in the past.")
	}
	if !req.End.After(req.Start) {
		return req, nil, invalid("end", "The session must end after it starts.")
	}
	if req.End.Sub(req.Start) > p.MaxDuration {
		return req, nil, invalid("end", "A session can last at most %s.", fmtDuration(p.MaxDuration))
	}
	var err error
	if req.CoStaff, err = normaliseEmails("co_staff", req.CoStaff, p.AllowedDomains, p.MaxCoStaff); err != nil {
		return req, nil, err
	}
	if slices.Contains(req.CoStaff, strings.ToLower(requester.Email)) {
		return req, nil, invalid("co_staff", "You are the session's host; list other staff as co-staff.")
	}
	if req.RosterEmails, err = normaliseEmails("roster_emails", req.RosterEmails, p.AllowedDomains, p.MaxRoster); err != nil {
		return req, nil, err
	}
	req.RosterGroup = strings.TrimSpace(req.RosterGroup)
	if req.RosterGroup == "" && len(req.RosterEmails) == 0 {
		return req, nil, invalid("roster_group", "Choose the class (a school group) or list the pupils' school e-mail addresses.")
	}
	if req.RosterGroup != "" && (knownGroup == nil || !knownGroup(req.RosterGroup)) {
		return req, nil, invalid("roster_group", "There is no class group called %q. Check the name with your IT team, or list the pupils' e-mail addresses instead.", req.RosterGroup)
	}
	occ := []Occurrence{{req.Start, req.End}}
	if !req.WeeklyUntil.IsZero() {
		loc := p.Location
		if loc == nil {
			loc = time.UTC
		}
		last := endOfDay(req.WeeklyUntil, loc)
		if last.Before(req.Start) {
			return req, nil, invalid("weekly_until", "The series must end on or after the first session's date.")
		}
		s, e := req.Start.In(loc), req.End.In(loc)
		for i := 1; ; i++ {
			ns, ne := s.AddDate(0, 0, 7*i), e.AddDate(0, 0, 7*i)
			if ns.After(last) {
				break
			}
			if len(occ) == p.MaxOccurrences {
				return req, nil, invalid("weekly_until", "A weekly series can have at most %d sessions; choose an earlier end date.", p.MaxOccurrences)
			}
			occ = append(occ, Occurrence{ns, ne})
		}
	}
	return req, occ, nil
}

func endOfDay(t time.Time, loc *time.Location) time.Time {
	y, m, d := t.In(loc).Date()
	return time.Date(y, m, d+1, 0, 0, 0, 0, loc).Add(-time.Nanosecond)
}

func fmtDuration(d time.Duration) string {
	if d%time.Hour == 0 {
		return fmt.Sprintf("%d hours", d/time.Hour)
	}
	return d.String()
}

func normaliseEmails(field string, in []string, domains []string, max int) ([]string, error) {
	var out []string
	for _, e := range in {
		e = strings.ToLower(strings.TrimSpace(e))
		if e == "" || slices.Contains(out, e) {
			continue
		}
		at := strings.LastIndexByte(e, '@')
		if at <= 0 || at == len(e)-1 || strings.Count(e, "@") != 1 || strings.ContainsAny(e, " \t<>,;\"") {
			return nil, invalid(field, "%q is not an e-mail address.", e)
		}
		if !slices.ContainsFunc(domains, func(d string) bool { return strings.EqualFold(d, e[at+1:]) }) {
			return nil, invalid(field, "%q is not a school account of this school.", e)
		}
		out = append(out, e)
	}
	if len(out) > max {
		return nil, invalid(field, "At most %d addresses can be listed here.", max)
	}
	return out, nil
}

// IsSessionStaff reports whether id is the host or a co-staff member of s.
func IsSessionStaff(id auth.Identity, s store.Session) bool {
	if !id.Has(auth.RoleStaff) {
		return false
	}
	return id.Subject == s.HostSub || strings.EqualFold(id.Email, s.HostEmail) || slices.Contains(s.CoStaff, strings.ToLower(id.Email))
}

// OnRoster reports whether a pupil is on the session's class roster.
func OnRoster(id auth.Identity, s store.Session) bool {
	return (s.RosterGroup != "" && slices.Contains(id.Groups, s.RosterGroup)) || slices.Contains(s.RosterEmails, strings.ToLower(id.Email))
}

// ActiveDelegation returns the delegation that lets id approve at now.
func ActiveDelegation(id auth.Identity, ds []store.Delegation, now time.Time) (store.Delegation, bool) {
	for _, d := range ds {
		if strings.EqualFold(d.DelegateEmail, id.Email) && d.RevokedAt.IsZero() && now.Before(d.Until) {
			return d, true
		}
	}
	return store.Delegation{}, false
}

// IsApprover reports whether id may approve sessions at now: the
// headteacher, or a senior leader with an active delegation.
func IsApprover(id auth.Identity, ds []store.Delegation, now time.Time) bool {
	if id.Has(auth.RoleHead) {
		return true
	}
	_, ok := ActiveDelegation(id, ds, now)
	return ok && id.Has(auth.RoleSLT)
}

// CheckApprover reports, with the reason, whether approver may approve or
// reject sessions at all at now.
func CheckApprover(approver auth.Identity, ds []store.Delegation, now time.Time) error {
	if IsApprover(approver, ds, now) {
		return nil
	}
	if approver.Has(auth.RoleSLT) {
		return forbidden("You can approve sessions only while the headteacher has delegated approval to you, and you have no delegation now.")
	}
	return forbidden("Only the headteacher, or a senior leader the headteacher has delegated to, can approve or reject sessions.")
}

// CanDecide reports whether approver may approve or reject s at now.
func CanDecide(approver auth.Identity, s store.Session, ds []store.Delegation, now time.Time) error {
	if err := CheckApprover(approver, ds, now); err != nil {
		return err
	}
	if approver.Subject == s.HostSub || IsSessionStaff(approver, s) {
		return forbidden("You cannot approve or reject a session you are running; another approver must decide it.")
	}
	if s.State != store.StateRequested {
		return &Error{Kind: Conflict, Message: fmt.Sprintf("This session is %s, so it cannot be decided now.", StateWords(s.State))}
	}
	if !now.Before(s.End) {
		return &Error{Kind: Conflict, Message: "This session's time has already passed."}
	}
	return nil
}

// CanCancel reports whether id may cancel s: its host, or an approver.
func CanCancel(id auth.Identity, s store.Session, ds []store.Delegation, now time.Time) error {
	if id.Subject != s.HostSub && !IsApprover(id, ds, now) {
		return forbidden("Only the session's host or the headteacher can cancel it.")
	}
	if s.State != store.StateRequested && s.State != store.StateApproved {
		return &Error{Kind: Conflict, Message: fmt.Sprintf("This session is %s, so it cannot be cancelled.", StateWords(s.State))}
	}
	return nil
}

// PupilNotYet tells a pupil when an approved lesson that is not in its
// time yet can be joined (OpenCheck's words are for staff).
func PupilNotYet(s store.Session, now time.Time, p SchedulePolicy) string {
	loc := p.Location
	if loc == nil {
		loc = time.UTC
	}
	if !now.Before(s.End) {
		return "This lesson has ended."
	}
	return "The lesson starts at " + s.Start.In(loc).Format("15:04 on Mon 2 Jan") + ". Your teacher opens the room a little before; the Join button appears here then."
}

// OpenCheck says whether the room of s may be opened (by staff) or joined
// (by pupils) at now, and if not, why.
func OpenCheck(s store.Session, now time.Time, p SchedulePolicy) error {
	loc := p.Location
	if loc == nil {
		loc = time.UTC
	}
	conflict := func(msg string) error { return &Error{Kind: Conflict, Message: msg} }
	switch s.State {
	case store.StateRequested:
		return conflict("This session has not been approved yet. The headteacher must approve it before the room can open.")
	case store.StateRejected:
		msg := "This session was not approved."
		if s.Reason != "" {
			msg += " Reason: " + s.Reason
		}
		return conflict(msg)
	case store.StateCancelled:
		return conflict("This session was cancelled.")
	case store.StateEnded:
		return conflict("This session has ended.")
	}
	if !now.Before(s.End) {
		return conflict("This session has ended.")
	}
	if opens := s.Start.Add(-p.OpenEarly); now.Before(opens) {
		return conflict(fmt.Sprintf("It is too early: the room opens at %s.", opens.In(loc).Format("15:04 on Monday 2 January")))
	}
	return nil
}

// CanOpen reports whether id may open the room of s at now.
func CanOpen(id auth.Identity, s store.Session, now time.Time, p SchedulePolicy) error {
	if !IsSessionStaff(id, s) {
		return forbidden("Only the staff of this session can open its room.")
	}
	return OpenCheck(s, now, p)
}

// StateWords is a state as said in a sentence.
func StateWords(state string) string {
	switch state {
	case store.StateRequested:
		return "waiting for approval"
	case store.StateLive:
		return "open now"
	}
	return state
}

// DisplayState is the state to show at now: a live session past its end
// has ended, an approved one never opened was not held.
func DisplayState(s store.Session, now time.Time) string {
	if now.Before(s.End) {
		return StateWords(s.State)
	}
	switch s.State {
	case store.StateLive:
		return "ended"
	case store.StateApproved:
		return "not held"
	case store.StateRequested:
		return "not decided in time"
	}
	return StateWords(s.State)
}

// RecordingExpectation tells the approver whether the session is expected
// to be recorded under the one-to-one rule.
func RecordingExpectation(s store.Session, recordPolicy string) string {
	switch {
	case recordPolicy == "always":
		return "Yes: every session is recorded."
	case IsOneToOne(s) && len(s.CoStaff) == 0:
		return "Yes: a lesson for one pupil with one member of staff (one-to-one), so it is recorded."
	case IsOneToOne(s):
		return "Only while fewer than two of its staff are there with the pupil (one-to-one rule)."
	default:
		return "No, unless the teacher chooses to: a lesson for a class. If only one pupil comes, their video waits until a second is let in, or the teacher starts recording to teach one-to-one."
	}
}
