package live

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"github.com/chaperone-edu/chaperone/audit"
	"github.com/chaperone-edu/chaperone/recording"
)

// Sweep deletes recordings whose retention has passed at now and that are
// not on legal hold, and audits each deletion. When it deletes a session's
// stored chat transcript (and no other version of it is left), it deletes
// the session's chat from the store too: the text is kept as long as that
// copy and no longer. It returns how many object versions were deleted.
func (r *Recordings) Sweep(ctx context.Context, now time.Time) (int, error) {
	if r.cfg.Bucket == nil {
		return 0, nil
	}
	deleted, err := r.cfg.Bucket.Sweep(ctx, now, recording.PrefixOf)
	transcripts := map[string]bool{}
	for _, o := range deleted {
		id := SessionOfKey(o.Key)
		if err := r.cfg.Store.MarkRecordingDeleted(ctx, o.Key, now); err != nil {
			r.log.Error("index deletion", slog.String("key", o.Key), slog.Any("err", err))
		}
		if err := r.audit(ctx, audit.RecordingDeleted, o.Key, id, audit.Deleted{Version: o.VersionID, RetainUntil: o.RetainUntil, Size: o.Size}); err != nil {
			r.log.Error("audit deletion", slog.String("key", o.Key), slog.Any("err", err))
		}
		if id != "" && o.Key == recording.TranscriptKey(id) {
			transcripts[id] = true
		}
	}
	for id := range transcripts {
		r.purgeChat(ctx, id)
	}
	return len(deleted), err
}

// RunSweep sweeps every hour until ctx is done.
func (r *Recordings) RunSweep(ctx context.Context) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		if n, err := r.Sweep(ctx, r.cfg.Now()); err != nil {
			r.log.Warn("retention sweep", slog.Any("err", err))
		} else if n > 0 {
			r.log.Info("retention sweep deleted expired recordings", slog.Int("objects", n))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// purgeChat deletes a session's chat from the store once no version of its
// stored transcript is left in the bucket.
func (r *Recordings) purgeChat(ctx context.Context, sessionID string) {
	key := recording.TranscriptKey(sessionID)
	left, err := r.cfg.Bucket.List(ctx, key)
	if err != nil {
		r.log.Error("chat not purged: list transcript versions", slog.String("session", sessionID), slog.Any("err", err))
		return
	}
	for _, o := range left {
		if o.Key == key && !o.DeleteMarker {
			return // a later version is still kept: so is the chat
		}
	}
	n, err := r.cfg.Store.PurgeChat(ctx, sessionID)
	if err != nil {
		r.log.Error("chat not purged", slog.String("session", sessionID), slog.Any("err", err))
		return
	}
	if err := r.audit(ctx, audit.ChatPurged, sessionID, sessionID, audit.Purged{Messages: n, Reason: "retention passed; stored transcript deleted"}); err != nil {
		r.log.Error("audit chat purge", slog.String("session", sessionID), slog.Any("err", err))
	}
}

// SessionOfKey is the session ID in a recording key ("sessions/<id>/...").
func SessionOfKey(key string) string {
	parts := strings.SplitN(key, "/", 3)
	if len(parts) == 3 && parts[0] == "sessions" {
		return parts[1]
	}
	return ""
}
