package recording_test

import (
	"bytes"
	"slices"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/stretchr/testify/require"

	"github.com/chaperone-edu/chaperone/internal/testkit"
	"github.com/chaperone-edu/chaperone/recording"
)

// put writes a small object with retention until, directly through the
// test's client, and returns its version.
func put(t *testing.T, s *testkit.S3, key string, mode minio.RetentionMode, until time.Time) string {
	t.Helper()
	info, err := s.Client.PutObject(ctxT(t, 10*time.Second), "recordings", key, bytes.NewReader([]byte(key)), int64(len(key)),
		minio.PutObjectOptions{Mode: mode, RetainUntilDate: until, DisableContentSha256: true})
	require.NoError(t, err)
	return info.VersionID
}

func TestSweepGovernance(t *testing.T) {
	t.Parallel()
	s, b := lockedBucket(t, recording.LockGovernance)
	ctx := ctxT(t, 60*time.Second)
	until := b.RetainUntil(time.Now())
	later := time.Now().AddDate(0, 0, 40)

	// Session a: expired at the sweep, not held: goes, every version
	// and the delete marker too.
	a1 := put(t, s, "sessions/a/p1.webm", minio.Governance, until)
	a2 := put(t, s, "sessions/a/p1.webm", minio.Governance, until)
	am := put(t, s, "sessions/a/manifest.json", minio.Governance, until)
	a3 := put(t, s, "sessions/a/p2.webm", minio.Governance, until)
	require.NoError(t, s.Client.RemoveObject(ctx, "recordings", "sessions/a/p2.webm", minio.RemoveObjectOptions{})) // a delete marker
	// Session b: expired, but one object is held: all of b stays.
	put(t, s, "sessions/b/p1.webm", minio.Governance, until)
	put(t, s, "sessions/b/manifest.json", minio.Governance, until)
	n, err := b.SetLegalHold(ctx, "sessions/b/p1.webm", true)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	// Session c: not expired yet.
	put(t, s, "sessions/c/p1.webm", minio.Governance, later)
	// Session d: one object expired, one not: only the expired one goes.
	d1 := put(t, s, "sessions/d/p1.webm", minio.Governance, until)
	put(t, s, "sessions/d/manifest.json", minio.Governance, later)

	before, err := b.List(ctx, "")
	require.NoError(t, err)
	require.Len(t, before, 10) // 9 versions and a delete marker

	// The server checks retention against its own clock, so a sweep
	// "29 days from now" deletes only with governance bypass.
	now := time.Now().AddDate(0, 0, 29)
	deleted, err := b.Sweep(ctx, now, sessionPrefix)
	require.NoError(t, err)
	want := []string{"sessions/a/manifest.json@" + am, "sessions/a/p1.webm@" + a1, "sessions/a/p1.webm@" + a2, "sessions/a/p2.webm@" + a3, "sessions/d/p1.webm@" + d1}
	got := keys(deleted)
	slices.Sort(got)
	slices.Sort(want)
	require.Equal(t, want, got)
	for _, o := range deleted {
		require.Equal(t, recording.LockGovernance, o.Mode)
		require.False(t, o.LegalHold)
	}

	after, err := b.List(ctx, "")
	require.NoError(t, err)
	var left []string
	for _, o := range after {
		left = append(left, o.Key)
	}
	slices.Sort(left)
	require.Equal(t, []string{"sessions/b/manifest.json", "sessions/b/p1.webm", "sessions/c/p1.webm", "sessions/d/manifest.json"}, left)

	// Nothing more to do; and a sweep at the real time deletes nothing.
	deleted, err = b.Sweep(ctx, now, sessionPrefix)
	require.NoError(t, err)
	require.Empty(t, deleted)

	// Released: b goes at the next sweep.
	_, err = b.SetLegalHold(ctx, "sessions/b/", false)
	require.NoError(t, err)
	deleted, err = b.Sweep(ctx, time.Now(), sessionPrefix)
	require.NoError(t, err)
	require.Empty(t, deleted, "nothing has expired yet by the real clock")
	deleted, err = b.Sweep(ctx, now, sessionPrefix)
	require.NoError(t, err)
	require.Len(t, deleted, 2)
}

func TestSweepCompliance(t *testing.T) {
	t.Parallel()
	s, b := lockedBucket(t, recording.LockCompliance)
	ctx := ctxT(t, 60*time.Second)
	until := b.RetainUntil(time.Now())
	long := put(t, s, "sessions/a/p1.webm", minio.Compliance, until)
	soon := time.Now().Add(2 * time.Second)
	short := put(t, s, "sessions/b/p1.webm", minio.Compliance, soon)
	put(t, s, "sessions/c/p1.webm", minio.Compliance, soon)
	_, err := b.SetLegalHold(ctx, "sessions/c/", true)
	require.NoError(t, err)

	// The injected clock says the 28 days are over; the server disagrees
	// and cannot be bypassed in COMPLIANCE mode: nothing goes, no error.
	deleted, err := b.Sweep(ctx, time.Now().AddDate(0, 0, 29), sessionPrefix)
	require.NoError(t, err)
	require.Empty(t, deleted)

	// Once the short retention really has passed, the server agrees.
	time.Sleep(time.Until(soon) + time.Second)
	deleted, err = b.Sweep(ctx, time.Now(), sessionPrefix)
	require.NoError(t, err)
	require.Equal(t, []string{"sessions/b/p1.webm@" + short}, keys(deleted))

	after, err := b.List(ctx, "")
	require.NoError(t, err)
	require.Len(t, after, 2)
	for _, o := range after {
		switch o.Key {
		case "sessions/a/p1.webm":
			require.Equal(t, long, o.VersionID)
		case "sessions/c/p1.webm":
			require.True(t, o.LegalHold, "held after its retention ended")
		default:
			t.Errorf("unexpected %s", o.Key)
		}
	}
}

func TestExpired(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		o    recording.Object
		want bool
	}{
		{"passed", recording.Object{RetainUntil: now.Add(-time.Second)}, true},
		{"exactly now", recording.Object{RetainUntil: now}, true},
		{"not yet", recording.Object{RetainUntil: now.Add(time.Second)}, false},
		{"no retention", recording.Object{}, false},
		{"delete marker", recording.Object{DeleteMarker: true, RetainUntil: now.Add(-time.Hour)}, false},
	} {
		require.Equal(t, tc.want, recording.Expired(tc.o, now), tc.name)
	}
}
