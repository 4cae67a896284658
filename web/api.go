package web

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/chaperone-edu/chaperone/auth"
	"github.com/chaperone-edu/chaperone/lobby"
	"github.com/chaperone-edu/chaperone/store"
)

// sessionJSON is a session as the API shows it.
type sessionJSON struct {
	ID           string     `json:"id"`
	SeriesID     string     `json:"series_id,omitempty"`
	Title        string     `json:"title"`
	Kind         string     `json:"kind"`
	Host         personRef  `json:"host"`
	CoStaff      []string   `json:"co_staff"`
	RosterGroup  string     `json:"roster_group,omitempty"`
	RosterEmails []string   `json:"roster_emails,omitempty"`
	Start        time.Time  `json:"start"`
	End          time.Time  `json:"end"`
	State        string     `json:"state"`
	DecidedBy    string     `json:"decided_by,omitempty"`
	DecidedAt    *time.Time `json:"decided_at,omitempty"`
	Reason       string     `json:"reason,omitempty"`
	CanOpen      bool       `json:"can_open"`
	OpenMessage  string     `json:"open_message,omitempty"`
	RoomURL      string     `json:"room_url,omitempty"`
}

type personRef struct {
	Name  string `json:"name"`
	Email string `json:"email"`
}

func (s *Server) sessionView(who auth.Identity, ss store.Session) sessionJSON {
	v := sessionJSON{ID: ss.ID, SeriesID: ss.SeriesID, Title: ss.Title, Kind: ss.Kind, Host: personRef{ss.HostName, ss.HostEmail},
		CoStaff: ss.CoStaff, RosterGroup: ss.RosterGroup, RosterEmails: ss.RosterEmails, Start: ss.Start, End: ss.End,
		State: ss.State, DecidedBy: ss.DecidedBy, Reason: ss.Reason}
	if v.CoStaff == nil {
		v.CoStaff = []string{}
	}
	if !ss.DecidedAt.IsZero() {
		t := ss.DecidedAt
		v.DecidedAt = &t
	}
	if who.Has(auth.RolePupil) {
		v.RosterEmails = nil // pupils do not see each other's addresses
	}
	var err error
	if lobby.IsSessionStaff(who, ss) {
		err = lobby.CanOpen(who, ss, s.now(), s.cfg.Schedule)
	} else {
		err = lobby.OpenCheck(s.liveOnlyForPupils(ss), s.now(), s.cfg.Schedule)
	}
	if err == nil && who.Has(auth.RolePupil) {
		if why := s.keptOut(who, ss); why != "" {
			err = &lobby.Error{Kind: lobby.Forbidden, Message: why}
		}
	}
	switch {
	case err == nil:
		v.CanOpen, v.RoomURL = true, s.cfg.PublicURL+"/rooms/"+ss.ID
	case ss.State == store.StateApproved && !lobby.IsSessionStaff(who, ss) && lobby.OpenCheck(ss, s.now(), s.cfg.Schedule) == nil:
		// Approved, in its time, and its staff have not opened the room.
		v.OpenMessage = "Your teacher has not opened the room yet. The Join button appears here when they do."
	case ss.State == store.StateApproved && !lobby.IsSessionStaff(who, ss):
		v.OpenMessage = lobby.PupilNotYet(ss, s.now(), s.cfg.Schedule)
	default:
		v.OpenMessage = err.Error()
	}
	return v
}

// keptOut says why a pupil cannot join a session's room although it is open
// (removed from it: they cannot rejoin it), or "".
func (s *Server) keptOut(who auth.Identity, ss store.Session) string {
	if ss.State != store.StateLive {
		return ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	rec, err := s.store.LoadRoom(ctx, ss.ID)
	if err != nil {
		return ""
	}
	id := lobby.ParticipantID(ss.ID, who.Subject)
	for _, p := range rec.Participants {
		if p.ID == id && p.State == string(lobby.Removed) {
			return "Your teacher took you out of this lesson, so you cannot join it again. If you are not sure why, ask your teacher."
		}
	}
	return ""
}

// liveOnlyForPupils: a pupil can join only once staff have opened the room.
func (s *Server) liveOnlyForPupils(ss store.Session) store.Session {
	if ss.State == store.StateApproved {
		ss.State = store.StateRequested // not open yet, as far as a pupil is concerned
	}
	return ss
}

// decodeJSON reads a JSON body strictly: unknown fields and trailing data
// are errors, as is a body over the size limit.
func decodeJSON(r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		return &lobby.Error{Kind: lobby.Invalid, Message: "Send the body as JSON (Content-Type: application/json)."}
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return errTooLarge
		}
		return &lobby.Error{Kind: lobby.Invalid, Message: "The request body is not valid JSON for this request: " + jsonProblem(err)}
	}
	if _, err := dec.Token(); err != io.EOF {
		return &lobby.Error{Kind: lobby.Invalid, Message: "The request body has extra data after the JSON object."}
	}
	return nil
}

var errTooLarge = errors.New("request body too large")

func jsonProblem(err error) string {
	msg := err.Error()
	if len(msg) > 120 {
		msg = msg[:120]
	}
	return msg
}

func (s *Server) apiFail(w http.ResponseWriter, err error) {
	if errors.Is(err, errTooLarge) {
		writeJSON(w, http.StatusRequestEntityTooLarge, apiError{Error: "too_large", Message: "The request body is too large."})
		return
	}
	status, code, msg := s.statusOf(err)
	var le *lobby.Error
	if errors.As(err, &le) && le.Field != "" {
		writeJSON(w, status, map[string]string{"error": code, "message": msg, "field": le.Field})
		return
	}
	writeJSON(w, status, apiError{Error: code, Message: msg})
}

type requestBody struct {
	Title        string   `json:"title"`
	Kind         string   `json:"kind"`
	Start        string   `json:"start"` // RFC 3339
	End          string   `json:"end"`
	CoStaff      []string `json:"co_staff"`
	RosterGroup  string   `json:"roster_group"`
	RosterEmails []string `json:"roster_emails"`
	WeeklyUntil  string   `json:"weekly_until"` // YYYY-MM-DD, in the school's time zone
}

func (s *Server) parseRequestBody(b requestBody) (lobby.Request, error) {
	req := lobby.Request{Title: b.Title, Kind: b.Kind, CoStaff: b.CoStaff, RosterGroup: b.RosterGroup, RosterEmails: b.RosterEmails}
	var err error
	if req.Start, err = parseTime(b.Start); err != nil {
		return req, &lobby.Error{Kind: lobby.Invalid, Field: "start", Message: "start must be a time like 2026-12-01T09:00:00Z."}
	}
	if req.End, err = parseTime(b.End); err != nil {
		return req, &lobby.Error{Kind: lobby.Invalid, Field: "end", Message: "end must be a time like 2026-12-01T10:00:00Z."}
	}
	if b.WeeklyUntil != "" {
		if req.WeeklyUntil, err = time.ParseInLocation("2006-01-02", b.WeeklyUntil, s.loc()); err != nil {
			return req, &lobby.Error{Kind: lobby.Invalid, Field: "weekly_until", Message: "weekly_until must be a date like 2027-03-31."}
		}
	}
	return req, nil
}

func parseTime(v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	return time.Parse(time.RFC3339, v)
}

func (s *Server) loc() *time.Location {
	if s.cfg.Schedule.Location != nil {
		return s.cfg.Schedule.Location
	}
	return time.UTC
}

func (s *Server) apiMe(w http.ResponseWriter, r *http.Request) {
	sess := sessionFrom(r.Context())
	roles := sess.Identity.Roles
	writeJSON(w, http.StatusOK, map[string]any{"name": sess.Identity.Name, "email": sess.Identity.Email, "roles": roles,
		"role": auth.RoleLabel(roles), "csrf_token": sess.CSRFToken})
}

func (s *Server) apiListSessions(w http.ResponseWriter, r *http.Request) {
	who := sessionFrom(r.Context()).Identity
	list, err := s.sessionsFor(r, who)
	if err != nil {
		s.apiFail(w, err)
		return
	}
	out := make([]sessionJSON, 0, len(list))
	for _, ss := range list {
		out = append(out, s.sessionView(who, ss))
	}
	writeJSON(w, http.StatusOK, map[string]any{"sessions": out})
}

// sessionsFor lists the sessions of who: staff see those they run, pupils
// those of their class that are approved or open and not over.
func (s *Server) sessionsFor(r *http.Request, who auth.Identity) ([]store.Session, error) {
	if who.Has(auth.RoleStaff) {
		return s.store.ListSessions(r.Context(), store.SessionFilter{StaffEmail: who.Email})
	}
	if !who.Has(auth.RolePupil) {
		return nil, nil
	}
	all, err := s.store.ListSessions(r.Context(), store.SessionFilter{States: []string{store.StateApproved, store.StateLive}, EndAfter: s.now()})
	if err != nil {
		return nil, err
	}
	var mine []store.Session
	for _, ss := range all {
		if lobby.OnRoster(who, ss) {
			mine = append(mine, ss)
		}
	}
	return mine, nil
}

func (s *Server) apiCreateSession(w http.ResponseWriter, r *http.Request) {
	who := sessionFrom(r.Context()).Identity
	if err := lobby.CanRequest(who); err != nil {
		s.apiFail(w, err)
		return
	}
	var b requestBody
	if err := decodeJSON(r, &b); err != nil {
		s.apiFail(w, err)
		return
	}
	req, err := s.parseRequestBody(b)
	if err != nil {
		s.apiFail(w, err)
		return
	}
	created, err := s.requestSession(r.Context(), who, req, auth.ClientIP(r))
	if err != nil {
		s.apiFail(w, err)
		return
	}
	out := make([]sessionJSON, len(created))
	for i, ss := range created {
		out[i] = s.sessionView(who, ss)
	}
	writeJSON(w, http.StatusCreated, map[string]any{"sessions": out})
}

func (s *Server) apiGetSession(w http.ResponseWriter, r *http.Request) {
	who := sessionFrom(r.Context()).Identity
	ss, err := s.loadSession(r.Context(), who, r.PathValue("id"))
	if err != nil {
		s.apiFail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, s.sessionView(who, ss))
}

type reasonBody struct {
	Reason string `json:"reason"`
}

// optionalReason reads {"reason": "..."} when a body is sent.
func optionalReason(r *http.Request) (string, error) {
	if r.ContentLength == 0 {
		return "", nil
	}
	var b reasonBody
	if err := decodeJSON(r, &b); err != nil {
		return "", err
	}
	return b.Reason, nil
}

func (s *Server) apiDecide(approve bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		who := sessionFrom(r.Context()).Identity
		reason, err := optionalReason(r)
		if err != nil {
			s.apiFail(w, err)
			return
		}
		out, err := s.decide(r.Context(), who, r.PathValue("id"), approve, reason, auth.ClientIP(r))
		if err != nil {
			s.apiFail(w, err)
			return
		}
		views := make([]sessionJSON, len(out))
		for i, ss := range out {
			views[i] = s.sessionView(who, ss)
		}
		writeJSON(w, http.StatusOK, map[string]any{"sessions": views})
	}
}

func (s *Server) apiCancel(w http.ResponseWriter, r *http.Request) {
	who := sessionFrom(r.Context()).Identity
	reason, err := optionalReason(r)
	if err != nil {
		s.apiFail(w, err)
		return
	}
	ss, err := s.cancel(r.Context(), who, r.PathValue("id"), reason, auth.ClientIP(r))
	if err != nil {
		s.apiFail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, s.sessionView(who, ss))
}

func (s *Server) apiOpen(w http.ResponseWriter, r *http.Request) {
	who := sessionFrom(r.Context()).Identity
	ss, err := s.open(r.Context(), who, r.PathValue("id"), auth.ClientIP(r))
	if err != nil {
		s.apiFail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, s.sessionView(who, ss))
}

func (s *Server) apiApprovals(w http.ResponseWriter, r *http.Request) {
	who := sessionFrom(r.Context()).Identity
	pending, err := s.pendingFor(r, who)
	if err != nil {
		s.apiFail(w, err)
		return
	}
	out := make([]sessionJSON, len(pending))
	for i, p := range pending {
		out[i] = s.sessionView(who, p)
	}
	writeJSON(w, http.StatusOK, map[string]any{"sessions": out})
}

// pendingFor lists requests waiting for approval, for approvers only.
func (s *Server) pendingFor(r *http.Request, who auth.Identity) ([]store.Session, error) {
	ds, err := s.delegations(r.Context())
	if err != nil {
		return nil, err
	}
	if err := lobby.CheckApprover(who, ds, s.now()); err != nil {
		return nil, err
	}
	return s.store.ListSessions(r.Context(), store.SessionFilter{States: []string{store.StateRequested}, EndAfter: s.now()})
}

type delegationJSON struct {
	ID            string     `json:"id"`
	DelegateEmail string     `json:"delegate_email"`
	DelegateName  string     `json:"delegate_name,omitempty"`
	Until         time.Time  `json:"until"`
	Created       time.Time  `json:"created"`
	RevokedAt     *time.Time `json:"revoked_at,omitempty"`
	Active        bool       `json:"active"`
}

func (s *Server) delegationView(d store.Delegation) delegationJSON {
	v := delegationJSON{ID: d.ID, DelegateEmail: d.DelegateEmail, DelegateName: d.DelegateName, Until: d.Until, Created: d.Created}
	if !d.RevokedAt.IsZero() {
		t := d.RevokedAt
		v.RevokedAt = &t
	}
	v.Active = d.RevokedAt.IsZero() && s.now().Before(d.Until)
	return v
}

func (s *Server) apiListDelegations(w http.ResponseWriter, r *http.Request) {
	who := sessionFrom(r.Context()).Identity
	if !who.Has(auth.RoleHead) {
		s.apiFail(w, &lobby.Error{Kind: lobby.Forbidden, Message: "Only the headteacher manages delegations."})
		return
	}
	ds, err := s.store.ListDelegations(r.Context(), time.Time{})
	if err != nil {
		s.apiFail(w, err)
		return
	}
	out := make([]delegationJSON, len(ds))
	for i, d := range ds {
		out[i] = s.delegationView(d)
	}
	writeJSON(w, http.StatusOK, map[string]any{"delegations": out})
}

type delegationBody struct {
	Email string `json:"email"`
	Name  string `json:"name"`
	Until string `json:"until"` // YYYY-MM-DD: the last day of the delegation
}

func (s *Server) apiCreateDelegation(w http.ResponseWriter, r *http.Request) {
	who := sessionFrom(r.Context()).Identity
	if !who.Has(auth.RoleHead) {
		s.apiFail(w, &lobby.Error{Kind: lobby.Forbidden, Message: "Only the headteacher can delegate approval."})
		return
	}
	var b delegationBody
	if err := decodeJSON(r, &b); err != nil {
		s.apiFail(w, err)
		return
	}
	until, err := s.parseUntilDate(b.Until)
	if err != nil {
		s.apiFail(w, err)
		return
	}
	d, err := s.createDelegation(r.Context(), who, b.Email, b.Name, until, auth.ClientIP(r))
	if err != nil {
		s.apiFail(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, s.delegationView(d))
}

// parseUntilDate reads a last day (inclusive) as the end of that day in the
// school's time zone.
func (s *Server) parseUntilDate(v string) (time.Time, error) {
	d, err := time.ParseInLocation("2006-01-02", strings.TrimSpace(v), s.loc())
	if err != nil {
		return time.Time{}, &lobby.Error{Kind: lobby.Invalid, Field: "until", Message: "Give the last day as a date like 2027-03-31."}
	}
	return d.AddDate(0, 0, 1), nil
}

func (s *Server) apiRevokeDelegation(w http.ResponseWriter, r *http.Request) {
	who := sessionFrom(r.Context()).Identity
	d, err := s.revokeDelegation(r.Context(), who, r.PathValue("id"), auth.ClientIP(r))
	if err != nil {
		s.apiFail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, s.delegationView(d))
}
