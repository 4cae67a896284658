package recording_test

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/stretchr/testify/require"

	"github.com/chaperone-edu/chaperone/internal/testkit"
	"github.com/chaperone-edu/chaperone/recording"
	"github.com/chaperone-edu/chaperone/recording/webm/webmtest"
)

type states struct {
	mu  sync.Mutex
	got []recording.State
	why []string
}

func (s *states) on(st recording.State, why string) {
	s.mu.Lock()
	s.got = append(s.got, st)
	s.why = append(s.why, why)
	s.mu.Unlock()
}

func (s *states) has(st recording.State) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, g := range s.got {
		if g == st {
			return true
		}
	}
	return false
}

func who(id string) recording.Participant {
	return recording.Participant{ID: id, Name: "Name of " + id, Role: "pupil"}
}

// feed sends a synthetic session of d to the sink as publisher.
func feed(t *testing.T, sink *recording.Session, publisher string, d time.Duration) {
	t.Helper()
	for _, p := range webmtest.Session(d, 0, 30) {
		raw, err := p.Marshal()
		require.NoError(t, err)
		sink.Packet(publisher, p.Kind, raw)
		if p.Kind == "video" {
			time.Sleep(200 * time.Microsecond) // let the writer keep up, as real-time media would
		}
	}
}

func download(t *testing.T, s *testkit.S3, key string) string {
	t.Helper()
	obj, err := s.Client.GetObject(context.Background(), "recordings", key, minio.GetObjectOptions{})
	require.NoError(t, err)
	defer obj.Close()
	path := filepath.Join(t.TempDir(), filepath.Base(key))
	f, err := os.Create(path)
	require.NoError(t, err)
	_, err = io.Copy(f, obj)
	require.NoError(t, err)
	require.NoError(t, f.Close())
	return path
}

// parts is a part counter as the store keeps one: per session and file,
// never the same number twice (shared by the recorders of one test, as
// restarts share the database).
type parts struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *parts) next(_ context.Context, session, file string) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[session+"/"+file]++
	return c.n[session+"/"+file], nil
}

func newRecorder(t *testing.T, b *recording.Bucket, spool string) *recording.Recorder {
	return newRecorderWith(t, b, spool, (&parts{}).next)
}

func newRecorderWith(t *testing.T, b *recording.Bucket, spool string, next func(context.Context, string, string) (int, error)) *recording.Recorder {
	r, err := recording.New(recording.Config{Bucket: b, SpoolDir: spool, Retry: 300 * time.Millisecond, Logger: testkit.TestLogger(t), NextPart: next})
	require.NoError(t, err)
	return r
}

// versions counts the versions of each key under prefix.
func versions(t *testing.T, s3 *testkit.S3, prefix string) map[string]int {
	t.Helper()
	out := map[string]int{}
	for o := range s3.Client.ListObjects(context.Background(), "recordings", minio.ListObjectsOptions{Prefix: prefix, Recursive: true, WithVersions: true}) {
		require.NoError(t, o.Err)
		out[o.Key]++
	}
	return out
}

// TestRecordSession: two participants recorded to WebM, confirmed once a
// keyframe is durable and the upload has begun, stored with retention, a
// manifest written, each file playable (ffprobe: Opus + VP8, duration).
func TestRecordSession(t *testing.T) {
	t.Parallel()
	s3, b := lockedBucket(t, recording.LockGovernance)
	spool := t.TempDir()
	r := newRecorder(t, b, spool)
	var st states
	start := time.Now()
	sess, err := r.Start(context.Background(), "sess1", start, who, st.on)
	require.NoError(t, err)
	feed(t, sess, "pA", 3*time.Second)
	feed(t, sess, "pB", 3*time.Second)
	require.Eventually(t, func() bool { return st.has(recording.StateConfirmed) }, 10*time.Second, 20*time.Millisecond, "confirmed")
	ps, err := sess.Close(ctxT(t, time.Minute))
	require.NoError(t, err)
	require.False(t, st.has(recording.StateFailed))
	require.Len(t, ps, 2)
	for _, p := range ps {
		require.Equal(t, p.SpoolSize, p.Size, "object size equals spool size")
		require.Equal(t, "Name of "+p.Participant.ID, p.Participant.Name)
		require.Equal(t, 1, p.Number)
		require.Equal(t, recording.PartKey("sess1", p.Participant.ID, 1), p.Key)
		probe := webmtest.Probe(t, download(t, s3, p.Key))
		require.ElementsMatch(t, []string{"opus", "vp8"}, probe.Codecs())
		require.InDelta(t, 3.0, probe.Duration.Seconds(), 0.3, "duration within 10%")
	}
	objs, err := b.List(ctxT(t, 10*time.Second), recording.SessionPrefix("sess1"))
	require.NoError(t, err)
	keys := map[string]bool{}
	for _, o := range objs {
		keys[o.Key] = true
		require.GreaterOrEqual(t, o.RetainUntil.Sub(start), 28*24*time.Hour-time.Minute, "%s retention", o.Key)
		// Retention from the end (R6): at least the upload's completion
		// (S3's last-modified) plus the retention days.
		require.False(t, o.RetainUntil.Before(o.LastModified.AddDate(0, 0, 28)), "%s: retain until %v, last modified %v", o.Key, o.RetainUntil, o.LastModified)
		require.Equal(t, "GOVERNANCE", o.Mode)
	}
	for key, n := range versions(t, s3, recording.SessionPrefix("sess1")) {
		require.Equal(t, 1, n, "%s is written once", key)
	}
	// A delete of a locked version is refused by the server.
	err = s3.Client.RemoveObject(context.Background(), "recordings", ps[0].Key, minio.RemoveObjectOptions{VersionID: objs[0].VersionID})
	require.Error(t, err)
	left, _ := filepath.Glob(filepath.Join(spool, "*", "*"))
	require.Len(t, left, 4, "the spool keeps each part until it is indexed and released")
	for _, p := range ps {
		r.Release(p)
	}
	left, _ = filepath.Glob(filepath.Join(spool, "*", "*"))
	require.Empty(t, left, "the spool is emptied once uploaded")
}

// TestRecordFaults: S3 unreachable at start and an unwritable spool refuse
// to start; S3 going away mid-session loses nothing.
func TestRecordFaults(t *testing.T) {
	t.Parallel()
	s3, b := lockedBucket(t, recording.LockGovernance)
	_, err := recording.New(recording.Config{Bucket: b, SpoolDir: filepath.Join(writeFile(t), "spool"), NextPart: (&parts{}).next})
	require.ErrorIs(t, err, recording.ErrSpool)

	r := newRecorder(t, b, t.TempDir())
	var st states
	sess, err := r.Start(context.Background(), "sess2", time.Now(), who, st.on)
	require.NoError(t, err)
	feed(t, sess, "pA", 2*time.Second)
	require.Eventually(t, func() bool { return st.has(recording.StateConfirmed) }, 10*time.Second, 20*time.Millisecond)
	s3.Stop()
	feed(t, sess, "pA", 2*time.Second) // more media while S3 is away: it goes to the spool
	_, err = r.Start(context.Background(), "sess3", time.Now(), who, st.on)
	require.Error(t, err, "S3 unreachable at start: the recording cannot start")
	time.Sleep(time.Second)
	s3.Start()
	ps, err := sess.Close(ctxT(t, 2*time.Minute))
	require.NoError(t, err)
	require.Len(t, ps, 1)
	require.Equal(t, ps[0].SpoolSize, ps[0].Size, "nothing lost")
	require.Equal(t, 1, versions(t, s3, ps[0].Key)[ps[0].Key], "retried from the spool, written once")
	require.False(t, st.has(recording.StateFailed), "a spooled recording does not fail while S3 is away: %v", st.why)
}

func writeFile(t *testing.T) string {
	p := filepath.Join(t.TempDir(), "a-file")
	require.NoError(t, os.WriteFile(p, []byte("x"), 0o600))
	return p
}

// TestRecoverAfterCrash: the gateway dies mid-session; Recover (the
// reconciler's, at start-up and while running) uploads the spool file,
// byte-equal and playable, with the part the sidecar names; a file a live
// session holds is left alone; the next start of the same participant is a
// new part with its own key; no key has two versions.
func TestRecoverAfterCrash(t *testing.T) {
	t.Parallel()
	s3, b := lockedBucket(t, recording.LockGovernance)
	spool := t.TempDir()
	counter := &parts{}
	r := newRecorderWith(t, b, spool, counter.next)
	var st states
	sess, err := r.Start(context.Background(), "sess4", time.Now(), who, st.on)
	require.NoError(t, err)
	feed(t, sess, "pA", 3*time.Second)
	require.Eventually(t, func() bool { return st.has(recording.StateConfirmed) }, 10*time.Second, 20*time.Millisecond)
	time.Sleep(1200 * time.Millisecond) // the writer's once-a-second fsync
	recording.Abandon(sess)
	files, _ := filepath.Glob(filepath.Join(spool, "sess4", "*.webm"))
	require.Len(t, files, 1)
	spooled, err := os.ReadFile(files[0])
	require.NoError(t, err)

	// The restarted gateway: a new recorder over the same spool and part
	// counter. Its own live session's file is not touched by Recover.
	r2 := newRecorderWith(t, b, spool, counter.next)
	live, err := r2.Start(context.Background(), "sess4", time.Now(), who, st.on)
	require.NoError(t, err)
	feed(t, live, "pA", time.Second)
	require.Eventually(t, func() bool {
		f, _ := filepath.Glob(filepath.Join(spool, "sess4", "*.webm"))
		return len(f) == 2
	}, 10*time.Second, 20*time.Millisecond)
	got, err := r2.Recover(ctxT(t, time.Minute))
	require.NoError(t, err)
	require.Len(t, got, 1, "only the crash's leftover")
	p := got[0]
	require.True(t, p.Recovered)
	require.Equal(t, "sess4", p.Session)
	require.Equal(t, recording.Participant{ID: "pA", Name: "Name of pA", Role: "pupil"}, p.Participant)
	require.Equal(t, 1, p.Number)
	require.Equal(t, recording.PartKey("sess4", "pA", 1), p.Key)
	require.Equal(t, int64(len(spooled)), p.Size)
	stored, err := os.ReadFile(download(t, s3, p.Key))
	require.NoError(t, err)
	require.Equal(t, spooled, stored, "byte-equal to the spool file")
	probe := webmtest.Probe(t, download(t, s3, p.Key))
	require.ElementsMatch(t, []string{"opus", "vp8"}, probe.Codecs())
	again, err := r2.Recover(ctxT(t, time.Minute))
	require.NoError(t, err)
	require.Empty(t, again, "held until released or left")
	r2.Leave(p)
	again, err = r2.Recover(ctxT(t, time.Minute))
	require.NoError(t, err)
	require.Len(t, again, 1, "left: returned again, for indexing")
	r2.Release(again[0])

	ps, err := live.Close(ctxT(t, time.Minute))
	require.NoError(t, err)
	require.Len(t, ps, 1)
	require.Equal(t, 2, ps[0].Number, "the restart is part 2")
	require.NotEqual(t, p.Key, ps[0].Key)
	r2.Release(ps[0])
	for key, n := range versions(t, s3, recording.SessionPrefix("sess4")) {
		require.Equal(t, 1, n, "%s is written once", key)
	}
	left, _ := filepath.Glob(filepath.Join(spool, "*", "*"))
	require.Empty(t, left)
}

// TestNoPartNumber: without a part number (the store cannot be written)
// nothing is recorded and the recording fails, closed.
func TestNoPartNumber(t *testing.T) {
	t.Parallel()
	_, b := lockedBucket(t, recording.LockGovernance)
	spool := t.TempDir()
	r := newRecorderWith(t, b, spool, func(context.Context, string, string) (int, error) { return 0, errors.New("disk I/O error") })
	var st states
	sess, err := r.Start(context.Background(), "sess5", time.Now(), who, st.on)
	require.NoError(t, err)
	feed(t, sess, "pA", time.Second)
	require.Eventually(t, func() bool { return st.has(recording.StateFailed) }, 10*time.Second, 20*time.Millisecond)
	require.False(t, st.has(recording.StateConfirmed))
	ps, err := sess.Close(ctxT(t, time.Minute))
	require.NoError(t, err)
	require.Empty(t, ps)
	left, _ := filepath.Glob(filepath.Join(spool, "*", "*.webm"))
	require.Empty(t, left)
}
