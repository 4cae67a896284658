package web

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chaperone-edu/chaperone/lobby"
	"github.com/chaperone-edu/chaperone/recording"
	"github.com/chaperone-edu/chaperone/sfu"
	"github.com/chaperone-edu/chaperone/store"
)

// liveRoom is one live session on this gateway: the rules actor and the
// media room it drives.
type liveRoom struct {
	session store.Session
	room    *lobby.Room
	media   *sfu.Room

	mu    sync.Mutex
	peers map[string]*wsConn // participant ID → the connection whose media peer exists
	rec   *recording.Session // the session's recording, once started

	concern atomic.Bool // staff stopped the session to raise a concern
}

// rooms is the registry of live rooms, by session ID.
type rooms struct {
	mu sync.Mutex
	m  map[string]*liveRoom
}

// roomFor returns the live room of session ss, starting it if needed.
func (s *Server) roomFor(ss store.Session) (*liveRoom, error) {
	if s.cfg.SFU == nil {
		return nil, errors.New("no media server configured")
	}
	s.rooms.mu.Lock()
	defer s.rooms.mu.Unlock()
	if lr, ok := s.rooms.m[ss.ID]; ok {
		select {
		case <-lr.room.Done():
		default:
			return lr, nil
		}
	}
	// The room starts from what an earlier room of the session kept (R16):
	// without it a removed pupil could get back in, so no room opens while
	// it cannot be read.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var restore *store.RoomRecord
	switch rec, err := s.store.LoadRoom(ctx, ss.ID); {
	case err == nil && rec.Ended:
		// The room ended the session, but marking it ended did not happen.
		if _, err := s.store.TransitionSession(ctx, ss.ID, []string{store.StateLive}, store.StateEnded,
			store.SessionChange{At: s.now(), Reason: "the room had ended"}); err != nil && !errors.Is(err, store.ErrConflict) {
			s.log.Error("mark session ended", slog.String("session", ss.ID), slog.Any("err", err))
		}
		return nil, lobby.ErrEnded
	case err == nil:
		restore = &rec
	case !errors.Is(err, store.ErrNotFound):
		return nil, fmt.Errorf("room state of %s: %w", ss.ID, err)
	}
	removals, err := s.store.ListAudit(ctx, store.AuditFilter{SessionID: ss.ID, Action: "room.remove"})
	if err != nil {
		return nil, fmt.Errorf("removals in %s: %w", ss.ID, err)
	}
	removed := make([]string, 0, len(removals))
	for _, row := range removals {
		removed = append(removed, row.Target)
	}
	chat, err := s.store.ListChatMessages(ctx, ss.ID)
	if err != nil {
		return nil, fmt.Errorf("chat of %s: %w", ss.ID, err)
	}
	lr := &liveRoom{session: ss, media: s.cfg.SFU.NewRoom(ss.ID), peers: map[string]*wsConn{}}
	log := s.log.With(slog.String("session", ss.ID))
	if restore != nil {
		log.Info("room restored from its saved state", slog.Int("participants", len(restore.Participants)), slog.Int("chat", len(chat)))
	}
	lr.room = lobby.NewRoom(lobby.RoomConfig{
		Session: ss, Policy: s.cfg.RoomPolicy, Gate: lr.media, Audit: s.store, Chat: s.store, Now: s.cfg.Now, Grace: s.cfg.StaffGrace, Logger: log,
		Saver: s.store, Restore: restore, RestoreChat: chat, Removed: removed, RejoinGrace: s.cfg.RejoinGrace,
		StartRecording: s.recordingStarter(lr),
		OnEnd: func(reason string) {
			// Called on the room's goroutine: persist and clean up elsewhere.
			go s.roomEnded(lr, reason)
		},
	})
	s.rooms.m[ss.ID] = lr
	if left := ss.End.Sub(s.now()); left > 0 {
		t := time.AfterFunc(left, func() { lr.room.End("The session's time is over.") })
		go func() { <-lr.room.Done(); t.Stop() }()
	}
	return lr, nil
}

func (s *Server) roomEnded(lr *liveRoom, reason string) {
	<-lr.room.Done() // the room's audit rows are written: the manifest reads them
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := s.store.TransitionSession(ctx, lr.session.ID, []string{store.StateLive}, store.StateEnded,
		store.SessionChange{At: s.now(), Reason: reason}); err != nil && !errors.Is(err, store.ErrConflict) {
		s.log.Error("mark session ended", slog.String("session", lr.session.ID), slog.Any("err", err))
	}
	s.finishRecording(lr, 10*time.Minute)
	s.metrics.roomEnded(lr)
	lr.media.Close()
	s.rooms.mu.Lock()
	if s.rooms.m[lr.session.ID] == lr {
		delete(s.rooms.m, lr.session.ID)
	}
	s.rooms.mu.Unlock()
}

// recordingStarter is the room's StartRecording hook: nil (fail closed)
// without a recorder.
func (s *Server) recordingStarter(lr *liveRoom) func() {
	if s.cfg.Recorder == nil {
		return nil
	}
	return func() { go s.startRecording(lr) }
}

// liveRoomOf returns the running room of a session, if any (for tests and
// staff pages).
func (s *Server) liveRoomOf(id string) (*liveRoom, bool) {
	s.rooms.mu.Lock()
	defer s.rooms.mu.Unlock()
	lr, ok := s.rooms.m[id]
	return lr, ok
}

// AuditWritten waits until every live room's queued audit rows are in the
// store (or ctx ends), so that a reader of the audit log sees everything up
// to now.
func (s *Server) AuditWritten(ctx context.Context) error {
	s.rooms.mu.Lock()
	all := make([]*liveRoom, 0, len(s.rooms.m))
	for _, lr := range s.rooms.m {
		all = append(all, lr)
	}
	s.rooms.mu.Unlock()
	for _, lr := range all {
		if err := lr.room.AuditWritten(ctx); err != nil {
			return fmt.Errorf("session %s: %w", lr.session.ID, err)
		}
	}
	return nil
}

// RoomSnapshot returns the state of a live room (tests use it).
func (s *Server) RoomSnapshot(sessionID string) (lobby.RoomState, bool) {
	lr, ok := s.liveRoomOf(sessionID)
	if !ok {
		return lobby.RoomState{}, false
	}
	return lr.room.Snapshot(), true
}

// MediaStats returns the SFU's counters of a live room (tests use them).
func (s *Server) MediaStats(sessionID string) ([]sfu.TrackStats, []sfu.EdgeStats, bool) {
	lr, ok := s.liveRoomOf(sessionID)
	if !ok {
		return nil, nil, false
	}
	ts, es := lr.media.Stats()
	return ts, es, true
}

// startMedia creates the SFU peer of c's participant, replacing a stale
// peer of an earlier connection of the same participant.
func (lr *liveRoom) startMedia(c *wsConn) error {
	lr.mu.Lock()
	defer lr.mu.Unlock()
	if old, ok := lr.peers[c.pid]; ok && old != c {
		lr.media.RemovePeer(c.pid)
		delete(lr.peers, c.pid)
	}
	if lr.peers[c.pid] == c {
		return nil
	}
	p, err := lr.media.AddPeer(c.pid, c)
	if err != nil {
		return fmt.Errorf("add media peer: %w", err)
	}
	c.setPeer(p)
	lr.peers[c.pid] = c
	return nil
}

// stopMedia removes c's peer if it is still the current one.
func (lr *liveRoom) stopMedia(c *wsConn) {
	lr.mu.Lock()
	defer lr.mu.Unlock()
	if lr.peers[c.pid] == c {
		lr.media.RemovePeer(c.pid)
		delete(lr.peers, c.pid)
	}
}

// Close stops every live room on this gateway (at shutdown). Sessions stay
// live in the store, so people can rejoin once the gateway is back.
func (s *Server) Close() {
	s.rooms.mu.Lock()
	all := make([]*liveRoom, 0, len(s.rooms.m))
	for _, lr := range s.rooms.m {
		all = append(all, lr)
	}
	s.rooms.m = map[string]*liveRoom{}
	s.rooms.mu.Unlock()
	var wg sync.WaitGroup
	for _, lr := range all {
		lr.room.Stop()
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-lr.room.Done()                   // its state and audit rows are written
			s.finishRecording(lr, time.Minute) // what is not uploaded by then resumes from the spool at the next start
			lr.media.Close()
		}()
	}
	wg.Wait()
}
