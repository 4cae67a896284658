package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/chaperone-edu/chaperone/auth"
	"github.com/chaperone-edu/chaperone/lobby"
	"github.com/chaperone-edu/chaperone/recording"
	"github.com/chaperone-edu/chaperone/store"
)

// This file is the DSL's retrieval of recordings (R10): search, a session's
// page with a synchronised player, ranged playback streamed through the
// gateway, download, and legal holds. Every access is audited before any
// byte is sent.

// errNotDSL is the refusal for everyone but the DSL and deputies.
var errNotDSL = &lobby.Error{Kind: lobby.Forbidden, Message: "Only the designated safeguarding lead (and deputies) can see, play or download recordings."}

// requireDSL is the one access check for recordings.
func requireDSL(who auth.Identity) error {
	if !who.Has(auth.RoleDSL) {
		return errNotDSL
	}
	return nil
}

// recordingRow is a recorded session in the search results.
type recordingRow struct {
	S        store.Session
	When     string
	People   []string
	Held     bool
	Concerns int
}

func (s *Server) pageRecordings(w http.ResponseWriter, r *http.Request) {
	who := sessionFrom(r.Context()).Identity
	if err := requireDSL(who); err != nil {
		s.failErr(w, r, err)
		return
	}
	q := r.URL.Query()
	f := store.RecordingFilter{Name: strings.TrimSpace(q.Get("pupil"))}
	loc := s.loc()
	if d, err := time.ParseInLocation("2006-01-02", q.Get("from"), loc); err == nil {
		f.Since = d
	}
	if d, err := time.ParseInLocation("2006-01-02", q.Get("to"), loc); err == nil {
		f.Until = d.AddDate(0, 0, 1)
	}
	if q.Get("on_hold") == "1" {
		held := true
		f.Held = &held
	}
	objs, err := s.store.ListRecordingObjects(r.Context(), f)
	if err != nil {
		s.failErr(w, r, err)
		return
	}
	teacher := strings.ToLower(strings.TrimSpace(q.Get("teacher")))
	rows := map[string]*recordingRow{}
	var order []string
	for _, o := range objs {
		if o.ParticipantID == "" {
			continue
		}
		row, ok := rows[o.SessionID]
		if !ok {
			ss, err := s.store.GetSession(r.Context(), o.SessionID)
			if err != nil || (teacher != "" && !strings.Contains(strings.ToLower(ss.HostName), teacher)) {
				rows[o.SessionID] = nil
				continue
			}
			cs, _ := s.store.ListConcerns(r.Context(), ss.ID)
			row = &recordingRow{S: ss, When: s.when(ss), Concerns: len(cs)}
			rows[o.SessionID] = row
			order = append(order, o.SessionID)
		}
		if row == nil {
			continue
		}
		row.People = append(row.People, o.ParticipantName)
		row.Held = row.Held || o.Held
	}
	var list []*recordingRow
	for _, id := range order {
		if row := rows[id]; row != nil && (q.Get("has_concern") != "1" || row.Concerns > 0) {
			list = append(list, row)
		}
	}
	sort.Slice(list, func(i, j int) bool { return list[i].S.Start.After(list[j].S.Start) })
	s.audit(r.Context(), who, "recordings.listed", "", "", map[string]any{"pupil": f.Name, "teacher": teacher, "from": q.Get("from"),
		"to": q.Get("to"), "has_concern": q.Get("has_concern"), "on_hold": q.Get("on_hold"), "results": len(list)}, auth.ClientIP(r))
	s.render(w, r, http.StatusOK, "recordings", page{Title: "Recordings", Data: map[string]any{"Rows": list, "Q": q}})
}

// playerEntry is one participant's file on the session page.
type playerEntry struct {
	store.RecordingObject
	Offset float64
	File   string
}

func (s *Server) pageRecording(w http.ResponseWriter, r *http.Request) {
	who := sessionFrom(r.Context()).Identity
	if err := requireDSL(who); err != nil {
		s.failErr(w, r, err)
		return
	}
	ss, objs, err := s.recordedSession(r.Context(), r.PathValue("id"))
	if err != nil {
		s.failErr(w, r, err)
		return
	}
	offsets := s.manifestOffsets(r.Context(), ss.ID)
	var files []playerEntry
	for _, o := range objs {
		if o.ParticipantID != "" {
			files = append(files, playerEntry{RecordingObject: o, Offset: offsets[o.ParticipantID], File: o.ParticipantID + ".webm"})
		}
	}
	cs, _ := s.store.ListConcerns(r.Context(), ss.ID)
	rows, _ := s.store.ListAudit(r.Context(), store.AuditFilter{SessionID: ss.ID})
	type event struct{ When, What, Who, Detail string }
	var attendance, history []event
	loc := s.loc()
	for i := len(rows) - 1; i >= 0; i-- {
		a := rows[i]
		var d map[string]any
		_ = json.Unmarshal([]byte(a.Detail), &d)
		whom, _ := d["whom"].(string)
		reason, _ := d["reason"].(string)
		e := event{When: a.Time.In(loc).Format("15:04:05"), Who: a.ActorName, Detail: reason}
		if whom != "" {
			e.Who = whom + " (by " + a.ActorName + ")"
		}
		if what, ok := attendanceActions[a.Action]; ok {
			e.What = what
			attendance = append(attendance, e)
		}
		if strings.HasPrefix(a.Action, "gate.") || strings.HasPrefix(a.Action, "recording.") || strings.HasPrefix(a.Action, "concern.") {
			e.What = a.Action
			history = append(history, e)
		}
	}
	held := false
	for _, o := range objs {
		held = held || o.Held
	}
	s.audit(r.Context(), who, "recording.session_viewed", ss.ID, ss.ID, nil, auth.ClientIP(r))
	s.render(w, r, http.StatusOK, "recording", page{Title: "Recording: " + ss.Title, Message: doneMessages[r.URL.Query().Get("done")],
		Data: map[string]any{"S": ss, "When": s.when(ss), "Files": files, "Concerns": cs, "Attendance": attendance, "History": history, "Held": held}})
}

// recordedSession loads a session and its stored recording objects.
func (s *Server) recordedSession(ctx context.Context, id string) (store.Session, []store.RecordingObject, error) {
	ss, err := s.store.GetSession(ctx, id)
	if err != nil {
		return ss, nil, &lobby.Error{Kind: lobby.NotFound, Message: "There is no such recorded session."}
	}
	objs, err := s.store.ListRecordingObjects(ctx, store.RecordingFilter{SessionID: id})
	if err != nil {
		return ss, nil, err
	}
	return ss, objs, nil
}

// manifestOffsets reads each participant's start offset from the manifest.
func (s *Server) manifestOffsets(ctx context.Context, sessionID string) map[string]float64 {
	out := map[string]float64{}
	if s.cfg.Bucket == nil {
		return out
	}
	rc, _, err := s.cfg.Bucket.Open(ctx, recording.ManifestKey(sessionID), 0, -1)
	if err != nil {
		return out
	}
	defer rc.Close()
	var m recording.Manifest
	if json.NewDecoder(io.LimitReader(rc, 1<<20)).Decode(&m) == nil {
		for _, p := range m.Participants {
			out[p.ID] = p.StartOffset
		}
	}
	return out
}

// recordingMedia is GET /recordings/{id}/media/{file}: a participant's
// file streamed from S3 with Range support. The view (or download) is
// audited before any byte is sent; a bad Range gets 416 and no audit row.
func (s *Server) recordingMedia(w http.ResponseWriter, r *http.Request) {
	who := sessionFrom(r.Context()).Identity
	if err := requireDSL(who); err != nil {
		s.failErr(w, r, err)
		return
	}
	if s.cfg.Bucket == nil {
		s.fail(w, r, http.StatusServiceUnavailable, "unavailable", "Recording storage is not configured.")
		return
	}
	sid, file := r.PathValue("id"), r.PathValue("file")
	pid, ok := strings.CutSuffix(file, ".webm")
	if !ok || pid == "" || strings.ContainsAny(pid, "/.") {
		s.fail(w, r, http.StatusNotFound, "not_found", "There is no such recording file.")
		return
	}
	key := recording.ObjectKey(sid, pid)
	objs, err := s.store.ListRecordingObjects(r.Context(), store.RecordingFilter{SessionID: sid})
	found := false
	for _, o := range objs {
		found = found || (o.Key == key && o.ParticipantID != "")
	}
	if err != nil || !found {
		s.fail(w, r, http.StatusNotFound, "not_found", "There is no such recording file.")
		return
	}
	info, err := s.cfg.Bucket.Stat(r.Context(), key)
	if err != nil {
		s.failErr(w, r, fmt.Errorf("stat %s: %w", key, err))
		return
	}
	rangeHdr := r.Header.Get("Range")
	start, length, err := recording.ParseRange(rangeHdr, info.Size)
	if err != nil {
		w.Header().Set("Content-Range", "bytes */"+strconv.FormatInt(info.Size, 10))
		http.Error(w, "That byte range is not valid for this recording.", http.StatusRequestedRangeNotSatisfiable)
		return
	}
	download := r.URL.Query().Get("download") == "1"
	action := "recording.viewed"
	if download {
		action = "recording.downloaded"
	}
	s.audit(r.Context(), who, action, key, sid, map[string]any{"range": rangeHdr, "bytes": length}, auth.ClientIP(r))
	rc, info, err := s.cfg.Bucket.Open(r.Context(), key, start, length)
	if err != nil {
		s.failErr(w, r, fmt.Errorf("open %s: %w", key, err))
		return
	}
	defer rc.Close()
	h := w.Header()
	h.Set("Content-Type", "video/webm")
	h.Set("Accept-Ranges", "bytes")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.FormatInt(length, 10))
	if download {
		h.Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s-%s.webm"`, sid, pid))
	}
	status := http.StatusOK
	if rangeHdr != "" {
		status = http.StatusPartialContent
		h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, start+length-1, info.Size))
	}
	w.WriteHeader(status)
	if r.Method == http.MethodHead {
		return
	}
	if _, err := io.Copy(w, rc); err != nil {
		s.log.Debug("recording stream ended early", slog.String("key", key), slog.Any("err", err))
	}
}

// postHold places (on=true) or releases a legal hold on a session's recordings.
func (s *Server) postHold(on bool) http.HandlerFunc {
	return s.formAction(func(r *http.Request, who auth.Identity) (string, error) {
		if err := requireDSL(who); err != nil {
			return "", err
		}
		ss, _, err := s.recordedSession(r.Context(), r.PathValue("id"))
		if err != nil {
			return "", err
		}
		reason := strings.TrimSpace(r.PostFormValue("reason"))
		if !on && utf8.RuneCountInString(reason) < 10 {
			return "", &lobby.Error{Kind: lobby.Invalid, Field: "reason", Message: "Give a reason (at least 10 characters) for releasing the hold; it is kept in the audit log."}
		}
		if s.cfg.Bucket == nil {
			return "", errors.New("no recording storage")
		}
		n, err := s.cfg.Bucket.SetLegalHold(r.Context(), recording.SessionPrefix(ss.ID), on)
		if err != nil {
			return "", fmt.Errorf("legal hold: %w", err)
		}
		if _, err := s.store.SetRecordingHeld(r.Context(), ss.ID, on); err != nil {
			return "", err
		}
		action, done := "recording.hold_placed", "held"
		if !on {
			action, done = "recording.hold_released", "released"
		}
		s.audit(r.Context(), who, action, recording.SessionPrefix(ss.ID), ss.ID, map[string]any{"reason": reason, "objects": n}, auth.ClientIP(r))
		return "/recordings/" + ss.ID + "?done=" + done, nil
	})
}

// concernItem is a concern as the DSL's home page lists it.
type concernItem struct{ When, Title, RaisedBy, About, Link string }

func (s *Server) recentConcerns(r *http.Request) []concernItem {
	cs, err := s.store.ListConcerns(r.Context(), "")
	if err != nil {
		s.log.Error("list concerns", slog.Any("err", err))
		return nil
	}
	if len(cs) > 20 {
		cs = cs[:20]
	}
	out := make([]concernItem, 0, len(cs))
	for _, c := range cs {
		title := c.SessionID
		if ss, err := s.store.GetSession(r.Context(), c.SessionID); err == nil {
			title = ss.Title
		}
		out = append(out, concernItem{When: c.Created.In(s.loc()).Format("Mon 2 Jan 15:04"), Title: title, RaisedBy: c.RaisedBy, About: c.About,
			Link: "/recordings/" + c.SessionID})
	}
	return out
}
