package sfu

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v3"
)

// pliInterval is the least time between two keyframe requests to one track.
const pliInterval = 500 * time.Millisecond

// upTrack is a track published on a peer's up connection.
type upTrack struct {
	pub    *Peer
	kind   kind
	id     string // the track ID subscribers see
	remote *webrtc.TrackRemote
	recv   *webrtc.RTPReceiver

	allowed *atomic.Bool                 // the publisher's source permission for this kind; set before forwarding starts
	subs    atomic.Pointer[[]*downTrack] // immutable slice, replaced under room.mu

	packetsIn, bytesIn atomic.Uint64
	lastPLI            atomic.Int64 // unix nanoseconds

	detached bool // guarded by room.mu
}

func newUpTrack(r *Room, p *Peer, remote *webrtc.TrackRemote, recv *webrtc.RTPReceiver) *upTrack {
	k := kindAudio
	if remote.Kind() == webrtc.RTPCodecTypeVideo {
		k = kindVideo
	}
	return &upTrack{
		pub:    p,
		kind:   k,
		id:     p.id + "-" + k.String() + "-" + strconv.FormatUint(r.nextID.Add(1), 36),
		remote: remote,
		recv:   recv,
	}
}

// readLoop reads the track's packets and forwards each until the track ends.
func (t *upTrack) readLoop() {
	buf := make([]byte, 1500)
	var pkt rtp.Packet
	for {
		n, _, err := t.remote.Read(buf)
		if err != nil {
			return
		}
		if err := pkt.Unmarshal(buf[:n]); err != nil {
			continue
		}
		t.packetsIn.Add(1)
		t.bytesIn.Add(uint64(n))
		t.forward(&pkt)
		if sb := t.pub.room.sink.Load(); sb != nil && t.allowed.Load() {
			sb.s.Packet(t.pub.id, t.kind.String(), buf[:n])
		}
	}
}

// drainRTCP reads (and drops) the RTCP the publisher sends for this track,
// so pion's buffers never fill.
func (t *upTrack) drainRTCP() {
	buf := make([]byte, 1500)
	for {
		if _, _, err := t.recv.Read(buf); err != nil {
			return
		}
	}
}

// requestKeyframe sends a PLI to the publisher, at most once per pliInterval.
func (t *upTrack) requestKeyframe() {
	if t.kind != kindVideo {
		return
	}
	now := time.Now().UnixNano()
	last := t.lastPLI.Load()
	if now-last < int64(pliInterval) || !t.lastPLI.CompareAndSwap(last, now) {
		return
	}
	_ = t.pub.up.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: uint32(t.remote.SSRC())}})
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
type downTrack struct {
	up     *upTrack
	sub    *Peer
	edge   *edge
	local  *localTrack
	sender *webrtc.RTPSender
	hdr    rtp.Header // scratch header, written only by up's read loop
}

func newDownTrack(t *upTrack, sub *Peer, e *edge) *downTrack {
	return &downTrack{
		up: t, sub: sub, edge: e,
		local: &localTrack{
			id:       t.id,
			streamID: t.pub.id,
			kind:     t.remote.Kind(),
			mimeType: t.remote.Codec().MimeType,
		},
	}
}

// readRTCP reads the subscriber's RTCP for this track and passes keyframe
// requests on to the publisher while the edge is open.
func (d *downTrack) readRTCP() {
	for {
		pkts, _, err := d.sender.ReadRTCP()
		if err != nil {
			return
		}
		for _, p := range pkts {
			switch p.(type) {
			case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
				if d.edge.open.Load() {
					d.up.requestKeyframe()
				}
			}
		}
	}
}

// keyframesFor asks for keyframes on every video track p receives through an
// open gate: called when p has just accepted new down-tracks.
func (r *Room) keyframesFor(p *Peer) {
	var kf []*upTrack
	r.mu.Lock()
	for t, d := range p.downTracks {
		if t.kind == kindVideo && d.edge.open.Load() && t.allowed.Load() {
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
	out          atomic.Pointer[binding]
}

type binding struct {
	ssrc uint32
	pt   uint8
	w    webrtc.TrackLocalWriter
}

func (l *localTrack) Bind(ctx webrtc.TrackLocalContext) (webrtc.RTPCodecParameters, error) {
	for _, c := range ctx.CodecParameters() {
		if strings.EqualFold(c.MimeType, l.mimeType) {
			l.out.Store(&binding{ssrc: uint32(ctx.SSRC()), pt: uint8(c.PayloadType), w: ctx.WriteStream()})
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
