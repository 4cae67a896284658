package recording_test

import (
	"crypto/sha256"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/stretchr/testify/require"

	"github.com/chaperone-edu/chaperone/recording"
)

// growingFile is a spool file that a writer goroutine appends to, fsyncing
// after each chunk: a recording.Source.
type growingFile struct {
	f      *os.File
	synced atomic.Int64
	done   atomic.Bool
	sum    [32]byte // of everything written, once done
	wg     sync.WaitGroup
}

func (g *growingFile) ReadAt(p []byte, off int64) (int, error) { return g.f.ReadAt(p, off) }
func (g *growingFile) Synced() int64                           { return g.synced.Load() }
func (g *growingFile) Done() bool                              { return g.done.Load() }

// grow starts writing chunks random chunks of size bytes, one every
// interval, to a new file.
func grow(t *testing.T, chunks, size int, interval time.Duration) *growingFile {
	t.Helper()
	f, err := os.Create(filepath.Join(t.TempDir(), "spool.webm"))
	require.NoError(t, err)
	t.Cleanup(func() { f.Close() })
	g := &growingFile{f: f}
	g.wg.Go(func() {
		h := sha256.New()
		for range chunks {
			b := randomBytes(t, size)
			if _, err := f.Write(b); err != nil {
				t.Errorf("write spool: %v", err)
				return
			}
			if err := f.Sync(); err != nil {
				t.Errorf("sync spool: %v", err)
				return
			}
			h.Write(b)
			g.synced.Add(int64(len(b)))
			time.Sleep(interval)
		}
		g.sum = [32]byte(h.Sum(nil))
		g.done.Store(true)
	})
	return g
}

// wait waits until the writer has finished.
func (g *growingFile) wait() { g.wg.Wait() }

func TestUploadGrowingFile(t *testing.T) {
	t.Parallel()
	s, b := lockedBucket(t, recording.LockGovernance)
	ctx := ctxT(t, 60*time.Second)
	const key = "sessions/s1/p1.webm"

	g := grow(t, 48, 256<<10, 30*time.Millisecond) // 12 MiB over ~1.5 s
	until := b.RetainUntil(time.Now())
	var started atomic.Int32
	var openUploads int
	var writerDoneAtStart bool
	info, err := b.Upload(ctx, key, g, until, map[string]string{"session": "s1"}, func() {
		started.Add(1)
		writerDoneAtStart = g.Done()
		// started means S3 has accepted the upload: the multipart
		// upload exists already.
		for u := range s.Client.ListIncompleteUploads(ctx, "recordings", key, false) {
			if u.Err == nil {
				openUploads++
			}
		}
	})
	require.NoError(t, err)
	g.wait()
	require.EqualValues(t, 1, started.Load())
	require.False(t, writerDoneAtStart, "the upload must start while the file grows")
	require.Equal(t, 1, openUploads, "started before CreateMultipartUpload")

	require.Equal(t, key, info.Key)
	require.NotEmpty(t, info.VersionID)
	require.EqualValues(t, 12<<20, info.Size)
	n, sum := objectSum(t, s, "recordings", key)
	require.EqualValues(t, 12<<20, n)
	require.Equal(t, g.sum, sum)

	st, err := s.Client.StatObject(ctx, "recordings", key, minio.StatObjectOptions{})
	require.NoError(t, err)
	require.Contains(t, st.ETag, "-", "a multipart upload (ETag %s)", st.ETag)
	require.Equal(t, "s1", st.UserMetadata["Session"])

	objs, err := b.List(ctx, key)
	require.NoError(t, err)
	require.Len(t, objs, 1)
	o := objs[0]
	require.Equal(t, info.VersionID, o.VersionID)
	require.EqualValues(t, 12<<20, o.Size)
	require.Equal(t, recording.LockGovernance, o.Mode)
	// Created with retention from the start, extended once complete: at
	// least the completion (last-modified) plus the retention days.
	require.False(t, o.RetainUntil.Before(until), "never shortened")
	require.False(t, o.RetainUntil.Before(o.LastModified.AddDate(0, 0, 28)), "retain until %v, last modified %v", o.RetainUntil, o.LastModified)
	require.WithinDuration(t, o.LastModified.AddDate(0, 0, 28), o.RetainUntil, 2*time.Second)
	require.True(t, info.RetainUntil.Equal(o.RetainUntil), "Upload reports the retention it set: %v, S3 %v", info.RetainUntil, o.RetainUntil)
	require.False(t, o.LegalHold)

	// The server enforces the retention.
	err = s.Client.RemoveObject(ctx, "recordings", key, minio.RemoveObjectOptions{VersionID: o.VersionID})
	require.Error(t, err, "a locked version was deleted")

	n2, err := b.SetLegalHold(ctx, "sessions/s1/", true)
	require.NoError(t, err)
	require.Equal(t, 1, n2)
	objs, err = b.List(ctx, key)
	require.NoError(t, err)
	require.True(t, objs[0].LegalHold)
	err = s.Client.RemoveObject(ctx, "recordings", key, minio.RemoveObjectOptions{VersionID: o.VersionID, GovernanceBypass: true})
	require.Error(t, err, "a held version was deleted with governance bypass")

	n2, err = b.SetLegalHold(ctx, "sessions/s1/", false)
	require.NoError(t, err)
	require.Equal(t, 1, n2)
	objs, err = b.List(ctx, key)
	require.NoError(t, err)
	require.False(t, objs[0].LegalHold)
	require.Equal(t, recording.LockGovernance, objs[0].Mode, "releasing the hold keeps the retention")
}

func TestUploadEmptySource(t *testing.T) {
	t.Parallel()
	s, b := lockedBucket(t, recording.LockGovernance)
	ctx := ctxT(t, 30*time.Second)
	g := grow(t, 0, 0, 0)
	g.wait()
	info, err := b.Upload(ctx, "sessions/s1/empty.webm", g, b.RetainUntil(time.Now()), nil, nil)
	require.NoError(t, err)
	require.Zero(t, info.Size)
	n, _ := objectSum(t, s, "recordings", "sessions/s1/empty.webm")
	require.Zero(t, n)
}

func TestUploadS3StoppedMidway(t *testing.T) {
	t.Parallel()
	s, b := lockedBucket(t, recording.LockGovernance)
	ctx := ctxT(t, 90*time.Second)
	const key = "sessions/s1/p1.webm"
	g := grow(t, 48, 256<<10, 60*time.Millisecond) // 12 MiB over ~3 s
	until := b.RetainUntil(time.Now())

	startedCh := make(chan struct{})
	errCh := make(chan error, 1)
	go func() {
		_, err := b.Upload(ctx, key, g, until, nil, func() { close(startedCh) })
		errCh <- err
	}()
	select {
	case <-startedCh:
	case err := <-errCh:
		t.Fatalf("upload ended before it started: %v", err)
	}
	for g.Synced() < 6<<20 { // past the first part
		time.Sleep(20 * time.Millisecond)
	}
	s.Stop()
	stopped := time.Now()
	select {
	case err := <-errCh:
		require.Error(t, err)
		t.Logf("upload failed %v after S3 stopped: %v", time.Since(stopped).Round(time.Millisecond), err)
	case <-time.After(30 * time.Second):
		t.Fatal("upload did not fail within 30 s of S3 stopping")
	}

	s.Start()
	g.wait()
	info, err := b.Upload(ctx, key, g, until, nil, nil)
	require.NoError(t, err, "retry after S3 came back")
	require.EqualValues(t, 12<<20, info.Size)
	n, sum := objectSum(t, s, "recordings", key)
	require.EqualValues(t, 12<<20, n)
	require.Equal(t, g.sum, sum)
	objs, err := b.List(ctx, key)
	require.NoError(t, err)
	require.Len(t, objs, 1, "the failed attempt left no version")
	for u := range s.Client.ListIncompleteUploads(ctx, "recordings", key, false) {
		t.Errorf("incomplete upload left behind: %+v", u)
	}
}

// stalled is a source that has a few bytes and never grows nor finishes.
type stalled struct{}

func (stalled) ReadAt(p []byte, off int64) (int, error) {
	for i := range p {
		p[i] = 'x'
	}
	return len(p), nil
}
func (stalled) Synced() int64 { return 1024 }
func (stalled) Done() bool    { return false }

func TestUploadNoticesLostS3WhileIdle(t *testing.T) {
	t.Parallel()
	s, b := lockedBucket(t, recording.LockGovernance)
	recording.SetHealthInterval(b, 300*time.Millisecond)
	ctx := ctxT(t, 60*time.Second)
	startedCh := make(chan struct{})
	errCh := make(chan error, 1)
	go func() {
		_, err := b.Upload(ctx, "sessions/s1/idle.webm", stalled{}, b.RetainUntil(time.Now()), nil, func() { close(startedCh) })
		errCh <- err
	}()
	<-startedCh
	select {
	case err := <-errCh:
		t.Fatalf("upload of a stalled source ended: %v", err)
	case <-time.After(time.Second):
	}
	s.Stop()
	select {
	case err := <-errCh:
		require.ErrorContains(t, err, "S3 stopped answering")
	case <-time.After(20 * time.Second):
		t.Fatal("a lost S3 went unnoticed while the source was idle")
	}
}

func TestUploadS3Down(t *testing.T) {
	t.Parallel()
	s, b := lockedBucket(t, recording.LockGovernance)
	s.Stop()
	called := false
	g := grow(t, 1, 1024, 0)
	g.wait()
	_, err := b.Upload(ctxT(t, 30*time.Second), "sessions/s1/p1.webm", g, b.RetainUntil(time.Now()), nil, func() { called = true })
	require.Error(t, err)
	require.False(t, called, "started called although S3 never answered")
}

var _ io.ReaderAt = (*growingFile)(nil)
