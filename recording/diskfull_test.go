package recording_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/chaperone-edu/chaperone/recording"
)

// smallDisk mounts a tmpfs of size bytes (root only; the test skips
// elsewhere) and unmounts it at the end.
func smallDisk(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", dir).Run() })
	return dir
}

// TestSpoolDiskFull: the spool's disk fills mid-session: the recording
// fails (closed) and says so in words people understand; what was written
// is still closed and stored as a part.
func TestSpoolDiskFull(t *testing.T) {
	t.Parallel()
	_, b := lockedBucket(t, recording.LockGovernance)
	spool := smallDisk(t, "48k")
	r := newRecorder(t, b, spool)
	var st states
	sess, err := r.Start(context.Background(), "sess-full", time.Now(), who, st.on)
	require.NoError(t, err)
	feed(t, sess, "pA", 12*time.Second)
	require.Eventually(t, func() bool { return st.has(recording.StateFailed) }, 10*time.Second, 20*time.Millisecond)
	st.mu.Lock()
	why := st.why[len(st.why)-1]
	st.mu.Unlock()
	require.Equal(t, "the server's disk is full", why)
	ps, _ := sess.Close(ctxT(t, 30*time.Second)) // closing the file fails too: the disk is full
	require.Len(t, ps, 1, "what was written is stored, as a part")
	require.Positive(t, ps[0].Size)
	require.Equal(t, ps[0].SpoolSize, ps[0].Size)
	left, _ := filepath.Glob(filepath.Join(spool, "*", "*.webm.json"))
	require.Len(t, left, 1, "the sidecar stays until the part is indexed")
	r.Release(ps[0])
}
