package web

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"time"

	"github.com/chaperone-edu/chaperone/auth"
	"github.com/chaperone-edu/chaperone/lobby"
	"github.com/chaperone-edu/chaperone/recording"
	"github.com/chaperone-edu/chaperone/store"
)

// startRecording starts the session's recording and attaches it to the
// room's media. While it cannot start (S3 unreachable, spool not
// writable) the room is told it failed — media that needs it stays held —
// and it tries again every few seconds until the room ends.
func (s *Server) startRecording(lr *liveRoom) {
	retry := 5 * time.Second
	for {
		rs, err := s.cfg.Recorder.Start(context.Background(), lr.session.ID, s.now(), lr.participant,
			func(st recording.State, why string) { lr.room.SetRecording(lobby.RecState(st), why) })
		if err == nil {
			lr.mu.Lock()
			lr.rec = rs
			lr.mu.Unlock()
			lr.media.SetSink(rs)
			return
		}
		s.log.Error("recording could not start", slog.String("session", lr.session.ID), slog.Any("err", err))
		lr.room.SetRecording(lobby.RecFailed, err.Error())
		select {
		case <-lr.room.Done():
			return
		case <-time.After(retry):
		}
		lr.room.SetRecording(lobby.RecStarting, "retrying")
	}
}

// auditSystem is the actor of audit rows the gateway writes by itself.
var auditSystem = auth.Identity{}

// participant tells the recorder who a publisher is.
func (lr *liveRoom) participant(id string) recording.Participant {
	for _, p := range lr.room.Snapshot().Participants {
		if p.ID == id {
			return recording.Participant{ID: id, Name: p.Name, Role: string(p.Role)}
		}
	}
	return recording.Participant{ID: id}
}

// finishRecording detaches the recorder, waits for the uploads and writes
// the manifest with the session's gate and recording history.
func (s *Server) finishRecording(lr *liveRoom, wait time.Duration) {
	lr.media.SetSink(nil)
	lr.mu.Lock()
	rs := lr.rec
	lr.rec = nil
	lr.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	defer s.applyConcernHold(ctx, lr)
	s.storeTranscript(ctx, lr.session)
	if rs == nil {
		return
	}
	var events []recording.ManifestEvent
	if rows, err := s.store.ListAudit(ctx, store.AuditFilter{SessionID: lr.session.ID}); err == nil {
		for i := len(rows) - 1; i >= 0; i-- {
			r := rows[i]
			if strings.HasPrefix(r.Action, "gate.") || strings.HasPrefix(r.Action, "recording.") || r.Action == "room.admit" || r.Action == "room.leave" || r.Action == "room.remove" {
				who := r.ActorName
				var d map[string]any
				if json.Unmarshal([]byte(r.Detail), &d) == nil {
					if whom, ok := d["whom"].(string); ok {
						who = whom
					}
				}
				events = append(events, recording.ManifestEvent{Time: r.Time, Action: r.Action, Detail: who})
			}
		}
	}
	m, err := rs.Close(ctx, lr.session.Title, events)
	if err != nil {
		s.log.Error("finish recording", slog.String("session", lr.session.ID), slog.Any("err", err))
	}
	for _, p := range m.Participants {
		s.audit(ctx, auditSystem, "recording.stored", p.Key, lr.session.ID, map[string]any{"participant": p.Name, "size": p.Size, "retain_until": m.RetainUntil}, "")
		if err := s.store.PutRecordingObject(ctx, store.RecordingObject{Key: p.Key, SessionID: lr.session.ID, ParticipantID: p.ID,
			ParticipantName: p.Name, Role: p.Role, Size: p.Size, RetainUntil: m.RetainUntil, Created: s.now()}); err != nil {
			s.log.Error("index recording", slog.String("key", p.Key), slog.Any("err", err))
		}
	}
	if len(m.Participants) > 0 {
		if err := s.store.PutRecordingObject(ctx, store.RecordingObject{Key: recording.ManifestKey(lr.session.ID), SessionID: lr.session.ID,
			RetainUntil: m.RetainUntil, Created: s.now()}); err != nil {
			s.log.Error("index manifest", slog.Any("err", err))
		}
	}
}

// SweepRecordings deletes recordings whose retention has passed at now and
// that are not on legal hold, and audits each deletion. When it deletes a
// session's stored chat transcript (and no other version of it is left), it
// deletes the session's chat from the store too: the text is kept as long
// as that copy and no longer. It returns how many object versions were
// deleted.
func (s *Server) SweepRecordings(ctx context.Context, now time.Time) (int, error) {
	if s.cfg.Bucket == nil {
		return 0, nil
	}
	deleted, err := s.cfg.Bucket.Sweep(ctx, now, recording.PrefixOf)
	transcripts := map[string]bool{}
	for _, o := range deleted {
		if err := s.store.MarkRecordingDeleted(ctx, o.Key, now); err != nil {
			s.log.Error("index deletion", slog.String("key", o.Key), slog.Any("err", err))
		}
		s.audit(ctx, auditSystem, "recording.deleted", o.Key, sessionOfKey(o.Key), map[string]any{"version": o.VersionID,
			"retain_until": o.RetainUntil, "size": o.Size}, "")
		if id := sessionOfKey(o.Key); id != "" && o.Key == recording.TranscriptKey(id) {
			transcripts[id] = true
		}
	}
	for id := range transcripts {
		s.purgeChat(ctx, id)
	}
	return len(deleted), err
}

// purgeChat deletes a session's chat from the store once no version of its
// stored transcript is left in the bucket.
func (s *Server) purgeChat(ctx context.Context, sessionID string) {
	key := recording.TranscriptKey(sessionID)
	left, err := s.cfg.Bucket.List(ctx, key)
	if err != nil {
		s.log.Error("chat not purged: list transcript versions", slog.String("session", sessionID), slog.Any("err", err))
		return
	}
	for _, o := range left {
		if o.Key == key && !o.DeleteMarker {
			return // a later version is still kept: so is the chat
		}
	}
	n, err := s.store.PurgeChat(ctx, sessionID)
	if err != nil {
		s.log.Error("chat not purged", slog.String("session", sessionID), slog.Any("err", err))
		return
	}
	s.audit(ctx, auditSystem, "chat.purged", sessionID, sessionID, map[string]any{"messages": n, "reason": "retention passed; stored transcript deleted"}, "")
}

// sessionOfKey is the session ID in a recording key ("sessions/<id>/...").
func sessionOfKey(key string) string {
	parts := strings.SplitN(key, "/", 3)
	if len(parts) == 3 && parts[0] == "sessions" {
		return parts[1]
	}
	return ""
}
