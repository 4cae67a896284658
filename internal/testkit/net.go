package testkit

import (
	"net"
	"net/http"
	"testing"

	"github.com/chaperone-edu/chaperone/internal/signin"
)

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago: it
// listens on port 0, closes the listener and returns the port. Another process
// can take the port in between, so prefer handing a listener over when the
// code under test accepts one.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testkit: listen on 127.0.0.1:0: %v", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		t.Fatalf("testkit: close listener: %v", err)
	}
	return port
}

// FreeUDPPort returns a UDP port on 127.0.0.1 that was free a moment ago
// (see FreePort).
func FreeUDPPort(t testing.TB) int {
	t.Helper()
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testkit: listen on udp 127.0.0.1:0: %v", err)
	}
	port := c.LocalAddr().(*net.UDPAddr).Port
	if err := c.Close(); err != nil {
		t.Fatalf("testkit: close udp socket: %v", err)
	}
	return port
}

// CookieClient returns an HTTP client with its own cookie jar that follows
// redirects (up to Go's default of 10) and gives up after 15 seconds. Its idle
// connections are closed at t.Cleanup.
func CookieClient(t testing.TB) *http.Client {
	t.Helper()
	c := signin.NewHTTPClient()
	t.Cleanup(c.CloseIdleConnections)
	return c
}
