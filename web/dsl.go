package web

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/chaperone-edu/chaperone/audit"
	"github.com/chaperone-edu/chaperone/auth"
	"github.com/chaperone-edu/chaperone/live"
	"github.com/chaperone-edu/chaperone/lobby"
	"github.com/chaperone-edu/chaperone/store"
)

// This file is the DSL's retrieval of recordings (R10): search, a session's
// page with a synchronised player, ranged playback streamed through the
// gateway, download, and legal holds. Every access is audited before any
// byte is sent.

// errNotDSL is the refusal for everyone but the DSL and deputies.
var errNotDSL = &lobby.Error{Kind: lobby.Forbidden, Message: "Only the designated safeguarding lead (and deputies) can see, play or download recordings."}

// errNeedMFA is the refusal for a DSL signed in without a second factor.
var errNeedMFA = &lobby.Error{Kind: lobby.Forbidden, Message: "Recordings need a sign-in with your second factor (a one-time code, or a sign-in approved on your phone). You signed in with your password only. Sign in again with your second factor."}

// errNoSuchRecording is the answer for a session or file that is not there.
var errNoSuchRecording = &lobby.Error{Kind: lobby.NotFound, Message: "There is no such recorded session or file."}

// requireDSL is the one access check for recordings: every handler in this
// file calls it first. It takes the request, not just the identity, so that a
// stronger check (MFA, a fresh sign-in: the session's AuthTime and AMR) can be
// added here alone.
func (s *Server) requireDSL(r *http.Request) (auth.Identity, error) {
	sess := sessionFrom(r.Context())
	if sess != nil && !sess.Identity.Has(auth.RoleDSL) && slices.Contains(sess.Identity.Withheld, auth.RoleDSL) {
		return auth.Identity{}, errNeedMFA
	}
	if sess == nil || !sess.Identity.Has(auth.RoleDSL) {
		return auth.Identity{}, errNotDSL
	}
	return sess.Identity, nil
}

// freshOrGranted lets a media request through when the sign-in is recent,
// or when it is the player (a Range request, not a download) of a page
// opened with a recent sign-in; via says which. A player whose grant has
// run out gets 401 and a sentence (a redirect would only break the video);
// anything else is sent to sign in again.
func (s *Server) freshOrGranted(w http.ResponseWriter, r *http.Request, sessionID string, download bool) (ok bool, via string) {
	if s.isFresh(r) {
		return true, "recent_sign_in"
	}
	player := !download && r.Header.Get("Range") != ""
	if sess := sessionFrom(r.Context()); player && sess != nil && s.grants.valid(sess.ID, sessionID, s.auth.Now()) {
		return true, "playback_grant"
	}
	if player {
		http.Error(w, "Your sign-in is too old to go on playing this recording. Reload the page to sign in again.", http.StatusUnauthorized)
		return false, ""
	}
	return s.requireFresh(w, r, r.URL.RequestURI()), ""
}

// maxGrant bounds a playback grant whatever the session's planned length.
const maxGrant = 3 * time.Hour

// recordingRow is a recorded session in the search results.
type recordingRow struct {
	S        store.Session
	When     string
	People   []string
	Held     bool
	Concerns int
}

// dateFilter reads the from/to dates (YYYY-MM-DD, school time) of a search:
// from its midnight, to the midnight after to.
func (s *Server) dateFilter(q url.Values) (since, until time.Time) {
	loc := s.loc()
	if d, err := time.ParseInLocation(time.DateOnly, q.Get("from"), loc); err == nil {
		since = d
	}
	if d, err := time.ParseInLocation(time.DateOnly, q.Get("to"), loc); err == nil {
		until = d.AddDate(0, 0, 1)
	}
	return since, until
}

// pageRecordings is GET /recordings: the DSL's search of recorded sessions.
func (s *Server) pageRecordings(w http.ResponseWriter, r *http.Request) {
	who, err := s.requireDSL(r)
	if err != nil {
		s.failErr(w, r, err)
		return
	}
	ctx := r.Context()
	q := r.URL.Query()
	f := store.RecordingFilter{Name: strings.TrimSpace(q.Get("pupil"))}
	f.Since, f.Until = s.dateFilter(q)
	onHold, hasConcern := q.Get("on_hold") == "1", q.Get("has_concern") == "1"
	teacher := strings.ToLower(strings.TrimSpace(q.Get("teacher")))
	objs, err := s.store.ListRecordingObjects(ctx, f)
	if err != nil {
		s.failErr(w, r, err)
		return
	}
	// The filters pick sessions; each row then lists everyone recorded in it.
	seen := map[string]bool{}
	var list []*recordingRow
	for _, o := range objs {
		if (o.ParticipantID == "" && o.Role != live.RoleTranscript) || seen[o.SessionID] {
			continue
		}
		seen[o.SessionID] = true
		ss, err := s.store.GetSession(ctx, o.SessionID)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			s.failErr(w, r, err)
			return
		}
		if teacher != "" && !strings.Contains(strings.ToLower(ss.HostName), teacher) {
			continue
		}
		all, err := s.store.ListRecordingObjects(ctx, store.RecordingFilter{SessionID: ss.ID})
		if err != nil {
			s.failErr(w, r, err)
			return
		}
		cs, err := s.store.ListConcerns(ctx, ss.ID)
		if err != nil {
			s.failErr(w, r, err)
			return
		}
		row := &recordingRow{S: ss, When: s.when(ss), Concerns: len(cs)}
		for _, o := range all {
			row.Held = row.Held || o.Held
			if o.ParticipantID != "" && !slices.Contains(row.People, o.ParticipantName) {
				row.People = append(row.People, o.ParticipantName) // once, however many parts
			}
		}
		if (onHold && !row.Held) || (hasConcern && row.Concerns == 0) {
			continue
		}
		list = append(list, row)
	}
	sort.SliceStable(list, func(i, j int) bool { return list[i].S.Start.After(list[j].S.Start) })
	if err := s.auditOrErr(ctx, who, audit.RecordingsListed, "", "", audit.Search{Pupil: f.Name, Teacher: teacher,
		From: q.Get("from"), To: q.Get("to"), HasConcern: hasConcern, OnHold: onHold, Results: len(list)}, auth.ClientIP(r)); err != nil {
		s.failErr(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, "recordings", page{Title: "Recordings", Data: map[string]any{"Rows": list, "Q": q,
		"Searched": len(q) > 0}})
}

// playerEntry is one participant's file on the session page.
type playerEntry struct {
	store.RecordingObject
	Offset float64 // seconds from the session's first file to this one's start
	File   string  // the object's name in the session (the media URL's last segment)
	Label  string  // "part 2" when a participant's recording has several parts
	Bytes  string  // size for people
	Retain string  // retain-until date, school time
}

// byteSize formats a size for people: "12.3 MB".
func byteSize(n int64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.1f GB", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.1f MB", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.0f kB", float64(n)/1e3)
	}
	return fmt.Sprintf("%d bytes", n)
}

// historyEntry is a line of a session's media-gate and recording history.
type historyEntry struct{ When, What, Who, Detail string }

// pageRecording is GET /recordings/{id}: what the DSL needs to review a
// session: its facts, concerns, recordings in a synchronised player,
// attendance, gate and recording history, and the legal hold.
func (s *Server) pageRecording(w http.ResponseWriter, r *http.Request) {
	who, err := s.requireDSL(r)
	if err != nil {
		s.failErr(w, r, err)
		return
	}
	ctx := r.Context()
	ss, objs, err := s.recordedSession(ctx, r.PathValue("id"))
	if err != nil {
		s.failErr(w, r, err)
		return
	}
	// The page plays the recordings: it needs a recent sign-in, and the
	// player may then fetch the media for as long as the session lasted.
	if !s.requireFresh(w, r, r.URL.RequestURI()) {
		return
	}
	// The player may go on fetching for as long as the session lasted,
	// counted from the sign-in (not from this page view).
	sess := sessionFrom(ctx)
	s.grants.grant(sess.ID, ss.ID, s.auth.Now(), sess.AuthTime.Add(s.reauthWindow()+min(ss.End.Sub(ss.Start), maxGrant)))
	cs, err := s.store.ListConcerns(ctx, ss.ID)
	if err != nil {
		s.failErr(w, r, err)
		return
	}
	rows, err := s.store.ListAudit(ctx, store.AuditFilter{SessionID: ss.ID})
	if err != nil {
		s.failErr(w, r, err)
		return
	}
	loc := s.loc()
	type concernView struct {
		store.Concern
		When string
	}
	concerns := make([]concernView, 0, len(cs))
	for _, c := range cs {
		if !s.cfg.Concerns.MayRead(ctx, who, c) {
			continue // a pupil's worry from a lesson this DSL taught
		}
		concerns = append(concerns, concernView{c, c.Created.In(loc).Format("Mon 2 Jan 2006 15:04")})
	}
	held := false
	for _, o := range objs {
		held = held || o.Held
	}
	files, first := s.playerFiles(ctx, ss.ID, objs, loc)
	lines, err := s.sessionTranscript(ctx, ss.ID)
	if err != nil {
		s.failErr(w, r, err)
		return
	}
	var chat []chatView
	for _, l := range lines {
		v := chatView{TranscriptLine: l, When: l.Time.In(loc).Format("15:04:05")}
		if l.Deleted {
			v.DeletedWhen = l.DeletedAt.In(loc).Format("15:04:05")
		}
		chat = append(chat, v)
	}
	var chatStored *playerEntry
	for _, o := range objs {
		if o.Role == live.RoleTranscript && o.ParticipantID == "" {
			chatStored = &playerEntry{RecordingObject: o, Bytes: byteSize(o.Size), Retain: o.RetainUntil.In(loc).Format("2 Jan 2006")}
		}
	}
	var attendance []historyEntry
	for _, e := range attendanceRegister(rows) {
		who := e.Participant
		if e.By != "" {
			who += " (by " + e.By + ")"
		}
		attendance = append(attendance, historyEntry{When: e.Time.In(loc).Format("15:04:05"), What: e.Event, Who: who, Detail: e.Detail})
	}
	var history []historyEntry
	for i := len(rows) - 1; i >= 0; i-- { // oldest first
		a := rows[i]
		if f := a.Action.Family(); f != audit.FamilyGate && f != audit.FamilyRecording && f != audit.FamilyConcern {
			continue
		}
		history = append(history, historyEntry{When: a.Time.In(loc).Format("15:04:05"), What: string(a.Action), Who: a.ActorName, Detail: audit.Read(a.Detail).Reason})
	}
	events, length := timeline(rows, lines, first, loc)
	if err := s.auditOrErr(ctx, who, audit.RecordingSessionViewed, ss.ID, ss.ID, nil, auth.ClientIP(r)); err != nil {
		s.failErr(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, "recording", page{Title: "Recording: " + ss.Title, Message: doneMessages[r.URL.Query().Get("done")],
		Data: map[string]any{"S": ss, "When": s.when(ss), "Files": files, "Concerns": concerns, "Attendance": attendance,
			"History": history, "Held": held, "Chat": chat, "ChatStored": chatStored, "Timeline": events,
			"Length": strconv.FormatFloat(length, 'f', 1, 64)}})
}

// chatView is a chat message on the DSL's session page.
type chatView struct {
	live.TranscriptLine
	When, DeletedWhen string
}

// recordedSession loads a session and its stored recording objects.
func (s *Server) recordedSession(ctx context.Context, id string) (store.Session, []store.RecordingObject, error) {
	ss, err := s.store.GetSession(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return ss, nil, errNoSuchRecording
	}
	if err != nil {
		return ss, nil, err
	}
	objs, err := s.store.ListRecordingObjects(ctx, store.RecordingFilter{SessionID: id})
	if err != nil {
		return ss, nil, err
	}
	return ss, objs, nil
}

// playerFiles lists a session's recorded files for the page and player:
// each participant's parts together and in order (part 1, part 2, ...),
// participants in the order they were first recorded. Offsets come from
// each part's first packet (older recordings without parts: from the
// session's manifest).
// first is when the earliest part began (the player's time 0; zero for
// recordings from before parts).
func (s *Server) playerFiles(ctx context.Context, sessionID string, objs []store.RecordingObject, loc *time.Location) ([]playerEntry, time.Time) {
	var recs []store.RecordingObject
	parts := map[string]int{} // participant → how many parts
	var first time.Time
	legacy := false
	for _, o := range objs {
		if o.ParticipantID == "" {
			continue
		}
		recs = append(recs, o)
		parts[o.ParticipantID]++
		if o.Part == 0 || o.Started.IsZero() {
			legacy = true
		} else if first.IsZero() || o.Started.Before(first) {
			first = o.Started
		}
	}
	began := map[string]time.Time{} // participant → their first part's start
	for _, o := range recs {
		if b, ok := began[o.ParticipantID]; !ok || (!o.Started.IsZero() && o.Started.Before(b)) {
			began[o.ParticipantID] = o.Started
		}
	}
	slices.SortStableFunc(recs, func(a, b store.RecordingObject) int {
		if a.ParticipantID != b.ParticipantID {
			if c := began[a.ParticipantID].Compare(began[b.ParticipantID]); c != 0 {
				return c
			}
			return strings.Compare(a.ParticipantID, b.ParticipantID)
		}
		return a.Part - b.Part
	})
	var offsets map[string]float64
	if legacy {
		offsets = s.manifestOffsets(ctx, sessionID)
	}
	var files []playerEntry
	for _, o := range recs {
		e := playerEntry{RecordingObject: o, File: path.Base(o.Key), Bytes: byteSize(o.Size), Retain: o.RetainUntil.In(loc).Format("2 Jan 2006")}
		switch {
		case o.Part > 0 && !o.Started.IsZero():
			e.Offset = o.Started.Sub(first).Seconds()
		default:
			e.Offset = offsets[o.ParticipantID]
		}
		if o.Part > 0 && parts[o.ParticipantID] > 1 {
			e.Label = "part " + strconv.Itoa(o.Part)
		}
		files = append(files, e)
	}
	if legacy {
		first = time.Time{}
	}
	return files, first
}

// manifestOffsets reads each participant's start offset, in seconds, from the
// session's manifest; without a manifest every file starts at 0.
func (s *Server) manifestOffsets(ctx context.Context, sessionID string) map[string]float64 {
	if s.cfg.Recordings == nil {
		return map[string]float64{}
	}
	out, err := s.cfg.Recordings.StartOffsets(ctx, sessionID)
	if err != nil {
		s.log.Warn("recording manifest unreadable", slog.String("session", sessionID), slog.Any("err", err))
	}
	return out
}

// recordingMedia is GET /recordings/{id}/media/{file}: a participant's
// file streamed from S3 through the gateway (never a presigned URL) with
// Range support. The view (or download) is audited before any byte is sent,
// and refused if it cannot be; a bad Range gets 416 and no audit row.
func (s *Server) recordingMedia(w http.ResponseWriter, r *http.Request) {
	who, err := s.requireDSL(r)
	if err != nil {
		s.failErr(w, r, err)
		return
	}
	if s.cfg.Recordings == nil || !s.cfg.Recordings.HasStorage() {
		s.fail(w, r, http.StatusServiceUnavailable, "unavailable", "Recording storage is not configured.")
		return
	}
	ctx := r.Context()
	sid, file := r.PathValue("id"), r.PathValue("file")
	if !strings.HasSuffix(file, ".webm") || strings.Contains(file, "/") || file == ".webm" {
		s.failErr(w, r, errNoSuchRecording)
		return
	}
	// Only a participant's file in the session's index is served (a part,
	// or a recording from before parts): the path cannot name a manifest
	// or another session's object.
	key := live.SessionPrefix(sid) + file
	objs, err := s.store.ListRecordingObjects(ctx, store.RecordingFilter{SessionID: sid})
	if err != nil {
		s.failErr(w, r, err)
		return
	}
	if !slices.ContainsFunc(objs, func(o store.RecordingObject) bool { return o.Key == key && o.ParticipantID != "" }) {
		s.failErr(w, r, errNoSuchRecording)
		return
	}
	download := r.URL.Query().Get("download") == "1"
	ok, via := s.freshOrGranted(w, r, sid, download)
	if !ok {
		return
	}
	size, err := s.cfg.Recordings.ObjectSize(ctx, key)
	if err != nil {
		s.failErr(w, r, err)
		return
	}
	rangeHdr := r.Header.Get("Range")
	start, length, err := live.ParseRange(rangeHdr, size)
	if err != nil {
		w.Header().Set("Content-Range", "bytes */"+strconv.FormatInt(size, 10))
		http.Error(w, "That byte range is not valid for this recording.", http.StatusRequestedRangeNotSatisfiable)
		return
	}
	action := audit.RecordingViewed
	if download {
		action = audit.RecordingDownloaded
	}
	if err := s.auditOrErr(ctx, who, action, key, sid, audit.Access{Key: key, Range: rangeHdr, Bytes: length, Via: via},
		auth.ClientIP(r)); err != nil {
		s.failErr(w, r, err)
		return
	}
	rc, err := s.cfg.Recordings.OpenObject(ctx, key, start, length)
	if err != nil {
		s.failErr(w, r, err)
		return
	}
	defer rc.Close()
	h := w.Header()
	h.Set("Content-Type", "video/webm")
	h.Set("Accept-Ranges", "bytes")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.FormatInt(length, 10))
	if download {
		h.Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s-%s"`, sid, file))
	}
	status := http.StatusOK
	if rangeHdr != "" {
		status = http.StatusPartialContent
		h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, start+length-1, size))
	}
	w.WriteHeader(status)
	if r.Method == http.MethodHead {
		return
	}
	if _, err := io.Copy(w, rc); err != nil {
		s.log.Debug("recording stream ended early", slog.String("key", key), slog.Any("err", err))
	}
}

// postHold is POST /recordings/{id}/hold (on) and /release (off): places or
// releases a legal hold on every stored object of a session. Releasing needs
// a reason, which goes into the audit log.
func (s *Server) postHold(on bool) http.HandlerFunc {
	return s.formAction(func(r *http.Request, _ auth.Identity) (string, error) {
		who, err := s.requireDSL(r)
		if err != nil {
			return "", err
		}
		ss, _, err := s.recordedSession(r.Context(), r.PathValue("id"))
		if err != nil {
			return "", err
		}
		if !on && !s.isFresh(r) {
			// Releasing a hold lets recordings be deleted: it needs a recent
			// sign-in. Nothing changes; the DSL comes back to the page.
			return freshLogin("/recordings/" + ss.ID + "?done=reauthenticated"), nil
		}
		reason := strings.TrimSpace(r.PostFormValue("reason"))
		if n := utf8.RuneCountInString(reason); !on && n < 10 {
			return "", &lobby.Error{Kind: lobby.Invalid, Field: "reason", Message: "Give a reason (at least 10 characters) for releasing the hold; it is kept in the audit log."}
		} else if n > 500 {
			return "", &lobby.Error{Kind: lobby.Invalid, Field: "reason", Message: "Keep the reason under 500 characters."}
		}
		if err := lobby.CheckText("reason", "reason", reason); err != nil {
			return "", err
		}
		if s.cfg.Recordings == nil {
			return "", fmt.Errorf("legal hold: %w", live.ErrNoStorage)
		}
		n, err := s.cfg.Recordings.SetSessionHold(r.Context(), ss.ID, on)
		if err != nil {
			return "", err
		}
		action, done := audit.RecordingHoldPlaced, "held"
		if !on {
			action, done = audit.RecordingHoldReleased, "released"
		}
		s.audit(r.Context(), who, action, live.SessionPrefix(ss.ID), ss.ID, audit.Hold{Reason: reason, Objects: n}, auth.ClientIP(r))
		return "/recordings/" + ss.ID + "?done=" + done, nil
	})
}

// concernItem is a concern as a home page lists it.
type concernItem struct {
	When, Title, RaisedBy, About, Link string
	Recordings                         string // the session's recordings page, for the DSL
	New                                bool   // sent to the viewer, who has not opened it yet
	Pending                            bool   // raised in the room; details to follow
}

// concernItem describes c for a home page, linking to the concern's page.
func (s *Server) concernItem(r *http.Request, c store.Concern, isNew bool) concernItem {
	title := c.SessionID
	if ss, err := s.store.GetSession(r.Context(), c.SessionID); err == nil {
		title = ss.Title
	}
	if c.Kind == store.ConcernKindWorry {
		if c.SessionID != "" {
			title = "A pupil is worried (" + title + ")"
		} else {
			title = "A pupil is worried"
		}
	}
	return concernItem{When: c.Created.In(s.loc()).Format("Mon 2 Jan 15:04"), Title: title, RaisedBy: c.RaisedBy, About: c.About,
		Link: "/concerns/" + url.PathEscape(c.ID), New: isNew, Pending: c.State == store.ConcernPending}
}

// recentConcerns returns the newest concerns (at most 20) for the DSL's home
// page; those sent to this DSL and not yet opened are marked new.
func (s *Server) recentConcerns(r *http.Request, who auth.Identity) []concernItem {
	cs, err := s.store.ListConcerns(r.Context(), "")
	if err != nil {
		s.log.Error("list concerns", slog.Any("err", err))
		return nil
	}
	if len(cs) > 20 {
		cs = cs[:20]
	}
	unopened := map[string]bool{}
	if ns, err := s.store.ListNotifications(r.Context(), store.NotificationFilter{Email: who.Email}); err == nil && who.Email != "" {
		for _, n := range ns {
			unopened[n.ConcernID] = n.Opened.IsZero()
		}
	}
	out := make([]concernItem, 0, len(cs))
	for _, c := range cs {
		if !s.cfg.Concerns.MayRead(r.Context(), who, c) {
			continue // a pupil's worry from a lesson this DSL taught
		}
		it := s.concernItem(r, c, unopened[c.ID])
		if c.SessionID != "" {
			it.Recordings = "/recordings/" + url.PathEscape(c.SessionID)
		}
		out = append(out, it)
	}
	return out
}
