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

// TestClientBehindNAT: a pion client on a private address behind a
// masquerading router (a namespace whose LAN address is source-NATed to
// its veth address) joins over UDP: the SFU checks no private address here
// (so that no check leaves the namespaces) and learns the NAT's address
// from the client's checks. Media flows both ways with a client outside,
// on the SFU's own writer, to the NAT's address.
func TestClientBehindNAT(t *testing.T) {
	t.Parallel()
	ns := testkit.NewNetNS(t)
	lan := ns.Masquerade("10.99.0.2/24")
	s, err := sfu.New(sfu.Config{ListenIP: ns.HostIP.String(), Logger: testLogger()})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	r := s.NewRoom(t.Name())
	t.Cleanup(r.Close)
	var conns [2]net.PacketConn
	require.NoError(t, ns.Do(func() error {
		for i := range conns {
			var err error
			if conns[i], err = net.ListenPacket("udp4", net.JoinHostPort(lan.String(), "0")); err != nil {
				return err
			}
		}
		return nil
	}))
	outside, outsidePeer := connect(t, r, "teacher", sfutest.Options{Audio: true, Video: true,
		IPFilter: func(ip net.IP) bool { return ip.Equal(net.IP(ns.HostIP.AsSlice())) }})
	natted, nattedPeer := connect(t, r, "pupil", sfutest.Options{Audio: true, Video: true, UDPConns: &conns})
	openAll(r, "teacher", "pupil")
	waitReceiving(t, outside, "pupil", "video", 10*time.Second)
	waitReceiving(t, natted, "teacher", "video", 10*time.Second)
	require.True(t, sfu.OwnSRTP(nattedPeer))
	require.True(t, sfu.OwnSRTP(outsidePeer))
	to, err := netip.ParseAddrPort(sfu.DownRemote(nattedPeer))
	require.NoError(t, err)
	require.Equal(t, ns.NSIP, to.Addr(), "the SFU sends to the NAT's address, not the LAN's")
	require.Zero(t, s.ViaPion())
}
