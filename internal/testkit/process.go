package testkit

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chaperone-edu/chaperone/auth/demoidp"
)

// GatewayProcess is the chaperone binary running `chaperone serve` as a
// child process, signing in with a demo IdP of the test's and recording to
// a locked bucket on the test's S3 server: a gateway that a test can kill
// (-9), stop (SIGTERM) and start again on the same ports, database and
// spool, as an IT admin would. Its clock is the real one (a binary has no
// test clock), so sessions for it are booked with time.Now.
type GatewayProcess struct {
	URL, IdPURL string
	DBPath      string // the SQLite file, when Database is one
	Database    string // the database DSN it runs on (store.Open opens it)
	SpoolDir    string
	Bucket      string
	S3          *S3

	t    testing.TB
	bin  string
	env  []string
	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	out  *SyncBuffer
}

// GatewayProcessOptions adjust StartGatewayProcess.
type GatewayProcessOptions struct {
	// S3 is where it records (a new locked bucket); required.
	S3 *S3
	// Env adds or overrides CHAPERONE_* settings, e.g. "CHAPERONE_REJOIN_GRACE=30s".
	Env []string
	// Database is the DSN of the database it runs on, e.g. a pgtest.DSN;
	// default a new SQLite file in the test's temporary directory.
	Database string
}

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
)

// gatewayBinary builds cmd/chaperone once per test process.
func gatewayBinary() (string, error) {
	buildOnce.Do(func() {
		out, err := exec.Command("go", "env", "GOMOD").Output()
		if err != nil {
			buildErr = fmt.Errorf("go env GOMOD: %w", err)
			return
		}
		root := filepath.Dir(strings.TrimSpace(string(out)))
		dir, err := os.MkdirTemp("", "chaperone-bin-")
		if err != nil {
			buildErr = err
			return
		}
		builtBin = filepath.Join(dir, "chaperone")
		cmd := exec.Command("go", "build", "-o", builtBin, "./cmd/chaperone")
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if b, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/chaperone: %w: %s", err, b)
		}
	})
	return builtBin, buildErr
}

// StartGatewayProcess builds and starts the gateway binary; it is killed at
// t.Cleanup.
func StartGatewayProcess(t testing.TB, o GatewayProcessOptions) *GatewayProcess {
	t.Helper()
	bin, err := gatewayBinary()
	if err != nil {
		t.Fatalf("testkit: %v", err)
	}
	if o.S3 == nil {
		t.Fatal("testkit: StartGatewayProcess needs S3")
	}
	dir := t.TempDir()
	g := &GatewayProcess{t: t, bin: bin, S3: o.S3, DBPath: filepath.Join(dir, "chaperone.db"), SpoolDir: filepath.Join(dir, "spool"),
		Bucket: "rec-" + randomHex(t, 6)}
	o.S3.MakeLockedBucket(t, g.Bucket)
	g.Database = o.Database
	if g.Database == "" {
		g.Database = "sqlite:" + g.DBPath
	}
	port := FreePort(t)
	g.URL = fmt.Sprintf("http://127.0.0.1:%d", port)

	users, err := demoidp.SeedUsers()
	if err != nil {
		t.Fatalf("seed users: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	idpSrv := httptest.NewUnstartedServer(nil)
	g.IdPURL = "http://" + idpSrv.Listener.Addr().String()
	idp, err := demoidp.New(ctx, demoidp.Config{Issuer: g.IdPURL, Users: users,
		Clients: []demoidp.Client{{ID: "chaperone", Secret: "process-secret", RedirectURIs: []string{g.URL + "/auth/callback"}}}, Logger: TestLogger(t)})
	if err != nil {
		t.Fatalf("demo IdP: %v", err)
	}
	idpSrv.Config.Handler = idp.Handler()
	idpSrv.Start()
	t.Cleanup(idpSrv.Close)

	set := map[string]string{
		"LISTEN": fmt.Sprintf("127.0.0.1:%d", port), "PUBLIC_URL": g.URL,
		"OIDC_ISSUER": g.IdPURL, "OIDC_CLIENT_ID": "chaperone", "OIDC_CLIENT_SECRET": "process-secret",
		"ALLOWED_DOMAINS": "oakfield.example", "PUPIL_GROUPS": "pupils", "STAFF_GROUPS": "staff", "SLT_GROUPS": "slt",
		"HEAD_GROUPS": "head", "DSL_GROUPS": "dsl", "ADMIN_GROUPS": "it-admins", "ROSTER_GROUPS": "year-7,year-8,year-9",
		"DATABASE": g.Database, "SPOOL_DIR": g.SpoolDir, "UDP_PORT": fmt.Sprint(FreeUDPPort(t)), "ICE_LOOPBACK": "true",
		"S3_ENDPOINT": o.S3.Endpoint, "S3_BUCKET": g.Bucket, "S3_ACCESS_KEY": o.S3.AccessKey, "S3_SECRET_KEY": o.S3.SecretKey,
		"S3_REGION": o.S3.Region, "S3_TLS": "false", "LOG_LEVEL": "info",
	}
	for k, v := range set {
		g.env = append(g.env, "CHAPERONE_"+k+"="+v)
	}
	g.env = append(g.env, o.Env...)
	g.Start()
	t.Cleanup(func() {
		g.Kill()
		if t.Failed() {
			t.Logf("testkit: the gateway's last output:\n%s", g.Output())
		}
	})
	return g
}

// Start starts the gateway (again) and waits until /readyz answers.
func (g *GatewayProcess) Start() {
	g.t.Helper()
	g.mu.Lock()
	if g.cmd != nil {
		g.mu.Unlock()
		g.t.Fatal("testkit: gateway process already running")
	}
	g.out = &SyncBuffer{}
	cmd := exec.Command(g.bin, "serve")
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "TMPDIR=" + os.TempDir()}, g.env...)
	cmd.Stdout, cmd.Stderr = g.out, g.out
	if err := cmd.Start(); err != nil {
		g.mu.Unlock()
		g.t.Fatalf("testkit: start gateway: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	g.cmd, g.done = cmd, done
	g.mu.Unlock()

	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(g.URL + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-done:
			g.t.Fatalf("testkit: gateway exited at start:\n%s", g.out.String())
		default:
		}
		if time.Now().After(deadline) {
			g.t.Fatalf("testkit: gateway not up within 30 s:\n%s", g.out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Kill kills the gateway with SIGKILL (as a crash would) and waits for it.
func (g *GatewayProcess) Kill() { g.signal(syscall.SIGKILL, 5*time.Second) }

// Term stops the gateway with SIGTERM (as a restart would) and waits for it
// to exit.
func (g *GatewayProcess) Term() { g.signal(syscall.SIGTERM, 90*time.Second) }

func (g *GatewayProcess) signal(sig syscall.Signal, wait time.Duration) {
	g.mu.Lock()
	cmd, done := g.cmd, g.done
	g.cmd, g.done = nil, nil
	g.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-done:
	case <-time.After(wait):
		_ = cmd.Process.Kill()
		<-done
		g.t.Errorf("testkit: gateway did not exit within %s of %s", wait, sig)
	}
}

// Output is everything the gateway has logged since it last started.
func (g *GatewayProcess) Output() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.out == nil {
		return ""
	}
	return g.out.String()
}

// Login signs in as a demo user (with the demo one-time code) and returns
// an API client for the gateway. Its cookie outlives gateway restarts, as a
// browser's does.
func (g *GatewayProcess) Login(t testing.TB, username string) *APIClient {
	t.Helper()
	return apiLoginAt(t, g.URL, username, DemoOTP)
}
