package sfu

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Batched sends. Each published track's forwarding goroutine has a
// sendBatch: while it fans a packet out, the SFU's SRTP writer encrypts each
// subscriber's copy straight into a slot of the batch, and when the loop over
// the subscribers ends, one sendmmsg sends them all. Nothing is shared
// between forwarders, so they take no lock to send, and nothing waits longer
// than the fan-out loop that queued it. Everything pion writes itself
// (STUN, DTLS, RTCP, and the RTP of connections the SFU's writer does not
// serve) goes out at once with sendto.

const (
	batchSlots    = 64   // a batch is sent when it has this many messages
	batchSlotSize = 2048 // a slot holds one SRTP packet (at most slotSize + tag)
)

// sendBatch is one forwarding goroutine's queue of datagrams, all for one
// socket. Only that goroutine uses it.
type sendBatch struct {
	sock *udpSocket // the socket of the queued messages
	n    int        // messages queued
	ms   [batchSlots]unix.Mmsghdr
	iovs [batchSlots]unix.Iovec
	sas  [batchSlots]sockaddr
	bufs [batchSlots][]byte // the slots, made when first used

	log     *slog.Logger
	dropped uint64 // messages the kernel refused, since the last log
	lastLog time.Time
}

func newSendBatch(log *slog.Logger) *sendBatch {
	b := &sendBatch{log: log}
	for i := range b.ms {
		b.ms[i].Hdr.Iov = &b.iovs[i]
		b.ms[i].Hdr.SetIovlen(1)
		b.ms[i].Hdr.Name = (*byte)(unsafe.Pointer(&b.sas[i].raw))
	}
	return b
}

// slot returns the next free slot, empty with batchSlotSize capacity, for a
// datagram on sock; commit queues what was written into it. What is queued
// for another socket, or a full batch, is sent first.
func (b *sendBatch) slot(sock *udpSocket) []byte {
	if b.n > 0 && (b.sock != sock || b.n == batchSlots) {
		b.flush()
	}
	b.sock = sock
	if b.bufs[b.n] == nil {
		b.bufs[b.n] = make([]byte, batchSlotSize)
		b.iovs[b.n].Base = &b.bufs[b.n][0]
	}
	return b.bufs[b.n][:0]
}

// commit queues the datagram of n bytes written into the last slot, to d.
func (b *sendBatch) commit(d *sockDst, n int) {
	b.sas[b.n] = d.sa
	b.ms[b.n].Hdr.Namelen = d.sa.len
	b.iovs[b.n].SetLen(n)
	b.n++
}

// flush sends the queued messages. A short send is resumed; a message the
// kernel refuses (sendmmsg stops at the first it cannot send) is dropped,
// counted and logged at most once a second, and the rest are sent. When the
// socket's send buffer is full, the rest of the batch is dropped: for live
// media that is better than holding up every other subscriber's copy.
func (b *sendBatch) flush() {
	if b.n == 0 {
		return
	}
	if b.sock.discard.Load() {
		b.n = 0 // benchmarks: everything but the system call
		return
	}
	for i := 0; i < b.n; {
		n, err := b.sock.sendBatch(b.ms[i:b.n])
		if n <= 0 {
			n = 0
			if err == nil {
				err = io.ErrShortWrite // no progress: drop the first, go on
			}
		}
		i += n
		if err != nil && i < b.n {
			if errors.Is(err, unix.EAGAIN) {
				b.dropped += uint64(b.n - i - 1)
				b.drop(&b.sas[i], err)
				break
			}
			b.drop(&b.sas[i], err)
			i++
		}
	}
	b.n = 0
}

func (b *sendBatch) drop(sa *sockaddr, err error) {
	b.dropped++
	now := time.Now()
	if now.Sub(b.lastLog) < time.Second {
		return
	}
	b.lastLog = now
	to := udpAddrOf(&sa.raw)
	b.log.Warn("sfu: batched send failed; packet dropped",
		slog.String("to", to.String()), slog.Uint64("dropped", b.dropped), slog.Any("err", err))
	b.dropped = 0
}

// sockDst is a destination on one of the SFU's own sockets.
type sockDst struct {
	sock *udpSocket
	sa   sockaddr
}

// makeDst returns the destination addr on sock; a zero sockDst (no socket)
// if sock is nil or addr not of its family.
func makeDst(sock *udpSocket, addr *net.UDPAddr) sockDst {
	d := sockDst{sock: sock}
	if sock == nil || !rawSockaddr(&d.sa, addr, sock.v6) {
		return sockDst{}
	}
	return d
}

// ownSocket returns c if it is one of the SFU's own sockets.
func ownSocket(c net.PacketConn) *udpSocket {
	s, _ := c.(*udpSocket)
	return s
}
