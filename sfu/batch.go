package sfu

import (
	"log/slog"
	"sync/atomic"
)

// batchGroup is the set of batching sockets of one SFU (one per listening
// address) and the count of forwarders holding a batch open. A nil group
// batches nothing.
type batchGroup struct {
	open  atomic.Int32
	conns []*batchConn
	log   *slog.Logger
}

// batcher returns s's batch group; nil (no batching) for no SFU, as in unit
// tests that build a room by hand.
func (s *SFU) batcher() *batchGroup {
	if s == nil {
		return nil
	}
	return s.batch
}

// hold opens a batch: until the matching release, RTP written to the
// group's sockets is queued.
func (g *batchGroup) hold() {
	if g != nil {
		g.open.Add(1)
	}
}

// release closes the caller's batch and sends whatever is queued, by any
// goroutine: nothing waits longer than the fan-out loop that queued it.
func (g *batchGroup) release() {
	if g == nil {
		return
	}
	g.open.Add(-1)
	for _, c := range g.conns {
		c.mu.Lock()
		c.flushLocked()
		c.mu.Unlock()
	}
}

// isRTPPacket reports whether b is (S)RTP rather than STUN, DTLS or (S)RTCP
// (RFC 7983 first byte 128–191; RFC 5761 RTCP packet types 192–223).
func isRTPPacket(b []byte) bool {
	if len(b) < 12 || b[0]&0xc0 != 0x80 {
		return false
	}
	pt := b[1] & 0x7f
	return pt < 64 || pt > 95
}
