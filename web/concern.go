package web

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/chaperone-edu/chaperone/auth"
	"github.com/chaperone-edu/chaperone/lobby"
	"github.com/chaperone-edu/chaperone/notify"
	"github.com/chaperone-edu/chaperone/safeguard"
	"github.com/chaperone-edu/chaperone/store"
)

// This file is "stop and raise a concern" (R9): the room ends for
// everyone, the member of staff fills in the concern for the DSL, and every
// recording object of the session goes on legal hold.

func concernURL(sessionID string) string {
	return "/sessions/" + url.PathEscape(sessionID) + "/concern"
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
	if !safeguard.MayRaise(who, ss) {
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
	ctx := r.Context()
	ticked := r.PostForm["pupil"]
	_, pending := s.cfg.Concerns.Pending(ctx, ss.ID, sessionFrom(ctx).Identity.Subject)
	type pupilBox struct {
		safeguard.Pupil
		Checked bool
	}
	var pupils []pupilBox
	for _, p := range s.cfg.Concerns.Pupils(ctx, ss.ID) {
		pupils = append(pupils, pupilBox{p, slices.Contains(ticked, p.Sub)})
	}
	s.render(w, r, status, "concern", page{Title: "Raise a safeguarding concern", Message: problem, Error: problem != "",
		Data: map[string]any{"S": ss, "When": s.when(ss), "Names": s.cfg.Concerns.Joined(ctx, ss.ID), "Pupils": pupils, "About": about,
			"Details": details, "Recorded": s.cfg.Concerns.Recorded(ctx, ss.ID), "Pending": pending}})
}

func (s *Server) postConcern(w http.ResponseWriter, r *http.Request) {
	who, ss, ok := s.concernSession(w, r)
	if !ok {
		return
	}
	f := safeguard.Filing{About: strings.TrimSpace(r.PostFormValue("about")), Details: strings.TrimSpace(r.PostFormValue("details")),
		Pupils: r.PostForm["pupil"], IP: auth.ClientIP(r)}
	var le *lobby.Error
	// Checked before anything happens: a bad form does not stop the lesson.
	if err := s.cfg.Concerns.CheckFiling(r.Context(), ss, f); errors.As(err, &le) {
		s.renderConcernForm(w, r, http.StatusBadRequest, ss, f.About, f.Details, le.Message)
		return
	}
	// A room still running ends now.
	if lr, ok := s.running(ss.ID); ok {
		lr.EndForConcern("The session was ended by " + who.Name + ".")
	}
	filed, err := s.cfg.Concerns.File(r.Context(), who, ss, f)
	if errors.As(err, &le) {
		s.renderConcernForm(w, r, http.StatusBadRequest, ss, f.About, f.Details, le.Message)
		return
	}
	if err != nil {
		s.failErr(w, r, err)
		return
	}
	msg := "Your concern has been sent to the designated safeguarding lead."
	if slices.ContainsFunc(filed.Told, func(n store.Notification) bool { return n.Reason != notify.ReasonDSL }) {
		msg = "Your concern has been sent to the designated safeguarding lead and the year lead of each pupil you ticked."
	} else if len(filed.Ticked) > 0 {
		msg += " No year lead is set up for the year group of the pupils you ticked, so only the safeguarding lead was told."
	}
	switch {
	case !filed.Concern.Recorded:
		msg += " This session was not being recorded, so there is no recording; the concern says so."
	case filed.HoldErr != nil:
		msg += " The recordings could not all be put on hold just now; the safeguarding lead has been told and they will be held as soon as storage answers."
	default:
		msg += " The session's recordings are on legal hold and cannot be deleted."
	}
	s.render(w, r, http.StatusOK, "message", page{Title: "Concern sent", Heading: "Concern sent", Message: msg})
}
