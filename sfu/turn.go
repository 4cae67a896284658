package sfu

import (
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // TURN REST credentials are HMAC-SHA1 by convention (coturn's use-auth-secret)
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/pion/turn/v2"
)

// TURN: a relay for clients whose network lets through neither UDP nor
// TCP to the media ports, only TURN's port or TLS to 443. The SFU can run
// one itself (pion/turn: UDP and TCP on one port and, with a certificate,
// TLS on another), or hand out credentials for an external one (coturn
// with static-auth-secret). Either way credentials are short-lived and
// derived from a shared secret (the TURN REST convention): username
// "<expiry unix time>:<participant>", password base64(HMAC-SHA1(secret,
// username)); nothing is stored.
//
// The embedded relay is no open relay: an allocation may only send to the
// SFU's own media addresses (its UDP sockets, and the advertised NAT 1:1
// address on the same port). Permissions for any other peer are refused,
// and so is every datagram to or from one, counted in TURNRefused.

// TURNConfig configures the relay and the ICE servers handed to clients.
type TURNConfig struct {
	// Embedded runs pion/turn on ListenIP: UDP and TCP on Port, and TLS on
	// TLSPort when Cert is set.
	Embedded bool
	ListenIP string // "" = every address
	Port     int
	TLSPort  int
	Cert     *tls.Certificate
	// RelayIP is the address clients are given for their relayed
	// candidates and reach the relay on; required with Embedded.
	RelayIP string
	// URLs are the turn:/turns: URLs handed to clients. With Embedded and
	// none given: turn:Host:Port (UDP and TCP) and turns:Host:TLSPort.
	URLs []string
	Host string // host name in the default URLs (the gateway's public host)
	// Secret is the shared secret credentials are derived from (required).
	Secret string
	// TTL is how long credentials stay valid (default 1 hour).
	TTL   time.Duration
	Realm string // default "chaperone"
}

// ICEServer is one entry of a browser's RTCConfiguration.iceServers.
type ICEServer struct {
	URLs       []string `json:"urls"`
	Username   string   `json:"username,omitempty"`
	Credential string   `json:"credential,omitempty"`
}

// defaultTURNTTL is how long credentials stay valid: a lesson's length
// and more, since a restart (ICE restart) reuses them.
const defaultTURNTTL = 2 * time.Hour

// ErrTURNConfig: the TURN configuration cannot work.
var ErrTURNConfig = errors.New("sfu: turn configuration")

// turnRelay is a running embedded relay.
type turnRelay struct {
	srv     *turn.Server
	refused atomic.Uint64
	allowed func(netip.AddrPort) bool
	log     *slog.Logger
}

// TURNCredentials returns the TURN REST username and password for who,
// valid until expires.
func TURNCredentials(secret, who string, expires time.Time) (username, password string) {
	username = strconv.FormatInt(expires.Unix(), 10) + ":" + who
	mac := hmac.New(sha1.New, []byte(secret))
	mac.Write([]byte(username))
	return username, base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// turnAuth checks a TURN REST username (expiry, optionally ":" and a
// label) and returns the long-term key for it.
func turnAuth(secret, realm string, now func() time.Time) turn.AuthHandler {
	return func(username, r string, _ net.Addr) ([]byte, bool) {
		ts, _, _ := strings.Cut(username, ":")
		exp, err := strconv.ParseInt(ts, 10, 64)
		if err != nil || exp < now().Unix() || r != realm {
			return nil, false
		}
		mac := hmac.New(sha1.New, []byte(secret))
		mac.Write([]byte(username))
		return turn.GenerateAuthKey(username, realm, base64.StdEncoding.EncodeToString(mac.Sum(nil))), true
	}
}

// startTURN starts the embedded relay; allowed says which peers
// allocations may exchange datagrams with.
func startTURN(cfg TURNConfig, allowed func(netip.AddrPort) bool, log *slog.Logger) (*turnRelay, error) {
	relayIP := net.ParseIP(cfg.RelayIP)
	if relayIP == nil {
		return nil, fmt.Errorf("%w: relay IP %q is not an IP address", ErrTURNConfig, cfg.RelayIP)
	}
	if cfg.Port <= 0 || cfg.Port > 65535 {
		return nil, fmt.Errorf("%w: port %d", ErrTURNConfig, cfg.Port)
	}
	t := &turnRelay{allowed: allowed, log: log}
	listenHost := cfg.ListenIP
	relayBind := cfg.ListenIP
	if relayBind == "" {
		relayBind = "0.0.0.0"
	}
	gen := &filteredRelay{inner: &turn.RelayAddressGeneratorStatic{RelayAddress: relayIP, Address: relayBind}, t: t}
	perm := func(_ net.Addr, peer net.IP) bool {
		a, ok := netip.AddrFromSlice(peer)
		if ok && t.allowedIP(a.Unmap()) {
			return true
		}
		t.refuse(peer.String(), "permission")
		return false
	}
	addr := net.JoinHostPort(listenHost, strconv.Itoa(cfg.Port))
	udp, err := net.ListenPacket("udp4", addr)
	if err != nil {
		return nil, fmt.Errorf("sfu: turn: listen udp %s: %w", addr, err)
	}
	tcp, err := net.Listen("tcp4", addr)
	if err != nil {
		_ = udp.Close()
		return nil, fmt.Errorf("sfu: turn: listen tcp %s: %w", addr, err)
	}
	sc := turn.ServerConfig{
		Realm:             orDefault(cfg.Realm, "chaperone"),
		AuthHandler:       turnAuth(cfg.Secret, orDefault(cfg.Realm, "chaperone"), time.Now),
		LoggerFactory:     pionLoggerFactory{log: log},
		PacketConnConfigs: []turn.PacketConnConfig{{PacketConn: udp, RelayAddressGenerator: gen, PermissionHandler: perm}},
		ListenerConfigs:   []turn.ListenerConfig{{Listener: tcp, RelayAddressGenerator: gen, PermissionHandler: perm}},
	}
	closers := []func() error{udp.Close, tcp.Close}
	if cfg.Cert != nil && cfg.TLSPort > 0 {
		taddr := net.JoinHostPort(listenHost, strconv.Itoa(cfg.TLSPort))
		tl, err := tls.Listen("tcp4", taddr, &tls.Config{Certificates: []tls.Certificate{*cfg.Cert}, MinVersion: tls.VersionTLS12})
		if err != nil {
			for _, c := range closers {
				_ = c()
			}
			return nil, fmt.Errorf("sfu: turn: listen tls %s: %w", taddr, err)
		}
		closers = append(closers, tl.Close)
		sc.ListenerConfigs = append(sc.ListenerConfigs, turn.ListenerConfig{Listener: tl, RelayAddressGenerator: gen, PermissionHandler: perm})
	}
	if t.srv, err = turn.NewServer(sc); err != nil {
		for _, c := range closers {
			_ = c()
		}
		return nil, fmt.Errorf("sfu: turn: %w", err)
	}
	log.Info("turn relay listening", slog.String("addr", addr), slog.Int("tls_port", cfg.TLSPort), slog.String("relay_ip", cfg.RelayIP))
	return t, nil
}

// allowedIP reports whether any allowed peer has address a.
func (t *turnRelay) allowedIP(a netip.Addr) bool {
	// Every allowed peer is on one of a few ports; ask for each.
	return t.allowed(netip.AddrPortFrom(a, 0))
}

func (t *turnRelay) refuse(peer, what string) {
	if n := t.refused.Add(1); n == 1 || n%1000 == 0 {
		t.log.Warn("turn: refused to relay to a peer that is not the gateway's media address",
			slog.String("peer", peer), slog.String("at", what), slog.Uint64("refused", n))
	}
}

func (t *turnRelay) close() error {
	if err := t.srv.Close(); err != nil {
		return fmt.Errorf("sfu: close turn: %w", err)
	}
	return nil
}

// filteredRelay makes each allocation's relay socket a peerFilterConn.
type filteredRelay struct {
	inner turn.RelayAddressGenerator
	t     *turnRelay
}

func (g *filteredRelay) Validate() error {
	if err := g.inner.Validate(); err != nil {
		return fmt.Errorf("sfu: turn relay: %w", err)
	}
	return nil
}

func (g *filteredRelay) AllocatePacketConn(network string, requestedPort int) (net.PacketConn, net.Addr, error) {
	c, a, err := g.inner.AllocatePacketConn(network, requestedPort)
	if err != nil {
		return nil, nil, fmt.Errorf("sfu: turn allocate: %w", err)
	}
	return &peerFilterConn{PacketConn: c, t: g.t}, a, nil
}

func (g *filteredRelay) AllocateConn(network string, requestedPort int) (net.Conn, net.Addr, error) {
	c, a, err := g.inner.AllocateConn(network, requestedPort)
	if err != nil {
		return nil, nil, fmt.Errorf("sfu: turn allocate: %w", err)
	}
	return c, a, nil
}

// peerFilterConn is a relay socket that exchanges datagrams only with the
// SFU's media addresses (address and port).
type peerFilterConn struct {
	net.PacketConn
	t *turnRelay
}

func (c *peerFilterConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	if ap := addrPortOf(addr); !ap.IsValid() || !c.t.allowed(ap) {
		c.t.refuse(addr.String(), "send")
		return len(b), nil // dropped, as the network would
	}
	n, err := c.PacketConn.WriteTo(b, addr)
	if err != nil {
		return n, fmt.Errorf("sfu: turn relay: %w", err)
	}
	return n, nil
}

func (c *peerFilterConn) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		n, from, err := c.PacketConn.ReadFrom(b)
		if err != nil {
			return n, from, err //nolint:wrapcheck // pion/turn checks for net errors
		}
		if ap := addrPortOf(from); ap.IsValid() && c.t.allowed(ap) {
			return n, from, nil
		}
		c.t.refuse(from.String(), "receive")
	}
}

// turnAllowed returns which peers the SFU's relay may talk to: the SFU's
// UDP sockets and, for a NAT 1:1 address, that address on their ports.
// Port 0 asks about the address alone (permissions are per address).
func (s *SFU) turnAllowed() func(netip.AddrPort) bool {
	var peers []netip.AddrPort
	for _, sk := range s.socks {
		if ap := addrPortOf(sk.conn.LocalAddr()); ap.IsValid() {
			peers = append(peers, ap)
			if s.natIP != nil {
				if a, ok := netip.AddrFromSlice(s.natIP); ok {
					peers = append(peers, netip.AddrPortFrom(a.Unmap(), ap.Port()))
				}
			}
		}
	}
	return func(ap netip.AddrPort) bool {
		for _, p := range peers {
			if p.Addr() == ap.Addr() && (ap.Port() == 0 || p.Port() == ap.Port()) && !p.Addr().IsUnspecified() {
				return true
			}
		}
		return false
	}
}

// ICEServers returns the ICE servers for one participant's connections:
// the TURN URLs with fresh credentials, or none without TURN.
func (s *SFU) ICEServers(participant string) []ICEServer {
	c := s.turnCfg
	if c == nil || len(c.URLs) == 0 {
		return []ICEServer{}
	}
	ttl := c.TTL
	if ttl <= 0 {
		ttl = defaultTURNTTL
	}
	user, pass := TURNCredentials(c.Secret, participant, time.Now().Add(ttl))
	return []ICEServer{{URLs: c.URLs, Username: user, Credential: pass}}
}

// TURNRefused returns how many permissions and datagrams the embedded
// relay refused because their peer was not the gateway's media address.
func (s *SFU) TURNRefused() uint64 {
	if s.turn == nil {
		return 0
	}
	return s.turn.refused.Load()
}

// setupTURN validates cfg, fills in its default URLs and starts the
// embedded relay if asked.
func (s *SFU) setupTURN(cfg *TURNConfig) error {
	if cfg == nil {
		return nil
	}
	c := *cfg
	if c.Secret == "" {
		return fmt.Errorf("%w: no shared secret", ErrTURNConfig)
	}
	if c.Embedded {
		if len(c.URLs) == 0 {
			host := orDefault(c.Host, c.RelayIP)
			hp := net.JoinHostPort(host, strconv.Itoa(c.Port))
			c.URLs = []string{"turn:" + hp + "?transport=udp", "turn:" + hp + "?transport=tcp"}
			if c.Cert != nil && c.TLSPort > 0 {
				c.URLs = append(c.URLs, "turns:"+net.JoinHostPort(host, strconv.Itoa(c.TLSPort))+"?transport=tcp")
			}
		}
		t, err := startTURN(c, s.turnAllowed(), s.log.With(slog.String("part", "turn")))
		if err != nil {
			return err
		}
		s.turn = t
	}
	if len(c.URLs) == 0 {
		return fmt.Errorf("%w: no TURN URLs", ErrTURNConfig)
	}
	s.turnCfg = &c
	return nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
