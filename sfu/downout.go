package sfu

import (
	"errors"
	"log/slog"
	"net"
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
// negotiated GCM profile (srtp.go) with the same keys, and the address pion's
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
// The two encryptors share the master key but never an SRTP index with
// different content: the SFU numbers each down-track's packets itself, a
// number is only ever sent again as a resend of the same packet, and the
// down-track's rocTracker sees every packet, whichever writer sends it.

// downOut is one subscriber's down connection as the SFU's own writer sees
// it: set from pion's callbacks, read on the forwarding path.
type downOut struct {
	socks   []sfuSock // the SFU's UDP sockets
	log     *slog.Logger
	viaPion *atomic.Uint64 // the SFU's count of packets left to pion's writer

	keys atomic.Pointer[srtpGCM] // nil: not connected, closed, or not a GCM profile
	to   atomic.Pointer[sendTo]  // nil: no selected pair, or not on one of socks
}

// sendTo is a selected candidate pair as a socket and a destination: dst
// for batched sends on the SFU's own socket; conn (what pion writes to,
// which a test may have wrapped) and addr for single ones.
type sendTo struct {
	conn net.PacketConn
	addr *net.UDPAddr
	dst  sockDst
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
	o := &downOut{socks: s.socks, log: log, viaPion: &s.viaPion}
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
		return
	}
	profile, ok := conn.SelectedSRTPProtectionProfile()
	var sp srtp.ProtectionProfile
	switch {
	case ok && profile == dtls.SRTP_AEAD_AES_128_GCM:
		sp = srtp.ProtectionProfileAeadAes128Gcm
	case ok && profile == dtls.SRTP_AEAD_AES_256_GCM:
		sp = srtp.ProtectionProfileAeadAes256Gcm
	default:
		o.log.Debug("sfu: SRTP profile is not AES-GCM; forwarding through pion's SRTP writer", slog.Int("profile", int(profile)))
		return
	}
	state := conn.ConnectionState()
	isClient, ok := dtlsIsClient(&state)
	if !ok {
		o.log.Warn("sfu: cannot read this pion version's DTLS role; forwarding through pion's SRTP writer")
		return
	}
	cfg := srtp.Config{Profile: sp}
	if err := cfg.ExtractSessionKeysFromDTLS(&state, isClient); err != nil {
		o.log.Warn("sfu: export SRTP keys; forwarding through pion's SRTP writer", slog.Any("err", err))
		return
	}
	k, err := newSRTPGCM(cfg.Keys.LocalMasterKey, cfg.Keys.LocalMasterSalt)
	if err != nil {
		o.log.Warn("sfu: SRTP keys; forwarding through pion's SRTP writer", slog.Any("err", err))
		return
	}
	o.keys.Store(k)
}

// pairChanged points the writer at ICE's newly selected pair: the SFU socket
// its local candidate is on and its remote address. A pair the SFU cannot
// place (a local address it advertised but does not listen on, as with a
// NAT 1:1 IP on a host with several sockets) leaves the writing to pion.
func (o *downOut) pairChanged(p *webrtc.ICECandidatePair) {
	if p == nil || p.Local == nil || p.Remote == nil {
		o.to.Store(nil)
		return
	}
	ip := net.ParseIP(p.Remote.Address)
	if ip == nil || p.Remote.Protocol != webrtc.ICEProtocolUDP {
		o.to.Store(nil)
		return
	}
	var sock *sfuSock
	if len(o.socks) == 1 {
		sock = &o.socks[0]
	} else {
		local := net.ParseIP(p.Local.Address)
		for i, c := range o.socks {
			if a, ok := c.conn.LocalAddr().(*net.UDPAddr); ok && a.IP.Equal(local) && a.Port == int(p.Local.Port) {
				sock = &o.socks[i]
				break
			}
		}
	}
	if sock == nil {
		o.to.Store(nil)
		return
	}
	addr := &net.UDPAddr{IP: ip, Port: int(p.Remote.Port)}
	o.to.Store(&sendTo{conn: sock.conn, addr: addr, dst: makeDst(sock.own, addr)})
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

// rtpWriter writes one RTP packet: pion's TrackLocalWriter, or the SFU's own.
type rtpWriter interface {
	WriteRTP(h *rtp.Header, payload []byte) (int, error)
}

// srtpWriter writes one down-track's packets: with the SFU's own encryption
// once its connection has keys and a destination, through pion before that
// (pion drops them until its SRTP has started) and for any other profile.
// The forwarding goroutine and the NACK answerer both write, so it locks.
type srtpWriter struct {
	out  *downOut
	pion webrtc.TrackLocalWriter

	mu      sync.Mutex
	roc     rocTracker
	iv      [12]byte
	buf     []byte // one encrypted packet, when not batched
	ownSent bool   // the SFU's own context has encrypted for this SSRC
}

// errNoDestination: the connection lost its keys (closed) or its pair after
// the SFU's own writer had started; see srtpWriter.send.
var errNoDestination = errors.New("sfu: down connection has no SRTP keys or selected pair")

func newSRTPWriter(out *downOut, pion webrtc.TrackLocalWriter) *srtpWriter {
	return &srtpWriter{out: out, pion: pion}
}

// WriteRTP encrypts h and payload and sends them to the subscriber at once
// (a resend). It returns the bytes written (of the SRTP packet, or as pion
// counts them).
func (w *srtpWriter) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	return w.send(nil, h, payload)
}

// send encrypts h and payload for the subscriber into a slot of batch (nil:
// sends at once) and returns the size of the SRTP packet.
func (w *srtpWriter) send(batch *sendBatch, h *rtp.Header, payload []byte) (int, error) {
	var k *srtpGCM
	var to *sendTo
	if w.out != nil {
		k, to = w.out.keys.Load(), w.out.to.Load()
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	roc := w.roc.next(h.SequenceNumber)
	if k == nil || to == nil {
		if w.ownSent {
			// pion's context never saw the packets sent since, so its
			// rollover counter may be behind: letting it encrypt now could
			// reuse a GCM nonce. Drop; the connection is closing, or its
			// pair changed to one the SFU cannot place.
			return 0, errNoDestination
		}
		if w.out != nil {
			w.out.viaPion.Add(1)
		}
		return w.pion.WriteRTP(h, payload)
	}
	w.ownSent = true
	if batch != nil && to.dst.sock != nil {
		pkt, err := k.seal(batch.slot(to.dst.sock), &w.iv, h, payload, roc)
		if err != nil {
			return 0, err
		}
		batch.commit(&to.dst, len(pkt))
		return len(pkt), nil
	}
	if w.buf == nil {
		w.buf = make([]byte, 0, batchSlotSize)
	}
	pkt, err := k.seal(w.buf[:0], &w.iv, h, payload, roc)
	if err != nil {
		return 0, err
	}
	return to.conn.WriteTo(pkt, to.addr)
}
