package sfu

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func hostCandidate(addr string, port int) string {
	return fmt.Sprintf("candidate:1 1 udp 2130706431 %s %d typ host", addr, port)
}

// TestAddrPolicy: which remote candidate addresses the SFU checks, by
// configuration.
func TestAddrPolicy(t *testing.T) {
	t.Parallel()
	strict, dev, school := AddrPolicy{}, AddrPolicy{Loopback: true}, AddrPolicy{Private: true}
	for _, tc := range []struct {
		addr                string
		strict, dev, school bool // allowed under each policy
	}{
		{"203.0.113.7", true, true, true},
		{"2001:db8::1", true, true, true},
		{"127.0.0.1", false, true, false},
		{"127.8.9.10", false, true, false},
		{"::1", false, true, false},
		{"::ffff:127.0.0.1", false, true, false},
		{"169.254.169.254", false, false, false},
		{"169.254.0.1", false, false, false},
		{"fe80::1", false, false, false},
		{"224.0.0.251", false, false, false},
		{"239.255.255.250", false, false, false},
		{"ff02::1", false, false, false},
		{"0.0.0.0", false, false, false},
		{"0.1.2.3", false, false, false},
		{"::", false, false, false},
		{"255.255.255.255", false, false, false},
		{"10.1.2.3", false, false, true},
		{"172.16.0.1", false, false, true},
		{"172.31.255.255", false, false, true},
		{"172.32.0.1", true, true, true},
		{"192.168.1.20", false, false, true},
		{"fd00::1", false, false, true},
	} {
		t.Run(tc.addr, func(t *testing.T) {
			a := netip.MustParseAddr(tc.addr)
			for _, p := range []struct {
				name string
				pol  AddrPolicy
				want bool
			}{{"strict", strict, tc.strict}, {"dev", dev, tc.dev}, {"school", school, tc.school}} {
				err := p.pol.allow(a)
				require.Equal(t, p.want, err == nil, "%s: %v", p.name, err)
				if err != nil {
					require.ErrorIs(t, err, ErrCandidateRefused)
				}
			}
		})
	}
}

// TestCheckCandidate: only UDP candidates with a literal IP and a port are
// used; no name is resolved (mDNS or DNS).
func TestCheckCandidate(t *testing.T) {
	t.Parallel()
	pol := AddrPolicy{}
	for _, tc := range []struct {
		line string
		ok   bool
	}{
		{hostCandidate("203.0.113.7", 5000), true},
		{"a=" + hostCandidate("203.0.113.7", 5000) + "\r\n", true},
		{"candidate:2 1 UDP 1694498815 198.51.100.4 61000 typ srflx raddr 10.0.0.2 rport 5000", true},
		{hostCandidate("203.0.113.7", 0), false},
		{hostCandidate("203.0.113.7", 70000), false},
		{hostCandidate("3d8f4c2e-8f5a.local", 5000), false},
		{hostCandidate("metadata.google.internal", 80), false},
		{"candidate:1 1 tcp 2130706431 203.0.113.7 9 typ host tcptype active", false},
		{"candidate:1 1 udp 2130706431 203.0.113.7", false},
		{"garbage", false},
		{"", false},
	} {
		err := pol.checkCandidate(tc.line)
		require.Equal(t, tc.ok, err == nil, "%q: %v", tc.line, err)
	}
}

// TestCandidateGuardLimits: at most maxCandidates per connection, at most
// candidatesPerSecond a second; refused ones count towards neither.
func TestCandidateGuardLimits(t *testing.T) {
	t.Parallel()
	now := time.Date(2030, 1, 1, 9, 0, 0, 0, time.UTC) // an injected clock, not compared with the real one
	g := candidateGuard{now: func() time.Time { return now }}
	accepted := 0
	for i := range 1000 {
		if i%10 == 0 {
			now = now.Add(100 * time.Millisecond)
		}
		require.ErrorIs(t, g.admit(hostCandidate("127.0.0.1", 1000+i)), ErrCandidateRefused)
		if g.admit(hostCandidate("203.0.113.7", 1000+i)) == nil {
			accepted++
		}
	}
	require.Equal(t, maxCandidates, accepted)

	g = candidateGuard{now: func() time.Time { return now }}
	for i := range candidatesPerSecond {
		require.NoError(t, g.admit(hostCandidate("203.0.113.7", 1000+i)))
	}
	err := g.admit(hostCandidate("203.0.113.7", 999))
	require.True(t, errors.Is(err, ErrCandidateRefused) && strings.Contains(err.Error(), "a second"), "%v", err)
	now = now.Add(time.Second)
	require.NoError(t, g.admit(hostCandidate("203.0.113.7", 999)))
}

// TestFilterSDP: refused candidate lines go from an SDP, the rest stays
// byte for byte.
func TestFilterSDP(t *testing.T) {
	t.Parallel()
	g := candidateGuard{now: time.Now}
	sdp := "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n" +
		"a=" + hostCandidate("203.0.113.7", 5000) + "\r\n" +
		"a=" + hostCandidate("169.254.169.254", 80) + "\r\n" +
		"a=" + hostCandidate("127.0.0.1", 5000) + "\r\n" +
		"a=end-of-candidates\r\n"
	out, dropped := g.filterSDP(sdp)
	require.Equal(t, 2, dropped)
	require.Equal(t, "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na="+hostCandidate("203.0.113.7", 5000)+"\r\na=end-of-candidates\r\n", out)
}

// FuzzCandidate: whatever a client sends as a candidate or an SDP, an
// accepted candidate names a UDP address the policy allows, the cap holds,
// and filtering an SDP only removes candidate lines.
func FuzzCandidate(f *testing.F) {
	for _, s := range []string{hostCandidate("203.0.113.7", 5000), hostCandidate("127.0.0.1", 1), hostCandidate("169.254.169.254", 80),
		"candidate:1 1 udp 1 ::ffff:10.0.0.1 9 typ host", "v=0\r\na=" + hostCandidate("203.0.113.7", 1) + "\r\na=candidate:x\r\n", "candidate:"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		g := candidateGuard{now: time.Now}
		if g.admit(s) == nil {
			fs := strings.Fields(strings.TrimPrefix(strings.TrimSpace(s), "a="))
			a, err := netip.ParseAddr(fs[4])
			require.NoError(t, err)
			require.NoError(t, AddrPolicy{}.allow(a))
			require.True(t, strings.EqualFold(fs[2], "udp"))
		}
		out, dropped := (&candidateGuard{now: time.Now}).filterSDP(s)
		require.LessOrEqual(t, len(out), len(s))
		require.Equal(t, dropped == 0, out == s)
		for _, l := range strings.SplitAfter(out, "\n") {
			require.True(t, strings.Contains(s, l), "filterSDP made up %q", l)
		}
	})
}
