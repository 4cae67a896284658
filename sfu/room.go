package sfu

import (
	"cmp"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/pion/webrtc/v3"
)

// kind is what a track carries, usable as an array index: a camera's
// video, a microphone's audio, or a shared screen's video and audio. Each
// kind has its own source permission, so a screen can be stopped while the
// camera goes on.
type kind uint8

const (
	kindAudio       kind = iota
	kindVideo            // the camera
	kindScreen           // a shared screen's video
	kindScreenAudio      // a shared tab's audio
	numKinds
)

// kindNames are the kinds' names in signalling, stats and the sink.
var kindNames = [numKinds]string{"audio", "video", "screen", "screen_audio"}

func (k kind) String() string { return kindNames[k] }

// isVideo reports whether k's tracks are video (and take keyframe requests).
func (k kind) isVideo() bool { return k == kindVideo || k == kindScreen }

// isScreen reports whether k is part of a screen share.
func (k kind) isScreen() bool { return k == kindScreen || k == kindScreenAudio }

func (k kind) codecType() webrtc.RTPCodecType {
	if k.isVideo() {
		return webrtc.RTPCodecTypeVideo
	}
	return webrtc.RTPCodecTypeAudio
}

func parseKind(s string) (kind, bool) {
	for k, n := range kindNames {
		if n == s {
			return kind(k), true
		}
	}
	return 0, false
}

// ScreenStreamID is the MediaStream ID under which subscribers receive a
// participant's screen share (camera and microphone come under the
// participant ID itself).
func ScreenStreamID(participant string) string { return participant + "-screen" }

type edgeKey struct{ from, to string }

// edge is the gate from one publisher to one subscriber, shared by all the
// publisher's tracks, with what it has forwarded.
type edge struct {
	open    atomic.Bool
	used    [numKinds]atomic.Bool // a down-track of this kind has existed
	packets [numKinds]atomic.Uint64
	bytes   [numKinds]atomic.Uint64
	// retransmits counts packets sent again in answer to NACKs (not in packets).
	retransmits [numKinds]atomic.Uint64
}

// source is the per-kind permission of one publisher.
type source struct {
	allowed [numKinds]atomic.Bool
}

// Room is one live session's set of peers and the gates between them. All
// methods are safe for concurrent use. Membership changes take the room's
// lock; forwarding never does.
type Room struct {
	sfu    *SFU
	id     string
	log    *slog.Logger
	nextID atomic.Uint64
	wg     sync.WaitGroup // goroutines started for this room's tracks

	sink atomic.Pointer[sinkBox] // the recorder, if any

	mu      sync.Mutex
	closed  bool
	peers   map[string]*Peer
	tracks  []*upTrack
	edges   map[edgeKey]*edge
	sources map[string]*source
}

func newRoom(s *SFU, id string) *Room {
	return &Room{
		sfu:     s,
		id:      id,
		log:     s.log.With(slog.String("room", id)),
		peers:   map[string]*Peer{},
		edges:   map[edgeKey]*edge{},
		sources: map[string]*source{},
	}
}

// AddPeer adds a participant and returns its Peer; id is the participant ID,
// also the MediaStream ID of its tracks as others receive them. The peer's
// down connection is offered (through sig) as soon as there is a track for
// it. A peer already in the room with the same id is replaced: closed, its
// tracks removed from everyone.
func (r *Room) AddPeer(id string, sig Signal) (*Peer, error) {
	if id == "" || sig == nil {
		return nil, fmt.Errorf("sfu: room %s: add peer: empty id or nil signal", r.id)
	}
	p, err := newPeer(r, id, sig)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		p.closePCs()
		return nil, fmt.Errorf("sfu: room %s: add peer %s: %w", r.id, id, ErrClosed)
	}
	var renego []*Peer
	old := r.peers[id]
	if old != nil {
		renego = r.detachPeerLocked(old)
	}
	r.peers[id] = p
	for _, t := range r.tracks {
		r.subscribeLocked(p, t)
	}
	r.mu.Unlock()

	if old != nil {
		r.log.Info("peer replaced", slog.String("peer", id))
		old.closePCs()
	}
	r.log.Debug("peer added", slog.String("peer", id))
	renegotiate(append(renego, p))
	return p, nil
}

// RemovePeer closes the peer's connections; its tracks go from every other
// peer's down connection. Unknown ids are ignored.
func (r *Room) RemovePeer(id string) {
	r.mu.Lock()
	p := r.peers[id]
	r.mu.Unlock()
	if p != nil {
		r.removePeer(p)
	}
}

// removePeer removes p if it is still the room's peer for its id, and closes it.
func (r *Room) removePeer(p *Peer) {
	var renego []*Peer
	r.mu.Lock()
	if r.peers[p.id] == p {
		renego = r.detachPeerLocked(p)
	}
	r.mu.Unlock()
	p.closePCs()
	renegotiate(renego)
	r.log.Debug("peer removed", slog.String("peer", p.id))
}

// Close closes every peer and waits for the room's goroutines to end.
func (r *Room) Close() {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return
	}
	r.closed = true
	peers := make([]*Peer, 0, len(r.peers))
	for _, p := range r.peers {
		peers = append(peers, p)
	}
	r.peers = map[string]*Peer{}
	r.tracks = nil
	r.mu.Unlock()

	for _, p := range peers {
		p.closePCs()
	}
	r.wg.Wait()
	r.sfu.forget(r)
}

// SetEdge opens or closes the gate from publisher `from` to subscriber `to`.
// Edges start closed. Opening one asks the publisher for a keyframe.
func (r *Room) SetEdge(from, to string, open bool) {
	r.mu.Lock()
	e := r.edgeLocked(from, to)
	was := e.open.Swap(open)
	var kf []*upTrack
	if open && !was {
		kf = r.videoTracksLocked(from, kindVideo)
		kf = append(kf, r.videoTracksLocked(from, kindScreen)...)
	}
	r.mu.Unlock()
	for _, t := range kf {
		t.requestKeyframe()
	}
}

// SetSourceAllowed allows or stops every track of the given kind ("audio",
// "video", "screen" or "screen_audio") published by peer, towards everyone
// and the sink. "screen" stands for the whole share: its video and its
// audio. Sources start allowed.
func (r *Room) SetSourceAllowed(peer, kindName string, allowed bool) {
	k, ok := parseKind(kindName)
	if !ok {
		r.log.Warn("set source: unknown kind", slog.String("peer", peer), slog.String("kind", kindName))
		return
	}
	r.mu.Lock()
	src := r.sourceLocked(peer)
	was := src.allowed[k].Swap(allowed)
	if k == kindScreen {
		src.allowed[kindScreenAudio].Store(allowed)
	}
	var kf []*upTrack
	if k.isVideo() && allowed && !was {
		kf = r.videoTracksLocked(peer, k)
	}
	r.mu.Unlock()
	for _, t := range kf {
		t.requestKeyframe()
	}
}

// TrackStats counts what one published track has received, and how many
// of its packets were sent again to subscribers that asked (NACKs served).
type TrackStats struct {
	Publisher, Kind, TrackID string
	PacketsIn, BytesIn       uint64
	Retransmits              uint64
	KeyframeRequests         uint64 // PLIs sent to the publisher
}

// EdgeStats counts the packets of one kind actually written from publisher
// From to subscriber To: first sends in Packets and Bytes, resends in answer
// to the subscriber's NACKs in Retransmits.
type EdgeStats struct {
	From, To, Kind string
	Packets, Bytes uint64
	Retransmits    uint64
}

// Stats returns counters for the room's current tracks and for every edge
// that has carried a track, sorted.
func (r *Room) Stats() ([]TrackStats, []EdgeStats) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ts := make([]TrackStats, 0, len(r.tracks))
	for _, t := range r.tracks {
		ts = append(ts, TrackStats{
			Publisher: t.pub.id, Kind: t.kind.String(), TrackID: t.id,
			PacketsIn: t.packetsIn.Load(), BytesIn: t.bytesIn.Load(),
			Retransmits: t.retransmits.Load(), KeyframeRequests: t.plis.Load(),
		})
	}
	var es []EdgeStats
	for k, e := range r.edges {
		for kd := range numKinds {
			if !e.used[kd].Load() {
				continue
			}
			es = append(es, EdgeStats{
				From: k.from, To: k.to, Kind: kd.String(),
				Packets: e.packets[kd].Load(), Bytes: e.bytes[kd].Load(),
				Retransmits: e.retransmits[kd].Load(),
			})
		}
	}
	slices.SortFunc(ts, func(a, b TrackStats) int { return cmp.Compare(a.TrackID, b.TrackID) })
	slices.SortFunc(es, func(a, b EdgeStats) int {
		return cmp.Or(cmp.Compare(a.From, b.From), cmp.Compare(a.To, b.To), cmp.Compare(a.Kind, b.Kind))
	})
	return ts, es
}

func (r *Room) edgeLocked(from, to string) *edge {
	k := edgeKey{from, to}
	e := r.edges[k]
	if e == nil {
		e = &edge{}
		r.edges[k] = e
	}
	return e
}

func (r *Room) sourceLocked(peer string) *source {
	s := r.sources[peer]
	if s == nil {
		s = &source{}
		for k := range s.allowed {
			s.allowed[k].Store(true)
		}
		r.sources[peer] = s
	}
	return s
}

// videoTracksLocked returns the tracks of kind k (kindVideo or kindScreen)
// that publisher publishes.
func (r *Room) videoTracksLocked(publisher string, k kind) []*upTrack {
	var out []*upTrack
	for _, t := range r.tracks {
		if t.pub.id == publisher && t.kind == k {
			out = append(out, t)
		}
	}
	return out
}

// goLocked runs f on a goroutine that Close waits for. Call with r.mu held
// and r.closed false.
func (r *Room) goLocked(f func()) {
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		f()
	}()
}

// spawn runs f on a goroutine that Close waits for, unless the room is closed.
func (r *Room) spawn(f func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.closed {
		r.goLocked(f)
	}
}

// publish makes a track received on p's up connection available to every
// other peer, then forwards its packets until it ends. It runs on the
// goroutine pion starts for OnTrack.
func (r *Room) publish(p *Peer, t *upTrack) {
	if !r.attach(p, t, t.drainRTCP, t.reportLoop) {
		return
	}
	defer r.wg.Done()
	t.readLoop()
	r.end(t)
}

// attach adds t, published by p, to the room, subscribes every other peer
// to it and starts the track's helper goroutines. If it returns true, the
// caller holds a count on r.wg and feeds t's packets until the track ends,
// then calls end and wg.Done.
func (r *Room) attach(p *Peer, t *upTrack, helpers ...func()) bool {
	r.mu.Lock()
	if r.closed || r.peers[p.id] != p {
		r.mu.Unlock()
		return false
	}
	t.kind = r.classifyLocked(p, t)
	t.id = p.id + "-" + t.kind.String() + "-" + strconv.FormatUint(r.nextID.Add(1), 36)
	t.allowed = &r.sourceLocked(p.id).allowed[t.kind]
	r.tracks = append(r.tracks, t)
	p.published = append(p.published, t)
	var renego []*Peer
	for _, q := range r.peers {
		if q != p {
			r.subscribeLocked(q, t)
			renego = append(renego, q)
		}
	}
	r.wg.Add(1)
	for _, f := range helpers {
		r.goLocked(f)
	}
	r.mu.Unlock()

	r.log.Debug("track published", slog.String("peer", p.id), slog.String("track", t.id))
	renegotiate(renego)
	return true
}

// classifyLocked decides whether t, a camera or microphone by its media
// type, is part of a screen share instead. Declared IDs come first: a
// track the publisher declared as a screen (DeclareScreen) is one. An
// undeclared track is a screen share if the publisher still sends a live
// camera (or microphone) track, so a page cannot pass a second video off
// as a camera; a camera that replaces one the client has just removed is a
// camera, even while the old track's read loop winds down. The SFU cannot
// see what a video shows: a page that sends a screen as its only video
// track passes it off as the camera (and it is then under the camera's
// permission).
func (r *Room) classifyLocked(p *Peer, t *upTrack) kind {
	own, share := kindAudio, kindScreenAudio
	if t.kind.isVideo() {
		own, share = kindVideo, kindScreen
	}
	if t.label != "" && p.screens[t.label] {
		return share
	}
	for _, o := range p.published {
		if o.kind == own && p.receivingLocked(o) {
			return share
		}
	}
	return own
}

// end takes t, whose packets have stopped, out of the room.
func (r *Room) end(t *upTrack) {
	r.mu.Lock()
	renego := r.detachTrackLocked(t)
	r.mu.Unlock()
	renegotiate(renego)
	r.log.Debug("track ended", slog.String("peer", t.pub.id), slog.String("track", t.id))
}

// subscribeLocked adds a down-track of t to q's down connection. The caller
// renegotiates q.
func (r *Room) subscribeLocked(q *Peer, t *upTrack) {
	e := r.edgeLocked(t.pub.id, q.id)
	d := newDownTrack(t, q, e)
	q.negMu.Lock()
	sender, err := q.down.AddTrack(d.local)
	q.negMu.Unlock()
	if err != nil {
		r.log.Warn("add down-track", slog.String("peer", q.id), slog.String("track", t.id), slog.Any("err", err))
		return
	}
	d.sender = sender
	e.used[t.kind].Store(true)
	q.downTracks[t] = d
	t.addSub(d)
	r.goLocked(d.readRTCP)
}

// unsubscribeLocked removes d from its publisher and from its subscriber's
// down connection. The caller renegotiates d.sub.
func (r *Room) unsubscribeLocked(d *downTrack) {
	d.up.removeSub(d)
	delete(d.sub.downTracks, d.up)
	d.sub.negMu.Lock()
	err := d.sub.down.RemoveTrack(d.sender)
	d.sub.negMu.Unlock()
	if err != nil && !d.sub.closed.Load() {
		r.log.Debug("remove down-track", slog.String("peer", d.sub.id), slog.String("track", d.up.id), slog.Any("err", err))
	}
}

// detachTrackLocked takes t out of the room and every subscriber's down
// connection; it returns the peers to renegotiate.
func (r *Room) detachTrackLocked(t *upTrack) []*Peer {
	if t.detached {
		return nil
	}
	t.detached = true
	r.tracks = slices.DeleteFunc(r.tracks, func(x *upTrack) bool { return x == t })
	t.pub.published = slices.DeleteFunc(t.pub.published, func(x *upTrack) bool { return x == t })
	var renego []*Peer
	if subs := t.subs.Load(); subs != nil {
		for _, d := range *subs {
			r.unsubscribeLocked(d)
			renego = append(renego, d.sub)
		}
	}
	t.subs.Store(nil)
	return renego
}

// detachPeerLocked takes p out of the room: its tracks from everyone, its
// down-tracks from every publisher. It returns the peers to renegotiate.
func (r *Room) detachPeerLocked(p *Peer) []*Peer {
	delete(r.peers, p.id)
	var renego []*Peer
	for _, t := range slices.Clone(p.published) {
		renego = append(renego, r.detachTrackLocked(t)...)
	}
	for t, d := range p.downTracks {
		t.removeSub(d)
		delete(p.downTracks, t)
	}
	return renego
}

// renegotiate offers again to each distinct peer.
func renegotiate(peers []*Peer) {
	seen := make(map[*Peer]bool, len(peers))
	for _, p := range peers {
		if !seen[p] {
			seen[p] = true
			p.renegotiate()
		}
	}
}

// Sink receives a copy of every packet published in a room whose source is
// allowed, whatever the gates say (the recorder). kind is "audio", "video",
// "screen" (a screen share's video) or "screen_audio". Packet is called on the
// track's read goroutine with a buffer that is reused afterwards: it must
// copy what it keeps and must not block.
type Sink interface {
	Packet(publisher, kind string, raw []byte)
}

type sinkBox struct{ s Sink }

// SetSink attaches (or, with nil, detaches) the room's sink. Attaching asks
// every publisher for a keyframe so a recording starts on one.
func (r *Room) SetSink(s Sink) {
	if s == nil {
		r.sink.Store(nil)
		return
	}
	r.sink.Store(&sinkBox{s})
	r.mu.Lock()
	tracks := append([]*upTrack(nil), r.tracks...)
	r.mu.Unlock()
	for _, t := range tracks {
		if t.kind.isVideo() {
			t.requestKeyframe()
		}
	}
}
