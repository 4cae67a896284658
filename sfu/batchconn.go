package sfu

import (
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/net/ipv4"
)

// Batched sends. pion writes every packet to every subscriber with its own
// WriteTo on the ICE mux socket, synchronously in the goroutine that called
// WriteRTP (srtp session → webrtc mux endpoint → ice.Conn → candidate →
// udpMuxedConn → UDPMuxDefault → our socket). While a forwarder fans a
// packet out (batchGroup.hold … release), the socket's wrapper copies each
// outgoing RTP datagram into a preallocated slot instead, and release sends
// them all with one sendmmsg. Everything else (STUN, DTLS, RTCP) and RTP
// written while no forwarder holds a batch goes out at once.

const (
	batchSlots    = 64   // a batch is sent when it has this many messages
	batchSlotSize = 2048 // larger datagrams are sent on their own
)

// batchGroup is the set of batching sockets of one SFU (one per listening
// address) and the count of forwarders holding a batch open. A nil group
// batches nothing.
type batchGroup struct {
	open  atomic.Int32
	conns []*batchConn
	log   *slog.Logger
}

// wrap returns c wrapped for batching, or c itself if it is not a socket
// (a test's wrapper) and cannot send batches.
func (g *batchGroup) wrap(c net.PacketConn) net.PacketConn {
	if g == nil {
		return c
	}
	if _, ok := c.(syscall.Conn); !ok {
		return c
	}
	bc := &batchConn{PacketConn: c, g: g, pc: ipv4.NewPacketConn(c)}
	for i := range bc.ms {
		bc.bufs[i] = make([]byte, batchSlotSize)
		bc.ms[i].Buffers = bc.vecs[i : i+1 : i+1]
	}
	g.conns = append(g.conns, bc)
	return bc
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

// batchConn is one batching socket.
type batchConn struct {
	net.PacketConn
	g  *batchGroup
	pc *ipv4.PacketConn // WriteBatch (sendmmsg) on the same socket

	mu   sync.Mutex
	n    int // messages queued
	ms   [batchSlots]ipv4.Message
	vecs [batchSlots][]byte // ms[i].Buffers is vecs[i:i+1]
	bufs [batchSlots][]byte // the slots, batchSlotSize each

	dropped atomic.Uint64 // messages the kernel refused, since the last log
	lastLog atomic.Int64  // unix nanoseconds
}

// WriteTo queues p if a batch is open and p is RTP, and sends it otherwise.
// A queued packet counts as written: its send errors are logged at flush,
// as pion's own candidate write only logs them.
func (c *batchConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	if c.g.open.Load() == 0 || !isRTPPacket(p) {
		return c.PacketConn.WriteTo(p, addr)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	// Checked again under the lock: a release that has already flushed
	// must not leave this packet waiting for the next batch.
	if c.g.open.Load() == 0 || len(p) > batchSlotSize {
		c.flushLocked() // keep the order of what was queued before
		return c.PacketConn.WriteTo(p, addr)
	}
	i := c.n
	c.vecs[i] = c.bufs[i][:copy(c.bufs[i], p)]
	c.ms[i].Addr = addr
	c.n++
	if c.n == batchSlots {
		c.flushLocked()
	}
	return len(p), nil
}

// flushLocked sends the queued messages. A short send is resumed; a message
// the kernel refuses (sendmmsg fails on the first message it cannot send) is
// dropped and counted, and the rest are sent. c.mu is held.
func (c *batchConn) flushLocked() {
	ms := c.ms[:c.n]
	for len(ms) > 0 {
		var n int
		var err error
		if len(ms) == 1 {
			// One message: a plain sendto, as without batching.
			_, err = c.PacketConn.WriteTo(ms[0].Buffers[0], ms[0].Addr)
			if err == nil {
				n = 1
			}
		} else {
			n, err = c.pc.WriteBatch(ms, 0)
		}
		if n <= 0 {
			n = 0
			if err == nil {
				err = io.ErrShortWrite // no progress: drop the first, go on
			}
		}
		ms = ms[n:]
		if err != nil && len(ms) > 0 {
			c.dropped.Add(1)
			c.logDrop(ms[0].Addr, err)
			ms = ms[1:]
		}
	}
	for i := range c.n {
		c.ms[i].Addr = nil // keep no subscriber's address alive
	}
	c.n = 0
}

// logDrop logs a refused send, at most once a second per socket, with the
// number dropped since the last log.
func (c *batchConn) logDrop(addr net.Addr, err error) {
	now := time.Now().UnixNano()
	last := c.lastLog.Load()
	if now-last < int64(time.Second) || !c.lastLog.CompareAndSwap(last, now) {
		return
	}
	to := ""
	if addr != nil {
		to = addr.String()
	}
	c.g.log.Warn("sfu: batched send failed; packet dropped",
		slog.String("to", to), slog.Uint64("dropped", c.dropped.Swap(0)), slog.Any("err", err))
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
