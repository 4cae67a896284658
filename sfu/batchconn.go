//go:build linux

package sfu

import (
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
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

// wrap returns c wrapped for batching, or c itself if it is not the SFU's
// own socket (a test's wrapper) and cannot send batches.
func (g *batchGroup) wrap(c net.PacketConn) net.PacketConn {
	if g == nil {
		return c
	}
	sock, ok := c.(*udpSocket)
	if !ok {
		return c
	}
	bc := &batchConn{udpSocket: sock, g: g}
	for i := range bc.ms {
		bc.bufs[i] = make([]byte, batchSlotSize)
		bc.iovs[i].Base = &bc.bufs[i][0]
		bc.ms[i].Hdr.Iov = &bc.iovs[i]
		bc.ms[i].Hdr.SetIovlen(1)
		bc.ms[i].Hdr.Name = (*byte)(unsafe.Pointer(&bc.sas[i]))
		bc.ms[i].Hdr.Namelen = unix.SizeofSockaddrInet4
	}
	g.conns = append(g.conns, bc)
	return bc
}

// batchConn is one batching socket.
type batchConn struct {
	*udpSocket
	g *batchGroup

	mu    sync.Mutex
	n     int                      // messages queued
	ms    [batchSlots]unix.Mmsghdr // message i: iovs[i] (bufs[i]) to sas[i]
	iovs  [batchSlots]unix.Iovec
	sas   [batchSlots]unix.RawSockaddrInet4
	addrs [batchSlots]net.Addr // for the log of a refused message
	bufs  [batchSlots][]byte   // the slots, batchSlotSize each

	dropped atomic.Uint64 // messages the kernel refused, since the last log
	lastLog atomic.Int64  // unix nanoseconds
}

// WriteTo queues p if a batch is open and p is RTP, and sends it otherwise.
// A queued packet counts as written: its send errors are logged at flush,
// as pion's own candidate write only logs them.
func (c *batchConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	if c.g.open.Load() == 0 || !isRTPPacket(p) {
		return c.udpSocket.WriteTo(p, addr)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	i := c.n
	// Checked again under the lock: a release that has already flushed
	// must not leave this packet waiting for the next batch.
	if c.g.open.Load() == 0 || len(p) > batchSlotSize || !rawSockaddr(&c.sas[i], addr) {
		c.flushLocked() // keep the order of what was queued before
		return c.udpSocket.WriteTo(p, addr)
	}
	c.iovs[i].SetLen(copy(c.bufs[i], p))
	c.addrs[i] = addr
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
	for i := 0; i < c.n; {
		n, err := c.sendBatch(c.ms[i:c.n])
		if n <= 0 {
			n = 0
			if err == nil {
				err = io.ErrShortWrite // no progress: drop the first, go on
			}
		}
		i += n
		if err != nil && i < c.n {
			c.dropped.Add(1)
			c.logDrop(c.addrs[i], err)
			i++
		}
	}
	for i := range c.n {
		c.addrs[i] = nil // keep no subscriber's address alive
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
