package sfu_test

import (
	"errors"
	"net"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pion/turn/v2"
	"github.com/pion/webrtc/v3"
	"github.com/stretchr/testify/require"

	"github.com/chaperone-edu/chaperone/sfu"
	"github.com/chaperone-edu/chaperone/sfu/sfutest"
)

const testTURNSecret = "test-turn-secret-0123456789"

// newTURNSFU is an SFU on 127.0.0.1 with its embedded TURN relay on a
// port of 127.0.0.1 that is free for both UDP and TCP. A port picked this
// way can be taken by another test (a TCP client's ephemeral port, say)
// before the relay binds it, so a bind refused as "address in use" is
// tried again on a new port, a bounded number of times.
// withTLS: the relay also listens for TLS there, with the test
// CA's certificate for 127.0.0.1 (main_test.go).
func newTURNSFU(t *testing.T, withTLS ...bool) (*sfu.SFU, int) {
	t.Helper()
	var lastErr error
	for attempt := 0; attempt < 20; attempt++ {
		port, ok := freeUDPAndTCPPort(t)
		if !ok {
			continue
		}
		cfg := &sfu.TURNConfig{Embedded: true, ListenIP: "127.0.0.1", Port: port, RelayIP: "127.0.0.1", Secret: testTURNSecret}
		if len(withTLS) > 0 && withTLS[0] {
			tlsPort, ok := freeUDPAndTCPPort(t)
			if !ok {
				continue
			}
			cfg.TLSPort, cfg.Cert = tlsPort, &loopbackCert
		}
		s, err := sfu.New(sfu.Config{ListenIP: "127.0.0.1", Loopback: true, Logger: testLogger(), TURN: cfg})
		if errors.Is(err, syscall.EADDRINUSE) {
			lastErr = err
			continue
		}
		require.NoError(t, err)
		t.Cleanup(func() { _ = s.Close() })
		return s, port
	}
	t.Fatalf("no free port for the TURN relay after 20 tries: %v", lastErr)
	return nil, 0
}

// freeUDPAndTCPPort is a port of 127.0.0.1 that was free for UDP and TCP a
// moment ago; false when the UDP port picked was taken for TCP.
func freeUDPAndTCPPort(t *testing.T) (int, bool) {
	t.Helper()
	u, err := net.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer func() { _ = u.Close() }()
	port := u.LocalAddr().(*net.UDPAddr).Port
	l, err := net.Listen("tcp4", net.JoinHostPort("127.0.0.1", itoa(port)))
	if err != nil {
		return 0, false
	}
	require.NoError(t, l.Close())
	return port, true
}

// turnClient allocates a relay on the SFU's TURN server with user/pass.
func turnClient(t *testing.T, port int, user, pass string) (*turn.Client, error) {
	t.Helper()
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	addr := net.JoinHostPort("127.0.0.1", itoa(port))
	c, err := turn.NewClient(&turn.ClientConfig{STUNServerAddr: addr, TURNServerAddr: addr, Username: user, Password: pass,
		Realm: "chaperone", Conn: conn, RTO: 200 * time.Millisecond})
	require.NoError(t, err)
	t.Cleanup(c.Close)
	require.NoError(t, c.Listen())
	return c, nil
}

// TestTURNNotAnOpenRelay: a client with valid credentials gets a relay, may
// send through it to the SFU's media address, and is refused for any other
// peer (another port on loopback the test listens on): nothing reaches
// that socket, and the refusals are counted. Bad and expired credentials
// get no allocation.
func TestTURNNotAnOpenRelay(t *testing.T) {
	t.Parallel()
	s, port := newTURNSFU(t)
	servers := s.ICEServers("pupil-1")
	require.Len(t, servers, 1)
	require.Contains(t, servers[0].URLs, "turn:127.0.0.1:"+itoa(port)+"?transport=udp")
	require.Regexp(t, `^\d+:pupil-1$`, servers[0].Username)

	// Two victims: another port on the gateway's own address (allowed by
	// address, dropped by port) and another address (refused permission).
	var victims []net.PacketConn
	got := make(chan string, 2)
	for _, ip := range []string{"127.0.0.1", "127.0.0.2"} {
		v, err := net.ListenPacket("udp4", ip+":0")
		require.NoError(t, err)
		t.Cleanup(func() { _ = v.Close() })
		victims = append(victims, v)
		go func() {
			buf := make([]byte, 1500)
			if _, _, err := v.ReadFrom(buf); err == nil {
				got <- v.LocalAddr().String()
			}
		}()
	}

	c, _ := turnClient(t, port, servers[0].Username, servers[0].Credential)
	relay, err := c.Allocate()
	require.NoError(t, err, "valid credentials get a relay")
	t.Cleanup(func() { _ = relay.Close() })
	sfuAddr, err := net.ResolveUDPAddr("udp4", s.UDPAddr())
	require.NoError(t, err)
	_, err = relay.WriteTo([]byte("to the gateway"), sfuAddr)
	require.NoError(t, err, "the gateway's media address is allowed")
	for range 3 {
		_, _ = relay.WriteTo([]byte("to another port"), victims[0].LocalAddr())
	}
	_, err = relay.WriteTo([]byte("to another host"), victims[1].LocalAddr())
	require.Error(t, err, "a permission for another address is refused")
	select {
	case v := <-got:
		t.Fatalf("the relay sent to %s, which is not the gateway's media address", v)
	case <-time.After(500 * time.Millisecond):
	}
	require.GreaterOrEqual(t, s.TURNRefused(), uint64(2), "refusals are counted")

	for name, cred := range map[string][2]string{
		"bad password": {servers[0].Username, "not-the-password"},
		"expired":      expiredCreds(),
		"no expiry":    {"pupil-1", "x"},
	} {
		c, _ := turnClient(t, port, cred[0], cred[1])
		_, err := c.Allocate()
		require.Error(t, err, name)
	}
}

func expiredCreds() [2]string {
	u, p := sfu.TURNCredentials(testTURNSecret, "pupil-1", time.Now().Add(-time.Minute))
	return [2]string{u, p}
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestTURNRelayOnlyClient: a client that may use relayed candidates only
// (a network that lets through nothing but TURN) joins with the credentials
// the SFU hands out; media flows both ways through the embedded relay, and
// the SFU's own writer sends it (to the relay's address).
func TestTURNRelayOnlyClient(t *testing.T) {
	t.Parallel()
	s, _ := newTURNSFU(t)
	r := s.NewRoom(t.Name())
	t.Cleanup(r.Close)
	var ice []webrtc.ICEServer
	for _, srv := range s.ICEServers("bob") {
		ice = append(ice, webrtc.ICEServer{URLs: srv.URLs, Username: srv.Username, Credential: srv.Credential})
	}
	alice, _ := connect(t, r, "alice", sfutest.Options{Audio: true, Video: true})
	bob, bobPeer := connect(t, r, "bob", sfutest.Options{Audio: true, Video: true, ICEServers: ice, RelayOnly: true})
	openAll(r, "alice", "bob")
	waitReceiving(t, bob, "alice", "video", 10*time.Second)
	waitReceiving(t, alice, "bob", "video", 10*time.Second)
	require.True(t, sfu.OwnSRTP(bobPeer))
	require.Zero(t, s.ViaPion())
	require.Zero(t, s.TURNRefused())
}

// TestTURNOverTLS: a client on a network that lets through nothing but TLS
// to the relay's TLS port (relayed candidates only, and only a turns: URL)
// joins; media flows both ways through the relay, the SFU's own writer
// sends it, and the certificate is checked (the test CA, main_test.go).
func TestTURNOverTLS(t *testing.T) {
	t.Parallel()
	s, _ := newTURNSFU(t, true)
	r := s.NewRoom(t.Name())
	t.Cleanup(r.Close)
	var ice []webrtc.ICEServer
	for _, srv := range s.ICEServers("bob") {
		for _, u := range srv.URLs {
			if strings.HasPrefix(u, "turns:") {
				ice = append(ice, webrtc.ICEServer{URLs: []string{u}, Username: srv.Username, Credential: srv.Credential})
			}
		}
	}
	require.Len(t, ice, 1, "the SFU hands out a turns: URL")
	alice, _ := connect(t, r, "alice", sfutest.Options{Audio: true, Video: true})
	bob, bobPeer := connect(t, r, "bob", sfutest.Options{Audio: true, Video: true, ICEServers: ice, RelayOnly: true})
	openAll(r, "alice", "bob")
	waitReceiving(t, bob, "alice", "video", 10*time.Second)
	waitReceiving(t, alice, "bob", "video", 10*time.Second)
	require.True(t, sfu.OwnSRTP(bobPeer))
	require.Zero(t, s.ViaPion())
	require.Zero(t, s.TURNRefused())
}
