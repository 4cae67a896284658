package sfu_test

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/webrtc/v3"
	"github.com/stretchr/testify/require"

	"github.com/chaperone-edu/chaperone/sfu"
	"github.com/chaperone-edu/chaperone/sfu/sfutest"
)

// sendCounter wraps the SFU's UDP socket and counts what it sends, by
// destination address.
type sendCounter struct {
	net.PacketConn
	mu sync.Mutex
	to map[netip.Addr]int
}

func (c *sendCounter) WriteTo(b []byte, addr net.Addr) (int, error) {
	if ua, ok := addr.(*net.UDPAddr); ok {
		a, _ := netip.AddrFromSlice(ua.IP)
		c.mu.Lock()
		c.to[a.Unmap()]++
		c.mu.Unlock()
	}
	return c.PacketConn.WriteTo(b, addr)
}

func (c *sendCounter) sentTo(match func(netip.Addr) bool) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for a, k := range c.to {
		if match(a) {
			n += k
		}
	}
	return n
}

// TestRogueCandidates (issue 18, finding 2; issue 19): a client that never
// finishes ICE (so the SFU keeps checking every pair it is given) sends
// 1,000 candidates naming ten loopback UDP ports and ten loopback TCP ports
// (passive ICE-TCP candidates) the test listens on, cloud metadata
// (169.254.169.254), private, multicast and public addresses. Under both
// the strict policy (no loopback, no private ranges, UDP only) and the
// gateway's defaults (private ranges checked for pupils on the school's LAN,
// ICE-TCP on): at most the cap is accepted, not one packet or TCP
// connection reaches the listening sockets, none is sent to
// 169.254.0.0/16, multicast or unspecified addresses. Two well-behaved
// clients in the same room connect although their own (loopback)
// candidates are refused: the SFU learns their addresses from their checks
// (peer-reflexive).
func TestRogueCandidates(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name         string
		private, tcp bool
	}{{"strict", false, false}, {"gateway defaults", true, true}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			testRogueCandidates(t, tc.private, tc.tcp)
		})
	}
}

func testRogueCandidates(t *testing.T, private, tcp bool) {
	counter := &sendCounter{to: map[netip.Addr]int{}}
	s, err := sfu.New(sfu.WithConnWrapper(sfu.Config{ListenIP: "127.0.0.1", AllowPrivate: private, TCP: tcp, Logger: testLogger()},
		func(c net.PacketConn) net.PacketConn { counter.PacketConn = c; return counter }))
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	r := s.NewRoom(t.Name())
	t.Cleanup(r.Close)

	// Ten listening TCP sockets on loopback, counting every connection.
	var dials atomic.Int64
	var tcpPorts []int
	for range 10 {
		l, err := net.Listen("tcp4", "127.0.0.1:0")
		require.NoError(t, err)
		t.Cleanup(func() { _ = l.Close() })
		tcpPorts = append(tcpPorts, l.Addr().(*net.TCPAddr).Port)
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				dials.Add(1)
				_ = c.Close()
			}
		}()
	}

	// Ten listening sockets on loopback, counting every packet they get.
	var probes atomic.Int64
	var ports []int
	for range 10 {
		l, err := net.ListenPacket("udp4", "127.0.0.1:0")
		require.NoError(t, err)
		t.Cleanup(func() { _ = l.Close() })
		ports = append(ports, l.LocalAddr().(*net.UDPAddr).Port)
		go func() {
			buf := make([]byte, 1500)
			for {
				if _, _, err := l.ReadFrom(buf); err != nil {
					return
				}
				probes.Add(1)
			}
		}()
	}

	// The rogue client: a real offer without its own candidates, so ICE
	// stays checking whatever it names.
	rogue, err := r.AddPeer("rogue", nopSignal{})
	require.NoError(t, err)
	pc, err := webrtc.NewPeerConnection(webrtc.Configuration{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = pc.Close() })
	_, err = pc.AddTransceiverFromKind(webrtc.RTPCodecTypeAudio, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
	require.NoError(t, err)
	offer, err := pc.CreateOffer(nil)
	require.NoError(t, err)
	_, err = rogue.HandleOffer(offer.SDP)
	require.NoError(t, err)

	targets := []string{"169.254.169.254", "169.254.1.1", "10.0.0.1", "192.168.1.1", "172.16.0.1", "224.0.0.1", "0.0.0.0", "fe80::1", "::1"}
	accepted, refused := 0, 0
	for i := range 1000 {
		addr := "127.0.0.1"
		switch i % 4 {
		case 1:
			addr = targets[i%len(targets)]
		case 2:
			addr = fmt.Sprintf("203.0.113.%d", 1+i%250) // TEST-NET-3: public, routes nowhere
		}
		line := fmt.Sprintf("candidate:%d 1 udp 2130706431 %s %d typ host", i, addr, ports[i%len(ports)])
		if i%8 == 3 { // a passive TCP candidate: the SFU would have to dial it
			line = fmt.Sprintf("candidate:%d 1 tcp 1518280447 %s %d typ host tcptype passive", i, addr, tcpPorts[i%len(tcpPorts)])
		}
		switch err := rogue.AddCandidate(sfu.PCUp, sfu.Candidate{Candidate: line}); {
		case err == nil:
			accepted++
		case errors.Is(err, sfu.ErrCandidateRefused):
			refused++
		default:
			t.Fatalf("candidate %d: %v", i, err)
		}
	}
	require.LessOrEqual(t, accepted, 20, "at most the cap")
	require.Equal(t, 1000, accepted+refused)

	// Two well-behaved clients, whose own candidates are loopback.
	a, _ := connect(t, r, "teacher", sfutest.Options{Audio: true, Video: true})
	b, _ := connect(t, r, "pupil", sfutest.Options{Audio: true, Video: true})
	for _, cl := range []*sfutest.Client{a, b} {
		require.Eventually(t, cl.Connected, 10*time.Second, 20*time.Millisecond, "a client connects with its own candidates refused")
	}

	time.Sleep(2 * time.Second) // pion checks every 200 ms: probes would have arrived by now
	require.Zero(t, probes.Load(), "STUN checks reached the loopback listening sockets")
	require.Zero(t, dials.Load(), "the SFU dialled a client's TCP candidate")
	require.Zero(t, counter.sentTo(func(a netip.Addr) bool { return netip.MustParsePrefix("169.254.0.0/16").Contains(a) }),
		"packets sent to 169.254.0.0/16")
	require.Zero(t, counter.sentTo(func(a netip.Addr) bool { return a.IsMulticast() || a.IsUnspecified() }),
		"packets sent to multicast or unspecified addresses")
	if !private {
		require.Zero(t, counter.sentTo(func(a netip.Addr) bool { return a.IsPrivate() }), "packets sent to private addresses")
	}
	require.Positive(t, counter.sentTo(func(a netip.Addr) bool { return a.IsLoopback() }), "the clients' own connections are served")
}
