package main

import (
	"bytes"
	"context"
	"fmt"
	"html"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/chaperone-edu/chaperone/internal/testkit"
)

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// TestDevMode runs `chaperone dev` as `make run` does (on free ports) and
// signs in as the teacher through the demo IdP.
func TestDevMode(t *testing.T) {
	versitygw := testkit.VersityGWPath()
	if versitygw == "" {
		if os.Getenv("CHAPERONE_REQUIRE_S3") == "1" {
			t.Fatal("versitygw not found: run `make bin/versitygw`")
		}
		t.Skip("versitygw not found: dev mode needs it (make bin/versitygw)")
	}
	gwPort, idpPort, metricsPort := testkit.FreePort(t), testkit.FreePort(t), testkit.FreePort(t)
	public := fmt.Sprintf("http://localhost:%d", gwPort)
	ctx, cancel := context.WithCancel(context.Background())
	var out, errOut syncBuf
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"dev", "-listen", fmt.Sprintf("127.0.0.1:%d", gwPort), "-idp_listen", fmt.Sprintf("localhost:%d", idpPort),
			"-public_url", public, "-udp_port", "0", "-metrics_listen", fmt.Sprintf("127.0.0.1:%d", metricsPort), "-versitygw", versitygw, "-s3_listen", fmt.Sprintf("127.0.0.1:%d", testkit.FreePort(t)), "-data", t.TempDir(), "-database", "sqlite:" + filepath.Join(t.TempDir(), "dev.db")}, func(string) string { return "" }, &out, &errOut)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(25 * time.Second):
			t.Error("dev mode did not shut down")
		}
	})
	require.Eventually(t, func() bool { return strings.Contains(out.String(), "Press Ctrl+C") }, 20*time.Second, 50*time.Millisecond, errOut.String())
	banner := out.String()
	require.Contains(t, banner, "chaperone is running (dev mode) at "+public)
	require.Contains(t, banner, "teacher")
	require.Contains(t, banner, "Sarah Whitfield")
	require.Contains(t, banner, "refused: placeholder name")

	c := testkit.CookieClient(t)
	status, body := testkit.Login(t, c, public, "teacher", testkit.DemoPassword, "")
	require.Equal(t, http.StatusOK, status, body)
	require.Contains(t, html.UnescapeString(body), "Signed in as <strong>Sarah Whitfield</strong> (teacher)")

	status, body = testkit.Login(t, testkit.CookieClient(t), public, "placeholder", testkit.DemoPassword, "")
	require.Equal(t, http.StatusForbidden, status)
	require.Contains(t, html.UnescapeString(body), `"Student 12" has numbers in it`)

	// /metrics is on its own address (metrics_listen), not where pupils go
	// (issue 18, finding 5); /healthz stays open.
	for u, want := range map[string]int{
		public + "/metrics": http.StatusNotFound,
		public + "/healthz": http.StatusOK,
		fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsPort): http.StatusOK,
	} {
		resp, err := http.Get(u)
		require.NoError(t, err)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(t, want, resp.StatusCode, u)
		if want == http.StatusOK && strings.HasSuffix(u, "/metrics") {
			require.Contains(t, string(b), "chaperone_rooms_live")
		}
	}
}
