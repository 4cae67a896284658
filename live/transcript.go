package live

import (
	"bytes"
	"context"
	"encoding/csv"
	"log/slog"
	"strconv"
	"time"

	"github.com/chaperone-edu/chaperone/audit"
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

// RoleTranscript is the role of a transcript's row in the recording index.
const RoleTranscript = "chat"

// TranscriptLine is one message of a transcript.
type TranscriptLine struct {
	Time      time.Time
	ID        string
	From      string // verified full name
	Role      string
	Text      string
	Deleted   bool
	DeletedAt time.Time
	DeletedBy string
}

// Transcript turns a session's stored chat (oldest first) into transcript
// lines.
func Transcript(ms []store.ChatMessage) []TranscriptLine {
	out := make([]TranscriptLine, 0, len(ms))
	for _, m := range ms {
		out = append(out, TranscriptLine{Time: m.Time, ID: m.ID, From: m.SenderName, Role: m.Role, Text: m.Text,
			Deleted: !m.DeletedAt.IsZero(), DeletedAt: m.DeletedAt, DeletedBy: m.DeletedBy})
	}
	return out
}

// TranscriptCSV renders a transcript as CSV, times in the school's zone.
func TranscriptCSV(lines []TranscriptLine, loc *time.Location) []byte {
	var b bytes.Buffer
	cw := csv.NewWriter(&b)
	_ = cw.Write([]string{"time", "from", "role", "message", "deleted", "deleted_at", "deleted_by"})
	for _, l := range lines {
		deletedAt := ""
		if l.Deleted {
			deletedAt = l.DeletedAt.In(loc).Format(time.DateTime)
		}
		_ = cw.Write([]string{l.Time.In(loc).Format(time.DateTime), SafeCell(l.From), l.Role, SafeCell(l.Text), strconv.FormatBool(l.Deleted),
			deletedAt, SafeCell(l.DeletedBy)})
	}
	cw.Flush()
	return b.Bytes()
}

// SafeCell stops a CSV cell being read as a formula by spreadsheet
// programs.
func SafeCell(v string) string {
	if v != "" && (v[0] == '=' || v[0] == '+' || v[0] == '-' || v[0] == '@') {
		return "'" + v
	}
	return v
}

// storeTranscript puts the session's chat transcript, if it had any chat,
// in the bucket next to its recordings under Object Lock, and indexes it
// with them (so holds and the sweeper treat it like a recording).
// It is called once a session has ended (by its room, or by the
// reconciler), never at a gateway's shutdown: the room goes on after the
// restart, and the key is written once.
func (r *Recordings) StoreTranscript(ctx context.Context, ss store.Session) {
	b := r.cfg.Bucket
	if b == nil {
		return
	}
	log := r.log.With(slog.String("session", ss.ID))
	ms, err := r.cfg.Store.ListChatMessages(ctx, ss.ID)
	if err != nil {
		log.Error("chat transcript not stored", slog.Any("err", err))
		return
	}
	if len(ms) == 0 {
		return
	}
	lines := Transcript(ms)
	key, now := recording.TranscriptKey(ss.ID), r.cfg.Now()
	retain := b.RetainUntil(now)
	info, err := b.PutBytes(ctx, key, TranscriptCSV(lines, r.cfg.Location), retain)
	if err != nil {
		log.Error("chat transcript not stored", slog.Any("err", err))
		r.logAudit(ctx, audit.ChatTranscriptFailed, key, ss.ID, audit.Transcript{Error: err.Error()})
		return
	}
	r.logAudit(ctx, audit.ChatTranscriptStored, key, ss.ID, audit.Transcript{Messages: len(lines), Size: info.Size,
		Version: info.VersionID, RetainUntil: retain})
	if err := r.cfg.Store.PutRecordingObject(ctx, store.RecordingObject{Key: key, SessionID: ss.ID, Role: RoleTranscript, Size: info.Size,
		VersionID: info.VersionID, RetainUntil: retain, Created: now}); err != nil {
		log.Error("index chat transcript", slog.String("key", key), slog.Any("err", err))
	}
}

// logAudit is audit for rows whose failure only gets logged.
func (r *Recordings) logAudit(ctx context.Context, action audit.Action, target, sessionID string, d audit.Detail) {
	if err := r.audit(ctx, action, target, sessionID, d); err != nil {
		r.log.Error("audit append failed", slog.String("action", string(action)), slog.Any("err", err))
	}
}
