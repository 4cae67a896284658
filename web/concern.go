package web

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/chaperone-edu/chaperone/auth"
	"github.com/chaperone-edu/chaperone/lobby"
	"github.com/chaperone-edu/chaperone/notify"
	"github.com/chaperone-edu/chaperone/recording"
	"github.com/chaperone-edu/chaperone/store"
)

// This file is "stop and raise a concern" (R9): the room ends for
// everyone, the member of staff fills in the concern for the DSL, and every
// recording object of the session goes on legal hold.

// mayRaiseConcern: staff of the session and the headteacher.
func mayRaiseConcern(who auth.Identity, ss store.Session) bool {
	return lobby.IsSessionStaff(who, ss) || who.Has(auth.RoleHead)
}

func concernURL(sessionID string) string {
	return "/sessions/" + url.PathEscape(sessionID) + "/concern"
}

// holdSession puts every recording object of a session on legal hold, in
// S3 and in the index. It returns how many object versions were held.
func (s *Server) holdSession(ctx context.Context, sessionID string) (int, error) {
	if s.cfg.Bucket == nil {
		return 0, nil
	}
	n, err := s.cfg.Bucket.SetLegalHold(ctx, recording.SessionPrefix(sessionID), true)
	if err != nil {
		return n, fmt.Errorf("legal hold on session %s: %w", sessionID, err)
	}
	if _, err := s.store.SetRecordingHeld(ctx, sessionID, true); err != nil {
		return n, fmt.Errorf("mark held: %w", err)
	}
	return n, nil
}

// concernSession loads the session of a concern request and checks that
// the person may raise a concern about it; on refusal it has answered.
func (s *Server) concernSession(w http.ResponseWriter, r *http.Request) (auth.Identity, store.Session, bool) {
	who := sessionFrom(r.Context()).Identity
	ss, err := s.store.GetSession(r.Context(), r.PathValue("id"))
	if err != nil {
		s.failErr(w, r, errUnknownSession)
		return who, ss, false
	}
	if !mayRaiseConcern(who, ss) {
		s.fail(w, r, http.StatusForbidden, "forbidden", "Only the staff of this session can raise a concern about it here. Otherwise, tell the safeguarding lead directly.")
		return who, ss, false
	}
	return who, ss, true
}

func (s *Server) pageConcern(w http.ResponseWriter, r *http.Request) {
	_, ss, ok := s.concernSession(w, r)
	if !ok {
		return
	}
	s.renderConcernForm(w, r, http.StatusOK, ss, "", "", "")
}

func (s *Server) renderConcernForm(w http.ResponseWriter, r *http.Request, status int, ss store.Session, about, details, problem string) {
	var names []string
	if rows, err := s.store.ListAudit(r.Context(), store.AuditFilter{SessionID: ss.ID, Action: "room.join"}); err == nil {
		seen := map[string]bool{}
		for i := len(rows) - 1; i >= 0; i-- {
			if n := rows[i].ActorName; n != "" && !seen[n] {
				seen[n] = true
				names = append(names, n)
			}
		}
	}
	recorded := s.sessionRecorded(r.Context(), ss.ID)
	ticked := r.PostForm["pupil"]
	_, pending := s.pendingConcern(r.Context(), ss.ID, sessionFrom(r.Context()).Identity.Subject)
	type pupilBox struct {
		pupilRef
		Checked bool
	}
	var pupils []pupilBox
	for _, p := range s.sessionPupils(r.Context(), ss.ID) {
		pupils = append(pupils, pupilBox{p, slices.Contains(ticked, p.Sub)})
	}
	s.render(w, r, status, "concern", page{Title: "Raise a safeguarding concern", Message: problem, Error: problem != "",
		Data: map[string]any{"S": ss, "When": s.when(ss), "Names": names, "Pupils": pupils, "About": about, "Details": details, "Recorded": recorded,
			"Pending": pending}})
}

// sessionRecorded reports whether any part of the session was recorded.
func (s *Server) sessionRecorded(ctx context.Context, sessionID string) bool {
	rows, err := s.store.ListAudit(ctx, store.AuditFilter{SessionID: sessionID, Action: "recording.confirmed"})
	return err == nil && len(rows) > 0
}

func (s *Server) postConcern(w http.ResponseWriter, r *http.Request) {
	who, ss, ok := s.concernSession(w, r)
	if !ok {
		return
	}
	about := strings.TrimSpace(r.PostFormValue("about"))
	details := strings.TrimSpace(r.PostFormValue("details"))
	joined := s.sessionPupils(r.Context(), ss.ID)
	ticked, bad := tickedPupils(joined, r.PostForm["pupil"])
	switch {
	case bad != nil:
		s.renderConcernForm(w, r, http.StatusBadRequest, ss, about, details, bad.Message)
		return
	case details == "":
		s.renderConcernForm(w, r, http.StatusBadRequest, ss, about, details, "Say what happened: the safeguarding lead needs it to act.")
		return
	case utf8.RuneCountInString(details) > 5000 || utf8.RuneCountInString(about) > 500:
		s.renderConcernForm(w, r, http.StatusBadRequest, ss, about, details, "That is too long: keep what happened to 5,000 characters and who it is about to 500.")
		return
	}
	for _, f := range []struct{ field, what, text string }{{"details", "description of what happened", details}, {"about", "“who it is about”", about}} {
		var le *lobby.Error
		if err := lobby.CheckText(f.field, f.what, f.text); errors.As(err, &le) {
			s.renderConcernForm(w, r, http.StatusBadRequest, ss, about, details, le.Message)
			return
		}
	}
	// A room still running ends now.
	if lr, ok := s.liveRoomOf(ss.ID); ok {
		lr.concern.Store(true)
		lr.room.End("The session was ended by " + who.Name + ".")
	}
	held, herr := s.holdSession(r.Context(), ss.ID)
	if herr != nil {
		s.log.Error("legal hold for concern", slog.String("session", ss.ID), slog.Any("err", herr))
	}
	subs := make([]string, len(ticked))
	for i, p := range ticked {
		subs[i] = p.Sub
	}
	c := store.Concern{ID: newID(), SessionID: ss.ID, RaisedBySub: who.Subject, RaisedBy: who.Name, About: about, Details: details,
		Created: s.now(), Recorded: s.sessionRecorded(r.Context(), ss.ID), HeldObjects: held, State: store.ConcernFiled, Pupils: subs}
	// The concern this person raised in the room (the DSL already knows of
	// it) is completed, not raised a second time.
	var err error
	pending, completing := s.pendingConcern(r.Context(), ss.ID, who.Subject)
	if completing {
		c.ID, c.Created = pending.ID, pending.Created
		err = s.store.CompleteConcern(r.Context(), c)
	} else {
		err = s.store.CreateConcern(r.Context(), c)
	}
	if err != nil {
		s.failErr(w, r, fmt.Errorf("store concern: %w", err))
		return
	}
	s.audit(r.Context(), who, "concern.filed", c.ID, ss.ID, map[string]any{"about": about, "pupils": subs, "recorded": c.Recorded, "held_objects": held}, auth.ClientIP(r))
	told := s.notifyConcern(r.Context(), who, c, ticked, completing)
	msg := "Your concern has been sent to the designated safeguarding lead."
	if slices.ContainsFunc(told, func(n store.Notification) bool { return n.Reason != notify.ReasonDSL }) {
		msg = "Your concern has been sent to the designated safeguarding lead and the year lead of each pupil you ticked."
	} else if len(ticked) > 0 {
		msg += " No year lead is set up for the year group of the pupils you ticked, so only the safeguarding lead was told."
	}
	switch {
	case !c.Recorded:
		msg += " This session was not being recorded, so there is no recording; the concern says so."
	case herr != nil:
		msg += " The recordings could not all be put on hold just now; the safeguarding lead has been told and they will be held as soon as storage answers."
	default:
		msg += " The session's recordings are on legal hold and cannot be deleted."
	}
	s.render(w, r, http.StatusOK, "message", page{Title: "Concern sent", Heading: "Concern sent", Message: msg})
}

// errNotJoined refuses a ticked pupil who did not join the session.
var errNotJoined = &lobby.Error{Kind: lobby.Invalid, Field: "pupil", Message: "One of the pupils ticked did not join this session. Tick only pupils from the list."}

// tickedPupils are the pupils ticked on the concern form, each of whom must
// have joined the session. Only they are routed to their year lead: names
// in the free text are never matched.
func tickedPupils(joined []pupilRef, ticked []string) ([]pupilRef, *lobby.Error) {
	var out []pupilRef
	for _, sub := range ticked {
		i := slices.IndexFunc(joined, func(p pupilRef) bool { return p.Sub == sub })
		if i < 0 {
			return nil, errNotJoined
		}
		if !slices.ContainsFunc(out, func(p pupilRef) bool { return p.Sub == sub }) {
			out = append(out, joined[i])
		}
	}
	return out, nil
}

// pendingConcern is the newest concern raised in the room of a session by
// sub whose form is not filled in yet.
func (s *Server) pendingConcern(ctx context.Context, sessionID, sub string) (store.Concern, bool) {
	cs, err := s.store.ListConcerns(ctx, sessionID)
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

// raiseConcernInRoom is "stop and raise a concern" (R14, at once): the
// concern is stored as pending and the DSLs are told straight away, before
// the member of staff fills in the form (which then completes it).
// Someone already waiting to fill in a concern raised in this session's
// room raises none again (at most one pending concern per room and person).
func (s *Server) raiseConcernInRoom(who auth.Identity, ss store.Session) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s.concernMu.Lock()
	defer s.concernMu.Unlock()
	if c, ok := s.pendingConcern(ctx, ss.ID, who.Subject); ok {
		s.log.Info("concern already pending: not raised again", slog.String("session", ss.ID), slog.String("concern", c.ID))
		return
	}
	c := store.Concern{ID: newID(), SessionID: ss.ID, RaisedBySub: who.Subject, RaisedBy: who.Name, Created: s.now(),
		Recorded: s.sessionRecorded(ctx, ss.ID), State: store.ConcernPending}
	if err := s.store.CreateConcern(ctx, c); err != nil {
		s.log.Error("concern raised in the room not stored", slog.String("session", ss.ID), slog.Any("err", err))
		return
	}
	s.audit(ctx, who, "concern.pending", c.ID, ss.ID, map[string]any{"recorded": c.Recorded}, "")
	s.notifyConcern(ctx, who, c, nil, false)
}

// applyConcernHold holds a session's recordings once they are stored, if a
// concern was raised about it (in the room or on the concern page).
func (s *Server) applyConcernHold(ctx context.Context, lr *liveRoom) {
	cs, err := s.store.ListConcerns(ctx, lr.session.ID)
	if !lr.concern.Load() && (err != nil || len(cs) == 0) {
		return
	}
	if _, err := s.holdSession(ctx, lr.session.ID); err != nil && !errors.Is(err, context.Canceled) {
		s.log.Error("legal hold after recording", slog.String("session", lr.session.ID), slog.Any("err", err))
	}
}
