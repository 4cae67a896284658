package web

import (
	"context"
	"io"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/chaperone-edu/chaperone/auth"
	"github.com/chaperone-edu/chaperone/live"
	"github.com/chaperone-edu/chaperone/safeguard"
	"github.com/chaperone-edu/chaperone/store"
)

// The services the pages and the signalling reach, as this package needs
// them: the live rooms and the recordings' storage (package live), and
// safeguarding (package safeguard). Package web owns HTTP and WebSockets
// only; it imports neither sfu nor recording.

// Rooms is the registry of live rooms (*live.Rooms).
type Rooms interface {
	// Open returns the live room of a session, starting it if needed
	// (lobby.ErrEnded: its room has ended).
	Open(ss store.Session) (*live.Room, error)
	// Running returns the session's room if it is running here.
	Running(sessionID string) (*live.Room, bool)
	// AuditWritten waits until the rooms' queued audit rows are stored.
	AuditWritten(ctx context.Context) error
	// Collector is the rooms' part of /metrics.
	Collector() prometheus.Collector
	// ICEServers are the STUN/TURN servers for participant pid's page.
	ICEServers(pid string) any
	// Probe answers a page's connection check (an offer with a data
	// channel only and every candidate gathered) with the SFU's answer.
	Probe(offer string) (string, error)
	// Close stops every room (at shutdown).
	Close()
}

// Archive is the recordings' storage and lifecycle (*live.Recordings).
type Archive interface {
	HasStorage() bool
	ObjectSize(ctx context.Context, key string) (int64, error)
	OpenObject(ctx context.Context, key string, start, length int64) (io.ReadCloser, error)
	StartOffsets(ctx context.Context, sessionID string) (map[string]float64, error)
	SetSessionHold(ctx context.Context, sessionID string, on bool) (int, error)
	Sweep(ctx context.Context, now time.Time) (int, error)
}

// Concerns is safeguarding: raising, filing, holding, routing and reading
// concerns (*safeguard.Service).
type Concerns interface {
	RaiseInRoom(who auth.Identity, ss store.Session)
	CheckFiling(ctx context.Context, ss store.Session, f safeguard.Filing) error
	File(ctx context.Context, who auth.Identity, ss store.Session, f safeguard.Filing) (safeguard.Filed, error)
	Notify(ctx context.Context, who auth.Identity, c store.Concern, about []safeguard.Pupil, completing bool) []store.Notification
	Pending(ctx context.Context, sessionID, sub string) (store.Concern, bool)
	Recorded(ctx context.Context, sessionID string) bool
	Pupils(ctx context.Context, sessionID string) []safeguard.Pupil
	Joined(ctx context.Context, sessionID string) []string
	MayRead(ctx context.Context, who auth.Identity, c store.Concern) bool
	Refused(ctx context.Context, who auth.Identity, c store.Concern, ip string)
	Worry(ctx context.Context, who auth.Identity, sessionID, text, ip string) (store.Concern, error)
	RecentLessons(ctx context.Context, who auth.Identity) []safeguard.Lesson
}

// running returns the session's live room on this gateway, if any.
func (s *Server) running(sessionID string) (*live.Room, bool) {
	if s.cfg.Rooms == nil {
		return nil, false
	}
	return s.cfg.Rooms.Running(sessionID)
}

// AuditWritten waits until every live room's queued audit rows are in the
// store (or ctx ends), so that a reader of the audit log sees everything up
// to now.
func (s *Server) AuditWritten(ctx context.Context) error {
	if s.cfg.Rooms == nil {
		return nil
	}
	return s.cfg.Rooms.AuditWritten(ctx)
}

// Close stops every live room on this gateway (at shutdown).
func (s *Server) Close() {
	if s.cfg.Rooms != nil {
		s.cfg.Rooms.Close()
	}
}
