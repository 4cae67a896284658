package web

import (
	"context"
	"encoding/json"
	"errors"
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
// writable) the room is told it failed, and why — media that needs it
// stays held — and it tries again every few seconds until the room ends.
// Each start records new parts (new object keys).
func (s *Server) startRecording(lr *liveRoom) {
	retry := restartWait
	for {
		var rs *recording.Session
		rs, err := s.cfg.Recorder.Start(context.Background(), lr.session.ID, s.now(), lr.participant,
			func(st recording.State, why string) {
				if st == recording.StateFailed {
					// Never on the caller's goroutine: it may be the
					// recorder's writer or an upload.
					go s.recordingFailed(lr, rs, why)
					return
				}
				lr.room.SetRecording(lobby.RecState(st), why)
			})
		if err == nil {
			lr.mu.Lock()
			lr.rec = rs
			lr.mu.Unlock()
			lr.media.SetSink(rs)
			return
		}
		s.log.Error("recording could not start", slog.String("session", lr.session.ID), slog.Any("err", err))
		lr.room.SetRecording(lobby.RecFailed, startWhy(err))
		select {
		case <-lr.room.Done():
			return
		case <-time.After(retry):
		}
		lr.room.SetRecording(lobby.RecStarting, "retrying")
	}
}

// startWhy says, for people and the audit log, why a recording could not
// start.
func startWhy(err error) string {
	switch {
	case recording.Misconfigured(err):
		return "Recording could not start: the recording storage is not set up for locked recordings (" + err.Error() + "). Media is paused."
	case errors.Is(err, recording.ErrSpool):
		return "Recording could not start: the server's recording spool cannot be written. Media is paused."
	}
	return "Recording could not start: the recording storage is unreachable. Media is paused until it is back."
}

// recordingFailed handles a recording that failed mid-lesson (spool disk
// full, the recorder fell behind, no part number): the room holds media
// and says why; what was recorded is finished and indexed as its parts;
// and a new recording (new parts) starts as soon as the cause clears.
func (s *Server) recordingFailed(lr *liveRoom, rs *recording.Session, why string) {
	lr.room.SetRecording(lobby.RecFailed, "Recording stopped: "+why+". Media is paused.")
	lr.mu.Lock()
	current := rs != nil && lr.rec == rs
	if current {
		lr.rec = nil
	}
	lr.mu.Unlock()
	if !current {
		return // finished already, or a start that never attached
	}
	lr.media.SetSink(nil)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	parts, err := rs.Close(ctx)
	if err != nil {
		s.log.Error("close the failed recording", slog.String("session", lr.session.ID), slog.Any("err", err))
	}
	if err := s.indexParts(ctx, lr, nil, parts); err != nil {
		s.log.Error("index the failed recording's parts; the reconciler retries", slog.String("session", lr.session.ID), slog.Any("err", err))
	}
	cancel()
	select {
	case <-lr.room.Done():
		return
	case <-time.After(restartWait):
	}
	lr.room.SetRecording(lobby.RecStarting, "restarting as a new part")
	s.startRecording(lr)
}

// restartWait is the pause before a recording that failed mid-lesson is
// started again (as new parts), so a cause that has not cleared does not
// spin.
const restartWait = 5 * time.Second

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

// finishRecording detaches the recorder, waits for the uploads and indexes
// each part (manifest, index row, audit row) with the session's gate and
// recording history. What cannot be uploaded or indexed by then stays in
// the spool for the reconciler.
func (s *Server) finishRecording(lr *liveRoom, wait time.Duration) {
	lr.media.SetSink(nil)
	lr.mu.Lock()
	rs := lr.rec
	lr.rec = nil
	lr.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	defer s.applyConcernHold(ctx, lr)
	defer s.pokeReconciler() // a session whose end could not be saved is ended by it
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
	parts, err := rs.Close(ctx)
	if err != nil {
		s.log.Error("finish recording", slog.String("session", lr.session.ID), slog.Any("err", err))
	}
	if err := s.indexParts(ctx, lr, events, parts); err != nil {
		s.log.Error("index recording; the reconciler retries", slog.String("session", lr.session.ID), slog.Any("err", err))
	}
}

// indexParts hands a closed recording's parts to the live layer to index.
func (s *Server) indexParts(ctx context.Context, lr *liveRoom, events []recording.ManifestEvent, parts []recording.Part) error {
	if s.cfg.Recordings == nil {
		return errors.New("no recording lifecycle configured: parts stay in the spool")
	}
	return s.cfg.Recordings.Finish(ctx, lr.session.Title, events, parts)
}

func (s *Server) pokeReconciler() {
	if s.cfg.Recordings != nil {
		s.cfg.Recordings.Poke()
	}
}

// RoomOpen reports whether a room of the session is running on this
// gateway (the reconciler leaves such sessions alone).
func (s *Server) RoomOpen(sessionID string) bool {
	lr, ok := s.liveRoomOf(sessionID)
	if !ok {
		return false
	}
	select {
	case <-lr.room.Done():
		return false
	default:
		return true
	}
}

// SweepRecordings deletes recordings whose retention has passed at now and
// that are not on legal hold (live.Recordings.Sweep).
func (s *Server) SweepRecordings(ctx context.Context, now time.Time) (int, error) {
	if s.cfg.Recordings == nil {
		return 0, nil
	}
	return s.cfg.Recordings.Sweep(ctx, now)
}
