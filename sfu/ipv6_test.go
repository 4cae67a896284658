package sfu_test

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/chaperone-edu/chaperone/internal/testkit"
	"github.com/chaperone-edu/chaperone/sfu"
	"github.com/chaperone-edu/chaperone/sfu/sfutest"
)

// TestIPv6OwnWriter: on an IPv6 address (a veth pair's unique-local
// address: pion gathers no candidates on ::1), clients on IPv6 only, one
// over UDP and one over ICE-TCP, publish to and receive from each other;
// the SFU's own socket and writer send every forwarded packet over IPv6,
// none through pion's.
func TestIPv6OwnWriter(t *testing.T) {
	t.Parallel()
	ns := testkit.NewNetNS(t)
	ip6 := ns.HostIP6
	s, err := sfu.New(sfu.Config{ListenIP: ip6.String(), TCP: true, AllowPrivate: true, Logger: testLogger()})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	r := s.NewRoom(t.Name())
	t.Cleanup(r.Close)
	only := func(ip net.IP) bool { a, _ := netip.AddrFromSlice(ip); return a == ip6 }
	alice, alicePeer := connect(t, r, "alice", sfutest.Options{Audio: true, Video: true, IPv6: true, IPFilter: only})
	bob, bobPeer := connect(t, r, "bob", sfutest.Options{Audio: true, Video: true, IPv6: true, TCPOnly: true, IPFilter: only})
	openAll(r, "alice", "bob")
	waitReceiving(t, bob, "alice", "video", 10*time.Second)
	waitReceiving(t, alice, "bob", "video", 10*time.Second)
	waitReceiving(t, alice, "bob", "audio", 5*time.Second)
	for _, p := range []*sfu.Peer{alicePeer, bobPeer} {
		require.True(t, sfu.OwnSRTP(p), "%s: the SFU's own writer", p.ID())
		to, err := netip.ParseAddrPort(sfu.DownRemote(p))
		require.NoError(t, err)
		require.Equal(t, ip6, to.Addr(), "%s: sent over IPv6", p.ID())
	}
	require.False(t, sfu.DownOverTCP(alicePeer))
	require.True(t, sfu.DownOverTCP(bobPeer))
	require.Zero(t, s.ViaPion())
}
