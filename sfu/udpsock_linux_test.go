package sfu

import (
	"errors"
	"log/slog"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The SFU's socket sends and receives datagrams with their addresses, and
// Close wakes a read blocked on it.
func TestUDPSocket(t *testing.T) {
	t.Parallel()
	s, err := listenUDPSocket(net.IPv4(127, 0, 0, 1), 0)
	require.NoError(t, err)
	peer, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	defer peer.Close()
	la := s.LocalAddr().(*net.UDPAddr)
	require.NotZero(t, la.Port)
	require.True(t, la.IP.Equal(net.IPv4(127, 0, 0, 1)))

	n, err := s.WriteTo([]byte("hello"), peer.LocalAddr())
	require.NoError(t, err)
	require.Equal(t, 5, n)
	buf := make([]byte, 64)
	require.NoError(t, peer.SetReadDeadline(time.Now().Add(2*time.Second)))
	n, from, err := peer.ReadFrom(buf)
	require.NoError(t, err)
	require.Equal(t, "hello", string(buf[:n]))
	require.Equal(t, la.String(), from.String())

	_, err = peer.WriteTo([]byte("back"), la)
	require.NoError(t, err)
	n, from, err = s.ReadFrom(buf)
	require.NoError(t, err)
	require.Equal(t, "back", string(buf[:n]))
	require.Equal(t, peer.LocalAddr().String(), from.String())

	_, err = s.WriteTo([]byte("x"), &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1})
	require.Error(t, err, "not a UDP address")
	_, err = s.WriteTo([]byte("x"), &net.UDPAddr{IP: net.ParseIP("::1"), Port: 1})
	require.Error(t, err, "not IPv4")
	require.ErrorIs(t, s.SetReadDeadline(time.Now()), errors.ErrUnsupported)

	done := make(chan error, 1)
	go func() {
		_, _, err := s.ReadFrom(buf)
		done <- err
	}()
	time.Sleep(50 * time.Millisecond) // let it block
	require.NoError(t, s.Close())
	select {
	case err := <-done:
		require.ErrorIs(t, err, net.ErrClosed)
	case <-time.After(500 * time.Millisecond):
		t.Fatal("Close did not wake the blocked read")
	}
	_, err = s.WriteTo([]byte("x"), peer.LocalAddr())
	require.ErrorIs(t, err, net.ErrClosed)
	require.ErrorIs(t, s.Close(), net.ErrClosed)
}

// A port in use is refused with EADDRINUSE, as the mux's retry expects.
func TestUDPSocketPortInUse(t *testing.T) {
	t.Parallel()
	a, err := listenUDPSocket(net.IPv4(127, 0, 0, 1), 0)
	require.NoError(t, err)
	defer a.Close()
	_, err = listenUDPSocket(net.IPv4(127, 0, 0, 1), a.LocalAddr().(*net.UDPAddr).Port)
	require.Error(t, err)
	require.ErrorIs(t, err, syscall.EADDRINUSE)
}

// TestUDPSocketIPv6: the SFU's own socket on an IPv6 address sends with
// sendto and in a sendmmsg batch, and reads with the sender's address; an
// IPv4 destination is refused on it.
func TestUDPSocketIPv6(t *testing.T) {
	t.Parallel()
	s, err := listenUDPSocket(net.IPv6loopback, 0)
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	rx, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6loopback})
	require.NoError(t, err)
	t.Cleanup(func() { _ = rx.Close() })
	to := rx.LocalAddr().(*net.UDPAddr)

	_, err = s.WriteTo([]byte("one"), to)
	require.NoError(t, err)
	b := newSendBatch(slog.Default())
	d := makeDst(s, to)
	require.NotNil(t, d.sock)
	for _, m := range []string{"two", "three"} {
		n := copy(b.slot(s)[:len(m)], m)
		b.commit(&d, n)
	}
	b.flush()
	buf := make([]byte, 64)
	for _, want := range []string{"one", "two", "three"} {
		require.NoError(t, rx.SetReadDeadline(time.Now().Add(2*time.Second)))
		n, from, err := rx.ReadFromUDP(buf)
		require.NoError(t, err)
		require.Equal(t, want, string(buf[:n]))
		require.Equal(t, s.LocalAddr().(*net.UDPAddr).Port, from.Port)
	}

	_, err = rx.WriteToUDP([]byte("back"), s.LocalAddr().(*net.UDPAddr))
	require.NoError(t, err)
	n, from, err := s.ReadFrom(buf)
	require.NoError(t, err)
	require.Equal(t, "back", string(buf[:n]))
	require.Equal(t, to.String(), from.String())

	_, err = s.WriteTo([]byte("x"), &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9})
	require.Error(t, err, "an IPv4 destination on an IPv6 socket")
}
