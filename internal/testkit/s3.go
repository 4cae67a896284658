package testkit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// EnvVersityGW names the versitygw binary StartS3 runs. Without it StartS3
// uses <repo root>/bin/versitygw (where the Makefile installs it), then
// versitygw on PATH.
const EnvVersityGW = "CHAPERONE_VERSITYGW"

// EnvRequireS3, when "1", turns a missing versitygw into a test failure
// instead of a skip. CI sets it so that S3 tests cannot silently skip.
const EnvRequireS3 = "CHAPERONE_REQUIRE_S3"

// s3StartTimeout bounds how long StartS3 and (*S3).Start wait for versitygw
// to answer.
const s3StartTimeout = 15 * time.Second

// S3 is a versitygw server (posix backend, versioning on, so Object Lock
// works) on a loopback port, with its data in the test's temporary
// directories. Client is signed in as the root user.
type S3 struct {
	Endpoint  string // host:port, as minio.New wants it; plain HTTP
	AccessKey string
	SecretKey string
	Region    string
	Client    *minio.Client

	t          testing.TB
	bin        string
	dataDir    string
	versionDir string
	out        *SyncBuffer

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
}

// VersityGWPath returns the versitygw binary StartS3 would run, or "" if
// there is none. See EnvVersityGW.
func VersityGWPath() string {
	if p := os.Getenv(EnvVersityGW); p != "" {
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p
		}
		return ""
	}
	if root := repoRoot(); root != "" {
		p := filepath.Join(root, "bin", "versitygw")
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p
		}
	}
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p
	}
	return ""
}

// repoRoot walks up from the working directory to the directory holding
// go.mod; "" if there is none.
func repoRoot() string {
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		if fi, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil && !fi.IsDir() {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

// StartS3 starts versitygw on a free 127.0.0.1 port with fresh data and
// versioning directories and random root credentials, and returns once it
// answers S3 requests. The server is killed at t.Cleanup.
//
// Without a versitygw binary StartS3 calls t.Skip, unless
// CHAPERONE_REQUIRE_S3=1, in which case it calls t.Fatal.
func StartS3(t testing.TB) *S3 {
	t.Helper()
	bin := VersityGWPath()
	if bin == "" {
		msg := "testkit: versitygw not found (run `make bin/versitygw` at the repository root, or set " + EnvVersityGW + ")"
		if os.Getenv(EnvRequireS3) == "1" {
			t.Fatal(msg + "; " + EnvRequireS3 + "=1 so this is a failure")
		}
		t.Skip(msg)
		return nil // only reached with a fake testing.TB
	}

	root := t.TempDir()
	s := &S3{
		Endpoint:   net.JoinHostPort("127.0.0.1", strconv.Itoa(FreePort(t))),
		AccessKey:  "test" + randomHex(t, 8),
		SecretKey:  randomHex(t, 20),
		Region:     "us-east-1",
		t:          t,
		bin:        bin,
		dataDir:    filepath.Join(root, "data"),
		versionDir: filepath.Join(root, "versions"),
		out:        &SyncBuffer{},
	}
	for _, d := range []string{s.dataDir, s.versionDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatalf("testkit: %v", err)
		}
	}
	c, err := minio.New(s.Endpoint, &minio.Options{
		Creds:      credentials.NewStaticV4(s.AccessKey, s.SecretKey, ""),
		Region:     s.Region,
		MaxRetries: 1,
	})
	if err != nil {
		t.Fatalf("testkit: S3 client: %v", err)
	}
	s.Client = c

	t.Cleanup(func() {
		s.stop()
		if t.Failed() {
			if out := s.out.tail(8 << 10); out != "" {
				t.Logf("testkit: last versitygw output:\n%s", out)
			}
		}
	})
	s.Start()
	return s
}

// Start starts the server again after Stop, on the same port and with the
// same data, and waits until it answers. It is a no-op while running.
func (s *S3) Start() {
	s.t.Helper()
	s.mu.Lock()
	if s.cmd != nil {
		s.mu.Unlock()
		return
	}
	cmd := exec.Command(s.bin,
		"--port", s.Endpoint,
		"--access", s.AccessKey,
		"--secret", s.SecretKey,
		"--region", s.Region,
		"--quiet",
		"posix",
		"--versioning-dir", s.versionDir,
		s.dataDir,
	)
	// Only what versitygw needs: root credentials in the environment
	// (ROOT_ACCESS_KEY and friends) must not override the flags.
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	cmd.Stdout = s.out
	cmd.Stderr = s.out
	if err := cmd.Start(); err != nil {
		s.mu.Unlock()
		s.t.Fatalf("testkit: start versitygw: %v", err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	s.cmd, s.done = cmd, done
	s.mu.Unlock()

	deadline := time.Now().Add(s3StartTimeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := s.Client.ListBuckets(ctx)
		cancel()
		if err == nil {
			return
		}
		select {
		case <-done:
			s.t.Fatalf("testkit: versitygw exited at start:\n%s", s.out.tail(4<<10))
		default:
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("testkit: versitygw on %s did not answer within %v: %v", s.Endpoint, s3StartTimeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop kills the server (SIGKILL: it goes away as in a crash or a network
// cut, with connections reset) and waits until it has exited. Its data stays
// for Start. It is a no-op when stopped.
func (s *S3) Stop() {
	s.t.Helper()
	s.stop()
}

func (s *S3) stop() {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd, s.done = nil, nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-done
}

// MakeLockedBucket creates a bucket with Object Lock enabled (and so
// versioning), and checks that versioning is on.
func (s *S3) MakeLockedBucket(t testing.TB, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Client.MakeBucket(ctx, name, minio.MakeBucketOptions{Region: s.Region, ObjectLocking: true}); err != nil {
		t.Fatalf("testkit: make locked bucket %s: %v", name, err)
	}
	v, err := s.Client.GetBucketVersioning(ctx, name)
	if err != nil {
		t.Fatalf("testkit: versioning of bucket %s: %v", name, err)
	}
	if !v.Enabled() {
		if err := s.Client.EnableVersioning(ctx, name); err != nil {
			t.Fatalf("testkit: enable versioning on bucket %s: %v", name, err)
		}
	}
}

// MakePlainBucket creates a bucket without Object Lock or versioning.
func (s *S3) MakePlainBucket(t testing.TB, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Client.MakeBucket(ctx, name, minio.MakeBucketOptions{Region: s.Region}); err != nil {
		t.Fatalf("testkit: make bucket %s: %v", name, err)
	}
}

// MakeVersionedBucket creates a bucket with versioning but without Object
// Lock.
func (s *S3) MakeVersionedBucket(t testing.TB, name string) {
	t.Helper()
	s.MakePlainBucket(t, name)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Client.EnableVersioning(ctx, name); err != nil {
		t.Fatalf("testkit: enable versioning on bucket %s: %v", name, err)
	}
}

func randomHex(t testing.TB, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("testkit: random: %v", err)
	}
	return hex.EncodeToString(b)
}
