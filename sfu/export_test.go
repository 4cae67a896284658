package sfu

import (
	"net"

	"github.com/pion/webrtc/v3"
)

// Hooks for the external tests and benchmarks (package sfu_test).

// BenchTrack is a VP8 track published by a peer, fed by the test instead of
// a connection: Feed plays the read loop's part for one packet.
type BenchTrack struct {
	r *Room
	t *upTrack
}

// AttachBenchTrack publishes a test-fed video track from p to the room.
func AttachBenchTrack(r *Room, p *Peer, ssrc uint32) (*BenchTrack, bool) {
	t := makeUpTrack(r, p, kindVideo, webrtc.MimeTypeVP8, ssrc)
	if !r.attach(p, t) {
		return nil, false
	}
	return &BenchTrack{r: r, t: t}, true
}

// Feed receives one RTP packet as the read loop does after pion has read
// it into the ring: pkt is copied to where the read would have put it.
func (b *BenchTrack) Feed(pkt []byte) {
	b.t.receive(copy(b.t.ring.readBuf(), pkt))
}

// End ends the track as if its publisher had stopped it.
func (b *BenchTrack) End() {
	b.r.end(b.t)
	b.r.wg.Done()
}

// AddDownTrack adds a track of the test's own to p's down connection and
// offers it (the naive forwarder of the benchmark).
func AddDownTrack(p *Peer, track webrtc.TrackLocal) error {
	p.negMu.Lock()
	_, err := p.down.AddTrack(track)
	p.negMu.Unlock()
	if err != nil {
		return err
	}
	p.renegotiate()
	return nil
}

// WithConnWrapper returns cfg with f wrapping each of the SFU's UDP sockets.
func WithConnWrapper(cfg Config, f func(net.PacketConn) net.PacketConn) Config {
	cfg.wrapConn = f
	return cfg
}

// WithStockPion returns cfg for an SFU that is pion as it comes: a
// net.UDPConn under the ICE mux, no batched sends, pion's SRTP writer (the
// benchmark's naive forwarder).
func WithStockPion(cfg Config) Config {
	cfg.stock = true
	return cfg
}

// Sent sums the packets the room has sent, first sends and resends.
func (r *Room) Sent() (first, again uint64) {
	_, es := r.Stats()
	for _, e := range es {
		first += e.Packets
		again += e.Retransmits
	}
	return first, again
}

// AttachStaleCamera publishes a test-fed camera track from p whose receiver
// pion no longer uses: the state right after the client's offer removed its
// camera, before the old track's read loop has noticed.
func AttachStaleCamera(r *Room, p *Peer, ssrc uint32) (*BenchTrack, error) {
	recv, err := r.sfu.api.NewRTPReceiver(webrtc.RTPCodecTypeVideo, p.up.SCTP().Transport())
	if err != nil {
		return nil, err
	}
	t := makeUpTrack(r, p, kindVideo, webrtc.MimeTypeVP8, ssrc)
	t.recv = recv
	if !r.attach(p, t) {
		return nil, net.ErrClosed
	}
	return &BenchTrack{r: r, t: t}, nil
}

// OwnSRTP reports whether p's down connection is written by the SFU's own
// SRTP writer (downout.go): it has keys and a destination.
func OwnSRTP(p *Peer) bool {
	return p.downOut != nil && p.downOut.keys.Load() != nil && p.downOut.to.Load() != nil
}

// DiscardSends makes the room's SFU drop the batches its own writer would
// send, after encrypting them (the benchmark's nosend mode).
func DiscardSends(r *Room, on bool) {
	for _, s := range r.sfu.socks {
		if s.own != nil {
			s.own.discard.Store(on)
		}
	}
	if r.sfu.tcp != nil {
		r.sfu.tcp.discard.Store(on)
	}
}

// DownOverTCP reports whether the SFU's own writer sends p's down
// connection over ICE-TCP.
func DownOverTCP(p *Peer) bool {
	if p.downOut == nil {
		return false
	}
	to := p.downOut.to.Load()
	return to != nil && to.tcp != nil
}

// TCPDropped returns the ICE-TCP frames the SFU dropped on full queues.
func TCPDropped(s *SFU) uint64 {
	if s.tcp == nil {
		return 0
	}
	return s.tcp.dropped.Load()
}

// DownRemote returns the address the SFU's own writer sends p's down
// connection to ("" when none).
func DownRemote(p *Peer) string {
	if p.downOut == nil {
		return ""
	}
	to := p.downOut.to.Load()
	switch {
	case to == nil:
		return ""
	case to.tcp != nil:
		return to.tcp.key.String()
	default:
		return to.addr.String()
	}
}

// SetMaxProbes sets the bound on open connection checks; the returned
// func restores it.
func SetMaxProbes(n int) func() {
	old := maxProbes
	maxProbes = n
	return func() { maxProbes = old }
}
