package sfu

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Remote ICE candidates are addresses a client asks the SFU to send
// connectivity checks (STUN binding requests) to. Left alone, an admitted
// pupil could name any address and port, loopback and cloud metadata
// (169.254.169.254) included, and have the gateway probe them. So every
// remote candidate, trickled or in an SDP, passes candidateGuard first.
//
// A client whose own candidates are refused can still connect: its checks
// to the SFU arrive from its real address, which the SFU learns as a
// peer-reflexive candidate (an address that reached the SFU first, not one
// it was told to probe).

const (
	// maxCandidates bounds the candidates accepted per connection (trickled
	// and in SDPs together). A browser gathers a handful per network
	// interface; each accepted one costs pion at most a few checks.
	maxCandidates = 20
	// candidatesPerSecond bounds how fast a connection's candidates are
	// accepted, and so how fast it can give the SFU new addresses to check.
	candidatesPerSecond = 10
)

// ErrCandidateRefused is a remote candidate the SFU will not check: an
// address it never probes, a transport it does not use, or one over the
// limits. Nothing changed; a client need not be told.
var ErrCandidateRefused = errors.New("sfu: remote candidate refused")

// AddrPolicy says which remote candidate addresses the SFU checks.
type AddrPolicy struct {
	Loopback bool // 127.0.0.0/8, ::1: only when the SFU is configured for loopback (dev, tests)
	Private  bool // 10/8, 172.16/12, 192.168/16, fc00::/7 (config ice_allow_private)
}

// reserved4 are IPv4 ranges never checked besides those netip names:
// "this network" and the reserved class E (with the broadcast address).
var reserved4 = []netip.Prefix{netip.MustParsePrefix("0.0.0.0/8"), netip.MustParsePrefix("240.0.0.0/4")}

// allow reports why addr may not be checked, or nil.
func (pol AddrPolicy) allow(addr netip.Addr) error {
	addr = addr.Unmap()
	switch {
	case !addr.IsValid(), addr.IsUnspecified():
		return fmt.Errorf("unspecified address: %w", ErrCandidateRefused)
	case addr.IsMulticast(), addr.IsLinkLocalMulticast(), addr.IsInterfaceLocalMulticast():
		return fmt.Errorf("multicast address %s: %w", addr, ErrCandidateRefused)
	case addr.IsLinkLocalUnicast():
		return fmt.Errorf("link-local address %s: %w", addr, ErrCandidateRefused)
	case addr.IsLoopback() && !pol.Loopback:
		return fmt.Errorf("loopback address %s: %w", addr, ErrCandidateRefused)
	case addr.IsPrivate() && !pol.Private:
		return fmt.Errorf("private address %s (ice_allow_private is off): %w", addr, ErrCandidateRefused)
	}
	for _, p := range reserved4 {
		if p.Contains(addr) {
			return fmt.Errorf("reserved address %s: %w", addr, ErrCandidateRefused)
		}
	}
	return nil
}

// checkCandidate parses an ICE candidate attribute ("candidate:…", with
// or without "a=") just far enough to judge its address: only UDP
// candidates with a literal IP address are used (the SFU resolves no names,
// mDNS included, and speaks only UDP).
func (pol AddrPolicy) checkCandidate(line string) error {
	f := strings.Fields(strings.TrimPrefix(strings.TrimSpace(line), "a="))
	if len(f) < 8 || !strings.HasPrefix(f[0], "candidate:") || f[6] != "typ" {
		return fmt.Errorf("malformed candidate: %w", ErrCandidateRefused)
	}
	if !strings.EqualFold(f[2], "udp") {
		return fmt.Errorf("transport %q: %w", f[2], ErrCandidateRefused)
	}
	addr, err := netip.ParseAddr(f[4])
	if err != nil {
		return fmt.Errorf("address %.64q is not an IP address: %w", f[4], ErrCandidateRefused)
	}
	if port, err := strconv.ParseUint(f[5], 10, 16); err != nil || port == 0 {
		return fmt.Errorf("port %.16q: %w", f[5], ErrCandidateRefused)
	}
	return pol.allow(addr)
}

// candidateGuard counts one connection's remote candidates. It is used
// under the lock of that connection's negotiation.
type candidateGuard struct {
	pol      AddrPolicy
	now      func() time.Time
	accepted int
	window   time.Time // start of the current second
	inWindow int
}

// admit decides on one remote candidate and counts it if accepted.
func (g *candidateGuard) admit(line string) error {
	if err := g.pol.checkCandidate(line); err != nil {
		return err
	}
	if g.accepted >= maxCandidates {
		return fmt.Errorf("more than %d candidates: %w", maxCandidates, ErrCandidateRefused)
	}
	if now := g.now(); now.Sub(g.window) >= time.Second {
		g.window, g.inWindow = now, 0
	}
	if g.inWindow >= candidatesPerSecond {
		return fmt.Errorf("more than %d candidates a second: %w", candidatesPerSecond, ErrCandidateRefused)
	}
	g.accepted++
	g.inWindow++
	return nil
}

// restart counts the connection's candidates afresh after an ICE restart
// (the per-second bound still holds).
func (g *candidateGuard) restart() { g.accepted = 0 }

// filterSDP drops the candidate lines of an SDP that admit refuses, and
// returns the SDP and how many it dropped.
func (g *candidateGuard) filterSDP(sdp string) (string, int) {
	if !strings.Contains(sdp, "a=candidate:") {
		return sdp, 0
	}
	lines := strings.SplitAfter(sdp, "\n")
	out := lines[:0]
	dropped := 0
	for _, l := range lines {
		if strings.HasPrefix(l, "a=candidate:") && g.admit(l) != nil {
			dropped++
			continue
		}
		out = append(out, l)
	}
	return strings.Join(out, ""), dropped
}
