// Package safeguard is the school's safeguarding concerns (R9, R14):
//
//   - raise: "stop and raise a concern" in a room stores the concern as
//     pending and tells the DSLs at once (RaiseInRoom); the member of staff's
//     form then completes it, or files a concern raised from the session's
//     page (File);
//   - legal hold: every recording object of the session goes on legal hold,
//     in S3 and in the index (Hold), and again once what the room was
//     recording has been stored (Finished);
//   - route: the DSLs and the lead of each ticked pupil's year group
//     (notify.Route), a notification row each;
//   - notify: an e-mail each through SMTP when one is configured, saying only
//     where to sign in; each outcome recorded on the notification and in the
//     audit log;
//   - read: who may read a concern by their roles now (MayRead).
//
// It knows nothing of HTTP: package web has the forms and pages, and ends a
// running room (package live) before filing.
package safeguard

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/chaperone-edu/chaperone/audit"
	"github.com/chaperone-edu/chaperone/auth"
	"github.com/chaperone-edu/chaperone/lobby"
	"github.com/chaperone-edu/chaperone/notify"
	"github.com/chaperone-edu/chaperone/recording"
	"github.com/chaperone-edu/chaperone/store"
)

// Config configures the concerns service.
type Config struct {
	Store store.Store
	// Bucket is where recordings are held; nil means no recording storage
	// (nothing to hold).
	Bucket *recording.Bucket
	// Mailer sends the e-mail that tells people of a concern; nil means
	// no e-mail (they see it on their home page).
	Mailer *notify.Mailer
	// YearLeads maps a year group's IdP group to its lead's e-mail.
	YearLeads notify.YearLeads
	// DSLEmails are told of every concern besides the accounts whose roles
	// at their last sign-in include dsl.
	DSLEmails []string
	// PublicURL is the gateway's address, for the link in e-mails.
	PublicURL string
	Now       func() time.Time
	Logger    *slog.Logger
}

// Service raises, holds, routes and notifies concerns.
type Service struct {
	cfg     Config
	log     *slog.Logger
	mail    *auth.Throttle // per concern, recipient and kind of e-mail
	worries *auth.Throttle // per pupil

	raising sync.Mutex // a person's pending in-room concern: checked and stored as one step
}

// mailWindow: each person is e-mailed each kind of message about a concern
// (raised in the room, raised, details added) at most once in it, however
// often the concern is raised or its form posted.
const mailWindow = 24 * time.Hour

// New returns the concerns service.
func New(cfg Config) *Service {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Service{cfg: cfg, log: cfg.Logger, mail: auth.NewThrottle(1, mailWindow, cfg.Now), worries: auth.NewThrottle(worryBurst, worryEvery, cfg.Now)}
}

// system is the actor of audit rows the gateway writes by itself.
var system = auth.Identity{}

func newID() string {
	b := make([]byte, 10)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))
}

func (s *Service) audit(ctx context.Context, who auth.Identity, action audit.Action, target, sessionID string, d audit.Detail, ip string) {
	if _, err := s.cfg.Store.AppendAudit(ctx, store.AuditEntry{Time: s.cfg.Now(), ActorSub: who.Subject, ActorName: who.Name,
		Action: action, Target: target, SessionID: sessionID, Detail: audit.Encode(d), RemoteIP: ip}); err != nil {
		s.log.Error("audit append failed", slog.String("action", string(action)), slog.Any("err", err))
	}
}

// MayRaise reports whether who may raise a concern about session ss: its
// staff and the headteacher.
func MayRaise(who auth.Identity, ss store.Session) bool {
	return lobby.IsSessionStaff(who, ss) || who.Has(auth.RoleHead)
}

// Hold puts every recording object of a session on legal hold, in S3 and
// in the index. It returns how many object versions were held.
func (s *Service) Hold(ctx context.Context, sessionID string) (int, error) {
	if s.cfg.Bucket == nil {
		return 0, nil
	}
	n, err := s.cfg.Bucket.SetLegalHold(ctx, recording.SessionPrefix(sessionID), true)
	if err != nil {
		return n, fmt.Errorf("legal hold on session %s: %w", sessionID, err)
	}
	if _, err := s.cfg.Store.SetRecordingHeld(ctx, sessionID, true); err != nil {
		return n, fmt.Errorf("mark held: %w", err)
	}
	return n, nil
}

// Finished holds what a room stored when it ended, if a concern was raised
// about its session (in the room, concern, or on the concern page); it is
// the live rooms' Finished hook.
func (s *Service) Finished(ctx context.Context, ss store.Session, concern bool) {
	if !concern {
		cs, err := s.cfg.Store.ListConcerns(ctx, ss.ID)
		if err != nil || len(cs) == 0 {
			return
		}
	}
	if _, err := s.Hold(ctx, ss.ID); err != nil && !errors.Is(err, context.Canceled) {
		s.log.Error("legal hold after recording", slog.String("session", ss.ID), slog.Any("err", err))
	}
}

// Recorded reports whether any part of the session was recorded.
func (s *Service) Recorded(ctx context.Context, sessionID string) bool {
	rows, err := s.cfg.Store.ListAudit(ctx, store.AuditFilter{SessionID: sessionID, Action: audit.RecordingConfirmed, Limit: 1})
	return err == nil && len(rows) > 0
}

// Pupil is a pupil who joined a session.
type Pupil struct{ Sub, Name string }

// Pupils lists the pupils who joined a session, from the audit log (first
// join first, each once).
func (s *Service) Pupils(ctx context.Context, sessionID string) []Pupil {
	rows, err := s.cfg.Store.ListAudit(ctx, store.AuditFilter{SessionID: sessionID, Action: audit.RoomJoin})
	if err != nil {
		s.log.Error("list joins", slog.String("session", sessionID), slog.Any("err", err))
		return nil
	}
	var out []Pupil
	seen := map[string]bool{}
	for i := len(rows) - 1; i >= 0; i-- {
		a := rows[i]
		if a.ActorSub == "" || seen[a.ActorSub] || audit.Read(a.Detail).Role != string(lobby.Pupil) {
			continue
		}
		seen[a.ActorSub] = true
		out = append(out, Pupil{Sub: a.ActorSub, Name: a.ActorName})
	}
	return out
}

// Joined lists the names of everyone who joined a session, first join
// first, each once.
func (s *Service) Joined(ctx context.Context, sessionID string) []string {
	rows, err := s.cfg.Store.ListAudit(ctx, store.AuditFilter{SessionID: sessionID, Action: audit.RoomJoin})
	if err != nil {
		s.log.Error("list joins", slog.String("session", sessionID), slog.Any("err", err))
		return nil
	}
	var names []string
	seen := map[string]bool{}
	for i := len(rows) - 1; i >= 0; i-- {
		if n := rows[i].ActorName; n != "" && !seen[n] {
			seen[n] = true
			names = append(names, n)
		}
	}
	return names
}

// Pending is the newest concern raised in the room of a session by sub
// whose form is not filled in yet.
func (s *Service) Pending(ctx context.Context, sessionID, sub string) (store.Concern, bool) {
	cs, err := s.cfg.Store.ListConcerns(ctx, sessionID)
	if err != nil {
		s.log.Error("list concerns", slog.String("session", sessionID), slog.Any("err", err))
		return store.Concern{}, false
	}
	for _, c := range cs {
		if c.State == store.ConcernPending && c.RaisedBySub == sub {
			return c, true
		}
	}
	return store.Concern{}, false
}

// RaiseInRoom is "stop and raise a concern" (R14, at once): the concern is
// stored as pending and the DSLs are told straight away, before the member
// of staff fills in the form (which then completes it). Someone already
// waiting to fill in a concern raised in this session's room raises none
// again (at most one pending concern per room and person).
func (s *Service) RaiseInRoom(who auth.Identity, ss store.Session) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s.raising.Lock()
	defer s.raising.Unlock()
	if c, ok := s.Pending(ctx, ss.ID, who.Subject); ok {
		s.log.Info("concern already pending: not raised again", slog.String("session", ss.ID), slog.String("concern", c.ID))
		return
	}
	c := store.Concern{ID: newID(), SessionID: ss.ID, RaisedBySub: who.Subject, RaisedBy: who.Name, Created: s.cfg.Now(),
		Recorded: s.Recorded(ctx, ss.ID), State: store.ConcernPending}
	if err := s.cfg.Store.CreateConcern(ctx, c); err != nil {
		s.log.Error("concern raised in the room not stored", slog.String("session", ss.ID), slog.Any("err", err))
		return
	}
	s.audit(ctx, who, audit.ConcernPending, c.ID, ss.ID, audit.Concern{Recorded: c.Recorded}, "")
	s.Notify(ctx, who, c, nil, false)
}

// Filing is what the concern form sends.
type Filing struct {
	About   string   // who it is about, free text
	Details string   // what happened
	Pupils  []string // the subjects of the pupils ticked
	IP      string
}

// Filed is a concern filed: whom it told, and whether its hold failed.
type Filed struct {
	Concern store.Concern
	Ticked  []Pupil
	Told    []store.Notification
	HoldErr error
}

// errNotJoined refuses a ticked pupil who did not join the session.
var errNotJoined = &lobby.Error{Kind: lobby.Invalid, Field: "pupil", Message: "One of the pupils ticked did not join this session. Tick only pupils from the list."}

// Check validates a filing; a refusal is a *lobby.Error saying what to fix.
func Check(f Filing) error {
	switch {
	case f.Details == "":
		return &lobby.Error{Kind: lobby.Invalid, Field: "details", Message: "Say what happened: the safeguarding lead needs it to act."}
	case utf8.RuneCountInString(f.Details) > 5000 || utf8.RuneCountInString(f.About) > 500:
		return &lobby.Error{Kind: lobby.Invalid, Field: "details", Message: "That is too long: keep what happened to 5,000 characters and who it is about to 500."}
	}
	if err := lobby.CheckText("details", "description of what happened", f.Details); err != nil {
		return err
	}
	return lobby.CheckText("about", "“who it is about”", f.About)
}

// CheckFiling validates a filing against session ss (Check, and the
// pupils ticked must have joined it), changing nothing: the caller checks
// it before stopping a running room.
func (s *Service) CheckFiling(ctx context.Context, ss store.Session, f Filing) error {
	if err := Check(f); err != nil {
		return err
	}
	_, err := ticked(s.Pupils(ctx, ss.ID), f.Pupils)
	return err
}

// ticked are the pupils ticked on the concern form, each of whom must have
// joined the session. Only they are routed to their year lead: names in
// the free text are never matched.
func ticked(joined []Pupil, subs []string) ([]Pupil, error) {
	var out []Pupil
	for _, sub := range subs {
		i := slices.IndexFunc(joined, func(p Pupil) bool { return p.Sub == sub })
		if i < 0 {
			return nil, errNotJoined
		}
		if !slices.ContainsFunc(out, func(p Pupil) bool { return p.Sub == sub }) {
			out = append(out, joined[i])
		}
	}
	return out, nil
}

// File files the concern of who about session ss (its room, if running,
// already ended by the caller): the session's recordings go on legal hold,
// the concern is stored (completing the one this person raised in the
// room, if any), audited and routed. A bad filing is refused with a
// *lobby.Error and changes nothing.
func (s *Service) File(ctx context.Context, who auth.Identity, ss store.Session, f Filing) (Filed, error) {
	if err := Check(f); err != nil {
		return Filed{}, err
	}
	about, err := ticked(s.Pupils(ctx, ss.ID), f.Pupils)
	if err != nil {
		return Filed{}, err
	}
	held, herr := s.Hold(ctx, ss.ID)
	if herr != nil {
		s.log.Error("legal hold for concern", slog.String("session", ss.ID), slog.Any("err", herr))
	}
	subs := make([]string, len(about))
	for i, p := range about {
		subs[i] = p.Sub
	}
	c := store.Concern{ID: newID(), SessionID: ss.ID, RaisedBySub: who.Subject, RaisedBy: who.Name, About: f.About, Details: f.Details,
		Created: s.cfg.Now(), Recorded: s.Recorded(ctx, ss.ID), HeldObjects: held, State: store.ConcernFiled, Pupils: subs}
	// The concern this person raised in the room (the DSL already knows of
	// it) is completed, not raised a second time.
	pending, completing := s.Pending(ctx, ss.ID, who.Subject)
	if completing {
		c.ID, c.Created = pending.ID, pending.Created
		err = s.cfg.Store.CompleteConcern(ctx, c)
	} else {
		err = s.cfg.Store.CreateConcern(ctx, c)
	}
	if err != nil {
		return Filed{}, fmt.Errorf("store concern: %w", err)
	}
	s.audit(ctx, who, audit.ConcernFiled, c.ID, ss.ID, audit.Concern{About: f.About, Pupils: subs, Recorded: c.Recorded, HeldObjects: held}, f.IP)
	told := s.Notify(ctx, who, c, about, completing)
	return Filed{Concern: c, Ticked: about, Told: told, HoldErr: herr}, nil
}

// MayRead reports whether who may read concern c, by their roles as they
// are now: the DSL role of their current sign-in, or being the configured
// lead of the year group of a pupil it is about. Having been notified is
// not enough (a former DSL or year lead was notified too).
func (s *Service) MayRead(ctx context.Context, who auth.Identity, c store.Concern) bool {
	if c.Kind == store.ConcernKindWorry {
		// The DSLs only (R17), and never one who was staff of the lesson
		// it came from: they may be the worry.
		return who.Has(auth.RoleDSL) && !s.staffOfLesson(ctx, who.Email, c.SessionID)
	}
	if who.Has(auth.RoleDSL) {
		return true
	}
	if who.Email == "" || !who.Has(auth.RoleStaff) {
		return false
	}
	email := strings.ToLower(who.Email)
	for _, sub := range s.pupilSubs(ctx, c) {
		u, err := s.cfg.Store.GetUser(ctx, who.Issuer, sub)
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

// staffOfLesson reports whether email is the host or co-staff of the
// session (a worry from that lesson is kept from them).
func (s *Service) staffOfLesson(ctx context.Context, email, sessionID string) bool {
	if sessionID == "" || email == "" {
		return false
	}
	ss, err := s.cfg.Store.GetSession(ctx, sessionID)
	if err != nil {
		return true // unknown: keep it from them rather than show it
	}
	return lobby.IsSessionStaff(auth.Identity{Email: email, Roles: []auth.Role{auth.RoleStaff}}, ss)
}

// pupilSubs are the pupils a concern is about: those ticked on the form
// (concerns filed before they were stored: from its notified audit row).
func (s *Service) pupilSubs(ctx context.Context, c store.Concern) []string {
	if len(c.Pupils) > 0 || c.State == store.ConcernPending {
		return c.Pupils
	}
	rows, err := s.cfg.Store.ListAudit(ctx, store.AuditFilter{Action: audit.ConcernNotified, Target: c.ID})
	if err != nil {
		return nil
	}
	var out []string
	for _, a := range rows {
		out = append(out, audit.Decode[audit.Notified](a.Detail).Pupils...)
	}
	return out
}

// Refused audits a refusal to show concern c to who.
func (s *Service) Refused(ctx context.Context, who auth.Identity, c store.Concern, ip string) {
	roles := make([]string, len(who.Roles))
	for i, r := range who.Roles {
		roles[i] = string(r)
	}
	s.audit(ctx, who, audit.ConcernViewRefused, c.ID, c.SessionID, audit.Refused{Roles: roles}, ip)
}

// Worry limits: a pupil's message, and how many a pupil may send in a
// while (a child who presses twice is not refused; a script is).
const (
	WorryMaxRunes = 2000
	worryBurst    = 5
	worryEvery    = time.Hour
)

// errWorryText and friends are the refusals a pupil can read.
var (
	errWorryEmpty  = &lobby.Error{Kind: lobby.Invalid, Field: "text", Message: "Write a few words about what is worrying you, then press Send."}
	errWorryLong   = &lobby.Error{Kind: lobby.Invalid, Field: "text", Message: "That is very long. Please keep it under 2,000 characters."}
	errWorryPupils = &lobby.Error{Kind: lobby.Forbidden, Message: "This button is for pupils. Staff raise a concern from the lesson's page, or tell the safeguarding lead."}
	errWorryLesson = &lobby.Error{Kind: lobby.Invalid, Field: "session", Message: "Choose one of your own lessons, or none."}
)

// Worry is a pupil's "I'm worried" (R17): their words go to the DSLs only
// (never to the lesson's own teacher, who may be the worry), with the
// lesson (sessionID, if any: one the pupil joined) and the time; the
// lesson's recordings go on legal hold; the audit row says that a worry
// was sent, never what it says (its text is kept like chat text, in the
// concerns table). A refusal is a *lobby.Error and changes nothing.
func (s *Service) Worry(ctx context.Context, who auth.Identity, sessionID, text, ip string) (store.Concern, error) {
	if !who.Has(auth.RolePupil) {
		return store.Concern{}, errWorryPupils
	}
	text = strings.TrimSpace(text)
	switch n := utf8.RuneCountInString(text); {
	case n == 0:
		return store.Concern{}, errWorryEmpty
	case n > WorryMaxRunes:
		return store.Concern{}, errWorryLong
	}
	if err := lobby.CheckText("text", "message", text); err != nil {
		return store.Concern{}, err
	}
	if sessionID != "" && !s.joined(ctx, who, sessionID) {
		return store.Concern{}, errWorryLesson
	}
	// The worry is kept and held whatever the request does next (the pupil
	// may close the page); a pupil past the limit is kept too, but the
	// DSLs are not told again (it shows on their home page).
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	tell := s.worries.Allow(who.Issuer + "\x00" + who.Subject)
	c := store.Concern{ID: newID(), SessionID: sessionID, RaisedBySub: who.Subject, RaisedBy: who.Name, Details: text,
		Created: s.cfg.Now(), State: store.ConcernFiled, Kind: store.ConcernKindWorry}
	if sessionID != "" {
		c.Recorded = s.Recorded(ctx, sessionID)
	}
	if err := s.cfg.Store.CreateConcern(ctx, c); err != nil {
		return store.Concern{}, fmt.Errorf("store worry: %w", err)
	}
	if sessionID != "" {
		held, err := s.Hold(ctx, sessionID)
		if err != nil {
			s.log.Error("legal hold for a pupil's worry; the reconciler holds it later", slog.String("session", sessionID), slog.Any("err", err))
		}
		c.HeldObjects = held
	}
	s.audit(ctx, who, audit.ConcernWorry, c.ID, sessionID, audit.Worry{Recorded: c.Recorded, HeldObjects: c.HeldObjects}, ip)
	if tell {
		s.Notify(ctx, who, c, nil, false) // no pupils ticked: the DSLs only, not the lesson's staff
	}
	return c, nil
}

// joined reports whether who joined the session's room.
func (s *Service) joined(ctx context.Context, who auth.Identity, sessionID string) bool {
	rows, err := s.cfg.Store.ListAudit(ctx, store.AuditFilter{SessionID: sessionID, Action: audit.RoomJoin, ActorSub: who.Subject, Limit: 1})
	return err == nil && len(rows) > 0
}

// Lesson is a lesson a pupil may name in a worry.
type Lesson struct {
	SessionID, Title string
	Joined           time.Time
}

// RecentLessons are the lessons who joined in the last two weeks, newest
// first, each once.
func (s *Service) RecentLessons(ctx context.Context, who auth.Identity) []Lesson {
	rows, err := s.cfg.Store.ListAudit(ctx, store.AuditFilter{Action: audit.RoomJoin, ActorSub: who.Subject, Since: s.cfg.Now().AddDate(0, 0, -14), Limit: 200})
	if err != nil {
		s.log.Error("recent lessons", slog.Any("err", err))
		return nil
	}
	var out []Lesson
	seen := map[string]bool{}
	for _, r := range rows {
		if r.SessionID == "" || seen[r.SessionID] {
			continue
		}
		seen[r.SessionID] = true
		ss, err := s.cfg.Store.GetSession(ctx, r.SessionID)
		if err != nil {
			continue
		}
		out = append(out, Lesson{SessionID: ss.ID, Title: ss.Title, Joined: r.Time})
	}
	return out
}
