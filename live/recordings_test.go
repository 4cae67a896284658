package live_test

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/stretchr/testify/require"

	"github.com/chaperone-edu/chaperone/audit"
	"github.com/chaperone-edu/chaperone/internal/testkit"
	"github.com/chaperone-edu/chaperone/live"
	"github.com/chaperone-edu/chaperone/recording"
	"github.com/chaperone-edu/chaperone/recording/webm/webmtest"
	"github.com/chaperone-edu/chaperone/store"
)

type fixture struct {
	s3     *testkit.S3
	bucket *recording.Bucket
	name   string
	st     store.Store
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	s3 := testkit.StartS3(t)
	name := "rec-live"
	s3.MakeLockedBucket(t, name)
	b, err := recording.OpenBucket(context.Background(), recording.BucketConfig{Endpoint: s3.Endpoint, Bucket: name, AccessKey: s3.AccessKey,
		SecretKey: s3.SecretKey, Region: s3.Region, RetentionDays: 28, LockMode: recording.LockGovernance})
	require.NoError(t, err)
	st, err := store.Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "c.db"))
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	return &fixture{s3: s3, bucket: b, name: name, st: st}
}

func (f *fixture) recorder(t *testing.T, spool string) *recording.Recorder {
	t.Helper()
	r, err := recording.New(recording.Config{Bucket: f.bucket, SpoolDir: spool, Retry: 300 * time.Millisecond, Logger: testkit.TestLogger(t),
		NextPart: f.st.NextRecordingPart})
	require.NoError(t, err)
	return r
}

func feed(t *testing.T, s *recording.Session, publisher string, d time.Duration) {
	t.Helper()
	for _, p := range webmtest.Session(d, 0, 30) {
		raw, err := p.Marshal()
		require.NoError(t, err)
		s.Packet(publisher, p.Kind, raw)
		if p.Kind == "video" {
			time.Sleep(200 * time.Microsecond)
		}
	}
}

func (f *fixture) read(t *testing.T, key string) []byte {
	t.Helper()
	obj, err := f.s3.Client.GetObject(context.Background(), f.name, key, minio.GetObjectOptions{})
	require.NoError(t, err)
	defer obj.Close()
	b, err := io.ReadAll(obj)
	require.NoError(t, err)
	return b
}

func (f *fixture) versions(t *testing.T, prefix string) map[string]int {
	t.Helper()
	out := map[string]int{}
	for o := range f.s3.Client.ListObjects(context.Background(), f.name, minio.ListObjectsOptions{Prefix: prefix, Recursive: true, WithVersions: true}) {
		require.NoError(t, o.Err)
		out[o.Key]++
	}
	return out
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	require.NoError(t, os.MkdirAll(to, 0o700))
	entries, err := os.ReadDir(from)
	require.NoError(t, err)
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(from, e.Name()))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(to, e.Name()), b, 0o600))
	}
}

// TestReconcilerIndexesCrashLeftover: a gateway dies mid-lesson (its spool
// is what it leaves: a copy taken while it records, its process state
// gone). The running reconciler of the gateway that takes over the spool,
// with no restart, uploads the part byte-equal to its spool file and
// indexes it: manifest, index row, recording.stored audit row; every key
// written once; the spool emptied. A part a live session of this gateway is
// writing at the same time is not touched.
func TestReconcilerIndexesCrashLeftover(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	who := func(id string) recording.Participant {
		return recording.Participant{ID: id, Name: "Amelia Jones", Role: "pupil"}
	}

	// The gateway that crashes.
	crashedSpool := t.TempDir()
	crashed := f.recorder(t, crashedSpool)
	sess, err := crashed.Start(ctx, "s1", testkit.Now(), who, func(recording.State, string) {})
	require.NoError(t, err)
	feed(t, sess, "pA", 3*time.Second)
	time.Sleep(1200 * time.Millisecond) // the writer's once-a-second fsync
	spool := t.TempDir()
	copyDir(t, filepath.Join(crashedSpool, "s1"), filepath.Join(spool, "s1"))
	gone, cancel := context.WithCancel(ctx)
	cancel()
	_, _ = sess.Close(gone) // nothing of the crashed process reaches S3
	leftover, _ := filepath.Glob(filepath.Join(spool, "s1", "*.webm"))
	require.Len(t, leftover, 1)
	spooled, err := os.ReadFile(leftover[0])
	require.NoError(t, err)

	// The gateway that carries on: a live session of its own, and the
	// reconciler running.
	rec := f.recorder(t, spool)
	recs := live.New(live.Config{Store: f.st, Recorder: rec, Bucket: f.bucket, Now: testkit.Now, Logger: testkit.TestLogger(t), Every: 200 * time.Millisecond})
	mine, err := rec.Start(ctx, "s2", testkit.Now(), who, func(recording.State, string) {})
	require.NoError(t, err)
	feed(t, mine, "pB", time.Second)
	rctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); recs.Run(rctx) }()
	defer func() { stop(); <-done }()

	key := recording.PartKey("s1", "pA", 1)
	var objs []store.RecordingObject
	require.Eventually(t, func() bool {
		objs, err = f.st.ListRecordingObjects(ctx, store.RecordingFilter{SessionID: "s1"})
		return err == nil && len(objs) == 2
	}, 30*time.Second, 50*time.Millisecond, "part and manifest indexed")
	var part store.RecordingObject
	for _, o := range objs {
		if o.Key == key {
			part = o
		}
	}
	require.Equal(t, key, part.Key)
	require.Equal(t, "pA", part.ParticipantID)
	require.Equal(t, "Amelia Jones", part.ParticipantName)
	require.Equal(t, "pupil", part.Role)
	require.Equal(t, 1, part.Part)
	require.EqualValues(t, len(spooled), part.Size)
	require.Equal(t, spooled, f.read(t, key), "byte-equal to the spool file")
	var m recording.PartManifest
	require.NoError(t, jsonOf(f.read(t, recording.PartManifestKey("s1", "pA", 1)), &m))
	require.Equal(t, key, m.Key)
	require.True(t, m.Recovered)
	rows, err := f.st.ListAudit(ctx, store.AuditFilter{SessionID: "s1", Action: audit.RecordingStored})
	require.NoError(t, err)
	require.Len(t, rows, 1)
	require.Equal(t, key, rows[0].Target)
	require.Eventually(t, func() bool {
		left, _ := filepath.Glob(filepath.Join(spool, "s1", "*"))
		return len(left) == 0
	}, 10*time.Second, 50*time.Millisecond, "the leftover is released once indexed")

	// The live session's part was never taken by the reconciler.
	mineObjs, err := f.st.ListRecordingObjects(ctx, store.RecordingFilter{SessionID: "s2"})
	require.NoError(t, err)
	require.Empty(t, mineObjs)
	_, err = f.bucket.Stat(ctx, recording.PartKey("s2", "pB", 1))
	require.ErrorIs(t, err, recording.ErrNotFound, "a part being written is not uploaded by the reconciler")
	parts, err := mine.Close(ctx)
	require.NoError(t, err)
	require.NoError(t, recs.Finish(ctx, "Maths", nil, parts))
	require.NoError(t, recs.Reconcile(ctx))
	rows, err = f.st.ListAudit(ctx, store.AuditFilter{Action: audit.RecordingStored})
	require.NoError(t, err)
	require.Len(t, rows, 2, "each part audited once, however often reconciled")
	for _, prefix := range []string{"sessions/s1/", "sessions/s2/"} {
		for k, n := range f.versions(t, prefix) {
			require.Equal(t, 1, n, "%s written once", k)
		}
	}
}

func jsonOf(b []byte, v any) error { return json.Unmarshal(b, v) }
