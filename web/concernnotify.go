package web

import (
	"log/slog"
	"net/http"

	"github.com/chaperone-edu/chaperone/audit"
	"github.com/chaperone-edu/chaperone/auth"
	"github.com/chaperone-edu/chaperone/lobby"
	"github.com/chaperone-edu/chaperone/store"
)

// This file is a concern's own page (R14), for the DSL and the year leads
// it was routed to (package safeguard routes and notifies), which records
// when each recipient opened it.

// errNotNotified is the refusal of a concern's page to anyone but the DSL
// and the people it was sent to.
var errNotNotified = &lobby.Error{Kind: lobby.Forbidden, Message: "You cannot read this concern. Only the safeguarding lead and the year lead of a pupil it is about can read it, as they are now."}

// notificationView is a line of "who has been told" on a concern's page.
type notificationView struct {
	Who, Reason, Notified, Email, Opened string
	EmailFailed                          bool
}

func (s *Server) notificationViews(ns []store.Notification) []notificationView {
	loc := s.loc()
	out := make([]notificationView, 0, len(ns))
	for i := len(ns) - 1; i >= 0; i-- { // oldest first
		n := ns[i]
		v := notificationView{Who: n.RecipientEmail, Reason: n.Reason, Notified: n.Created.In(loc).Format("Mon 2 Jan 15:04"), Opened: "not opened yet"}
		if n.RecipientName != "" {
			v.Who = n.RecipientName + " (" + n.RecipientEmail + ")"
		}
		if !n.Opened.IsZero() {
			v.Opened = "opened " + n.Opened.In(loc).Format("Mon 2 Jan 15:04")
		}
		at := n.EmailAt.In(loc).Format("15:04")
		switch n.EmailStatus {
		case store.EmailNone:
			v.Email = "no e-mail (not set up)"
		case store.EmailQueued:
			v.Email = "e-mail being sent"
		case store.EmailRetrying:
			v.Email, v.EmailFailed = "e-mail not sent yet ("+n.EmailError+"); trying again", true
		case store.EmailSent:
			v.Email = "e-mail sent " + at
		default:
			v.Email, v.EmailFailed = "e-mail not sent: "+n.EmailError, true
		}
		out = append(out, v)
	}
	return out
}

// pageConcernView is GET /concerns/{id}: the concern for the DSL and the
// year leads of the pupils it is about, by their roles now. A recipient's
// first visit is recorded as opening it; every view and every refusal is
// audited.
func (s *Server) pageConcernView(w http.ResponseWriter, r *http.Request) {
	who := sessionFrom(r.Context()).Identity
	ctx := r.Context()
	c, err := s.store.GetConcern(ctx, r.PathValue("id"))
	if err != nil {
		s.failErr(w, r, &lobby.Error{Kind: lobby.NotFound, Message: "There is no such concern."})
		return
	}
	if !s.cfg.Concerns.MayRead(ctx, who, c) {
		s.cfg.Concerns.Refused(ctx, who, c, auth.ClientIP(r))
		s.failErr(w, r, errNotNotified)
		return
	}
	if who.Email != "" {
		if _, err := s.store.MarkNotificationOpened(ctx, c.ID, who.Email, who.Name, s.now()); err != nil {
			s.failErr(w, r, err)
			return
		}
	}
	ns, err := s.store.ListNotifications(ctx, store.NotificationFilter{ConcernID: c.ID})
	if err != nil {
		s.failErr(w, r, err)
		return
	}
	if err := s.auditOrErr(ctx, who, audit.ConcernViewed, c.ID, c.SessionID, nil, auth.ClientIP(r)); err != nil {
		s.failErr(w, r, err)
		return
	}
	title, when := c.SessionID, ""
	if ss, err := s.store.GetSession(ctx, c.SessionID); err == nil {
		title, when = ss.Title, s.when(ss)
	}
	s.render(w, r, http.StatusOK, "concernview", page{Title: "Safeguarding concern", Data: map[string]any{
		"C": c, "Title": title, "When": when, "Raised": c.Created.In(s.loc()).Format("Mon 2 Jan 2006 15:04"),
		"Notified": s.notificationViews(ns), "DSL": who.Has(auth.RoleDSL), "Pending": c.State == store.ConcernPending,
		"Worry": c.Kind == store.ConcernKindWorry}})
}

// myConcerns are the concerns sent to a member of staff (a year lead), for
// their home page: only their own, newest first.
func (s *Server) myConcerns(r *http.Request, who auth.Identity) []concernItem {
	if who.Email == "" {
		return nil
	}
	ns, err := s.store.ListNotifications(r.Context(), store.NotificationFilter{Email: who.Email, Limit: 20})
	if err != nil {
		s.log.Error("list notifications", slog.Any("err", err))
		return nil
	}
	out := make([]concernItem, 0, len(ns))
	for _, n := range ns {
		c, err := s.store.GetConcern(r.Context(), n.ConcernID)
		if err != nil || !s.cfg.Concerns.MayRead(r.Context(), who, c) {
			continue // told once, but not (or no longer) their year group's lead
		}
		out = append(out, s.concernItem(r, c, n.Opened.IsZero()))
	}
	return out
}
