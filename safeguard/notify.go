package safeguard

import (
	"context"
	"errors"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/chaperone-edu/chaperone/audit"
	"github.com/chaperone-edu/chaperone/auth"
	"github.com/chaperone-edu/chaperone/notify"
	"github.com/chaperone-edu/chaperone/store"
)

// This file routes a safeguarding concern (R14) to the DSLs and to the year
// lead of each pupil it is about: a notification row per recipient (shown on
// their home page), an e-mail through SMTP when one is configured, and the
// concern's own page, which records when each recipient opened it.

// Notify tells the DSLs and the year leads of the pupils concerned: a
// notification row each, and an e-mail when SMTP is configured (sent in the
// background: the concern never waits for it). Those told already when the
// concern was raised in the room (completing: the form now completes it)
// get a second e-mail saying the details are in. It returns the
// notifications made.
func (s *Service) Notify(ctx context.Context, who auth.Identity, c store.Concern, about []Pupil, completing bool) []store.Notification {
	st := s.cfg.Store
	var groups []string
	var subs []string
	for _, p := range about {
		subs = append(subs, p.Sub)
		u, err := st.GetUser(ctx, who.Issuer, p.Sub)
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
	if us, err := st.ListUsersWithRole(ctx, string(auth.RoleDSL)); err != nil {
		s.log.Error("concern: list safeguarding leads", slog.Any("err", err))
	} else {
		for _, u := range us {
			dsls = append(dsls, notify.Recipient{Email: u.Email, Name: u.Name})
		}
	}
	for _, e := range s.cfg.DSLEmails {
		dsls = append(dsls, notify.Recipient{Email: e})
	}
	now := s.cfg.Now()
	var out []store.Notification
	var to, again []string
	var earlier []store.Notification // the concern's notifications before this call, read once if needed
	for _, rc := range notify.Route(dsls, s.cfg.YearLeads, groups) {
		if c.Kind == store.ConcernKindWorry && s.staffOfLesson(ctx, rc.Email, c.SessionID) {
			continue // a worry never reaches the lesson's own staff (R17)
		}
		n := store.Notification{ID: newID(), ConcernID: c.ID, RecipientEmail: rc.Email, RecipientName: rc.Name, Reason: rc.Reason, Created: now}
		if s.cfg.Mailer != nil {
			n.EmailStatus, n.EmailAt = store.EmailQueued, now
		}
		if err := st.CreateNotification(ctx, n); errors.Is(err, store.ErrConflict) {
			// Told when the concern was raised in the room: now tell
			// them the details are in.
			if completing && s.cfg.Mailer != nil {
				if earlier == nil {
					earlier = s.Notifications(ctx, c.ID)
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
	s.audit(ctx, who, audit.ConcernNotified, c.ID, c.SessionID, audit.Notified{Recipients: to, Pupils: subs, DetailsAddedMailed: again}, "")
	return out
}

// Notifications lists a concern's notifications (none, logged, on a store
// error).
func (s *Service) Notifications(ctx context.Context, concernID string) []store.Notification {
	ns, err := s.cfg.Store.ListNotifications(ctx, store.NotificationFilter{ConcernID: concernID})
	if err != nil {
		s.log.Error("concern: list notifications", slog.String("concern", concernID), slog.Any("err", err))
		return []store.Notification{}
	}
	return ns
}

// toldAlready returns the notification in ns to email, marking its e-mail
// queued again for the message that follows.
func (s *Service) toldAlready(ctx context.Context, ns []store.Notification, email string) (store.Notification, bool) {
	for _, n := range ns {
		if strings.EqualFold(n.RecipientEmail, email) {
			if err := s.cfg.Store.SetNotificationEmail(ctx, n.ID, store.EmailQueued, "", s.cfg.Now()); err != nil {
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
func (s *Service) concernMail(n store.Notification, c store.Concern, detailsAdded bool) notify.Message {
	pending := c.State == store.ConcernPending
	link := s.cfg.PublicURL + "/concerns/" + url.PathEscape(n.ConcernID)
	what := "A safeguarding concern has been raised about a pupil."
	subject := "A safeguarding concern has been raised: please sign in"
	switch {
	case c.Kind == store.ConcernKindWorry:
		what = "A pupil pressed “I'm worried” and wrote to the safeguarding team."
		subject = "A pupil is worried about something: please sign in"
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
func (s *Service) mailConcern(c store.Concern, n store.Notification, detailsAdded bool) {
	msg := s.concernMail(n, c, detailsAdded)
	if !s.mail.Allow(c.ID + "\x00" + strings.ToLower(n.RecipientEmail) + "\x00" + msg.Subject) {
		s.log.Warn("concern e-mail not sent again", slog.String("concern", c.ID), slog.String("to", n.RecipientEmail))
		return
	}
	record := func(status, errText string) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.cfg.Store.SetNotificationEmail(ctx, n.ID, status, errText, s.cfg.Now()); err != nil {
			s.log.Error("concern: record e-mail state", slog.String("notification", n.ID), slog.Any("err", err))
		}
		switch status {
		case store.EmailSent:
			s.audit(ctx, system, audit.ConcernEmailSent, c.ID, c.SessionID, audit.Email{To: n.RecipientEmail}, "")
		case store.EmailFailed:
			s.audit(ctx, system, audit.ConcernEmailFailed, c.ID, c.SessionID, audit.Email{To: n.RecipientEmail, Error: errText}, "")
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
