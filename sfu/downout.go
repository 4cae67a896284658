package sfu

import (
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"reflect"
	"sync"
	"sync/atomic"

	"github.com/pion/dtls/v2"
	"github.com/pion/rtp"
	"github.com/pion/srtp/v2"
	"github.com/pion/webrtc/v3"
)

// The SFU's own write path for forwarded RTP.
//
// pion v3 gives a TrackLocal one writer, TrackLocalContext.WriteStream(),
// and every packet written to it allocates four times on its way to the
// socket (an interceptor.Attributes map, the GCM nonce, the ICE pair in a
// closure, a boxed time.Time) and goes through five layers of locks and
// interfaces (BENCHMARKS.md). So for each subscriber's down connection the
// SFU keeps, next to pion's SRTP session, its own encryption for the
// negotiated profile (srtp.go: AES-GCM or AES-CM with HMAC-SHA1-80) with the
// same keys, and the address pion's
// ICE selected; forwarded packets are encrypted straight into a slot of the
// forwarding goroutine's send batch (sendbatch_linux.go), which one sendmmsg
// sends when the fan-out ends. RTCP, DTLS and STUN stay with pion.
//
// pion v3 does not export the SRTP keys, so they are exported from the DTLS
// connection the same way pion does (RFC 5764 §4.2), reaching the
// connection through the transport's unexported field: dtlsConnOf. That is
// pinned to the pion version in go.mod; TestOwnSRTPInUse fails if an upgrade
// moves it, and at run time the SFU then logs it and goes on with pion's
// writer, as it does for a connection that negotiated another profile.
//
// Only one of the two encryptors ever writes a given SSRC (srtpWriter), and
// its sentWindow refuses any packet that would reuse an SRTP index with
// other content.

// downOut is one subscriber's down connection as the SFU's own writer sees
// it: set from pion's callbacks, read on the forwarding path.
type downOut struct {
	socks   []sfuSock    // the SFU's UDP sockets
	tcp     *tcpListener // the SFU's ICE-TCP connections; nil without ICE-TCP
	log     *slog.Logger
	viaPion *atomic.Uint64 // the SFU's count of packets left to pion's writer

	keys atomic.Pointer[srtpKeys] // nil: not connected, closed, or a profile left to pion
	to   atomic.Pointer[sendTo]   // nil: no selected pair, not on one of socks, or ICE failed
	// pionOnly: pion writes this connection's RTP (another profile, or a
	// pair the SFU cannot place).
	pionOnly atomic.Bool
	natIP    net.IP // the NAT 1:1 IP host candidates carry, if configured
	warned   atomic.Bool

	ssrcMu sync.Mutex
	ssrcs  map[uint32]*ssrcOut
}

// sendTo is a selected candidate pair as a socket and a destination: dst
// for batched sends on the SFU's own socket; conn (what pion writes to,
// which a test may have wrapped) and addr for single ones.
type sendTo struct {
	conn net.PacketConn
	addr *net.UDPAddr
	dst  sockDst
	tcp  *tcpConn // an ICE-TCP pair: frames are queued on this connection instead
}

// sfuSock is one of the SFU's UDP sockets: conn as the ICE mux writes to it,
// own the SFU's socket underneath (nil for a stock net.UDPConn).
type sfuSock struct {
	conn net.PacketConn
	own  *udpSocket
}

// watchDown follows pc's DTLS and ICE transports for the SFU's own writer.
func (s *SFU) watchDown(pc *webrtc.PeerConnection, log *slog.Logger) *downOut {
	if s.stock {
		return nil
	}
	o := &downOut{socks: s.socks, tcp: s.tcp, log: log, viaPion: &s.viaPion, natIP: s.natIP}
	dt := pc.SCTP().Transport()
	dt.ICETransport().OnSelectedCandidatePairChange(o.pairChanged)
	dt.OnStateChange(func(st webrtc.DTLSTransportState) {
		// pion calls this holding the transport's lock, in the goroutine
		// that ran the handshake; dt's own methods would deadlock here.
		switch st {
		case webrtc.DTLSTransportStateConnected:
			o.connected(dtlsConnOf(dt))
		case webrtc.DTLSTransportStateClosed, webrtc.DTLSTransportStateFailed:
			o.keys.Store(nil)
		}
	})
	return o
}

// connected exports the SFU's SRTP keys from the finished handshake.
func (o *downOut) connected(conn *dtls.Conn) {
	if conn == nil {
		o.log.Warn("sfu: cannot reach this pion version's DTLS connection; forwarding through pion's SRTP writer")
		o.pionOnly.Store(true)
		return
	}
	profile, ok := conn.SelectedSRTPProtectionProfile()
	var sp srtp.ProtectionProfile
	switch {
	case ok && profile == dtls.SRTP_AEAD_AES_128_GCM:
		sp = srtp.ProtectionProfileAeadAes128Gcm
	case ok && profile == dtls.SRTP_AEAD_AES_256_GCM:
		sp = srtp.ProtectionProfileAeadAes256Gcm
	case ok && profile == dtls.SRTP_AES128_CM_HMAC_SHA1_80:
		sp = srtp.ProtectionProfileAes128CmHmacSha1_80
	default:
		o.log.Warn("sfu: SRTP profile not supported by the SFU's writer; forwarding through pion's", slog.Int("profile", int(profile)))
		o.pionOnly.Store(true)
		return
	}
	state := conn.ConnectionState()
	isClient, ok := dtlsIsClient(&state)
	if !ok {
		o.log.Warn("sfu: cannot read this pion version's DTLS role; forwarding through pion's SRTP writer")
		o.pionOnly.Store(true)
		return
	}
	cfg := srtp.Config{Profile: sp}
	if err := cfg.ExtractSessionKeysFromDTLS(&state, isClient); err != nil {
		o.log.Warn("sfu: export SRTP keys; forwarding through pion's SRTP writer", slog.Any("err", err))
		o.pionOnly.Store(true)
		return
	}
	k, err := newSRTPKeys(sp, cfg.Keys.LocalMasterKey, cfg.Keys.LocalMasterSalt)
	if err != nil {
		o.log.Warn("sfu: SRTP keys; forwarding through pion's SRTP writer", slog.Any("err", err))
		o.pionOnly.Store(true)
		return
	}
	o.keys.Store(k)
}

// pairChanged points the writer at ICE's newly selected pair: the SFU socket
// its local candidate is on and its remote address. A pair the SFU cannot
// place leaves the connection to pion's writer (if the SFU's has not sent on
// it yet), with a warning once.
func (o *downOut) pairChanged(p *webrtc.ICECandidatePair) {
	if p == nil || p.Local == nil || p.Remote == nil {
		o.to.Store(nil)
		return
	}
	to := o.place(p)
	if to == nil {
		o.to.Store(nil)
		o.pionOnly.Store(true)
		if !o.warned.Swap(true) {
			o.log.Warn("sfu: cannot place the selected ICE pair on one of the SFU's sockets; this connection's media goes through pion's SRTP writer",
				slog.String("local", p.Local.String()), slog.String("remote", p.Remote.String()))
		}
		return
	}
	o.to.Store(to)
}

// place returns where the SFU's writer sends for the pair: a UDP socket and
// a destination, or an ICE-TCP connection; nil if it is neither.
func (o *downOut) place(p *webrtc.ICECandidatePair) *sendTo {
	ip := net.ParseIP(p.Remote.Address)
	if ip == nil {
		return nil
	}
	switch p.Remote.Protocol {
	case webrtc.ICEProtocolTCP:
		if o.tcp == nil || p.Local.Protocol != webrtc.ICEProtocolTCP {
			return nil
		}
		a, _ := netip.AddrFromSlice(ip)
		c := o.tcp.conn(netip.AddrPortFrom(a.Unmap(), p.Remote.Port))
		if c == nil {
			return nil
		}
		return &sendTo{tcp: c}
	case webrtc.ICEProtocolUDP:
		sock := o.socketOf(p.Local)
		if sock == nil {
			return nil
		}
		addr := &net.UDPAddr{IP: ip, Port: int(p.Remote.Port)}
		return &sendTo{conn: sock.conn, addr: addr, dst: makeDst(sock.own, addr)}
	}
	return nil
}

// socketOf returns the SFU socket a local host candidate is on, as pion's
// ICE agent chose it (ice/v2 gatherCandidatesLocalUDPMux): the socket whose
// address is the candidate's; with a NAT 1:1 IP, which every host candidate
// carries, the first socket, since pion keeps only the first candidate of
// each address.
func (o *downOut) socketOf(c *webrtc.ICECandidate) *sfuSock {
	if len(o.socks) == 1 {
		return &o.socks[0]
	}
	local := net.ParseIP(c.Address)
	if o.natIP != nil && local.Equal(o.natIP) {
		if len(o.socks) == 0 {
			return nil
		}
		return &o.socks[0]
	}
	for i, s := range o.socks {
		if a, ok := s.conn.LocalAddr().(*net.UDPAddr); ok && a.IP.Equal(local) && a.Port == int(c.Port) {
			return &o.socks[i]
		}
	}
	return nil
}

// iceStateChanged stops the SFU's writer when ICE has failed or closed: pion
// clears its selected pair then without telling the pair handler, and media
// must not go on to an address that no longer answers (RFC 7675).
func (o *downOut) iceStateChanged(st webrtc.ICEConnectionState) {
	if o != nil && (st == webrtc.ICEConnectionStateFailed || st == webrtc.ICEConnectionStateClosed) {
		o.to.Store(nil)
	}
}

// dtlsConnOf returns the DTLS connection of a pion v3 DTLSTransport (its
// unexported field conn), or nil if this pion version has no such field.
// The field is set before the transport reports Connected and never
// changes after.
func dtlsConnOf(t *webrtc.DTLSTransport) *dtls.Conn {
	f := reflect.ValueOf(t).Elem().FieldByName("conn")
	if !f.IsValid() || f.Type() != reflect.TypeFor[*dtls.Conn]() {
		return nil
	}
	return (*dtls.Conn)(f.UnsafePointer())
}

// dtlsIsClient reads whether the DTLS state is the client's (unexported in
// pion/dtls v2): it decides which half of the exported keys is the SFU's.
func dtlsIsClient(s *dtls.State) (isClient, ok bool) {
	f := reflect.ValueOf(s).Elem().FieldByName("isClient")
	if !f.IsValid() || f.Kind() != reflect.Bool {
		return false, false
	}
	return f.Bool(), true
}

// rtpWriter writes one RTP packet: pion's TrackLocalWriter (unit tests).
type rtpWriter interface {
	WriteRTP(h *rtp.Header, payload []byte) (int, error)
}

// srtpWriter writes one down-track's packets. Once the connection has keys
// and a pair, it encrypts them itself; until then it drops them (as pion
// does until its SRTP starts). A connection that negotiated a profile the
// SFU does not encrypt, or whose pair the SFU cannot place before anything
// was sent, is written by pion. Never both on one SSRC: neither context would
// know the rollover counter the other has reached. Either way the SSRC's
// sentWindow refuses any packet that would reuse an SRTP index with other
// content.
type srtpWriter struct {
	out  *downOut
	pion webrtc.TrackLocalWriter
	st   *ssrcOut
}

// ssrcOut is what the connection has sent on one SSRC: shared by every
// binding with that SSRC for the connection's life (one key, one index
// space), and locked because the forwarding goroutine and the NACK answerer
// both write.
type ssrcOut struct {
	mu       sync.Mutex
	win      sentWindow
	sc       sealScratch
	buf      []byte // one encrypted packet, when not batched
	ownSent  bool   // the SFU's own context has encrypted for this SSRC
	pionSent bool   // pion's has
}

// errRefused: the packet would reuse an SRTP index (a publisher's repeat or
// a jump in its numbering), or is too old to tell.
var errRefused = errors.New("sfu: packet refused: its SRTP index was used or cannot be checked")

func newSRTPWriter(out *downOut, pion webrtc.TrackLocalWriter, ssrc uint32) *srtpWriter {
	return &srtpWriter{out: out, pion: pion, st: out.ssrc(ssrc)}
}

// ssrc returns the state of one SSRC, made on first use.
func (o *downOut) ssrc(ssrc uint32) *ssrcOut {
	o.ssrcMu.Lock()
	defer o.ssrcMu.Unlock()
	if o.ssrcs == nil {
		o.ssrcs = map[uint32]*ssrcOut{}
	}
	st := o.ssrcs[ssrc]
	if st == nil {
		st = &ssrcOut{}
		o.ssrcs[ssrc] = st
	}
	return st
}

func (w *srtpWriter) send(batch *sendBatch, h *rtp.Header, payload []byte, gen uint32, resend bool) (int, error) {
	k, to := w.out.keys.Load(), w.out.to.Load()
	pionOnly := w.out.pionOnly.Load()
	st := w.st
	st.mu.Lock()
	defer st.mu.Unlock()
	viaPion := st.pionSent || (pionOnly && !st.ownSent)
	if !viaPion && (k == nil || to == nil) {
		return 0, nil
	}
	idx, ok := st.win.index(h.SequenceNumber)
	if !ok || !st.win.admit(idx, gen, resend) {
		return 0, errRefused
	}
	if viaPion {
		n, err := w.pion.WriteRTP(h, payload)
		if n > 0 {
			st.pionSent = true
			w.out.viaPion.Add(1)
		}
		return n, err
	}
	st.ownSent = true
	roc := uint32(idx >> 16)
	if to.tcp != nil {
		return st.sendTCP(to.tcp, k, h, payload, roc)
	}
	if batch != nil && to.dst.sock != nil {
		pkt, err := k.seal(batch.slot(to.dst.sock), &st.sc, h, payload, roc)
		if err != nil {
			return 0, err
		}
		batch.commit(&to.dst, len(pkt))
		return len(pkt), nil
	}
	if st.buf == nil {
		st.buf = make([]byte, 0, tcpFrameHeader+batchSlotSize)
	}
	pkt, err := k.seal(st.buf[:0], &st.sc, h, payload, roc)
	if err != nil {
		return 0, err
	}
	return to.conn.WriteTo(pkt, to.addr)
}

// sendTCP encrypts one packet into the SSRC's buffer after room for RFC
// 4571's length and queues the frame on c. A frame the queue has no room
// for is lost, as on a congested path.
func (st *ssrcOut) sendTCP(c *tcpConn, k *srtpKeys, h *rtp.Header, payload []byte, roc uint32) (int, error) {
	if st.buf == nil {
		st.buf = make([]byte, 0, tcpFrameHeader+batchSlotSize)
	}
	pkt, err := k.seal(st.buf[tcpFrameHeader:tcpFrameHeader], &st.sc, h, payload, roc)
	if err != nil {
		return 0, err
	}
	if err := c.writeFrame(st.buf[:tcpFrameHeader+len(pkt)]); err != nil {
		if errors.Is(err, errTCPQueueFull) {
			return 0, nil
		}
		return 0, err
	}
	return len(pkt), nil
}
