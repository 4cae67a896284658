package live

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/chaperone-edu/chaperone/audit"
	"github.com/chaperone-edu/chaperone/lobby"
	"github.com/chaperone-edu/chaperone/recording"
	"github.com/chaperone-edu/chaperone/store"
)

// This file is a live room's recording: start it when the rules ask,
// confirm it to the room, hold media and restart it as new parts when it
// fails, and finish and index it when the room ends.

// restartWait is the pause before a recording that failed (to start, or
// mid-lesson) is started again (as new parts), so a cause that has not
// cleared does not spin.
const restartWait = 5 * time.Second

// startRecording starts the session's recording and attaches it to the
// room's media. While it cannot start (S3 unreachable, spool not
// writable) the room is told it failed, and why — media that needs it
// stays held — and it tries again every few seconds until the room ends.
// Each start records new parts (new object keys).
func (r *Room) startRecording() {
	for {
		var rs *recording.Session
		rs, err := r.rs.cfg.Recorder.Start(context.Background(), r.session.ID, r.rs.cfg.Now(), r.participant,
			func(st recording.State, why string) {
				if st == recording.StateFailed {
					// Never on the caller's goroutine: it may be the
					// recorder's writer or an upload (the SFU's read
					// goroutine must not wait for the clean-up).
					go r.recordingFailed(rs, why)
					return
				}
				r.room.SetRecording(lobby.RecState(st), why)
			})
		if err == nil {
			r.mu.Lock()
			r.rec = rs
			r.mu.Unlock()
			r.media.SetSink(rs)
			return
		}
		r.log.Error("recording could not start", slog.Any("err", err))
		r.room.SetRecording(lobby.RecFailed, startWhy(err))
		select {
		case <-r.room.Done():
			return
		case <-time.After(restartWait):
		}
		r.room.SetRecording(lobby.RecStarting, "retrying")
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
func (r *Room) recordingFailed(rs *recording.Session, why string) {
	r.room.SetRecording(lobby.RecFailed, "Recording stopped: "+why+". Media is paused.")
	r.mu.Lock()
	current := rs != nil && r.rec == rs
	if current {
		r.rec = nil
	}
	r.mu.Unlock()
	if !current {
		return // finished already, or a start that never attached
	}
	r.media.SetSink(nil)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	parts, err := rs.Close(ctx)
	if err != nil {
		r.log.Error("close the failed recording", slog.Any("err", err))
	}
	if err := r.indexParts(ctx, nil, parts); err != nil {
		r.log.Error("index the failed recording's parts; the reconciler retries", slog.Any("err", err))
	}
	cancel()
	select {
	case <-r.room.Done():
		return
	case <-time.After(restartWait):
	}
	r.room.SetRecording(lobby.RecStarting, "restarting as a new part")
	r.startRecording()
}

// participant tells the recorder who a publisher is.
func (r *Room) participant(id string) recording.Participant {
	for _, p := range r.room.Snapshot().Participants {
		if p.ID == id {
			return recording.Participant{ID: id, Name: p.Name, Role: string(p.Role)}
		}
	}
	return recording.Participant{ID: id}
}

// finish detaches the recorder, waits for the uploads and indexes each
// part (manifest, index row, audit row) with the session's gate and
// recording history; stores the chat transcript if the session has ended;
// and tells Finished. What cannot be uploaded or indexed by then stays in
// the spool for the reconciler.
func (r *Room) finish(wait time.Duration, sessionEnded bool) {
	r.media.SetSink(nil)
	r.mu.Lock()
	rs := r.rec
	r.rec = nil
	r.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if f := r.rs.cfg.Finished; f != nil {
		// Its own time: the uploads may have used all of ctx's. A hold
		// that fails still is retried by the reconciler.
		defer func() {
			hctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			f(hctx, r.session, r.concern.Load())
		}()
	}
	if recs := r.rs.cfg.Recordings; recs != nil {
		defer recs.Poke() // a session whose end could not be saved is ended by it
	}
	if recs := r.rs.cfg.Recordings; recs != nil && sessionEnded {
		recs.StoreTranscript(ctx, r.session)
	}
	if rs == nil {
		return
	}
	events := r.manifestEvents(ctx)
	parts, err := rs.Close(ctx)
	if err != nil {
		r.log.Error("finish recording", slog.Any("err", err))
	}
	if err := r.indexParts(ctx, events, parts); err != nil {
		r.log.Error("index recording; the reconciler retries", slog.Any("err", err))
	}
}

// manifestEvents are the session's gate, recording, admission, leaving and
// removal rows, oldest first, for the recording's manifest.
func (r *Room) manifestEvents(ctx context.Context) []recording.ManifestEvent {
	rows, err := r.rs.cfg.Store.ListAudit(ctx, store.AuditFilter{SessionID: r.session.ID})
	if err != nil {
		r.log.Error("manifest events", slog.Any("err", err))
		return nil
	}
	var events []recording.ManifestEvent
	for i := len(rows) - 1; i >= 0; i-- {
		row := rows[i]
		switch row.Action.Family() {
		case audit.FamilyGate, audit.FamilyRecording:
		default:
			if row.Action != audit.RoomAdmit && row.Action != audit.RoomLeave && row.Action != audit.RoomRemove {
				continue
			}
		}
		who := row.ActorName
		if whom := audit.Read(row.Detail).Whom; whom != "" {
			who = whom
		}
		events = append(events, recording.ManifestEvent{Time: row.Time, Action: string(row.Action), Detail: who})
	}
	return events
}

// indexParts hands a closed recording's parts to the lifecycle to index.
func (r *Room) indexParts(ctx context.Context, events []recording.ManifestEvent, parts []recording.Part) error {
	if r.rs.cfg.Recordings == nil {
		return errors.New("no recording lifecycle configured: parts stay in the spool")
	}
	return r.rs.cfg.Recordings.Finish(ctx, r.session.Title, events, parts)
}
