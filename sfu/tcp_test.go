package sfu_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/chaperone-edu/chaperone/sfu"
	"github.com/chaperone-edu/chaperone/sfu/sfutest"
)

// newTCPRoom is a room on an SFU with ICE-TCP on an ephemeral port.
func newTCPRoom(t *testing.T) (*sfu.SFU, *sfu.Room) {
	t.Helper()
	s, err := sfu.New(sfu.Config{ListenIP: "127.0.0.1", Loopback: true, TCP: true, Logger: testLogger()})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	require.NotEmpty(t, s.TCPAddr())
	r := s.NewRoom(t.Name())
	t.Cleanup(r.Close)
	return s, r
}

// TestICETCPOwnWriter: two clients that can only use TCP (no UDP network
// type at all) publish to and receive from each other over the SFU's
// passive ICE-TCP candidate; the SFU's own SRTP writer sends every
// forwarded packet over RFC 4571 framing, none through pion's.
func TestICETCPOwnWriter(t *testing.T) {
	t.Parallel()
	s, r := newTCPRoom(t)
	alice, alicePeer := connect(t, r, "alice", sfutest.Options{Audio: true, Video: true, TCPOnly: true})
	bob, bobPeer := connect(t, r, "bob", sfutest.Options{Audio: true, Video: true, TCPOnly: true})
	openAll(r, "alice", "bob")
	waitReceiving(t, bob, "alice", "video", 10*time.Second)
	waitReceiving(t, bob, "alice", "audio", 5*time.Second)
	waitReceiving(t, alice, "bob", "video", 5*time.Second)
	waitReceiving(t, alice, "bob", "audio", 5*time.Second)
	require.True(t, sfu.OwnSRTP(bobPeer), "bob's down connection is written by the SFU's own writer")
	require.True(t, sfu.OwnSRTP(alicePeer), "alice's down connection is written by the SFU's own writer")
	require.True(t, sfu.DownOverTCP(bobPeer), "bob's down connection is on ICE-TCP")
	require.Zero(t, s.ViaPion(), "nothing forwarded through pion's SRTP writer")
}

// TestICETCPAndUDPClients: a UDP client and a TCP-only client in one room
// both get each other's media, on the SFU's own writer.
func TestICETCPAndUDPClients(t *testing.T) {
	t.Parallel()
	s, r := newTCPRoom(t)
	udp, udpPeer := connect(t, r, "udp", sfutest.Options{Audio: true, Video: true})
	tcp, tcpPeer := connect(t, r, "tcp", sfutest.Options{Audio: true, Video: true, TCPOnly: true})
	openAll(r, "udp", "tcp")
	waitReceiving(t, tcp, "udp", "video", 10*time.Second)
	waitReceiving(t, udp, "tcp", "video", 10*time.Second)
	require.False(t, sfu.DownOverTCP(udpPeer), "a client with UDP stays on UDP")
	require.True(t, sfu.DownOverTCP(tcpPeer))
	require.Zero(t, s.ViaPion())
}
