package sfu

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v3"
)

// A connection check is what a page does before it joins (a pupil in the
// lobby, say): one peer connection with a single audio section that only
// receives and on which the SFU sends nothing, to learn whether media can
// reach the SFU from its network at all and how (UDP, TCP or through the
// relay), and to say so in plain words before the lesson instead of showing
// black tiles in it. The check's connection goes through the same ports,
// candidate rules and TURN relay as a lesson's and carries nothing but ICE
// and the DTLS handshake: no media, and no data channel (DTLS application
// records are what pion's DTLS v2 must not carry, DESIGN.md). The SFU
// closes it probeLinger after it connects (time for the page to read its
// stats) or probeLife after it was made, whichever is first. At most
// maxProbes are open at once: a check costs a connection's state and its
// ICE checks, and anyone on a room page may ask for one.

const (
	probeLife   = 20 * time.Second
	probeLinger = 5 * time.Second
	// probeGather bounds the wait for the SFU's own candidates (host
	// candidates on its sockets: at once in practice).
	probeGather = 2 * time.Second
)

// maxProbes bounds the connection checks open at once (a variable for tests).
var maxProbes = 64

// ErrBusy: too many connection checks are open; try again shortly.
var ErrBusy = errors.New("sfu: too many connection checks at once")

// probes are the open connection checks.
type probes struct {
	mu   sync.Mutex
	open map[*webrtc.PeerConnection]struct{}
}

// take counts a new check in, or false when maxProbes are open.
func (p *probes) take(pc *webrtc.PeerConnection) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.open == nil {
		p.open = map[*webrtc.PeerConnection]struct{}{}
	}
	if len(p.open) >= maxProbes {
		return false
	}
	p.open[pc] = struct{}{}
	return true
}

// release closes a check once and counts it out.
func (p *probes) release(pc *webrtc.PeerConnection) {
	p.mu.Lock()
	_, ok := p.open[pc]
	delete(p.open, pc)
	p.mu.Unlock()
	if ok {
		_ = pc.Close()
	}
}

// closeAll closes every open check (at SFU.Close).
func (p *probes) closeAll() {
	p.mu.Lock()
	all := make([]*webrtc.PeerConnection, 0, len(p.open))
	for pc := range p.open {
		all = append(all, pc)
	}
	p.mu.Unlock()
	for _, pc := range all {
		p.release(pc)
	}
}

// ProbesOpen returns how many connection checks are open.
func (s *SFU) ProbesOpen() int {
	s.probes.mu.Lock()
	defer s.probes.mu.Unlock()
	return len(s.probes.open)
}

// Probe answers a page's connection check: offer is its SDP with every
// candidate gathered (no trickle) and one audio section that only receives
// (or is inactive); the answer carries the SFU's candidates, and no track
// is ever sent on its audio section. Any other offer is refused (ErrBadSDP): one that
// would send media, more sections, a data channel; so is one beyond
// maxProbes (ErrBusy). Remote candidates pass
// the same rules as a lesson's (candidate.go).
func (s *SFU) Probe(offer string) (string, error) {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return "", fmt.Errorf("sfu: connection check: %w", ErrClosed)
	}
	// The offer is checked on a parse of its own: pion caches the parse of
	// the description it holds, which its goroutines read.
	var parsed sdp.SessionDescription
	if err := parsed.UnmarshalString(offer); err != nil {
		return "", fmt.Errorf("sfu: connection check: offer: %w: %w", ErrBadSDP, err)
	}
	if err := checkProbeOffer(parsed.MediaDescriptions); err != nil {
		return "", fmt.Errorf("sfu: connection check: offer: %w: %w", ErrBadSDP, err)
	}
	pc, err := s.api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return "", fmt.Errorf("sfu: connection check: new connection: %w", err)
	}
	if !s.probes.take(pc) {
		_ = pc.Close()
		return "", fmt.Errorf("sfu: connection check: %d open: %w", maxProbes, ErrBusy)
	}
	release := func() { s.probes.release(pc) }
	life := time.AfterFunc(probeLife, release)
	fail := func(what string, err error) (string, error) {
		life.Stop()
		release()
		return "", fmt.Errorf("sfu: connection check: %s: %w: %w", what, ErrBadSDP, err)
	}
	pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		switch st {
		case webrtc.PeerConnectionStateConnected:
			time.AfterFunc(probeLinger, release)
		case webrtc.PeerConnectionStateFailed:
			go release() // not on pion's goroutine, which Close waits for
		}
	})
	guard := candidateGuard{pol: s.addrs, now: time.Now}
	filtered, _ := guard.filterSDP(offer)
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: filtered}); err != nil {
		return fail("offer", err)
	}
	answer, err := pc.CreateAnswer(nil)
	if err != nil {
		return fail("answer", err)
	}
	// pion answers the receive-only section as sendonly, with no track:
	// nothing is ever sent on it.
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(answer); err != nil {
		return fail("answer", err)
	}
	select {
	case <-gathered:
	case <-time.After(probeGather):
	}
	local := pc.LocalDescription()
	if local == nil {
		return fail("answer", errors.New("no local description"))
	}
	return local.SDP, nil
}

// checkProbeOffer accepts the media sections of a connection check's offer:
// exactly one, audio, receive-only or inactive.
func checkProbeOffer(mds []*sdp.MediaDescription) error {
	if len(mds) != 1 {
		return fmt.Errorf("%d sections: a check has one receive-only audio section", len(mds))
	}
	md := mds[0]
	if md.MediaName.Media != "audio" {
		return fmt.Errorf("a %s section: a check has one receive-only audio section", md.MediaName.Media)
	}
	for _, dir := range []string{"sendrecv", "sendonly"} {
		if _, ok := md.Attribute(dir); ok {
			return fmt.Errorf("a %s audio section: a check sends no media", dir)
		}
	}
	if _, recv := md.Attribute("recvonly"); !recv {
		if _, inactive := md.Attribute("inactive"); !inactive {
			return errors.New("an audio section with no direction (sendrecv): a check sends no media")
		}
	}
	return nil
}
