package web

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/chaperone-edu/chaperone/audit"
	"github.com/chaperone-edu/chaperone/auth"
	"github.com/chaperone-edu/chaperone/lobby"
	"github.com/chaperone-edu/chaperone/roster"
	"github.com/chaperone-edu/chaperone/store"
)

// This file holds the session actions (request, approve, reject, cancel,
// open, delegate) shared by the pages and the JSON API. Each checks the
// rules in package lobby, changes the store, and writes an audit row.

var errUnknownSession = &lobby.Error{Kind: lobby.NotFound, Message: "There is no such session, or you cannot see it."}

func newID() string {
	b := make([]byte, 10)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))
}

func (s *Server) now() time.Time { return s.cfg.Now() }

func (s *Server) audit(ctx context.Context, who auth.Identity, action audit.Action, target, sessionID string, detail audit.Detail, ip string) {
	if err := s.auditOrErr(ctx, who, action, target, sessionID, detail, ip); err != nil {
		s.log.Error("audit append failed", slog.String("action", string(action)), slog.Any("err", err))
	}
}

// auditOrErr is audit for accesses that must not happen unrecorded (R10:
// viewing a recording): the caller refuses the access if it fails.
func (s *Server) auditOrErr(ctx context.Context, who auth.Identity, action audit.Action, target, sessionID string, detail audit.Detail, ip string) error {
	if _, err := s.store.AppendAudit(ctx, store.AuditEntry{Time: s.now(), ActorSub: who.Subject, ActorName: who.Name,
		Action: action, Target: target, SessionID: sessionID, Detail: audit.Encode(detail), RemoteIP: ip}); err != nil {
		return fmt.Errorf("audit %s: %w", action, err)
	}
	return nil
}

// knownGroup reports whether an IdP group can be a class roster: it is
// configured as one, or pupils in it have signed in.
func (s *Server) knownGroup(ctx context.Context) func(string) bool {
	return func(g string) bool {
		if slices.Contains(s.cfg.RosterGroups, g) {
			return true
		}
		if _, ok := roster.ClassID(g); ok {
			return s.classTitle(ctx, g) != ""
		}
		n, err := s.store.CountUsersInGroup(ctx, g)
		return err == nil && n > 0
	}
}

func (s *Server) delegations(ctx context.Context) ([]store.Delegation, error) {
	ds, err := s.store.ListDelegations(ctx, s.now())
	if err != nil {
		return nil, fmt.Errorf("list delegations: %w", err)
	}
	return ds, nil
}

func (s *Server) requestSession(ctx context.Context, who auth.Identity, req lobby.Request, ip string) ([]store.Session, error) {
	now := s.now()
	req, occ, err := lobby.ValidateRequest(req, who, s.cfg.Schedule, s.knownGroup(ctx), now)
	if err != nil {
		return nil, err
	}
	series := ""
	if len(occ) > 1 {
		series = newID()
	}
	out := make([]store.Session, len(occ))
	for i, o := range occ {
		out[i] = store.Session{ID: newID(), SeriesID: series, Title: req.Title, Kind: req.Kind, HostSub: who.Subject, HostName: who.Name,
			HostEmail: who.Email, CoStaff: req.CoStaff, RosterGroup: req.RosterGroup, RosterEmails: req.RosterEmails,
			Start: o.Start.UTC(), End: o.End.UTC(), State: store.StateRequested, Created: now, Updated: now}
	}
	if err := s.store.CreateSessions(ctx, out); err != nil {
		return nil, fmt.Errorf("store sessions: %w", err)
	}
	for _, ss := range out {
		s.audit(ctx, who, audit.SessionRequested, ss.ID, ss.ID, audit.Requested{Title: ss.Title, Start: ss.Start, End: ss.End,
			Series: ss.SeriesID, Kind: ss.Kind, RosterGroup: ss.RosterGroup, RosterEmails: ss.RosterEmails, CoStaff: ss.CoStaff}, ip)
	}
	return out, nil
}

// visible reports whether who may see session ss at all.
func (s *Server) visible(ctx context.Context, who auth.Identity, ss store.Session) bool {
	if lobby.IsSessionStaff(who, ss) || who.Has(auth.RoleHead) || who.Has(auth.RoleDSL) {
		return true
	}
	if who.Has(auth.RoleSLT) {
		return true // senior leaders oversee sessions; approving still needs a delegation
	}
	return who.Has(auth.RolePupil) && lobby.OnRoster(who, ss) && (ss.State == store.StateApproved || ss.State == store.StateLive)
}

func (s *Server) loadSession(ctx context.Context, who auth.Identity, id string) (store.Session, error) {
	if len(id) > 64 {
		return store.Session{}, errUnknownSession
	}
	ss, err := s.store.GetSession(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return store.Session{}, errUnknownSession
	}
	if err != nil {
		return store.Session{}, fmt.Errorf("load session: %w", err)
	}
	if !s.visible(ctx, who, ss) {
		return store.Session{}, errUnknownSession
	}
	return ss, nil
}

// decide approves or rejects a session, or (for a series) every requested
// occurrence of it.
func (s *Server) decide(ctx context.Context, who auth.Identity, id string, approve bool, reason, ip string) ([]store.Session, error) {
	ds, err := s.delegations(ctx)
	if err != nil {
		return nil, err
	}
	now := s.now()
	if err := lobby.CheckApprover(who, ds, now); err != nil {
		return nil, err
	}
	ss, err := s.loadSession(ctx, who, id)
	if err != nil {
		return nil, err
	}
	reason = strings.TrimSpace(reason)
	if !approve {
		if reason == "" {
			return nil, &lobby.Error{Kind: lobby.Invalid, Field: "reason", Message: "Give a reason for the rejection; the member of staff will see it."}
		}
		if len([]rune(reason)) > 500 {
			return nil, &lobby.Error{Kind: lobby.Invalid, Field: "reason", Message: "Keep the reason to 500 characters."}
		}
		if err := lobby.CheckText("reason", "reason", reason); err != nil {
			return nil, err
		}
	}
	if err := lobby.CanDecide(who, ss, ds, now); err != nil {
		return nil, err
	}
	targets := []store.Session{ss}
	if ss.SeriesID != "" {
		if targets, err = s.store.ListSessions(ctx, store.SessionFilter{SeriesID: ss.SeriesID, States: []string{store.StateRequested}, EndAfter: now}); err != nil {
			return nil, fmt.Errorf("list series: %w", err)
		}
	}
	to, action := store.StateApproved, audit.SessionApproved
	if !approve {
		to, action = store.StateRejected, audit.SessionRejected
	}
	var out []store.Session
	for _, t := range targets {
		u, err := s.store.TransitionSession(ctx, t.ID, []string{store.StateRequested}, to, store.SessionChange{At: now, DecidedBySub: who.Subject, DecidedBy: who.Name, Reason: reason})
		if errors.Is(err, store.ErrConflict) {
			if t.ID == ss.ID {
				return nil, &lobby.Error{Kind: lobby.Conflict, Message: "Someone else decided this session a moment ago."}
			}
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("decide session: %w", err)
		}
		detail := audit.Decision{Title: u.Title, Host: u.HostName, Reason: reason}
		if d, ok := lobby.ActiveDelegation(who, ds, now); ok && !who.Has(auth.RoleHead) {
			detail.DelegatedBy = d.HeadName
		}
		s.audit(ctx, who, action, u.ID, u.ID, detail, ip)
		out = append(out, u)
	}
	return out, nil
}

func (s *Server) cancel(ctx context.Context, who auth.Identity, id, reason, ip string) (store.Session, error) {
	if !who.Has(auth.RoleStaff) {
		return store.Session{ID: id}, &lobby.Error{Kind: lobby.Forbidden, Message: "Only the session's host or the headteacher can cancel it."}
	}
	ss, err := s.loadSession(ctx, who, id)
	if err != nil {
		return ss, err
	}
	ds, err := s.delegations(ctx)
	if err != nil {
		return ss, err
	}
	if err := lobby.CanCancel(who, ss, ds, s.now()); err != nil {
		return ss, err
	}
	reason = strings.TrimSpace(reason)
	if len([]rune(reason)) > 500 {
		return ss, &lobby.Error{Kind: lobby.Invalid, Field: "reason", Message: "Keep the reason to 500 characters."}
	}
	if err := lobby.CheckText("reason", "reason", reason); err != nil {
		return ss, err
	}
	u, err := s.store.TransitionSession(ctx, id, []string{store.StateRequested, store.StateApproved}, store.StateCancelled,
		store.SessionChange{At: s.now(), Reason: reason})
	if errors.Is(err, store.ErrConflict) {
		return ss, &lobby.Error{Kind: lobby.Conflict, Message: "This session changed a moment ago; reload the page."}
	}
	if err != nil {
		return ss, fmt.Errorf("cancel session: %w", err)
	}
	s.audit(ctx, who, audit.SessionCancelled, id, id, audit.Decision{Title: u.Title, Reason: reason, Was: ss.State}, ip)
	return u, nil
}

// open makes an approved session live (staff of the session, inside its
// window). Opening a live session again is fine.
func (s *Server) open(ctx context.Context, who auth.Identity, id, ip string) (store.Session, error) {
	if !who.Has(auth.RoleStaff) {
		return store.Session{ID: id}, &lobby.Error{Kind: lobby.Forbidden, Message: "Only the staff of this session can open its room."}
	}
	ss, err := s.loadSession(ctx, who, id)
	if err != nil {
		return ss, err
	}
	now := s.now()
	if err := lobby.CanOpen(who, ss, now, s.cfg.Schedule); err != nil {
		return ss, err
	}
	if ss.State == store.StateLive {
		return ss, nil
	}
	u, err := s.store.TransitionSession(ctx, id, []string{store.StateApproved}, store.StateLive, store.SessionChange{At: now})
	if errors.Is(err, store.ErrConflict) {
		if u, gerr := s.store.GetSession(ctx, id); gerr == nil && u.State == store.StateLive {
			return u, nil
		}
		return ss, &lobby.Error{Kind: lobby.Conflict, Message: "This session changed a moment ago; reload the page."}
	}
	if err != nil {
		return ss, fmt.Errorf("open session: %w", err)
	}
	s.audit(ctx, who, audit.SessionOpened, id, id, audit.Decision{Title: u.Title}, ip)
	return u, nil
}

func (s *Server) createDelegation(ctx context.Context, who auth.Identity, email, name string, until time.Time, ip string) (store.Delegation, error) {
	if !who.Has(auth.RoleHead) {
		return store.Delegation{}, &lobby.Error{Kind: lobby.Forbidden, Message: "Only the headteacher can delegate approval."}
	}
	email = strings.ToLower(strings.TrimSpace(email))
	at := strings.LastIndexByte(email, '@')
	if at <= 0 || !slices.ContainsFunc(s.cfg.Schedule.AllowedDomains, func(d string) bool { return strings.EqualFold(d, email[at+1:]) }) {
		return store.Delegation{}, &lobby.Error{Kind: lobby.Invalid, Field: "email", Message: "Give the senior leader's school e-mail address."}
	}
	if strings.EqualFold(email, who.Email) {
		return store.Delegation{}, &lobby.Error{Kind: lobby.Invalid, Field: "email", Message: "You cannot delegate to yourself."}
	}
	now := s.now()
	if until.IsZero() || !until.After(now) {
		return store.Delegation{}, &lobby.Error{Kind: lobby.Invalid, Field: "until", Message: "Give an end date in the future."}
	}
	if until.After(now.AddDate(1, 0, 0)) {
		return store.Delegation{}, &lobby.Error{Kind: lobby.Invalid, Field: "until", Message: "A delegation can last at most a year."}
	}
	name = strings.Join(strings.Fields(name), " ")
	if len([]rune(name)) > 120 {
		name = string([]rune(name)[:120])
	}
	d := store.Delegation{ID: newID(), HeadSub: who.Subject, HeadName: who.Name, DelegateEmail: email, DelegateName: name, Until: until.UTC(), Created: now}
	if err := s.store.CreateDelegation(ctx, d); err != nil {
		return d, fmt.Errorf("create delegation: %w", err)
	}
	s.audit(ctx, who, audit.DelegationCreated, d.ID, "", audit.Delegation{Delegate: email, Until: d.Until}, ip)
	return d, nil
}

func (s *Server) revokeDelegation(ctx context.Context, who auth.Identity, id, ip string) (store.Delegation, error) {
	if !who.Has(auth.RoleHead) {
		return store.Delegation{}, &lobby.Error{Kind: lobby.Forbidden, Message: "Only the headteacher can revoke a delegation."}
	}
	d, err := s.store.RevokeDelegation(ctx, id, s.now(), who.Name)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return d, &lobby.Error{Kind: lobby.NotFound, Message: "There is no such delegation."}
	case errors.Is(err, store.ErrConflict):
		return d, &lobby.Error{Kind: lobby.Conflict, Message: "This delegation was already revoked."}
	case err != nil:
		return d, fmt.Errorf("revoke delegation: %w", err)
	}
	s.audit(ctx, who, audit.DelegationRevoked, d.ID, "", audit.Delegation{Delegate: d.DelegateEmail}, ip)
	return d, nil
}

// rosterSize is the number of pupils a session is for, as far as known,
// and whether that is the class list's size: an imported class's size plus
// those listed by e-mail (known), or, for an IdP group, only its pupils
// who have signed in here before (not known: the group may be larger).
func (s *Server) rosterSize(ctx context.Context, ss store.Session) (int, bool) {
	n := len(ss.RosterEmails)
	if c, ok := s.classSize(ctx, ss.RosterGroup); ok {
		return n + c, true
	}
	if ss.RosterGroup == "" {
		return n, true
	}
	c, err := s.store.CountUsersInGroup(ctx, ss.RosterGroup)
	if err == nil {
		n += c
	}
	return n, false
}

// statusOf maps an action error to an HTTP status, code and message.
func (s *Server) statusOf(err error) (int, string, string) {
	var le *lobby.Error
	if errors.As(err, &le) {
		switch le.Kind {
		case lobby.Invalid:
			return http.StatusBadRequest, "invalid", le.Message
		case lobby.Forbidden:
			return http.StatusForbidden, "forbidden", le.Message
		case lobby.Conflict:
			return http.StatusConflict, "conflict", le.Message
		case lobby.NotFound:
			return http.StatusNotFound, "not_found", le.Message
		}
	}
	s.log.Error("action failed", slog.Any("err", err))
	return http.StatusInternalServerError, "internal", "Something went wrong on our side. Nothing was changed; try again in a minute."
}

func (s *Server) failErr(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, errNeedMFA) {
		if wantsJSON(r) {
			writeJSON(w, http.StatusForbidden, apiError{Error: auth.RefuseMFARequired, Message: errNeedMFA.Message})
			return
		}
		s.render(w, r, http.StatusForbidden, "message", page{Title: "Second factor needed", Heading: "Second factor needed", Message: errNeedMFA.Message,
			Error: true, Back: "/login?again=1&next=" + url.QueryEscape(r.URL.RequestURI()), BackText: "Sign in again with your second factor"})
		return
	}
	status, code, msg := s.statusOf(err)
	if sess := sessionFrom(r.Context()); status == http.StatusForbidden && sess != nil && len(sess.Identity.Withheld) > 0 {
		msg += " Your " + auth.RoleNames(sess.Identity.Withheld) + " access is switched off because you signed in without your second factor: sign out, then sign in again with it."
	}
	s.fail(w, r, status, code, msg)
}
