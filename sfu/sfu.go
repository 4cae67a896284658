package sfu

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"

	"github.com/pion/dtls/v2"
	"github.com/pion/ice/v2"
	"github.com/pion/webrtc/v3"
)

// Errors returned (wrapped with context) by the SFU; compare with errors.Is.
var (
	// ErrUnknownPC: a pc name other than "up" or "down".
	ErrUnknownPC = errors.New("sfu: unknown peer connection (want \"up\" or \"down\")")
	// ErrClosed: the SFU, room or peer has been closed.
	ErrClosed = errors.New("sfu: closed")
	// ErrBadSDP: a session description (or candidate) that could not be applied.
	ErrBadSDP = errors.New("sfu: bad session description")
)

// PC names used in signalling.
const (
	PCUp   = "up"
	PCDown = "down"
)

// Config configures an SFU. The zero value listens on an ephemeral UDP port on
// every non-loopback IPv4 interface.
type Config struct {
	UDPPort int // one UDP port for all ICE traffic (ICE UDP mux); 0 = an ephemeral port
	// TCP adds passive ICE-TCP host candidates on one TCP port, TCPPort (0:
	// an ephemeral port), for clients whose network drops UDP (tcp.go).
	TCP       bool
	TCPPort   int
	ListenIP  string   // "" = all interfaces; tests use "127.0.0.1"
	PublicIPs []string // NAT 1:1 host IPs to advertise (config ice_public_ip); optional
	Loopback  bool     // advertise loopback candidates, and check clients' (dev mode and tests)
	// AllowPrivate lets clients' candidates name private addresses (10/8,
	// 172.16/12, 192.168/16, fc00::/7): pupils on the school's own network.
	AllowPrivate bool
	// TURN, when set, hands clients TURN credentials in their ICE servers
	// and may run a relay (turn.go).
	TURN   *TURNConfig
	Logger *slog.Logger

	wrapConn func(net.PacketConn) net.PacketConn // tests: wraps the UDP sockets
	// stock, for the benchmark's naive forwarder: pion as it comes, on a
	// net.UDPConn, with no batching and no own SRTP writer.
	stock bool
}

// SFU is a selective forwarding unit: one WebRTC API and one UDP port shared
// by all its rooms.
type SFU struct {
	api    *webrtc.API
	mux    ice.UDPMux
	tcpMux ice.TCPMux // nil without Config.TCP
	addr   string
	log    *slog.Logger
	socks  []sfuSock    // the UDP sockets
	tcp    *tcpListener // the ICE-TCP listener; nil without Config.TCP
	// turn is the embedded TURN relay, if any; turnCfg the TURN servers
	// handed to clients (nil without TURN).
	turn    *turnRelay
	turnCfg *TURNConfig
	natIP   net.IP     // the sole NAT 1:1 IP (Config.PublicIPs), if any
	addrs   AddrPolicy // which remote candidates are checked (candidate.go)
	// viaPion counts forwarded packets the SFU's own writer left to pion's
	// (downout.go).
	viaPion atomic.Uint64
	stock   bool
	probes  probes // open connection checks (probe.go)

	mu     sync.Mutex
	rooms  map[*Room]struct{}
	closed bool
}

// New binds the UDP port and returns an SFU ready for rooms.
func New(cfg Config) (*SFU, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	for _, ip := range cfg.PublicIPs {
		if net.ParseIP(ip).To4() == nil {
			return nil, fmt.Errorf("sfu: public IP %q is not an IPv4 address", ip)
		}
	}
	lf := pionLoggerFactory{log: log}
	mux, socks, addr, err := listenMux(cfg, lf.NewLogger("ice-mux"))
	if err != nil {
		return nil, err
	}
	s := &SFU{mux: mux, addr: addr, log: log, socks: socks, stock: cfg.stock, natIP: soleIP(cfg.PublicIPs),
		addrs: AddrPolicy{Loopback: cfg.Loopback, Private: cfg.AllowPrivate}, rooms: map[*Room]struct{}{}}
	var tcpMux ice.TCPMux
	if cfg.TCP {
		if s.tcp, err = listenTCP(net.ParseIP(cfg.ListenIP), cfg.TCPPort, hasIPv6(socks), log); err != nil {
			_ = mux.Close()
			return nil, err
		}
		// No write buffer in pion's mux: tcpConn queues every frame.
		tcpMux = ice.NewTCPMuxDefault(ice.TCPMuxParams{Listener: s.tcp, Logger: lf.NewLogger("ice-tcp"), ReadBufferSize: 64})
	}
	if s.api, err = newAPI(cfg, mux, tcpMux, socks, lf); err != nil {
		s.closeMuxes(tcpMux)
		return nil, err
	}
	s.tcpMux = tcpMux
	if err := s.setupTURN(cfg.TURN); err != nil {
		s.closeMuxes(tcpMux)
		return nil, err
	}
	log.Info("sfu listening", slog.String("udp", addr), slog.String("tcp", s.TCPAddr()))
	return s, nil
}

// closeMuxes closes the UDP mux and, if there is one, the TCP mux.
func (s *SFU) closeMuxes(tcpMux ice.TCPMux) {
	_ = s.mux.Close()
	if tcpMux != nil {
		_ = tcpMux.Close()
	}
	if s.tcp != nil {
		_ = s.tcp.Close()
	}
}

// TCPAddr returns the address of the ICE-TCP listener, or "" without one.
func (s *SFU) TCPAddr() string {
	if s.tcp == nil {
		return ""
	}
	return s.tcp.Addr().String()
}

// newAPI builds the one pion API of an SFU: Opus and VP8 only, no default
// interceptors (the SFU handles PLI itself), UDP4 through the mux.
func newAPI(cfg Config, mux ice.UDPMux, tcpMux ice.TCPMux, socks []sfuSock, lf pionLoggerFactory) (*webrtc.API, error) {
	me := &webrtc.MediaEngine{}
	if err := me.RegisterCodec(webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{
			MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2,
			SDPFmtpLine: "minptime=10;useinbandfec=1",
		},
		PayloadType: 111,
	}, webrtc.RTPCodecTypeAudio); err != nil {
		return nil, fmt.Errorf("sfu: register opus: %w", err)
	}
	if err := me.RegisterCodec(webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{
			MimeType: webrtc.MimeTypeVP8, ClockRate: 90000,
			RTCPFeedback: []webrtc.RTCPFeedback{
				{Type: webrtc.TypeRTCPFBNACK},
				{Type: webrtc.TypeRTCPFBNACK, Parameter: "pli"},
				{Type: webrtc.TypeRTCPFBCCM, Parameter: "fir"},
			},
		},
		PayloadType: 96,
	}, webrtc.RTPCodecTypeVideo); err != nil {
		return nil, fmt.Errorf("sfu: register vp8: %w", err)
	}

	se := webrtc.SettingEngine{LoggerFactory: lf}
	se.SetICEUDPMux(mux)
	types := []webrtc.NetworkType{webrtc.NetworkTypeUDP4}
	if hasIPv6(socks) {
		types = append(types, webrtc.NetworkTypeUDP6)
	}
	if tcpMux != nil {
		se.SetICETCPMux(tcpMux)
		types = append(types, webrtc.NetworkTypeTCP4)
		if hasIPv6(socks) {
			types = append(types, webrtc.NetworkTypeTCP6)
		}
		// TCP host candidates on the addresses of the UDP sockets only (pion
		// otherwise takes every interface's): the UDP mux ignores this filter.
		ips := make([]net.IP, 0, len(socks))
		for _, sk := range socks {
			if a, ok := sk.conn.LocalAddr().(*net.UDPAddr); ok && !a.IP.IsUnspecified() {
				ips = append(ips, a.IP)
			}
		}
		se.SetIPFilter(func(ip net.IP) bool {
			for _, a := range ips {
				if a.Equal(ip) {
					return true
				}
			}
			return false
		})
	}
	se.SetNetworkTypes(types)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetIncludeLoopbackCandidate(cfg.Loopback)
	if len(cfg.PublicIPs) > 0 {
		se.SetNAT1To1IPs(cfg.PublicIPs, webrtc.ICECandidateTypeHost)
	}
	// The client is the DTLS client on both connections (it offers actpass
	// on up, answers active on down), so only clients retransmit handshake
	// flights and the server needs no timers for them.
	if err := se.SetAnsweringDTLSRole(webrtc.DTLSRoleServer); err != nil {
		return nil, fmt.Errorf("sfu: dtls role: %w", err)
	}
	// AES-GCM first: pion's srtp encrypts it without allocating.
	se.SetSRTPProtectionProfiles(dtls.SRTP_AEAD_AES_128_GCM, dtls.SRTP_AES128_CM_HMAC_SHA1_80)

	return webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithSettingEngine(se)), nil
}

// ViaPion returns the number of forwarded RTP packets sent through pion's
// SRTP writer rather than the SFU's own: those of connections with a profile
// the SFU does not encrypt itself, or whose ICE pair it could not place.
func (s *SFU) ViaPion() uint64 { return s.viaPion.Load() }

// UDPAddr returns the address the ICE mux is bound to.
func (s *SFU) UDPAddr() string { return s.addr }

// NewRoom returns a new, empty room. A room is closed by Room.Close or by
// SFU.Close. Rooms created after Close are closed already.
func (s *SFU) NewRoom(id string) *Room {
	r := newRoom(s, id)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		r.closed = true
		return r
	}
	s.rooms[r] = struct{}{}
	return r
}

func (s *SFU) forget(r *Room) {
	s.mu.Lock()
	delete(s.rooms, r)
	s.mu.Unlock()
}

// Close closes every room and releases the UDP port.
func (s *SFU) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	rooms := make([]*Room, 0, len(s.rooms))
	for r := range s.rooms {
		rooms = append(rooms, r)
	}
	s.mu.Unlock()
	for _, r := range rooms {
		r.Close()
	}
	s.probes.closeAll()
	if s.turn != nil {
		if err := s.turn.close(); err != nil {
			s.log.Warn("close turn", slog.Any("err", err))
		}
	}
	if s.tcpMux != nil {
		_ = s.tcpMux.Close()
	}
	if s.tcp != nil {
		_ = s.tcp.Close()
	}
	if err := s.mux.Close(); err != nil {
		return fmt.Errorf("sfu: close udp mux: %w", err)
	}
	return nil
}

// hasIPv6 reports whether any of the UDP sockets is on an IPv6 address.
func hasIPv6(socks []sfuSock) bool {
	for _, sk := range socks {
		if a, ok := sk.conn.LocalAddr().(*net.UDPAddr); ok && a.IP.To4() == nil {
			return true
		}
	}
	return false
}

// soleIP is the NAT 1:1 IP pion gives every host candidate when exactly one
// is configured (several plain IPs are refused by pion).
func soleIP(ips []string) net.IP {
	if len(ips) != 1 {
		return nil
	}
	return net.ParseIP(ips[0])
}
