package web

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/chaperone-edu/chaperone/auth"
	"github.com/chaperone-edu/chaperone/lobby"
	"github.com/chaperone-edu/chaperone/store"
)

// doneMessages are the confirmations shown after a form action (?done=...).
// Only these fixed texts are shown: nothing from the URL is reflected.
var doneMessages = map[string]string{
	"requested":       "Your request has been sent to the headteacher for approval.",
	"approved":        "Approved. The member of staff can now open the room from 15 minutes before the start.",
	"rejected":        "Rejected. The member of staff will see your reason.",
	"cancelled":       "The session has been cancelled.",
	"delegated":       "Delegation saved. The senior leader can approve sessions until the date you gave.",
	"revoked":         "Delegation revoked.",
	"held":            "The recordings of this session are on legal hold: they cannot be deleted until you release the hold.",
	"released":        "The legal hold is released. The recordings will be deleted when their retention ends.",
	"reauthenticated": "You have signed in again. To release the hold, give the reason again and press the button.",
}

// sessionRow is a session with what the viewer can do with it.
type sessionRow struct {
	S            store.Session
	When         string
	StateWords   string
	CanOpen      bool
	OpenMessage  string
	CanCancel    bool
	CanDecide    bool
	Pupils       int
	PupilsKnown  bool   // Pupils is the class list's size (not only those who have signed in)
	Class        string // title of the imported class, when the roster group is one
	Recording    string
	MoreInSeries int
}

// homeData is what the home page shows a signed-in person beyond the next
// steps: a pupil's lessons; the concerns for the DSL (all of them) or for a
// member of staff they were sent to (a year lead: only their own).
func (s *Server) homeData(r *http.Request, who auth.Identity) map[string]any {
	switch {
	case who.Has(auth.RoleDSL):
		return map[string]any{"Concerns": s.recentConcerns(r, who)}
	case who.Has(auth.RolePupil):
		return map[string]any{"Lessons": s.pupilLessons(r, who)}
	case who.Has(auth.RoleStaff):
		return map[string]any{"Concerns": s.myConcerns(r, who)}
	}
	return nil
}

func (s *Server) when(ss store.Session) string {
	loc := s.loc()
	st, en := ss.Start.In(loc), ss.End.In(loc)
	return st.Format("Mon 2 Jan 2006, 15:04") + "–" + en.Format("15:04")
}

func (s *Server) row(r *http.Request, who auth.Identity, ss store.Session, ds []store.Delegation) sessionRow {
	now := s.now()
	row := sessionRow{S: ss, When: s.when(ss), StateWords: lobby.DisplayState(ss, now)}
	if who.Has(auth.RolePupil) { // a pupil's words: is the room open?
		switch ss.State {
		case store.StateApproved:
			row.StateWords = "not open yet"
		case store.StateLive:
			row.StateWords = "open now"
		}
	}
	v := s.sessionView(who, ss)
	row.CanOpen, row.OpenMessage = v.CanOpen, v.OpenMessage
	row.CanCancel = lobby.CanCancel(who, ss, ds, now) == nil
	row.CanDecide = lobby.CanDecide(who, ss, ds, now) == nil
	row.Pupils, row.PupilsKnown = s.rosterSize(r.Context(), ss)
	row.Class = s.classTitle(r.Context(), ss.RosterGroup)
	row.Recording = lobby.RecordingExpectation(ss, s.cfg.Schedule.RecordPolicy)
	return row
}

func (s *Server) pageMySessions(w http.ResponseWriter, r *http.Request) {
	sess := sessionFrom(r.Context())
	who := sess.Identity
	if err := lobby.CanRequest(who); err != nil && !who.Has(auth.RolePupil) {
		s.failErr(w, r, err)
		return
	}
	list, err := s.sessionsFor(r, who)
	if err != nil {
		s.failErr(w, r, err)
		return
	}
	ds, err := s.delegations(r.Context())
	if err != nil {
		s.failErr(w, r, err)
		return
	}
	now := s.now()
	var coming []store.Session
	var past []sessionRow
	for _, ss := range list {
		if !ss.End.After(now) || ss.State == store.StateEnded || ss.State == store.StateCancelled || ss.State == store.StateRejected {
			past = append(past, s.row(r, who, ss, ds))
			continue
		}
		coming = append(coming, ss)
	}
	upcoming := s.seriesRows(r, who, coming, ds)
	title := "My sessions"
	if who.Has(auth.RolePupil) {
		title = "My lessons"
	}
	s.render(w, r, http.StatusOK, "sessions", page{Title: title, Message: doneMessages[r.URL.Query().Get("done")],
		Data: map[string]any{"Upcoming": upcoming, "Past": past, "Staff": who.Has(auth.RoleStaff)}})
}

// requestForm is the request page's form values, kept to re-show on error.
type requestForm struct {
	Title, Kind, Date, StartTime, EndTime, CoStaff, RosterGroup, RosterEmails, WeeklyUntil string
	Weekly                                                                                 bool
}

func (s *Server) pageNewSession(w http.ResponseWriter, r *http.Request) {
	who := sessionFrom(r.Context()).Identity
	if err := lobby.CanRequest(who); err != nil {
		s.failErr(w, r, err)
		return
	}
	s.renderRequestForm(w, r, http.StatusOK, requestForm{Kind: lobby.KindInteractive, Date: s.now().In(s.loc()).Format("2006-01-02")}, nil)
}

func (s *Server) renderRequestForm(w http.ResponseWriter, r *http.Request, status int, f requestForm, err error) {
	p := page{Title: "Request a live session", Data: map[string]any{"Form": f, "Groups": s.rosterGroupOptions(r.Context()), "Zone": s.loc().String()}}
	if err != nil {
		_, _, msg := s.statusOf(err)
		p.Message, p.Error = msg, true
		var le *lobby.Error
		if errors.As(err, &le) {
			p.Data.(map[string]any)["Field"] = le.Field
		}
	}
	s.render(w, r, status, "request", p)
}

func splitList(v string) []string {
	return strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ';' || r == '\n' || r == '\r' || r == ' ' || r == '\t' })
}

func (s *Server) postNewSession(w http.ResponseWriter, r *http.Request) {
	who := sessionFrom(r.Context()).Identity
	if err := lobby.CanRequest(who); err != nil {
		s.failErr(w, r, err)
		return
	}
	f := requestForm{Title: r.PostFormValue("title"), Kind: r.PostFormValue("kind"), Date: r.PostFormValue("date"),
		StartTime: r.PostFormValue("start_time"), EndTime: r.PostFormValue("end_time"), CoStaff: r.PostFormValue("co_staff"),
		RosterGroup: r.PostFormValue("roster_group"), RosterEmails: r.PostFormValue("roster_emails"),
		Weekly: r.PostFormValue("weekly") != "", WeeklyUntil: r.PostFormValue("weekly_until")}
	req := lobby.Request{Title: f.Title, Kind: f.Kind, CoStaff: splitList(f.CoStaff), RosterGroup: f.RosterGroup, RosterEmails: splitList(f.RosterEmails)}
	var err error
	loc := s.loc()
	if req.Start, err = time.ParseInLocation("2006-01-02 15:04", f.Date+" "+f.StartTime, loc); err != nil {
		s.renderRequestForm(w, r, http.StatusBadRequest, f, &lobby.Error{Kind: lobby.Invalid, Field: "start", Message: "Give the date and start time."})
		return
	}
	if req.End, err = time.ParseInLocation("2006-01-02 15:04", f.Date+" "+f.EndTime, loc); err != nil {
		s.renderRequestForm(w, r, http.StatusBadRequest, f, &lobby.Error{Kind: lobby.Invalid, Field: "end", Message: "Give the end time."})
		return
	}
	if f.Weekly {
		if req.WeeklyUntil, err = time.ParseInLocation("2006-01-02", f.WeeklyUntil, loc); err != nil {
			s.renderRequestForm(w, r, http.StatusBadRequest, f, &lobby.Error{Kind: lobby.Invalid, Field: "weekly_until", Message: "Give the date of the last weekly session."})
			return
		}
	}
	created, err := s.requestSession(r.Context(), who, req, auth.ClientIP(r))
	if err != nil {
		status, _, _ := s.statusOf(err)
		s.renderRequestForm(w, r, status, f, err)
		return
	}
	http.Redirect(w, r, "/sessions/"+created[0].ID+"?done=requested", http.StatusSeeOther)
}

func (s *Server) pageSession(w http.ResponseWriter, r *http.Request) {
	who := sessionFrom(r.Context()).Identity
	ss, err := s.loadSession(r.Context(), who, r.PathValue("id"))
	if err != nil {
		s.failErr(w, r, err)
		return
	}
	ds, err := s.delegations(r.Context())
	if err != nil {
		s.failErr(w, r, err)
		return
	}
	row := s.row(r, who, ss, ds)
	if ss.SeriesID != "" {
		if all, err := s.store.ListSessions(r.Context(), store.SessionFilter{SeriesID: ss.SeriesID}); err == nil {
			row.MoreInSeries = len(all) - 1
		}
	}
	recorded := false
	if !who.Has(auth.RolePupil) {
		objs, err := s.store.ListRecordingObjects(r.Context(), store.RecordingFilter{SessionID: ss.ID})
		recorded = (err == nil && len(objs) > 0) || s.cfg.Concerns.Recorded(r.Context(), ss.ID)
	}
	s.render(w, r, http.StatusOK, "session", page{Title: ss.Title, Message: doneMessages[r.URL.Query().Get("done")],
		Data: map[string]any{"Row": row, "Staff": lobby.IsSessionStaff(who, ss) || !who.Has(auth.RolePupil), "Recorded": recorded}})
}

// formAction runs an action posted from a page and redirects on success.
func (s *Server) formAction(act func(r *http.Request, who auth.Identity) (string, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		who := sessionFrom(r.Context()).Identity
		to, err := act(r, who)
		if err != nil {
			s.failErr(w, r, err)
			return
		}
		http.Redirect(w, r, to, http.StatusSeeOther)
	}
}

func (s *Server) postDecide(approve bool) http.HandlerFunc {
	return s.formAction(func(r *http.Request, who auth.Identity) (string, error) {
		if _, err := s.decide(r.Context(), who, r.PathValue("id"), approve, r.PostFormValue("reason"), auth.ClientIP(r)); err != nil {
			return "", err
		}
		done := "approved"
		if !approve {
			done = "rejected"
		}
		return "/approvals?done=" + done, nil
	})
}

func (s *Server) pageApprovals(w http.ResponseWriter, r *http.Request) {
	who := sessionFrom(r.Context()).Identity
	pending, err := s.pendingFor(r, who)
	if err != nil {
		s.failErr(w, r, err)
		return
	}
	ds, err := s.delegations(r.Context())
	if err != nil {
		s.failErr(w, r, err)
		return
	}
	rows := s.seriesRows(r, who, pending, ds)
	s.render(w, r, http.StatusOK, "approvals", page{Title: "Waiting for approval", Message: doneMessages[r.URL.Query().Get("done")],
		Data: map[string]any{"Rows": rows}})
}

func (s *Server) pageDelegations(w http.ResponseWriter, r *http.Request) {
	who := sessionFrom(r.Context()).Identity
	if !who.Has(auth.RoleHead) {
		s.failErr(w, r, &lobby.Error{Kind: lobby.Forbidden, Message: "Only the headteacher manages delegations."})
		return
	}
	ds, err := s.store.ListDelegations(r.Context(), time.Time{})
	if err != nil {
		s.failErr(w, r, err)
		return
	}
	views := make([]delegationJSON, len(ds))
	for i, d := range ds {
		views[i] = s.delegationView(d)
	}
	s.render(w, r, http.StatusOK, "delegations", page{Title: "Delegate approval", Message: doneMessages[r.URL.Query().Get("done")],
		Data: map[string]any{"Delegations": views, "Zone": s.loc()}})
}

func (s *Server) postDelegation(w http.ResponseWriter, r *http.Request) {
	s.formAction(func(r *http.Request, who auth.Identity) (string, error) {
		until, err := s.parseUntilDate(r.PostFormValue("until"))
		if err != nil {
			return "", err
		}
		if _, err := s.createDelegation(r.Context(), who, r.PostFormValue("email"), r.PostFormValue("name"), until, auth.ClientIP(r)); err != nil {
			return "", err
		}
		return "/delegations?done=delegated", nil
	})(w, r)
}

func (s *Server) pageRoom(w http.ResponseWriter, r *http.Request) {
	who := sessionFrom(r.Context()).Identity
	ss, err := s.store.GetSession(r.Context(), r.PathValue("id"))
	if err != nil {
		s.failErr(w, r, errUnknownSession)
		return
	}
	var check error
	switch {
	case lobby.IsSessionStaff(who, ss):
		if check = lobby.CanOpen(who, ss, s.now(), s.cfg.Schedule); check == nil && ss.State != store.StateLive {
			check = &lobby.Error{Kind: lobby.Conflict, Message: "The room is not open yet. Open it from the session's page."}
		}
	case who.Has(auth.RoleStaff) || who.Has(auth.RolePupil):
		// Pupils (on the class list or not) and other staff wait in the
		// lobby; staff see who is on the class list.
		check = lobby.OpenCheck(s.liveOnlyForPupils(ss), s.now(), s.cfg.Schedule)
		if check != nil && ss.State == store.StateApproved {
			check = &lobby.Error{Kind: lobby.Conflict, Message: "Your teacher has not opened the room yet. Try again in a few minutes."}
		}
	default:
		check = &lobby.Error{Kind: lobby.Forbidden, Message: "Only staff and pupils can join live sessions."}
	}
	if check != nil {
		status, _, msg := s.statusOf(check)
		back, backText := "/", "Back to the start page"
		if s.visible(r.Context(), who, ss) {
			back, backText = "/sessions/"+url.PathEscape(ss.ID), "Back to the session"
		}
		s.render(w, r, status, "message", page{Title: ss.Title, Heading: ss.Title, Message: msg, Error: true, Back: back, BackText: backText})
		return
	}
	classSize, _ := s.rosterSize(r.Context(), ss)
	s.render(w, r, http.StatusOK, "room", page{Title: ss.Title, Data: map[string]any{"S": ss, "When": s.when(ss),
		"WSPath": "/ws/rooms/" + url.PathEscape(ss.ID), "Staff": lobby.IsSessionStaff(who, ss), "Pupil": who.Has(auth.RolePupil),
		"Class": s.classTitle(r.Context(), ss.RosterGroup), "ClassSize": classSize}})
}

// pupilLessons lists a pupil's approved and open lessons that are not over.
func (s *Server) pupilLessons(r *http.Request, who auth.Identity) []sessionRow {
	list, err := s.sessionsFor(r, who)
	if err != nil {
		s.log.Error("list pupil lessons", "err", err)
		return nil
	}
	rows := make([]sessionRow, 0, len(list))
	for _, ss := range list {
		rows = append(rows, s.row(r, who, ss, nil))
	}
	return rows
}

// seriesRows makes a row per session, folding the later occurrences of a
// weekly series into its first row (MoreInSeries counts them).
func (s *Server) seriesRows(r *http.Request, who auth.Identity, list []store.Session, ds []store.Delegation) []sessionRow {
	rows := make([]sessionRow, 0, len(list))
	first := map[string]int{} // series ID → index in rows
	for _, ss := range list {
		if i, ok := first[ss.SeriesID]; ok && ss.SeriesID != "" {
			rows[i].MoreInSeries++
			continue
		}
		if ss.SeriesID != "" {
			first[ss.SeriesID] = len(rows)
		}
		rows = append(rows, s.row(r, who, ss, ds))
	}
	return rows
}
