package testkit

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// EnvRequireBrowser, when "1", turns a missing Chromium into a test failure
// instead of a skip. CI sets it so that browser tests cannot silently skip.
const EnvRequireBrowser = "CHAPERONE_REQUIRE_BROWSER"

// EnvArtifacts names the directory where Screenshot writes. The default is
// os.TempDir()/chaperone-artifacts.
const EnvArtifacts = "CHAPERONE_ARTIFACTS"

// EnvBrowserTimeout overrides the lifetime of a Browser (a Go duration such
// as "2m"). The default is DefaultBrowserTimeout.
const EnvBrowserTimeout = "CHAPERONE_BROWSER_TIMEOUT"

// DefaultBrowserTimeout is how long a browser from Browser lives before its
// context ends.
const DefaultBrowserTimeout = 3 * time.Minute

// browserFlags are the Chromium switches for tests, on top of chromedp's
// defaults (which already include headless, no-first-run,
// disable-background-networking, disable-sync and disable-dev-shm-usage; they
// are repeated here so the list is complete in one place).
var browserFlags = []chromedp.ExecAllocatorOption{
	chromedp.Headless,
	chromedp.NoSandbox,
	chromedp.DisableGPU,
	chromedp.NoFirstRun,
	chromedp.Flag("disable-quic", true),
	chromedp.Flag("disable-background-networking", true),
	chromedp.Flag("disable-component-update", true),
	chromedp.Flag("disable-sync", true),
	chromedp.Flag("disable-dev-shm-usage", true),
	chromedp.Flag("use-fake-device-for-media-stream", true),
	chromedp.Flag("use-fake-ui-for-media-stream", true),
	// getDisplayMedia (screen sharing): with the two flags above Chromium
	// already answers with a fake "Entire screen" (800×450, displaySurface
	// "monitor"); these pick the screen, and accept a tab capture, without a
	// picker on builds where the fake UI does not cover display media.
	chromedp.Flag("auto-select-desktop-capture-source", "Entire screen"),
	chromedp.Flag("auto-accept-this-tab-capture", true),
	chromedp.Flag("allow-loopback-in-peer-connection", true),
	chromedp.WindowSize(1366, 768),
	chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
	// Replaces chromedp's default disable-features (Translate,
	// BlinkGenPropertyTrees), so those are kept in the list.
	chromedp.Flag("disable-features", "WebRtcHideLocalIpsWithMdns,Translate,BlinkGenPropertyTrees"),
}

// ChromiumPath returns the Chromium binary that Browser uses: /usr/bin/chromium
// if it exists, else chromium, chromium-browser or google-chrome on PATH. It
// returns "" if there is none.
func ChromiumPath() string {
	if fi, err := os.Stat("/usr/bin/chromium"); err == nil && !fi.IsDir() {
		return "/usr/bin/chromium"
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// Browser starts a new headless Chromium with its own temporary profile and
// returns a chromedp context for its first tab. The browser is already
// running when Browser returns, and it is closed at t.Cleanup. Its context
// ends after DefaultBrowserTimeout (or CHAPERONE_BROWSER_TIMEOUT), which bounds
// every action on it; to bound one action tighter, derive a context with
// context.WithTimeout from the returned one.
//
// Without a Chromium binary Browser calls t.Skip, unless
// CHAPERONE_REQUIRE_BROWSER=1, in which case it calls t.Fatal.
//
// Run actions with chromedp v0.23's API: chromedp.Do(ctx, steps...) for steps
// without a value, v, err := chromedp.Run(ctx, action) for one with a value.
func Browser(t testing.TB) context.Context {
	t.Helper()
	path := ChromiumPath()
	if path == "" {
		noBrowser(t)
		return nil // only reached with a fake testing.TB
	}
	return browserAt(t, path)
}

// browserAt is Browser with the binary (or a wrapper script) at path.
func browserAt(t testing.TB, path string, extra ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	timeout := DefaultBrowserTimeout
	if s := os.Getenv(EnvBrowserTimeout); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			t.Fatalf("testkit: %s=%q is not a positive duration", EnvBrowserTimeout, s)
		}
		timeout = d
	}

	// Not t.TempDir: Chromium may still write into its profile while the
	// test's own cleanups run, and a failed RemoveAll would fail the test.
	profile, err := os.MkdirTemp("", "chaperone-chromium-")
	if err != nil {
		t.Fatalf("testkit: profile dir: %v", err)
	}

	out := &SyncBuffer{}
	opts := append(append([]chromedp.ExecAllocatorOption{}, chromedp.DefaultExecAllocatorOptions[:]...), browserFlags...)
	opts = append(opts, extra...)
	opts = append(opts,
		chromedp.ExecPath(path),
		chromedp.UserDataDir(profile),
		chromedp.CombinedOutput(out),
	)

	logger := &testLogger{t: t}
	timeoutCtx, cancelTimeout := context.WithTimeout(context.Background(), timeout)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(timeoutCtx, opts...)
	ctx, cancelCtx := chromedp.NewContext(allocCtx, chromedp.WithErrorf(logger.logf))

	t.Cleanup(func() {
		// Close the browser gracefully, then stop the allocator and wait
		// for the process to exit before removing its profile.
		cctx, c := context.WithTimeout(ctx, 5*time.Second)
		_ = chromedp.Cancel(cctx)
		c()
		cancelCtx()
		cancelAlloc()
		cancelTimeout()
		logger.stop()
		if t.Failed() {
			if s := out.tail(8 << 10); s != "" {
				t.Logf("testkit: last Chromium output:\n%s", s)
			}
		}
		_ = os.RemoveAll(profile)
	})

	// Start the browser now, so that a broken install fails here and not in
	// the first step of the test.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("testkit: start Chromium %s: %v\n%s", path, err, out.tail(8<<10))
	}
	return ctx
}

// noBrowser skips t, or fails it when CHAPERONE_REQUIRE_BROWSER=1.
func noBrowser(t testing.TB) {
	t.Helper()
	msg := "testkit: no Chromium found (looked for /usr/bin/chromium, and chromium, chromium-browser, google-chrome on PATH); install the Debian package chromium"
	if os.Getenv(EnvRequireBrowser) == "1" {
		t.Fatal(msg + " (" + EnvRequireBrowser + "=1, so this is a failure)")
		return
	}
	t.Skip(msg + " (set " + EnvRequireBrowser + "=1 to fail instead)")
}

// NewTab opens a second tab in the browser of browserCtx (a context from
// Browser) and returns its chromedp context. The tab is closed at t.Cleanup.
// It shares cookies and storage with the other tabs of that browser.
func NewTab(t testing.TB, browserCtx context.Context) context.Context {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browserCtx)
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("testkit: open tab: %v", err)
	}
	return ctx
}

// Screenshot writes a PNG of the tab of ctx to the directory from
// CHAPERONE_ARTIFACTS (default os.TempDir()/chaperone-artifacts), named after
// the test and name, and logs the path. A failure to capture is logged, not
// fatal, so that a screenshot taken while diagnosing a failure does not hide
// the failure.
func Screenshot(t testing.TB, ctx context.Context, name string) {
	t.Helper()
	dir := os.Getenv(EnvArtifacts)
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "chaperone-artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Logf("testkit: screenshot %q: %v", name, err)
		return
	}
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	png, err := chromedp.Run(sctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Logf("testkit: screenshot %q: %v", name, err)
		return
	}
	file := filepath.Join(dir, safeName(t.Name())+"-"+safeName(name)+".png")
	if err := os.WriteFile(file, png, 0o644); err != nil {
		t.Logf("testkit: screenshot %q: %v", name, err)
		return
	}
	t.Logf("testkit: screenshot %s", file)
}

func safeName(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			return r
		}
		return '_'
	}, s)
}

// testLogger forwards chromedp's error log to t.Logf until stop, so that a
// late message from a browser goroutine cannot log after the test ended.
type testLogger struct {
	mu      sync.Mutex
	t       testing.TB
	stopped bool
}

func (l *testLogger) logf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.stopped {
		l.t.Logf("chromedp: "+format, args...)
	}
}

func (l *testLogger) stop() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stopped = true
}

// SyncBuffer is a bytes.Buffer safe for writers on several goroutines: a
// child process's output for failure reports, or a gateway's log (LogTo).
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// tail returns the last n bytes of the output, without the D-Bus complaints
// that Chromium prints on machines without a session bus.
func (b *SyncBuffer) tail(n int) string {
	b.mu.Lock()
	lines := strings.SplitAfter(b.buf.String(), "\n")
	b.mu.Unlock()
	var out strings.Builder
	for _, l := range lines {
		if !strings.Contains(l, ":dbus/") {
			out.WriteString(l)
		}
	}
	s := out.String()
	if len(s) > n {
		s = s[len(s)-n:]
	}
	return s
}
