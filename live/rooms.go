package live

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chaperone-edu/chaperone/audit"
	"github.com/chaperone-edu/chaperone/lobby"
	"github.com/chaperone-edu/chaperone/recording"
	"github.com/chaperone-edu/chaperone/sfu"
	"github.com/chaperone-edu/chaperone/store"
)

// Candidate is a trickled ICE candidate as signalling carries it.
type Candidate = sfu.Candidate

// Errors of a participant's media connection that signalling answers.
var (
	// ErrCandidateRefused: a candidate the SFU never checks (loopback,
	// link-local…) or over the limits; nothing changed.
	ErrCandidateRefused = sfu.ErrCandidateRefused
	// ErrUnknownPC: the message names no connection of the peer.
	ErrUnknownPC = sfu.ErrUnknownPC
	// ErrRestartTooSoon: an ICE restart came too soon after the last one.
	ErrRestartTooSoon = sfu.ErrRestartTooSoon
	// ErrClosed: the peer is closed.
	ErrClosed = sfu.ErrClosed
	// ErrProbeBusy: too many connection checks are open; try shortly.
	ErrProbeBusy = sfu.ErrBusy
	// ErrBadSDP: an offer or answer that could not be used.
	ErrBadSDP = sfu.ErrBadSDP
	// ErrNoMedia: this gateway runs no media server.
	ErrNoMedia = errors.New("live: no media server")
)

// Signal carries the SFU's side of a participant's signalling to their page
// (the WebSocket implements it).
type Signal interface {
	Offer(pc string, sdp string)      // server-created offer; pc is "down"
	Candidate(pc string, c Candidate) // trickle ICE; pc is "up" or "down"
}

// Peer is a participant's media connection, as their signalling drives it.
type Peer interface {
	DeclareScreen(trackIDs ...string) error
	HandleOffer(sdp string) (string, error)
	HandleAnswer(sdp string) error
	AddCandidate(pc string, c Candidate) error
	// RestartICE offers the down connection again with new ICE
	// credentials (the page's network changed).
	RestartICE() error
}

// RoomStore is what rooms need of the store: the room's own (audit, chat,
// saved state) and what the rooms' lifecycle writes around it.
type RoomStore interface {
	lobby.Audit
	lobby.ChatStore
	lobby.RoomSaver
	LoadRoom(ctx context.Context, sessionID string) (store.RoomRecord, error)
	ListAudit(ctx context.Context, f store.AuditFilter) ([]store.AuditRecord, error)
	ListChatMessages(ctx context.Context, sessionID string) ([]store.ChatMessage, error)
	TransitionSession(ctx context.Context, id string, from []string, to string, c store.SessionChange) (store.Session, error)
	PutRecordingObject(ctx context.Context, o store.RecordingObject) error
}

// RoomsConfig configures the live rooms of a gateway.
type RoomsConfig struct {
	Store RoomStore
	// SFU forwards the media of live rooms; nil means rooms cannot open.
	SFU *sfu.SFU
	// Recorder records sessions when the rules need it; nil means none
	// (media that needs a recording stays held). Recordings indexes what it
	// records and is required with it.
	Recorder   *recording.Recorder
	Recordings *Recordings
	Policy     lobby.Policy
	Now        func() time.Time
	// StaffGrace: after the last staff member leaves, the room ends after
	// this (0: 5 minutes). RejoinGrace: lobby.RoomConfig.RejoinGrace.
	StaffGrace  time.Duration
	RejoinGrace time.Duration
	Logger      *slog.Logger
	// Finished is called when a room's recording and transcript are
	// stored and indexed, with whether staff stopped the room to raise a
	// concern (safeguarding holds what was stored then).
	Finished func(ctx context.Context, ss store.Session, concern bool)
}

// Rooms is the registry of the live rooms on this gateway, by session ID.
type Rooms struct {
	cfg     RoomsConfig
	log     *slog.Logger
	metrics roomMetrics

	mu sync.Mutex
	m  map[string]*Room
}

// NewRooms returns an empty registry.
func NewRooms(cfg RoomsConfig) *Rooms {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	rs := &Rooms{cfg: cfg, log: cfg.Logger, m: map[string]*Room{}}
	rs.metrics.rooms = rs
	return rs
}

// Room is one live session on this gateway: the rules actor and the media
// room it drives, and the session's recording.
type Room struct {
	rs      *Rooms
	session store.Session
	room    *lobby.Room
	media   *sfu.Room
	log     *slog.Logger

	mu    sync.Mutex
	peers map[string]mediaPeer // participant ID → the media peer and the connection it belongs to
	rec   *recording.Session

	concern atomic.Bool // staff stopped the session to raise a concern
}

// mediaPeer is a participant's SFU peer and the signalling it belongs to.
type mediaPeer struct {
	sig  Signal
	peer *sfu.Peer
}

// Session is the room's session as it was when the room opened.
func (r *Room) Session() store.Session { return r.session }

// Lobby is the room's rules actor.
func (r *Room) Lobby() *lobby.Room { return r.room }

// EndForConcern marks the room as stopped to raise a concern (what it
// recorded is held once stored) and, with a reason, ends it now.
func (r *Room) EndForConcern(reason string) {
	r.concern.Store(true)
	if reason != "" {
		r.room.End(reason)
	}
}

// ClearConcern takes back EndForConcern when the room refused the stop.
func (r *Room) ClearConcern() { r.concern.Store(false) }

// Open returns the live room of session ss, starting it if needed. A room
// starts from what an earlier room of the session kept (R16): without it a
// removed pupil could get back in, so no room opens while it cannot be
// read. lobby.ErrEnded means the session's room has ended.
func (rs *Rooms) Open(ss store.Session) (*Room, error) {
	if rs.cfg.SFU == nil {
		return nil, errors.New("no media server configured")
	}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if r, ok := rs.m[ss.ID]; ok && !r.isDone() {
		return r, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st := rs.cfg.Store
	var restore *store.RoomRecord
	switch rec, err := st.LoadRoom(ctx, ss.ID); {
	case err == nil && rec.Ended:
		// The room ended the session, but marking it ended did not happen.
		if _, err := st.TransitionSession(ctx, ss.ID, []string{store.StateLive}, store.StateEnded,
			store.SessionChange{At: rs.cfg.Now(), Reason: "the room had ended"}); err != nil && !errors.Is(err, store.ErrConflict) {
			rs.log.Error("mark session ended", slog.String("session", ss.ID), slog.Any("err", err))
		}
		return nil, lobby.ErrEnded
	case err == nil:
		restore = &rec
	case !errors.Is(err, store.ErrNotFound):
		return nil, fmt.Errorf("room state of %s: %w", ss.ID, err)
	}
	removals, err := st.ListAudit(ctx, store.AuditFilter{SessionID: ss.ID, Action: audit.RoomRemove})
	if err != nil {
		return nil, fmt.Errorf("removals in %s: %w", ss.ID, err)
	}
	removed := make([]string, 0, len(removals))
	for _, row := range removals {
		removed = append(removed, row.Target)
	}
	chat, err := st.ListChatMessages(ctx, ss.ID)
	if err != nil {
		return nil, fmt.Errorf("chat of %s: %w", ss.ID, err)
	}
	log := rs.log.With(slog.String("session", ss.ID))
	r := &Room{rs: rs, session: ss, media: rs.cfg.SFU.NewRoom(ss.ID), peers: map[string]mediaPeer{}, log: log}
	if restore != nil {
		log.Info("room restored from its saved state", slog.Int("participants", len(restore.Participants)), slog.Int("chat", len(chat)))
	}
	var startRecording func()
	if rs.cfg.Recorder != nil {
		startRecording = func() { go r.startRecording() }
	}
	r.room = lobby.NewRoom(lobby.RoomConfig{
		Session: ss, Policy: rs.cfg.Policy, Gate: r.media, Audit: st, Chat: st, Now: rs.cfg.Now, Grace: rs.cfg.StaffGrace, Logger: log,
		Saver: st, Restore: restore, RestoreChat: chat, Removed: removed, RejoinGrace: rs.cfg.RejoinGrace,
		StartRecording: startRecording,
		// Called on the room's goroutine: persist and clean up elsewhere.
		OnEnd: func(reason string) { go r.afterEnd(reason) },
	})
	rs.m[ss.ID] = r
	if left := ss.End.Sub(rs.cfg.Now()); left > 0 {
		t := time.AfterFunc(left, func() { r.room.End("The session's time is over.") })
		go func() { <-r.room.Done(); t.Stop() }()
	}
	return r, nil
}

func (r *Room) isDone() bool {
	select {
	case <-r.room.Done():
		return true
	default:
		return false
	}
}

// afterEnd runs once the room has ended the session: the session is marked
// ended, the recording and transcript stored and indexed, the media closed.
func (r *Room) afterEnd(reason string) {
	<-r.room.Done() // the room's audit rows are written: the manifest reads them
	rs := r.rs
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ended := true
	if _, err := rs.cfg.Store.TransitionSession(ctx, r.session.ID, []string{store.StateLive}, store.StateEnded,
		store.SessionChange{At: rs.cfg.Now(), Reason: reason}); err != nil && !errors.Is(err, store.ErrConflict) {
		r.log.Error("mark session ended; the reconciler ends it (and stores its transcript)", slog.Any("err", err))
		ended = false
	}
	r.finish(10*time.Minute, ended)
	rs.metrics.ended(r)
	r.media.Close()
	rs.mu.Lock()
	if rs.m[r.session.ID] == r {
		delete(rs.m, r.session.ID)
	}
	rs.mu.Unlock()
}

// ICEServers are the STUN/TURN servers, with participant pid's short-lived
// TURN credentials, that the page's connections use (JSON for the page).
func (rs *Rooms) ICEServers(pid string) any {
	if rs.cfg.SFU == nil {
		return []any{}
	}
	return rs.cfg.SFU.ICEServers(pid)
}

// Probe answers a page's connection check (sfu.SFU.Probe): offer has every
// candidate gathered and a data channel only.
func (rs *Rooms) Probe(offer string) (string, error) {
	if rs.cfg.SFU == nil {
		return "", ErrNoMedia
	}
	answer, err := rs.cfg.SFU.Probe(offer)
	if err != nil {
		return "", fmt.Errorf("live: connection check: %w", err)
	}
	return answer, nil
}

// Running returns the running room of a session, if any.
func (rs *Rooms) Running(id string) (*Room, bool) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	r, ok := rs.m[id]
	if !ok || r.isDone() {
		return nil, false
	}
	return r, true
}

// IsOpen reports whether a room of the session is running on this gateway
// (the reconciler leaves such sessions alone).
func (rs *Rooms) IsOpen(sessionID string) bool {
	_, ok := rs.Running(sessionID)
	return ok
}

func (rs *Rooms) all() []*Room {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	out := make([]*Room, 0, len(rs.m))
	for _, r := range rs.m {
		out = append(out, r)
	}
	return out
}

// AuditWritten waits until every live room's queued audit rows are in the
// store (or ctx ends), so that a reader of the audit log sees everything up
// to now.
func (rs *Rooms) AuditWritten(ctx context.Context) error {
	for _, r := range rs.all() {
		if err := r.room.AuditWritten(ctx); err != nil {
			return fmt.Errorf("session %s: %w", r.session.ID, err)
		}
	}
	return nil
}

// Snapshot returns the state of a live room (tests and pages use it).
func (rs *Rooms) Snapshot(sessionID string) (lobby.RoomState, bool) {
	r, ok := rs.Running(sessionID)
	if !ok {
		return lobby.RoomState{}, false
	}
	return r.room.Snapshot(), true
}

// MediaStats returns the SFU's counters of a live room.
func (rs *Rooms) MediaStats(sessionID string) ([]sfu.TrackStats, []sfu.EdgeStats, bool) {
	r, ok := rs.Running(sessionID)
	if !ok {
		return nil, nil, false
	}
	ts, es := r.media.Stats()
	return ts, es, true
}

// StartMedia creates the SFU peer of participant pid whose signalling is
// sig, replacing a stale peer of an earlier connection of the same
// participant; a second call for the same connection returns its peer.
func (r *Room) StartMedia(pid string, sig Signal) (Peer, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if old, ok := r.peers[pid]; ok {
		if old.sig == sig {
			return old.peer, nil
		}
		r.media.RemovePeer(pid)
		delete(r.peers, pid)
	}
	p, err := r.media.AddPeer(pid, sig)
	if err != nil {
		return nil, fmt.Errorf("add media peer: %w", err)
	}
	r.peers[pid] = mediaPeer{sig: sig, peer: p}
	return p, nil
}

// StopMedia removes pid's peer if sig's connection still owns it.
func (r *Room) StopMedia(pid string, sig Signal) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.peers[pid].sig == sig {
		r.media.RemovePeer(pid)
		delete(r.peers, pid)
	}
}

// Close stops every live room on this gateway (at shutdown). Sessions stay
// live in the store, so people can rejoin once the gateway is back.
func (rs *Rooms) Close() {
	rs.mu.Lock()
	all := make([]*Room, 0, len(rs.m))
	for _, r := range rs.m {
		all = append(all, r)
	}
	rs.m = map[string]*Room{}
	rs.mu.Unlock()
	var wg sync.WaitGroup
	for _, r := range all {
		r.room.Stop()
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-r.room.Done()              // its state and audit rows are written
			r.finish(time.Minute, false) // what is not uploaded by then resumes from the spool at the next start
			r.media.Close()
		}()
	}
	wg.Wait()
}
