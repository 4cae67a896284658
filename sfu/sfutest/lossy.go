package sfutest

import (
	"math"
	"math/rand/v2"
	"net"
	"sync/atomic"
)

// lossyConn drops a fraction of the RTP packets it reads, at random.
type lossyConn struct {
	net.PacketConn
	rate    atomic.Uint64 // math.Float64bits of the fraction dropped
	dropped atomic.Uint64
}

func (l *lossyConn) setRate(f float64) { l.rate.Store(math.Float64bits(f)) }

func (l *lossyConn) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		n, addr, err := l.PacketConn.ReadFrom(b)
		if err != nil || !IsRTP(b[:n]) || rand.Float64() >= math.Float64frombits(l.rate.Load()) {
			return n, addr, err
		}
		l.dropped.Add(1)
	}
}

// IsRTP tells an RTP (or SRTP) packet from RTCP, STUN and DTLS (RFC 7983,
// RFC 5761).
func IsRTP(b []byte) bool {
	if len(b) < 12 || b[0]&0xc0 != 0x80 {
		return false
	}
	pt := b[1] & 0x7f
	return pt < 64 || pt > 95
}
