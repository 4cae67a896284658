package web

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/chaperone-edu/chaperone/auth"
	"github.com/chaperone-edu/chaperone/recording"
	"github.com/chaperone-edu/chaperone/store"
)

// This file is a session's chat transcript (R12): every message with the
// verified name and role, deleted ones included and marked with who deleted
// them and when. The room writes it to the chat table (the audit log keeps
// only each message's ID, sender and SHA-256); it is shown and downloadable
// on the DSL's session page, and stored next to the recordings in the bucket
// when the session ends, so a concern's legal hold keeps it with them. The
// sweeper deletes the table's rows when it deletes that stored copy.

// roleTranscript is the role of a transcript's row in the recording index.
const roleTranscript = "chat"

// chatLine is one message of a transcript.
type chatLine struct {
	Time      time.Time
	ID        string
	From      string // verified full name
	Role      string
	Text      string
	Deleted   bool
	DeletedAt time.Time
	DeletedBy string
}

// chatTranscript turns a session's stored chat (oldest first) into
// transcript lines.
func chatTranscript(ms []store.ChatMessage) []chatLine {
	out := make([]chatLine, 0, len(ms))
	for _, m := range ms {
		out = append(out, chatLine{Time: m.Time, ID: m.ID, From: m.SenderName, Role: m.Role, Text: m.Text,
			Deleted: !m.DeletedAt.IsZero(), DeletedAt: m.DeletedAt, DeletedBy: m.DeletedBy})
	}
	return out
}

// sessionTranscript reads a session's transcript from the chat table (the
// audit log holds only each message's hash).
func (s *Server) sessionTranscript(ctx context.Context, sessionID string) ([]chatLine, error) {
	ms, err := s.store.ListChatMessages(ctx, sessionID)
	if err != nil {
		return nil, fmt.Errorf("chat transcript of %s: %w", sessionID, err)
	}
	return chatTranscript(ms), nil
}

// transcriptCSV renders a transcript as CSV, times in the school's zone.
func transcriptCSV(lines []chatLine, loc *time.Location) []byte {
	var b bytes.Buffer
	cw := csv.NewWriter(&b)
	_ = cw.Write([]string{"time", "from", "role", "message", "deleted", "deleted_at", "deleted_by"})
	for _, l := range lines {
		deletedAt := ""
		if l.Deleted {
			deletedAt = l.DeletedAt.In(loc).Format(time.DateTime)
		}
		_ = cw.Write([]string{l.Time.In(loc).Format(time.DateTime), csvSafe(l.From), l.Role, csvSafe(l.Text), strconv.FormatBool(l.Deleted),
			deletedAt, csvSafe(l.DeletedBy)})
	}
	cw.Flush()
	return b.Bytes()
}

// storeTranscript puts the session's chat transcript, if it had any chat,
// in the bucket next to its recordings under Object Lock, and indexes it
// with them (so holds and the sweeper treat it like a recording).
func (s *Server) storeTranscript(ctx context.Context, ss store.Session) {
	if s.cfg.Bucket == nil {
		return
	}
	lines, err := s.sessionTranscript(ctx, ss.ID)
	if err != nil {
		s.log.Error("chat transcript not stored", slog.String("session", ss.ID), slog.Any("err", err))
		return
	}
	if len(lines) == 0 {
		return
	}
	key, now := recording.TranscriptKey(ss.ID), s.now()
	retain := s.cfg.Bucket.RetainUntil(now)
	info, err := s.cfg.Bucket.PutBytes(ctx, key, transcriptCSV(lines, s.loc()), retain)
	if err != nil {
		s.log.Error("chat transcript not stored", slog.String("session", ss.ID), slog.Any("err", err))
		s.audit(ctx, auditSystem, "chat.transcript_failed", key, ss.ID, map[string]any{"error": err.Error()}, "")
		return
	}
	s.audit(ctx, auditSystem, "chat.transcript_stored", key, ss.ID, map[string]any{"messages": len(lines), "size": info.Size,
		"version": info.VersionID, "retain_until": retain}, "")
	if err := s.store.PutRecordingObject(ctx, store.RecordingObject{Key: key, SessionID: ss.ID, Role: roleTranscript, Size: info.Size,
		VersionID: info.VersionID, RetainUntil: retain, Created: now}); err != nil {
		s.log.Error("index chat transcript", slog.String("key", key), slog.Any("err", err))
	}
}

// transcriptDownload is GET /recordings/{id}/chat.csv: the session's chat
// transcript for the DSL, audited before any byte is sent.
func (s *Server) transcriptDownload(w http.ResponseWriter, r *http.Request) {
	who, err := s.requireDSL(r)
	if err != nil {
		s.failErr(w, r, err)
		return
	}
	ctx := r.Context()
	ss, _, err := s.recordedSession(ctx, r.PathValue("id"))
	if err != nil {
		s.failErr(w, r, err)
		return
	}
	if !s.requireFresh(w, r, r.URL.RequestURI()) { // a download, like the recordings
		return
	}
	lines, err := s.sessionTranscript(ctx, ss.ID)
	if err != nil {
		s.failErr(w, r, err)
		return
	}
	if err := s.auditOrErr(ctx, who, "chat.transcript_downloaded", ss.ID, ss.ID, map[string]any{"messages": len(lines)}, auth.ClientIP(r)); err != nil {
		s.failErr(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="chat-%s.csv"`, ss.ID))
	_, _ = w.Write(transcriptCSV(lines, s.loc()))
}
