package sfu

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/webrtc/v3"
)

// Candidate is an ICE candidate in the JSON shape of the browser's
// RTCIceCandidateInit.
type Candidate struct {
	Candidate        string  `json:"candidate"`
	SDPMid           *string `json:"sdpMid,omitempty"`
	SDPMLineIndex    *uint16 `json:"sdpMLineIndex,omitempty"`
	UsernameFragment *string `json:"usernameFragment,omitempty"`
}

// Signal is how the SFU talks to one client (implemented by the WebSocket
// layer). Calls may come from any goroutine and in any order relative to each
// other and to the answers HandleOffer returns, so a client must hold remote
// candidates until it has set the matching remote description.
// Implementations must not block for long.
type Signal interface {
	Offer(pc string, sdp string)      // server-created offer; pc is "down"
	Candidate(pc string, c Candidate) // trickle ICE; pc is "up" or "down"
}

// iceStartWait bounds how long a re-offer waits for the first one's ICE transport.
const iceStartWait = 5 * time.Second

// maxPendingCandidates bounds the candidates held before a remote description.
const maxPendingCandidates = 64

// Peer is one participant's pair of peer connections.
type Peer struct {
	id   string
	room *Room
	sig  Signal
	log  *slog.Logger
	up   *webrtc.PeerConnection // client offers; client → SFU
	down *webrtc.PeerConnection // SFU offers; SFU → client
	// downOut is where the SFU's own writer sends forwarded RTP on down
	// (downout.go); nil for a peer built by a unit test.
	downOut *downOut
	closed  atomic.Bool
	done    chan struct{} // closed with closed

	upMu      sync.Mutex // serialises up negotiation
	upPending []webrtc.ICECandidateInit
	upGuard   candidateGuard // up's remote candidates (candidate.go)
	upStarted chan struct{}  // closed once up's ICE transport has started
	upOnce    sync.Once

	// downReady is set once the down connection's ICE has connected. Pion v3
	// treats a re-offer applied before its ICE transport has started (an
	// asynchronous step after the first description) as an ICE restart with
	// changed credentials, on whichever side it happens to be, and the
	// connection never comes up. So after the first offer the SFU holds
	// further offers until then; see renegotiate.
	downReady atomic.Bool

	negMu       sync.Mutex // serialises down negotiation and its track changes
	downPending []webrtc.ICECandidateInit
	downGuard   candidateGuard // down's remote candidates
	needNeg     bool           // an offer was wanted while one was outstanding
	needRestart bool           // the next down offer restarts ICE (RestartICE)
	lastRestart time.Time      // of the down connection's ICE, by RestartICE

	// Guarded by room.mu.
	published  []*upTrack
	downTracks map[*upTrack]*downTrack
	screens    map[string]bool // track IDs the client declared as screen share
}

// maxScreenTracks bounds the track IDs a client may declare as screen share
// in one offer (a screen's video and a tab's audio, with room to spare).
const maxScreenTracks = 8

// DeclareScreen records that the client's tracks with these IDs (the track
// ID of the msid in its offer) are a screen share, not its camera or
// microphone. Call it with each up offer, before handing it on: the IDs
// replace those of the previous offer (a client declares the screen tracks
// it is sending now), so stopping and starting a share any number of times
// never runs out. Bad IDs are refused and change nothing. It only labels:
// an undeclared video or audio track beyond a live camera and microphone
// is a screen share too (see Room.classifyLocked).
func (p *Peer) DeclareScreen(trackIDs ...string) error {
	if len(trackIDs) > maxScreenTracks {
		return fmt.Errorf("sfu: peer %s: %d screen tracks, more than %d: %w", p.id, len(trackIDs), maxScreenTracks, ErrBadSDP)
	}
	screens := make(map[string]bool, len(trackIDs))
	for _, id := range trackIDs {
		if id == "" || len(id) > 128 {
			return fmt.Errorf("sfu: peer %s: screen track ID %q: empty or longer than 128 bytes: %w", p.id, id, ErrBadSDP)
		}
		screens[id] = true
	}
	p.room.mu.Lock()
	p.screens = screens
	p.room.mu.Unlock()
	return nil
}

// receivingLocked reports whether t, published by p, is still coming in:
// its read loop runs and pion still uses its receiver. When a client's
// offer removes a track, pion replaces its receiver at once, while the read
// loop may take a moment to notice. Caller holds room.mu.
func (p *Peer) receivingLocked(t *upTrack) bool {
	select {
	case <-t.done:
		return false
	default:
	}
	if t.recv == nil {
		return true // fed by a test
	}
	for _, tr := range p.up.GetTransceivers() {
		if tr.Receiver() == t.recv {
			return true
		}
	}
	return false
}

func newPeer(r *Room, id string, sig Signal) (*Peer, error) {
	up, err := r.sfu.api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, fmt.Errorf("sfu: peer %s: new up connection: %w", id, err)
	}
	down, err := r.sfu.api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		_ = up.Close()
		return nil, fmt.Errorf("sfu: peer %s: new down connection: %w", id, err)
	}
	p := &Peer{
		id: id, room: r, sig: sig,
		log:        r.log.With(slog.String("peer", id)),
		up:         up,
		down:       down,
		downTracks: map[*upTrack]*downTrack{},
		upStarted:  make(chan struct{}),
		done:       make(chan struct{}),
		upGuard:    candidateGuard{pol: r.sfu.addrs, now: time.Now},
		downGuard:  candidateGuard{pol: r.sfu.addrs, now: time.Now},
	}
	p.downOut = r.sfu.watchDown(down, p.log)
	for name, pc := range map[string]*webrtc.PeerConnection{PCUp: up, PCDown: down} {
		pc.OnICECandidate(func(c *webrtc.ICECandidate) {
			if c == nil || p.closed.Load() {
				return
			}
			sig.Candidate(name, Candidate(c.ToJSON()))
		})
		pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
			p.log.Debug("connection state", slog.String("pc", name), slog.String("state", s.String()))
		})
	}
	up.OnICEConnectionStateChange(func(s webrtc.ICEConnectionState) {
		if s != webrtc.ICEConnectionStateNew {
			p.upOnce.Do(func() { close(p.upStarted) })
		}
	})
	down.OnICEConnectionStateChange(func(s webrtc.ICEConnectionState) {
		p.downOut.iceStateChanged(s)
		if (s == webrtc.ICEConnectionStateConnected || s == webrtc.ICEConnectionStateCompleted) &&
			p.downReady.CompareAndSwap(false, true) {
			go r.spawn(p.renegotiatePending) // off pion's ICE goroutine, which calls this synchronously
		}
	})
	up.OnTrack(func(remote *webrtc.TrackRemote, recv *webrtc.RTPReceiver) {
		r.publish(p, newUpTrack(r, p, remote, recv))
	})
	return p, nil
}

// ID returns the participant ID.
func (p *Peer) ID() string { return p.id }

// HandleOffer applies the client's offer for its up connection (first offer
// or a re-offer, e.g. adding a screen share) and returns the SFU's answer,
// which receives only.
func (p *Peer) HandleOffer(sdp string) (string, error) {
	if p.closed.Load() {
		return "", fmt.Errorf("sfu: peer %s: up offer: %w", p.id, ErrClosed)
	}
	desc := webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: sdp}
	if _, err := desc.Unmarshal(); err != nil {
		return "", fmt.Errorf("sfu: peer %s: up offer: %w: %w", p.id, ErrBadSDP, err)
	}
	p.upMu.Lock()
	defer p.upMu.Unlock()
	if p.up.CurrentRemoteDescription() != nil && iceCredsChanged(p.up.CurrentRemoteDescription().SDP, sdp) {
		// The client restarts ICE (its network changed): pion starts
		// checks afresh with the new credentials; the client's new
		// candidates are counted afresh too.
		p.upGuard.restart()
		p.log.Info("ice restart", slog.String("pc", PCUp))
	}
	desc = p.filterDesc(PCUp, desc, &p.upGuard)
	if p.up.CurrentRemoteDescription() != nil {
		// A re-offer: wait for the ICE transport to start (see downReady).
		select {
		case <-p.upStarted:
		case <-p.done:
			return "", fmt.Errorf("sfu: peer %s: up offer: %w", p.id, ErrClosed)
		case <-time.After(iceStartWait):
			return "", fmt.Errorf("sfu: peer %s: up re-offer before the connection started: %w", p.id, ErrBadSDP)
		}
	}
	if err := p.up.SetRemoteDescription(desc); err != nil {
		return "", p.descErr("up offer", err)
	}
	p.upPending = p.addPending(p.up, p.upPending)
	answer, err := p.up.CreateAnswer(nil)
	if err != nil {
		return "", p.descErr("up answer", err)
	}
	if err := p.up.SetLocalDescription(answer); err != nil {
		return "", p.descErr("up answer", err)
	}
	return answer.SDP, nil
}

// HandleAnswer applies the client's answer to the SFU's last down offer. If
// the tracks changed meanwhile, the SFU offers again.
func (p *Peer) HandleAnswer(sdp string) error {
	if p.closed.Load() {
		return fmt.Errorf("sfu: peer %s: down answer: %w", p.id, ErrClosed)
	}
	desc := webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: sdp}
	if _, err := desc.Unmarshal(); err != nil {
		return fmt.Errorf("sfu: peer %s: down answer: %w: %w", p.id, ErrBadSDP, err)
	}
	p.negMu.Lock()
	if st := p.down.SignalingState(); st != webrtc.SignalingStateHaveLocalOffer {
		p.negMu.Unlock()
		return fmt.Errorf("sfu: peer %s: down answer in state %s, no offer outstanding: %w", p.id, st, ErrBadSDP)
	}
	desc = p.filterDesc(PCDown, desc, &p.downGuard)
	if err := p.down.SetRemoteDescription(desc); err != nil {
		p.negMu.Unlock()
		return p.descErr("down answer", err)
	}
	p.downPending = p.addPending(p.down, p.downPending)
	again := p.needNeg
	p.needNeg = false
	p.negMu.Unlock()

	p.room.keyframesFor(p)
	if again {
		p.renegotiate()
	}
	return nil
}

// AddCandidate adds the client's trickled candidate for pc ("up" or "down").
// Candidates that arrive before the remote description are held until it is set.
func (p *Peer) AddCandidate(pc string, c Candidate) error {
	var (
		mu      *sync.Mutex
		conn    *webrtc.PeerConnection
		pending *[]webrtc.ICECandidateInit
		guard   *candidateGuard
	)
	switch pc {
	case PCUp:
		mu, conn, pending, guard = &p.upMu, p.up, &p.upPending, &p.upGuard
	case PCDown:
		mu, conn, pending, guard = &p.negMu, p.down, &p.downPending, &p.downGuard
	default:
		return fmt.Errorf("sfu: peer %s: candidate for %q: %w", p.id, pc, ErrUnknownPC)
	}
	if p.closed.Load() {
		return fmt.Errorf("sfu: peer %s: candidate: %w", p.id, ErrClosed)
	}
	mu.Lock()
	defer mu.Unlock()
	if c.Candidate != "" { // "" is the end of candidates
		if err := guard.admit(c.Candidate); err != nil {
			return fmt.Errorf("sfu: peer %s: %s candidate: %w", p.id, pc, err)
		}
	}
	if conn.RemoteDescription() == nil {
		if len(*pending) >= maxPendingCandidates {
			return fmt.Errorf("sfu: peer %s: more than %d candidates before the %s description: %w", p.id, maxPendingCandidates, pc, ErrBadSDP)
		}
		*pending = append(*pending, webrtc.ICECandidateInit(c))
		return nil
	}
	if err := conn.AddICECandidate(webrtc.ICECandidateInit(c)); err != nil {
		return p.descErr(pc+" candidate", err)
	}
	return nil
}

// filterDesc drops the candidates of a client's SDP that guard refuses.
func (p *Peer) filterDesc(pc string, desc webrtc.SessionDescription, guard *candidateGuard) webrtc.SessionDescription {
	sdp, dropped := guard.filterSDP(desc.SDP)
	if dropped == 0 {
		return desc
	}
	p.log.Debug("candidates refused in SDP", slog.String("pc", pc), slog.Int("dropped", dropped))
	return webrtc.SessionDescription{Type: desc.Type, SDP: sdp}
}

// Close removes the peer from its room (if still there) and closes its
// connections; its tracks go from every other peer.
func (p *Peer) Close() { p.room.removePeer(p) }

// addPending applies held candidates to pc once its remote description is set.
func (p *Peer) addPending(pc *webrtc.PeerConnection, pending []webrtc.ICECandidateInit) []webrtc.ICECandidateInit {
	for _, c := range pending {
		if err := pc.AddICECandidate(c); err != nil {
			p.log.Debug("held candidate", slog.Any("err", err))
		}
	}
	return nil
}

func (p *Peer) descErr(what string, err error) error {
	if p.closed.Load() {
		return fmt.Errorf("sfu: peer %s: %s: %w", p.id, what, ErrClosed)
	}
	return fmt.Errorf("sfu: peer %s: %s: %w: %w", p.id, what, ErrBadSDP, err)
}

// renegotiate sends a new down offer, or, while one is outstanding, marks
// that another is needed once the answer comes. It does nothing before the
// down connection has any track to carry.
func (p *Peer) renegotiate() {
	p.negMu.Lock()
	if p.closed.Load() {
		p.negMu.Unlock()
		return
	}
	if p.down.SignalingState() != webrtc.SignalingStateStable {
		p.needNeg = true
		p.negMu.Unlock()
		return
	}
	if len(p.down.GetTransceivers()) == 0 {
		p.negMu.Unlock()
		return
	}
	if p.down.CurrentRemoteDescription() != nil && !p.downReady.Load() {
		p.needNeg = true // offered again once ICE connects
		p.negMu.Unlock()
		return
	}
	p.needNeg = false
	var opts *webrtc.OfferOptions
	if p.needRestart {
		p.needRestart = false
		opts = &webrtc.OfferOptions{ICERestart: true}
		p.downGuard.restart()
	}
	offer, err := p.down.CreateOffer(opts)
	if err == nil {
		err = p.down.SetLocalDescription(offer)
	}
	p.negMu.Unlock()
	if err != nil {
		if !p.closed.Load() {
			p.log.Warn("down offer", slog.Any("err", err))
		}
		return
	}
	p.sig.Offer(PCDown, offer.SDP)
}

// minRestartGap bounds how often a client may have the down connection's
// ICE restarted (each restart gathers anew and lets it name new
// candidates).
const minRestartGap = time.Second

// ErrRestartTooSoon: RestartICE again within minRestartGap; nothing changed.
var ErrRestartTooSoon = errors.New("sfu: ice restart requested again too soon")

// RestartICE restarts ICE on the down connection, as the client asks when
// its network changed (its connection went disconnected or failed): the SFU
// offers again with new ICE credentials, the client answers with its new
// candidates, and media goes on on the new path with the same DTLS and SRTP
// session (no new admission, no new tracks). The client restarts its up
// connection itself, with an offer that changes the ICE credentials
// (HandleOffer).
func (p *Peer) RestartICE() error {
	if p.closed.Load() {
		return fmt.Errorf("sfu: peer %s: ice restart: %w", p.id, ErrClosed)
	}
	p.negMu.Lock()
	now := time.Now()
	if now.Sub(p.lastRestart) < minRestartGap {
		p.negMu.Unlock()
		return fmt.Errorf("sfu: peer %s: %w", p.id, ErrRestartTooSoon)
	}
	p.lastRestart = now
	p.needRestart = true
	p.negMu.Unlock()
	p.log.Info("ice restart", slog.String("pc", PCDown))
	p.renegotiate()
	return nil
}

// iceCredsChanged reports whether two SDPs carry different ICE usernames
// (an ICE restart changes them, RFC 8445 §9).
func iceCredsChanged(old, sdp string) bool {
	return iceUfrag(old) != iceUfrag(sdp)
}

// iceUfrag returns the first a=ice-ufrag of an SDP.
func iceUfrag(sdp string) string {
	_, rest, ok := strings.Cut(sdp, "a=ice-ufrag:")
	if !ok {
		return ""
	}
	ufrag, _, _ := strings.Cut(rest, "\n")
	return strings.TrimSpace(ufrag)
}

// renegotiatePending offers again if an offer was held back.
func (p *Peer) renegotiatePending() {
	p.negMu.Lock()
	need := p.needNeg
	p.negMu.Unlock()
	if need {
		p.renegotiate()
	}
}

// closePCs closes both connections once; the tracks' goroutines then end.
func (p *Peer) closePCs() {
	if p.closed.Swap(true) {
		return
	}
	close(p.done)
	if err := p.up.Close(); err != nil {
		p.log.Debug("close up", slog.Any("err", err))
	}
	if err := p.down.Close(); err != nil {
		p.log.Debug("close down", slog.Any("err", err))
	}
}
