package web

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/chaperone-edu/chaperone/auth"
	"github.com/chaperone-edu/chaperone/lobby"
	"github.com/chaperone-edu/chaperone/notify"
	"github.com/chaperone-edu/chaperone/store"
)

// This file routes a safeguarding concern (R14) to the DSLs and to the year
// lead of each pupil it is about: a notification row per recipient (shown on
// their home page), an e-mail through SMTP when one is configured, and the
// concern's own page, which records when each recipient opened it.

// errNotNotified is the refusal of a concern's page to anyone but the DSL
// and the people it was sent to.
var errNotNotified = &lobby.Error{Kind: lobby.Forbidden, Message: "You cannot read this concern. Only the safeguarding lead and the year lead of a pupil it is about can read it, as they are now."}

// pupilRef is a pupil who joined a session.
type pupilRef struct{ Sub, Name string }

// sessionPupils lists the pupils who joined a session, from the audit log
// (first join first, each once).
func (s *Server) sessionPupils(ctx context.Context, sessionID string) []pupilRef {
	rows, err := s.store.ListAudit(ctx, store.AuditFilter{SessionID: sessionID, Action: "room.join"})
	if err != nil {
		s.log.Error("list joins", slog.String("session", sessionID), slog.Any("err", err))
		return nil
	}
	var out []pupilRef
	seen := map[string]bool{}
	for i := len(rows) - 1; i >= 0; i-- {
		a := rows[i]
		if a.ActorSub == "" || seen[a.ActorSub] || !strings.Contains(a.Detail, `"role":"pupil"`) {
			continue
		}
		seen[a.ActorSub] = true
		out = append(out, pupilRef{Sub: a.ActorSub, Name: a.ActorName})
	}
	return out
}

// notifyConcern tells the DSLs and the year leads of the pupils concerned:
// a notification row each, and an e-mail when SMTP is configured (sent in
// the background: the concern never waits for it). Those told already when
// the concern was raised in the room (completing: the form now completes
// it) get a second e-mail saying the details are in. It returns the
// notifications made.
func (s *Server) notifyConcern(ctx context.Context, who auth.Identity, c store.Concern, about []pupilRef, completing bool) []store.Notification {
	var groups []string
	var subs []string
	for _, p := range about {
		subs = append(subs, p.Sub)
		u, err := s.store.GetUser(ctx, who.Issuer, p.Sub)
		if err != nil {
			s.log.Warn("concern: pupil's year group unknown", slog.String("concern", c.ID), slog.String("pupil", p.Sub), slog.Any("err", err))
			continue
		}
		groups = append(groups, u.Groups...)
	}
	// The DSLs are the accounts whose roles at their last sign-in include
	// dsl (the gateway knows no better: someone removed from the group who
	// has not signed in since is still told, but cannot open the concern),
	// and the configured dsl_emails, so a DSL who has never signed in is
	// told too.
	var dsls []notify.Recipient
	if us, err := s.store.ListUsersWithRole(ctx, string(auth.RoleDSL)); err != nil {
		s.log.Error("concern: list safeguarding leads", slog.Any("err", err))
	} else {
		for _, u := range us {
			dsls = append(dsls, notify.Recipient{Email: u.Email, Name: u.Name})
		}
	}
	for _, e := range s.cfg.DSLEmails {
		dsls = append(dsls, notify.Recipient{Email: e})
	}
	now := s.now()
	var out []store.Notification
	var to, again []string
	var earlier []store.Notification // the concern's notifications before this call, read once if needed
	for _, rc := range notify.Route(dsls, s.cfg.YearLeads, groups) {
		n := store.Notification{ID: newID(), ConcernID: c.ID, RecipientEmail: rc.Email, RecipientName: rc.Name, Reason: rc.Reason, Created: now}
		if s.cfg.Mailer != nil {
			n.EmailStatus, n.EmailAt = store.EmailQueued, now
		}
		if err := s.store.CreateNotification(ctx, n); errors.Is(err, store.ErrConflict) {
			// Told when the concern was raised in the room: now tell
			// them the details are in.
			if completing && s.cfg.Mailer != nil {
				if earlier == nil {
					earlier = s.concernNotifications(ctx, c.ID)
				}
				if told, ok := s.toldAlready(ctx, earlier, rc.Email); ok {
					again = append(again, rc.Email)
					s.mailConcern(c, told, true)
				}
			}
			continue
		} else if err != nil {
			s.log.Error("concern: store notification", slog.String("concern", c.ID), slog.String("to", rc.Email), slog.Any("err", err))
			continue
		}
		out = append(out, n)
		to = append(to, rc.Email+" ("+rc.Reason+")")
		if s.cfg.Mailer != nil {
			s.mailConcern(c, n, false)
		}
	}
	detail := map[string]any{"recipients": to, "pupils": subs}
	if len(again) > 0 {
		detail["details_added_mailed"] = again
	}
	s.audit(ctx, who, "concern.notified", c.ID, c.SessionID, detail, "")
	return out
}

// concernNotifications lists a concern's notifications (none, logged, on
// a store error).
func (s *Server) concernNotifications(ctx context.Context, concernID string) []store.Notification {
	ns, err := s.store.ListNotifications(ctx, store.NotificationFilter{ConcernID: concernID})
	if err != nil {
		s.log.Error("concern: list notifications", slog.String("concern", concernID), slog.Any("err", err))
		return []store.Notification{}
	}
	return ns
}

// toldAlready returns the notification in ns to email, marking its e-mail
// queued again for the message that follows.
func (s *Server) toldAlready(ctx context.Context, ns []store.Notification, email string) (store.Notification, bool) {
	for _, n := range ns {
		if strings.EqualFold(n.RecipientEmail, email) {
			if err := s.store.SetNotificationEmail(ctx, n.ID, store.EmailQueued, "", s.now()); err != nil {
				s.log.Error("concern: record e-mail state", slog.String("notification", n.ID), slog.Any("err", err))
			}
			return n, true
		}
	}
	return store.Notification{}, false
}

// concernMail is the e-mail of a notification (pending: raised in the room,
// the form not filled in yet; detailsAdded: the form has now been filled
// in). It says only that there is a concern and where to sign in: e-mail is
// not a safe channel for the details.
func (s *Server) concernMail(n store.Notification, pending, detailsAdded bool) notify.Message {
	link := s.cfg.PublicURL + "/concerns/" + url.PathEscape(n.ConcernID)
	what := "A safeguarding concern has been raised about a pupil."
	subject := "A safeguarding concern has been raised: please sign in"
	switch {
	case detailsAdded:
		what = "The member of staff who stopped a lesson to raise a safeguarding concern has now added the details."
		subject = "Details added to the safeguarding concern raised in a lesson: please sign in"
	case pending:
		what = "A member of staff stopped a lesson and raised a safeguarding concern; details to follow. The lesson has ended and its recordings are being held."
		subject = "A lesson was stopped to raise a safeguarding concern: please sign in"
	case n.Reason != notify.ReasonDSL:
		what = "A safeguarding concern has been raised about a pupil in your year group."
	}
	body := what + "\n\nSign in to see it:\n" + link + "\n\n" +
		"This e-mail does not say who or what it is about, on purpose: e-mail is not a safe place for safeguarding details.\n"
	return notify.Message{To: n.RecipientEmail, Subject: subject, Body: body}
}

// mailConcern queues the e-mail of a notification and records each
// outcome on it (the concern page shows it).
func (s *Server) mailConcern(c store.Concern, n store.Notification, detailsAdded bool) {
	msg := s.concernMail(n, c.State == store.ConcernPending, detailsAdded)
	if !s.limits.concernMail.Allow(c.ID + "\x00" + strings.ToLower(n.RecipientEmail) + "\x00" + msg.Subject) {
		s.log.Warn("concern e-mail not sent again", slog.String("concern", c.ID), slog.String("to", n.RecipientEmail))
		return
	}
	record := func(status, errText string) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.store.SetNotificationEmail(ctx, n.ID, status, errText, s.now()); err != nil {
			s.log.Error("concern: record e-mail state", slog.String("notification", n.ID), slog.Any("err", err))
		}
		switch status {
		case store.EmailSent:
			s.audit(ctx, auditSystem, "concern.email_sent", c.ID, c.SessionID, map[string]any{"to": n.RecipientEmail}, "")
		case store.EmailFailed:
			s.audit(ctx, auditSystem, "concern.email_failed", c.ID, c.SessionID, map[string]any{"to": n.RecipientEmail, "error": errText}, "")
		}
	}
	err := s.cfg.Mailer.Send(msg, func(attempt int, err error, final bool) {
		switch {
		case err == nil:
			record(store.EmailSent, "")
		case final:
			s.log.Error("concern e-mail not sent", slog.String("concern", c.ID), slog.String("to", n.RecipientEmail), slog.Int("attempts", attempt), slog.Any("err", err))
			record(store.EmailFailed, err.Error())
		default:
			record(store.EmailRetrying, err.Error())
		}
	})
	if err != nil {
		s.log.Error("concern e-mail not queued", slog.String("concern", c.ID), slog.String("to", n.RecipientEmail), slog.Any("err", err))
		record(store.EmailFailed, err.Error())
	}
}

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

// mayReadConcern reports whether who may read concern c, by their roles as
// they are now: the DSL role of their current sign-in, or being the
// configured lead of the year group of a pupil it is about. Having been
// notified is not enough (a former DSL or year lead was notified too).
func (s *Server) mayReadConcern(ctx context.Context, who auth.Identity, c store.Concern) bool {
	if who.Has(auth.RoleDSL) {
		return true
	}
	if who.Email == "" || !who.Has(auth.RoleStaff) {
		return false
	}
	email := strings.ToLower(who.Email)
	for _, sub := range s.concernPupilSubs(ctx, c) {
		u, err := s.store.GetUser(ctx, who.Issuer, sub)
		if err != nil {
			continue
		}
		for _, g := range u.Groups {
			if lead, ok := s.cfg.YearLeads[g]; ok && lead == email {
				return true
			}
		}
	}
	return false
}

// concernPupilSubs are the pupils a concern is about: those ticked on the
// form (concerns filed before they were stored: from its notified audit row).
func (s *Server) concernPupilSubs(ctx context.Context, c store.Concern) []string {
	if len(c.Pupils) > 0 || c.State == store.ConcernPending {
		return c.Pupils
	}
	rows, err := s.store.ListAudit(ctx, store.AuditFilter{Action: "concern.notified", Target: c.ID})
	if err != nil {
		return nil
	}
	var out []string
	for _, a := range rows {
		var d struct{ Pupils []string }
		if json.Unmarshal([]byte(a.Detail), &d) == nil {
			out = append(out, d.Pupils...)
		}
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
	if !s.mayReadConcern(ctx, who, c) {
		s.audit(ctx, who, "concern.view_refused", c.ID, c.SessionID, map[string]any{"roles": who.Roles}, auth.ClientIP(r))
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
	if err := s.auditOrErr(ctx, who, "concern.viewed", c.ID, c.SessionID, nil, auth.ClientIP(r)); err != nil {
		s.failErr(w, r, err)
		return
	}
	title, when := c.SessionID, ""
	if ss, err := s.store.GetSession(ctx, c.SessionID); err == nil {
		title, when = ss.Title, s.when(ss)
	}
	s.render(w, r, http.StatusOK, "concernview", page{Title: "Safeguarding concern", Data: map[string]any{
		"C": c, "Title": title, "When": when, "Raised": c.Created.In(s.loc()).Format("Mon 2 Jan 2006 15:04"),
		"Notified": s.notificationViews(ns), "DSL": who.Has(auth.RoleDSL), "Pending": c.State == store.ConcernPending}})
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
		if err != nil || !s.mayReadConcern(r.Context(), who, c) {
			continue // told once, but not (or no longer) their year group's lead
		}
		out = append(out, s.concernItem(r, c, n.Opened.IsZero()))
	}
	return out
}
