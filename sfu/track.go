package sfu

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v3"
)

// pliInterval is the least time between two keyframe requests to one track.
const pliInterval = 500 * time.Millisecond

// rrInterval is how often the SFU sends a receiver report for each track it
// receives, so the publisher's congestion control hears about loss.
const rrInterval = time.Second

// upTrack is a track published on a peer's up connection.
type upTrack struct {
	pub    *Peer
	kind   kind   // set by attach, before forwarding starts
	id     string // the track ID subscribers see; set by attach
	label  string // the publisher's own track ID (msid), as DeclareScreen names it
	mime   string
	ssrc   uint32
	remote *webrtc.TrackRemote // nil for a track fed by a test
	recv   *webrtc.RTPReceiver

	allowed *atomic.Bool                 // the publisher's source permission for this kind; set before forwarding starts
	subs    atomic.Pointer[[]*downTrack] // immutable slice, replaced under room.mu
	ring    *packetRing                  // receive buffer and NACK cache
	batch   *sendBatch                   // forward's batched sends; used by the read loop only
	done    chan struct{}                // closed when the read loop ends

	packetsIn, bytesIn atomic.Uint64
	retransmits        atomic.Uint64
	lastPLI            atomic.Int64 // unix nanoseconds
	plis               atomic.Uint64

	// Receiver-report state. seqs is written by the read loop only.
	seqs       seqTracker
	extHighest atomic.Uint32 // extended highest sequence number received
	extBase    atomic.Uint32 // extended sequence number of the first packet
	lastSR     atomic.Uint64 // middle 32 bits of the last SR's NTP time << 32 | arrival (unix ms, low 32 bits)
	rrSSRC     uint32        // the sender SSRC of the SFU's receiver reports

	detached bool // guarded by room.mu
}

func newUpTrack(r *Room, p *Peer, remote *webrtc.TrackRemote, recv *webrtc.RTPReceiver) *upTrack {
	k := kindAudio
	if remote.Kind() == webrtc.RTPCodecTypeVideo {
		k = kindVideo
	}
	t := makeUpTrack(r, p, k, remote.Codec().MimeType, uint32(remote.SSRC()))
	t.remote, t.recv, t.label = remote, recv, remote.ID()
	return t
}

func makeUpTrack(r *Room, p *Peer, k kind, mime string, ssrc uint32) *upTrack {
	slots := audioSlots
	if k == kindVideo {
		slots = videoSlots
	}
	return &upTrack{
		pub:    p,
		kind:   k,
		mime:   mime,
		ssrc:   ssrc,
		ring:   newPacketRing(slots),
		batch:  newSendBatch(r.log),
		done:   make(chan struct{}),
		rrSSRC: rand.Uint32(),
	}
}

// readLoop reads the track's packets, straight into its ring, and forwards
// each until the track ends.
func (t *upTrack) readLoop() {
	defer close(t.done)
	for {
		n, _, err := t.remote.Read(t.ring.readBuf())
		if err != nil {
			return
		}
		t.receive(n)
	}
}

// receive handles the n bytes just read into t.ring.readBuf(): it stores
// the packet in the ring, forwards it and hands it to the sink. Read loop only.
func (t *upTrack) receive(n int) {
	e := t.ring.commit(n)
	if e == nil {
		return
	}
	t.packetsIn.Add(1)
	t.bytesIn.Add(uint64(n))
	if ext, first := t.seqs.update(e.hdr.SequenceNumber); first {
		t.extBase.Store(ext)
		t.extHighest.Store(ext)
	} else if ext != t.extHighest.Load() {
		t.extHighest.Store(ext)
	}
	t.forward(&e.hdr, e.buf[e.off:e.end], e.gen)
	if sb := t.pub.room.sink.Load(); sb != nil && t.allowed.Load() {
		sb.s.Packet(t.pub.id, t.kind.String(), e.buf[:e.n])
	}
}

// seqTracker extends 16-bit sequence numbers (RFC 3550 A.1, simplified: no
// probation).
type seqTracker struct {
	started bool
	max     uint16
	cycles  uint32
}

// update returns the extended highest sequence number after seq, and
// whether seq was the first.
func (s *seqTracker) update(seq uint16) (ext uint32, first bool) {
	if !s.started {
		s.started, s.max = true, seq
		return uint32(seq), true
	}
	if d := seq - s.max; d != 0 && d < 1<<15 { // ahead, allowing for wrap
		if seq < s.max {
			s.cycles += 1 << 16
		}
		s.max = seq
	}
	return s.cycles | uint32(s.max), false
}

// drainRTCP reads the RTCP the publisher sends for this track, so pion's
// buffers never fill, and notes sender reports for the receiver reports.
func (t *upTrack) drainRTCP() {
	buf := make([]byte, 1500)
	for {
		n, _, err := t.recv.Read(buf)
		if err != nil {
			return
		}
		pkts, err := rtcp.Unmarshal(buf[:n])
		if err != nil {
			continue
		}
		for _, p := range pkts {
			if sr, ok := p.(*rtcp.SenderReport); ok && sr.SSRC == t.ssrc {
				t.lastSR.Store(uint64(uint32(sr.NTPTime>>16))<<32 | uint64(uint32(time.Now().UnixMilli())))
			}
		}
	}
}

// reportLoop sends the publisher a receiver report for t every rrInterval
// until the track ends. Jitter is reported as 0.
func (t *upTrack) reportLoop() {
	tick := time.NewTicker(rrInterval)
	defer tick.Stop()
	var prevExpected, prevReceived uint64
	for {
		select {
		case <-t.done:
			return
		case <-tick.C:
		}
		received := t.packetsIn.Load()
		if received == 0 {
			continue
		}
		expected := uint64(t.extHighest.Load()-t.extBase.Load()) + 1
		rep := rtcp.ReceptionReport{SSRC: t.ssrc, LastSequenceNumber: t.extHighest.Load()}
		if expected > received {
			rep.TotalLost = min(uint32(expected-received), 1<<23-1)
		}
		if de, dr := expected-prevExpected, received-prevReceived; de > 0 && de > dr {
			rep.FractionLost = uint8((de - dr) * 256 / de)
		}
		prevExpected, prevReceived = expected, received
		if sr := t.lastSR.Load(); sr != 0 {
			rep.LastSenderReport = uint32(sr >> 32)
			since := uint32(time.Now().UnixMilli()) - uint32(sr)
			rep.Delay = uint32(uint64(since) * 65536 / 1000)
		}
		_ = t.pub.up.WriteRTCP([]rtcp.Packet{&rtcp.ReceiverReport{SSRC: t.rrSSRC, Reports: []rtcp.ReceptionReport{rep}}})
	}
}

// requestKeyframe sends a PLI to the publisher, at most once per pliInterval.
func (t *upTrack) requestKeyframe() {
	if !t.kind.isVideo() {
		return
	}
	now := time.Now().UnixNano()
	last := t.lastPLI.Load()
	if now-last < int64(pliInterval) || !t.lastPLI.CompareAndSwap(last, now) {
		return
	}
	if t.pub.up.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: t.ssrc}}) == nil {
		t.plis.Add(1)
	}
}

// addSub and removeSub replace the subscriber slice; call with room.mu held.
func (t *upTrack) addSub(d *downTrack) {
	var next []*downTrack
	if cur := t.subs.Load(); cur != nil {
		next = slices.Clone(*cur)
	}
	next = append(next, d)
	t.subs.Store(&next)
}

func (t *upTrack) removeSub(d *downTrack) {
	cur := t.subs.Load()
	if cur == nil {
		return
	}
	next := slices.DeleteFunc(slices.Clone(*cur), func(x *downTrack) bool { return x == d })
	t.subs.Store(&next)
}

// downTrack is one published track as one subscriber receives it.
//
// The subscriber sees its own sequence numbers: forward numbers the packets
// it sends in runs, a run being packets sent without a break (a closed gate,
// a stopped source, an unbound track). Within a run the subscriber's number
// is the publisher's minus offset; a new run continues where the last one
// ended, so a gate that was closed leaves no gap for the subscriber to NACK.
// NACKs are answered only for numbers in the current run, which maps them
// back to packets that really were sent to this subscriber.
type downTrack struct {
	up     *upTrack
	sub    *Peer
	edge   *edge
	local  *localTrack
	sender *webrtc.RTPSender

	// Owned by up's read loop.
	hdr     rtp.Header // scratch header for the subscriber's copy
	sending bool       // the last packet of up was sent to this subscriber
	started bool       // some packet has been
	offset  uint16     // subscriber seq = publisher seq - offset, in this run
	runIn   uint16     // publisher seq of this run's first packet
	lastIn  uint16     // highest publisher seq sent in this run
	lastOut uint16     // highest subscriber seq sent

	// run publishes (runIn, lastIn, offset) to the NACK answerer as
	// runIn | lastIn<<16 | offset<<32 | 1<<48; 0 before the first run.
	run atomic.Uint64

	rtxBuf []byte // the RTCP goroutine's copy of a packet being resent
}

func newDownTrack(t *upTrack, sub *Peer, e *edge) *downTrack {
	stream := t.pub.id
	if t.kind.isScreen() {
		stream = ScreenStreamID(t.pub.id)
	}
	return &downTrack{
		up: t, sub: sub, edge: e,
		local: &localTrack{
			id:       t.id,
			streamID: stream,
			kind:     t.kind.codecType(),
			mimeType: t.mime,
			dst:      sub.downOut,
		},
	}
}

// readRTCP reads the subscriber's RTCP for this track: keyframe requests go
// on to the publisher and NACKs are answered from the ring, both only while
// the edge is open and the source allowed.
func (d *downTrack) readRTCP() {
	for {
		pkts, _, err := d.sender.ReadRTCP()
		if err != nil {
			return
		}
		for _, p := range pkts {
			d.handleRTCP(p)
		}
	}
}

func (d *downTrack) handleRTCP(p rtcp.Packet) {
	if !d.edge.open.Load() || !d.up.allowed.Load() {
		return
	}
	switch p := p.(type) {
	case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
		d.up.requestKeyframe()
	case *rtcp.TransportLayerNack:
		for i := range p.Nacks {
			p.Nacks[i].Range(d.resend)
		}
	}
}

// resend sends the subscriber again the packet it numbers out, if it was
// sent to it in the current run and the ring still holds it. It always
// returns true (to go on with the NACK's other numbers).
func (d *downTrack) resend(out uint16) bool {
	run := d.run.Load()
	b := d.local.out.Load()
	if run == 0 || b == nil {
		return true
	}
	runIn, lastIn, offset := uint16(run), uint16(run>>16), uint16(run>>32)
	in := out + offset
	if int16(in-runIn) < 0 || int16(lastIn-in) < 0 {
		return true
	}
	if d.rtxBuf == nil {
		d.rtxBuf = make([]byte, slotSize)
	}
	hdr, payload, gen, ok := d.up.ring.get(in, d.rtxBuf)
	if !ok || len(payload) == 0 {
		return true
	}
	outHeader(&hdr, b, out)
	if n, err := b.send(nil, &hdr, payload, gen, true); err == nil && n > 0 {
		d.up.retransmits.Add(1)
		d.edge.retransmits[d.up.kind].Add(1)
	}
	return true
}

// keyframesFor asks for keyframes on every video track p receives through an
// open gate: called when p has just accepted new down-tracks.
func (r *Room) keyframesFor(p *Peer) {
	var kf []*upTrack
	r.mu.Lock()
	for t, d := range p.downTracks {
		if t.kind.isVideo() && d.edge.open.Load() && t.allowed.Load() {
			kf = append(kf, t)
		}
	}
	r.mu.Unlock()
	for _, t := range kf {
		t.requestKeyframe()
	}
}

// localTrack is the SFU's webrtc.TrackLocal: bound to exactly one sender, it
// exposes the negotiated SSRC, payload type and write stream to forward.
type localTrack struct {
	id, streamID string
	kind         webrtc.RTPCodecType
	mimeType     string
	dst          *downOut // the subscriber's down connection; nil in unit tests
	out          atomic.Pointer[binding]
}

type binding struct {
	ssrc uint32
	pt   uint8
	w    rtpWriter   // pion's writer, used when own is nil (unit tests)
	own  *srtpWriter // the SFU's writer (downout.go); nil in unit tests
}

// send writes one packet (ring entry gen) to the binding's subscriber: by
// the SFU's own writer, into batch if not nil; by w in unit tests.
func (b *binding) send(batch *sendBatch, h *rtp.Header, payload []byte, gen uint32, resend bool) (int, error) {
	if b.own != nil {
		return b.own.send(batch, h, payload, gen, resend)
	}
	return b.w.WriteRTP(h, payload)
}

func (l *localTrack) Bind(ctx webrtc.TrackLocalContext) (webrtc.RTPCodecParameters, error) {
	for _, c := range ctx.CodecParameters() {
		if strings.EqualFold(c.MimeType, l.mimeType) {
			b := &binding{ssrc: uint32(ctx.SSRC()), pt: uint8(c.PayloadType), w: ctx.WriteStream()}
			if l.dst != nil {
				b.own = newSRTPWriter(l.dst, ctx.WriteStream(), uint32(ctx.SSRC()))
			}
			l.out.Store(b)
			return c, nil
		}
	}
	return webrtc.RTPCodecParameters{}, fmt.Errorf("sfu: track %s: %s not negotiated: %w", l.id, l.mimeType, webrtc.ErrUnsupportedCodec)
}

func (l *localTrack) Unbind(webrtc.TrackLocalContext) error {
	l.out.Store(nil)
	return nil
}

func (l *localTrack) ID() string                { return l.id }
func (l *localTrack) RID() string               { return "" }
func (l *localTrack) StreamID() string          { return l.streamID }
func (l *localTrack) Kind() webrtc.RTPCodecType { return l.kind }
