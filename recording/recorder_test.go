package recording_test

import (
	"context"
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

func newRecorder(t *testing.T, b *recording.Bucket, spool string) *recording.Recorder {
	r, err := recording.New(recording.Config{Bucket: b, SpoolDir: spool, Retry: 300 * time.Millisecond, Logger: testkit.TestLogger(t)})
	require.NoError(t, err)
	return r
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
	m, err := sess.Close(ctxT(t, time.Minute), "Year 8 maths", []recording.ManifestEvent{{Time: start, Action: "gate.open"}})
	require.NoError(t, err)
	require.False(t, st.has(recording.StateFailed))
	require.Len(t, m.Participants, 2)
	for _, p := range m.Participants {
		require.Equal(t, p.SpoolSize, p.Size, "object size equals spool size")
		require.Equal(t, "Name of "+p.ID, p.Name)
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
		require.Equal(t, "GOVERNANCE", o.Mode)
	}
	require.True(t, keys[recording.ManifestKey("sess1")])
	// A delete of a locked version is refused by the server.
	err = s3.Client.RemoveObject(context.Background(), "recordings", m.Participants[0].Key, minio.RemoveObjectOptions{VersionID: objs[0].VersionID})
	require.Error(t, err)
	left, _ := filepath.Glob(filepath.Join(spool, "*", "*"))
	require.Empty(t, left, "the spool is emptied once uploaded")
}

// TestRecordFaults: S3 unreachable at start and an unwritable spool refuse
// to start; S3 going away mid-session loses nothing.
func TestRecordFaults(t *testing.T) {
	t.Parallel()
	s3, b := lockedBucket(t, recording.LockGovernance)
	_, err := recording.New(recording.Config{Bucket: b, SpoolDir: filepath.Join(writeFile(t), "spool")})
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
	m, err := sess.Close(ctxT(t, 2*time.Minute), "t", nil)
	require.NoError(t, err)
	require.Len(t, m.Participants, 1)
	require.Equal(t, m.Participants[0].SpoolSize, m.Participants[0].Size, "nothing lost")
	require.False(t, st.has(recording.StateFailed), "a spooled recording does not fail while S3 is away: %v", st.why)
}

func writeFile(t *testing.T) string {
	p := filepath.Join(t.TempDir(), "a-file")
	require.NoError(t, os.WriteFile(p, []byte("x"), 0o600))
	return p
}

// TestResumeAfterCrash: the gateway dies mid-session; at the next start the
// spool is uploaded, the object is playable and the spool emptied.
func TestResumeAfterCrash(t *testing.T) {
	t.Parallel()
	s3, b := lockedBucket(t, recording.LockGovernance)
	spool := t.TempDir()
	r := newRecorder(t, b, spool)
	var st states
	sess, err := r.Start(context.Background(), "sess4", time.Now(), who, st.on)
	require.NoError(t, err)
	feed(t, sess, "pA", 3*time.Second)
	require.Eventually(t, func() bool { return st.has(recording.StateConfirmed) }, 10*time.Second, 20*time.Millisecond)
	time.Sleep(1200 * time.Millisecond) // the writer's once-a-second fsync
	recording.Abandon(sess)
	files, _ := filepath.Glob(filepath.Join(spool, "sess4", "*.webm"))
	require.Len(t, files, 1)
	fi, err := os.Stat(files[0])
	require.NoError(t, err)

	r2 := newRecorder(t, b, spool)
	n, err := r2.Resume(ctxT(t, time.Minute))
	require.NoError(t, err)
	require.Equal(t, 1, n)
	path := download(t, s3, recording.ObjectKey("sess4", "pA"))
	got, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, fi.Size(), got.Size())
	probe := webmtest.Probe(t, path)
	require.ElementsMatch(t, []string{"opus", "vp8"}, probe.Codecs())
	left, _ := filepath.Glob(filepath.Join(spool, "*", "*"))
	require.Empty(t, left)
}
