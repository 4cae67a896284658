package recording

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/minio/minio-go/v7"
)

// Sweep deletes every object version in the bucket whose retention has
// passed at now and that may go, and returns the versions it deleted. It does
// not use bucket lifecycle rules: not every S3 server has them.
//
// A version goes when its own retention date is at or before now, and no
// version of any object in its recording is on legal hold — prefixOf maps a
// key to its recording (e.g. "sessions/<id>/"; nil: each key is its own), so
// a hold placed on a session keeps the whole session, even an object written
// after the hold. A version without retention is never deleted: the gateway
// writes none, so one is not the sweeper's to judge. Delete markers of keys
// that have no versions left are removed too but not returned.
//
// now is trusted, and the server checks retention against its own clock, so:
// in GOVERNANCE mode Sweep deletes with governance bypass (the gateway's S3
// user needs s3:BypassGovernanceRetention); a legal hold still refuses the
// delete. COMPLIANCE versions cannot be bypassed: one the server refuses is
// kept, without an error, and goes at a later sweep once the server agrees.
// Other failures are joined into the error; Sweep carries on past them.
func (b *Bucket) Sweep(ctx context.Context, now time.Time, prefixOf func(key string) string) ([]Object, error) {
	if prefixOf == nil {
		prefixOf = func(key string) string { return key }
	}
	objs, err := b.List(ctx, "")
	if err != nil {
		return nil, err
	}
	held := map[string]bool{}
	for _, o := range objs {
		if o.LegalHold {
			held[prefixOf(o.Key)] = true
		}
	}
	var deleted []Object
	var errs []error
	remaining := map[string]int{} // versions (not markers) left per key
	for _, o := range objs {
		if o.DeleteMarker {
			continue
		}
		if !Expired(o, now) || held[prefixOf(o.Key)] {
			remaining[o.Key]++
			continue
		}
		opts := minio.RemoveObjectOptions{VersionID: o.VersionID, GovernanceBypass: o.Mode == LockGovernance}
		err := b.client.RemoveObject(ctx, b.name, o.Key, opts)
		switch {
		case err == nil:
			deleted = append(deleted, o)
		case o.Mode == LockCompliance && minio.ToErrorResponse(err).Code == "AccessDenied":
			remaining[o.Key]++ // the server's clock says not yet
		default:
			remaining[o.Key]++
			errs = append(errs, fmt.Errorf("recording: sweep %s (version %s): %w", o.Key, o.VersionID, err))
		}
		if ctx.Err() != nil {
			return deleted, errors.Join(append(errs, ctx.Err())...)
		}
	}
	for _, o := range objs {
		if !o.DeleteMarker || remaining[o.Key] > 0 {
			continue
		}
		if err := b.client.RemoveObject(ctx, b.name, o.Key, minio.RemoveObjectOptions{VersionID: o.VersionID}); err != nil {
			errs = append(errs, fmt.Errorf("recording: sweep delete marker %s (version %s): %w", o.Key, o.VersionID, err))
		}
	}
	return deleted, errors.Join(errs...)
}

// Expired reports whether o's retention has passed at now. A version
// without retention never expires.
func Expired(o Object, now time.Time) bool {
	return !o.DeleteMarker && !o.RetainUntil.IsZero() && !now.Before(o.RetainUntil)
}
