package live

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/chaperone-edu/chaperone/audit"
	"github.com/chaperone-edu/chaperone/recording"
	"github.com/chaperone-edu/chaperone/store"
)

// Store is what the recording lifecycle needs of the store.
type Store interface {
	NextRecordingPart(ctx context.Context, sessionID, fileID string) (int, error)
	PutRecordingObject(ctx context.Context, o store.RecordingObject) error
	MarkRecordingDeleted(ctx context.Context, key string, at time.Time) error
	SetRecordingHeld(ctx context.Context, sessionID string, held bool) (int, error)
	PurgeChat(ctx context.Context, sessionID string) (int, error)
	AppendAudit(ctx context.Context, e store.AuditEntry) (store.AuditRecord, error)
	ListAudit(ctx context.Context, f store.AuditFilter) ([]store.AuditRecord, error)
	ListSessions(ctx context.Context, f store.SessionFilter) ([]store.Session, error)
	ListChatMessages(ctx context.Context, sessionID string) ([]store.ChatMessage, error)
	ListConcerns(ctx context.Context, sessionID string) ([]store.Concern, error)
	ListRecordingObjects(ctx context.Context, f store.RecordingFilter) ([]store.RecordingObject, error)
	TransitionSession(ctx context.Context, id string, from []string, to string, c store.SessionChange) (store.Session, error)
}

// Config configures Recordings.
type Config struct {
	Store Store
	// Recorder and Bucket are nil when the gateway has no recording
	// storage: then only sessions are reconciled.
	Recorder *recording.Recorder
	Bucket   *recording.Bucket
	Now      func() time.Time
	Logger   *slog.Logger
	// Location is the school's time zone (transcripts' times; default UTC).
	Location *time.Location
	// Every is the wait between reconciler passes (default 30 s).
	Every time.Duration
	// RoomOpen reports whether a room of the session is running on this
	// gateway; nil means none is.
	RoomOpen func(sessionID string) bool
}

// Recordings is the recording lifecycle of the gateway's sessions.
type Recordings struct {
	cfg  Config
	log  *slog.Logger
	poke chan struct{}

	pass sync.Mutex // one reconciler pass at a time
}

// New returns the recording lifecycle; call Run to start the reconciler.
func New(cfg Config) *Recordings {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Location == nil {
		cfg.Location = time.UTC
	}
	if cfg.Every == 0 {
		cfg.Every = 30 * time.Second
	}
	if cfg.RoomOpen == nil {
		cfg.RoomOpen = func(string) bool { return false }
	}
	return &Recordings{cfg: cfg, log: cfg.Logger, poke: make(chan struct{}, 1)}
}

// NextPart takes the number of a file's next part from the store's durable
// counter (recording.Config.NextPart).
func (r *Recordings) NextPart(ctx context.Context, sessionID, fileID string) (int, error) {
	return r.cfg.Store.NextRecordingPart(ctx, sessionID, fileID)
}

// Ready reports whether recordings can be stored now (for /readyz and
// before a recording starts).
func (r *Recordings) Ready(ctx context.Context) error {
	if r.cfg.Bucket == nil {
		return errors.New("no recording storage configured")
	}
	return r.cfg.Bucket.Ready(ctx)
}

// Finish indexes the parts of a recording that has closed: for each, its
// manifest, index row and audit row, then releases its spool files. A part
// that cannot be indexed (the store or S3 failing) is left in the spool
// for the reconciler, which is woken to retry; the error says which.
func (r *Recordings) Finish(ctx context.Context, title string, events []recording.ManifestEvent, parts []recording.Part) error {
	var errs []error
	for _, p := range parts {
		if err := r.index(ctx, manifestOf(p, title, events)); err != nil {
			r.cfg.Recorder.Leave(p)
			errs = append(errs, err)
			continue
		}
		r.cfg.Recorder.Release(p)
	}
	if len(errs) > 0 {
		r.Poke()
	}
	return errors.Join(errs...)
}

// Poke asks for a reconciler pass soon.
func (r *Recordings) Poke() {
	select {
	case r.poke <- struct{}{}:
	default:
	}
}

func manifestOf(p recording.Part, title string, events []recording.ManifestEvent) recording.PartManifest {
	m := recording.PartManifest{Part: p, Title: title, Events: events}
	if !p.SessionStart.IsZero() && !p.FirstPacket.IsZero() {
		m.StartOffset = p.FirstPacket.Sub(p.SessionStart).Seconds()
	}
	return m
}

// index writes a part's manifest (once), its index rows and its
// recording.stored audit row (once). Each step is skipped when already
// done, so a retry after a failure anywhere is safe.
func (r *Recordings) index(ctx context.Context, m recording.PartManifest) error {
	p := m.Part
	mkey := recording.PartManifestKey(p.Session, p.Participant.ID, p.Number)
	if _, err := r.cfg.Bucket.Stat(ctx, mkey); errors.Is(err, recording.ErrNotFound) {
		err := r.cfg.Bucket.PutJSON(ctx, mkey, m, p.RetainUntil)
		if errors.Is(err, recording.ErrRetentionNotExtended) {
			r.log.Warn("manifest stored, its retention counted from the part's", slog.String("key", mkey), slog.Any("err", err))
			err = nil // stored: never written again
		}
		if err != nil {
			return fmt.Errorf("index %s: manifest: %w", p.Key, err)
		}
	} else if err != nil {
		return fmt.Errorf("index %s: manifest: %w", p.Key, err)
	}
	now := r.cfg.Now()
	if err := r.cfg.Store.PutRecordingObject(ctx, store.RecordingObject{Key: p.Key, SessionID: p.Session, ParticipantID: p.Participant.ID,
		ParticipantName: p.Participant.Name, Role: p.Participant.Role, Size: p.Size, VersionID: p.VersionID, RetainUntil: p.RetainUntil,
		Created: now, Part: p.Number, Started: p.FirstPacket}); err != nil {
		return fmt.Errorf("index %s: %w", p.Key, err)
	}
	if err := r.cfg.Store.PutRecordingObject(ctx, store.RecordingObject{Key: mkey, SessionID: p.Session, RetainUntil: p.RetainUntil,
		Created: now, Part: p.Number}); err != nil {
		return fmt.Errorf("index %s: %w", mkey, err)
	}
	done, err := r.cfg.Store.ListAudit(ctx, store.AuditFilter{Action: audit.RecordingStored, Target: p.Key, Limit: 1})
	if err != nil {
		return fmt.Errorf("index %s: read the audit log: %w", p.Key, err)
	}
	if len(done) == 0 {
		if err := r.audit(ctx, audit.RecordingStored, p.Key, p.Session, audit.Stored{Participant: p.Participant.Name, Role: p.Participant.Role,
			Part: p.Number, Size: p.Size, SpoolSize: p.SpoolSize, RetainUntil: p.RetainUntil, Recovered: p.Recovered}); err != nil {
			return fmt.Errorf("index %s: %w", p.Key, err)
		}
	}
	r.log.Info("recording part stored", slog.String("session", p.Session), slog.String("key", p.Key), slog.Int64("size", p.Size), slog.Bool("recovered", p.Recovered))
	return nil
}

func (r *Recordings) audit(ctx context.Context, action audit.Action, target, sessionID string, detail audit.Detail) error {
	if _, err := r.cfg.Store.AppendAudit(ctx, store.AuditEntry{Time: r.cfg.Now(), Action: action, Target: target, SessionID: sessionID,
		Detail: audit.Encode(detail)}); err != nil {
		return fmt.Errorf("audit %s: %w", action, err)
	}
	return nil
}

// Run reconciles at once, then every Config.Every (or when poked), until
// ctx is done.
func (r *Recordings) Run(ctx context.Context) {
	t := time.NewTicker(r.cfg.Every)
	defer t.Stop()
	for {
		if err := r.Reconcile(ctx); err != nil && ctx.Err() == nil {
			r.log.Warn("reconcile recordings and sessions", slog.Any("err", err))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-r.poke:
		}
	}
}

// Reconcile runs one pass: spool leftovers uploaded and indexed (never a
// file a live session on this gateway is writing), sessions left live
// without a room ended.
func (r *Recordings) Reconcile(ctx context.Context) error {
	r.pass.Lock()
	defer r.pass.Unlock()
	var errs []error
	if r.cfg.Recorder != nil && r.cfg.Bucket != nil {
		if err := r.cfg.Bucket.Ready(ctx); err != nil {
			errs = append(errs, fmt.Errorf("spool leftovers wait for recording storage: %w", err))
		} else {
			parts, err := r.cfg.Recorder.Recover(ctx)
			if err != nil {
				errs = append(errs, err)
			}
			for _, p := range parts {
				if err := r.index(ctx, manifestOf(p, "", nil)); err != nil {
					r.cfg.Recorder.Leave(p)
					errs = append(errs, err)
					continue
				}
				r.cfg.Recorder.Release(p)
			}
		}
	}
	if err := r.endSessions(ctx); err != nil {
		errs = append(errs, err)
	}
	if r.cfg.Bucket != nil {
		if err := r.holdConcerned(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// concernWindow is how far back the reconciler looks for concerns (and
// pupils' worries) whose session may have objects not yet held: past the
// retention they were held, or deleted, long ago.
const concernWindow = 60 * 24 * time.Hour

// holdConcerned puts on legal hold every stored object of a session with a
// recent concern or worry that is not held yet: what a room stored after
// the concern was raised (its parts, its transcript), what this reconciler
// recovered from the spool after a crash, and holds that failed while S3
// was away (R9, R17). A hold is idempotent, so each pass may retry it.
func (r *Recordings) holdConcerned(ctx context.Context) error {
	cs, err := r.cfg.Store.ListConcerns(ctx, "")
	if err != nil {
		return fmt.Errorf("hold concerned sessions: %w", err)
	}
	since := r.cfg.Now().Add(-concernWindow)
	done := map[string]bool{}
	var errs []error
	for _, c := range cs {
		if c.SessionID == "" || done[c.SessionID] || c.Created.Before(since) {
			continue
		}
		done[c.SessionID] = true
		unheld := false
		objs, err := r.cfg.Store.ListRecordingObjects(ctx, store.RecordingFilter{SessionID: c.SessionID})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, o := range objs {
			unheld = unheld || !o.Held
		}
		if !unheld {
			continue
		}
		if n, err := r.SetSessionHold(ctx, c.SessionID, true); err != nil {
			errs = append(errs, err)
		} else {
			r.log.Info("held a concerned session's objects", slog.String("session", c.SessionID), slog.Int("versions", n))
		}
	}
	return errors.Join(errs...)
}

// endSessions ends sessions still live in the store whose room is not
// running on this gateway, when their room ended them (its session.ended
// audit row is there, but the state change was not written) or their end
// time has passed (their gateway went away).
func (r *Recordings) endSessions(ctx context.Context) error {
	live, err := r.cfg.Store.ListSessions(ctx, store.SessionFilter{States: []string{store.StateLive}})
	if err != nil {
		return fmt.Errorf("list live sessions: %w", err)
	}
	now := r.cfg.Now()
	var errs []error
	for _, ss := range live {
		if r.cfg.RoomOpen(ss.ID) {
			continue
		}
		why := "The session's time is over and its room is no longer running."
		if now.Before(ss.End) {
			rows, err := r.cfg.Store.ListAudit(ctx, store.AuditFilter{SessionID: ss.ID, Action: audit.SessionEnded, Limit: 1})
			if err != nil {
				errs = append(errs, fmt.Errorf("end session %s: read the audit log: %w", ss.ID, err))
				continue
			}
			if len(rows) == 0 {
				continue // people may come back to it
			}
			why = "Its room ended the session, and the end could not be saved then."
		}
		_, err := r.cfg.Store.TransitionSession(ctx, ss.ID, []string{store.StateLive}, store.StateEnded, store.SessionChange{At: now, Reason: why})
		if errors.Is(err, store.ErrConflict) {
			continue // ended meanwhile
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("end session %s: %w", ss.ID, err))
			continue
		}
		if err := r.audit(ctx, audit.SessionEnded, ss.ID, ss.ID, audit.Reason{Reason: "ended by the gateway's reconciler: " + why}); err != nil {
			r.log.Error("audit session end", slog.String("session", ss.ID), slog.Any("err", err))
		}
		r.log.Info("ended a session left live", slog.String("session", ss.ID), slog.String("reason", why))
		r.StoreTranscript(ctx, ss)
	}
	return errors.Join(errs...)
}
