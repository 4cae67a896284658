package live

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/chaperone-edu/chaperone/recording"
)

// This file is the recordings' storage as the DSL's pages reach it:
// playback of a participant's file, the manifest's start offsets, legal
// holds. The DSL's access checks and their audit rows are package web's.

// ErrNoStorage is returned when the gateway has no recording storage.
var ErrNoStorage = errors.New("no recording storage configured")

// Misconfigured reports whether a readiness error means the bucket is not
// usable for locked recordings (missing, without Object Lock or
// versioning), as opposed to unreachable.
func Misconfigured(err error) bool { return recording.Misconfigured(err) }

// ParseRange reads an HTTP Range header against an object of size bytes
// (recording.ParseRange).
func ParseRange(header string, size int64) (start, length int64, err error) {
	return recording.ParseRange(header, size)
}

// SessionPrefix is the key prefix of every object of a session.
func SessionPrefix(sessionID string) string { return recording.SessionPrefix(sessionID) }

// ObjectSize returns the size of a stored object.
func (r *Recordings) ObjectSize(ctx context.Context, key string) (int64, error) {
	if r.cfg.Bucket == nil {
		return 0, ErrNoStorage
	}
	info, err := r.cfg.Bucket.Stat(ctx, key)
	if err != nil {
		return 0, fmt.Errorf("stat %s: %w", key, err)
	}
	return info.Size, nil
}

// OpenObject opens length bytes of a stored object from start.
func (r *Recordings) OpenObject(ctx context.Context, key string, start, length int64) (io.ReadCloser, error) {
	if r.cfg.Bucket == nil {
		return nil, ErrNoStorage
	}
	rc, _, err := r.cfg.Bucket.Open(ctx, key, start, length)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", key, err)
	}
	return rc, nil
}

// StartOffsets reads each participant's start offset, in seconds, from the
// session's manifest; without a manifest (or storage) every file starts
// at 0.
func (r *Recordings) StartOffsets(ctx context.Context, sessionID string) (map[string]float64, error) {
	out := map[string]float64{}
	if r.cfg.Bucket == nil {
		return out, nil
	}
	rc, _, err := r.cfg.Bucket.Open(ctx, recording.ManifestKey(sessionID), 0, -1)
	if err != nil {
		return out, nil
	}
	defer rc.Close()
	var m recording.Manifest
	if err := json.NewDecoder(io.LimitReader(rc, 1<<20)).Decode(&m); err != nil {
		return out, fmt.Errorf("manifest of %s unreadable: %w", sessionID, err)
	}
	for _, p := range m.Participants {
		out[p.ID] = p.StartOffset
	}
	return out, nil
}

// SetSessionHold places (on) or releases the legal hold on every object of
// a session in S3 and in the index, returning how many object versions
// changed.
func (r *Recordings) SetSessionHold(ctx context.Context, sessionID string, on bool) (int, error) {
	if r.cfg.Bucket == nil {
		return 0, fmt.Errorf("legal hold: %w", ErrNoStorage)
	}
	n, err := r.cfg.Bucket.SetLegalHold(ctx, recording.SessionPrefix(sessionID), on)
	if err != nil {
		return n, fmt.Errorf("legal hold on %s: %w", sessionID, err)
	}
	if _, err := r.cfg.Store.SetRecordingHeld(ctx, sessionID, on); err != nil {
		return n, fmt.Errorf("mark held: %w", err)
	}
	return n, nil
}

// HasStorage reports whether recording storage is configured.
func (r *Recordings) HasStorage() bool { return r.cfg.Bucket != nil }
