package web

import (
	"errors"
	"net/http"
	"strings"

	"github.com/chaperone-edu/chaperone/auth"
	"github.com/chaperone-edu/chaperone/lobby"
	"github.com/chaperone-edu/chaperone/safeguard"
)

// This file is a pupil's "I'm worried" (R17): the pupils' code of conduct
// asks them to tell a trusted adult "or report it on the app". The page
// is reachable from the pupil's home page and lesson page; what is written
// goes to the safeguarding leads only (package safeguard).

// worryPath is the page's address; ?session=ID names the lesson it came from.
const worryPath = "/worried"

// pageWorry is GET /worried: a short, calm form.
func (s *Server) pageWorry(w http.ResponseWriter, r *http.Request) {
	who := sessionFrom(r.Context()).Identity
	if !who.Has(auth.RolePupil) {
		s.fail(w, r, http.StatusForbidden, "forbidden", "This page is for pupils. Staff raise a concern from the lesson's page, or tell the safeguarding lead.")
		return
	}
	s.renderWorry(w, r, http.StatusOK, r.URL.Query().Get("session"), "", "")
}

func (s *Server) renderWorry(w http.ResponseWriter, r *http.Request, status int, session, text, problem string) {
	who := sessionFrom(r.Context()).Identity
	s.render(w, r, status, "worried", page{Title: "I'm worried", Message: problem, Error: problem != "",
		Data: map[string]any{"Lessons": s.cfg.Concerns.RecentLessons(r.Context(), who), "Session": session, "Text": text,
			"Max": safeguard.WorryMaxRunes}})
}

// postWorry is POST /worried: the worry is sent, and the pupil told so.
func (s *Server) postWorry(w http.ResponseWriter, r *http.Request) {
	who := sessionFrom(r.Context()).Identity
	session, text := strings.TrimSpace(r.PostFormValue("session")), r.PostFormValue("text")
	_, err := s.cfg.Concerns.Worry(r.Context(), who, session, text, auth.ClientIP(r))
	var le *lobby.Error
	switch {
	case errors.As(err, &le) && le.Kind == lobby.Forbidden:
		s.fail(w, r, http.StatusForbidden, "forbidden", le.Message)
		return
	case errors.As(err, &le):
		s.renderWorry(w, r, http.StatusBadRequest, session, text, le.Message)
		return
	case err != nil:
		s.failErr(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, "message", page{Title: "Sent", Heading: "Thank you for telling us",
		Message: "A safeguarding adult will read this. You did the right thing. If you feel unsafe now, tell a trusted adult near you, or call Childline on 0800 1111."})
}
