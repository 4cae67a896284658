package sfu

import (
	"encoding/binary"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// batchPair is a send batch on one of the SFU's sockets and a plain
// receiving socket, on loopback.
type batchPair struct {
	b  *sendBatch
	tx *udpSocket
	rx *net.UDPConn
	to sockDst
}

func newBatchPair(t *testing.T) *batchPair {
	t.Helper()
	tx, err := listenUDPSocket(net.IPv4(127, 0, 0, 1), 0)
	require.NoError(t, err)
	rx, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	t.Cleanup(func() { _ = tx.Close(); _ = rx.Close() })
	// Room for every datagram a test sends, so that a missing one is ours.
	require.NoError(t, rx.SetReadBuffer(4<<20))
	return &batchPair{b: newSendBatch(slog.Default()), tx: tx, rx: rx, to: makeDst(tx, rx.LocalAddr().(*net.UDPAddr))}
}

// queue queues p for d on the pair's socket.
func (bp *batchPair) queue(p []byte, d *sockDst) {
	buf := append(bp.b.slot(d.sock), p...)
	bp.b.commit(d, len(buf))
}

// rtpPacket is an RTP packet of size bytes numbered seq.
func rtpPacket(seq uint16, size int) []byte {
	p := make([]byte, size)
	p[0], p[1] = 0x80, 96
	binary.BigEndian.PutUint16(p[2:], seq)
	return p
}

// recv reads one datagram, or returns nil after wait.
func (bp *batchPair) recv(t *testing.T, wait time.Duration) []byte {
	t.Helper()
	buf := make([]byte, 4096)
	require.NoError(t, bp.rx.SetReadDeadline(time.Now().Add(wait)))
	n, _, err := bp.rx.ReadFrom(buf)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return nil
	}
	require.NoError(t, err)
	return buf[:n]
}

// Queued datagrams wait for the flush and go out in order.
func TestSendBatchQueuesUntilFlush(t *testing.T) {
	t.Parallel()
	bp := newBatchPair(t)
	for i := range 3 {
		bp.queue(rtpPacket(uint16(i), 200), &bp.to)
	}
	require.Nil(t, bp.recv(t, 100*time.Millisecond), "nothing before the flush")
	bp.b.flush()
	for i := range 3 {
		got := bp.recv(t, 2*time.Second)
		require.Len(t, got, 200)
		require.Equal(t, uint16(i), binary.BigEndian.Uint16(got[2:]))
	}
	bp.b.flush()
	require.Nil(t, bp.recv(t, 100*time.Millisecond), "a flush sends a message once")
}

// A full batch is sent when the next slot is asked for; so is a batch for
// another socket.
func TestSendBatchFullOrOtherSocket(t *testing.T) {
	t.Parallel()
	bp := newBatchPair(t)
	for i := range batchSlots + 1 {
		bp.queue(rtpPacket(uint16(i), 100), &bp.to)
	}
	for i := range batchSlots {
		got := bp.recv(t, 2*time.Second)
		require.NotNil(t, got, "packet %d of a full batch", i)
		require.Equal(t, uint16(i), binary.BigEndian.Uint16(got[2:]))
	}
	require.Nil(t, bp.recv(t, 100*time.Millisecond), "the next batch is held")

	other, err := listenUDPSocket(net.IPv4(127, 0, 0, 1), 0)
	require.NoError(t, err)
	defer other.Close()
	viaOther := makeDst(other, bp.rx.LocalAddr().(*net.UDPAddr))
	bp.queue(rtpPacket(500, 100), &viaOther)
	require.Equal(t, uint16(batchSlots), binary.BigEndian.Uint16(bp.recv(t, 2*time.Second)[2:]), "queued for the first socket, sent first")
	bp.b.flush()
	require.Equal(t, uint16(500), binary.BigEndian.Uint16(bp.recv(t, 2*time.Second)[2:]))
}

// A message the kernel refuses (broadcast without SO_BROADCAST) is dropped;
// the messages before and after it in the batch are sent.
func TestSendBatchDropsRefusedMessage(t *testing.T) {
	t.Parallel()
	bp := newBatchPair(t)
	bad := makeDst(bp.tx, &net.UDPAddr{IP: net.IPv4bcast, Port: bp.rx.LocalAddr().(*net.UDPAddr).Port})
	for i, d := range []*sockDst{&bp.to, &bad, &bp.to, &bad, &bad, &bp.to} {
		bp.queue(rtpPacket(uint16(i), 100), d)
	}
	bp.b.flush()
	for _, want := range []uint16{0, 2, 5} {
		got := bp.recv(t, 2*time.Second)
		require.NotNil(t, got, "packet %d", want)
		require.Equal(t, want, binary.BigEndian.Uint16(got[2:]))
	}
	require.Nil(t, bp.recv(t, 100*time.Millisecond))
	require.Zero(t, bp.b.n)
}

// Benchmarks' discard: a flush drops the batch without sending it.
func TestSendBatchDiscard(t *testing.T) {
	t.Parallel()
	bp := newBatchPair(t)
	bp.tx.discard.Store(true)
	bp.queue(rtpPacket(1, 100), &bp.to)
	bp.b.flush()
	require.Nil(t, bp.recv(t, 100*time.Millisecond))
	bp.tx.discard.Store(false)
	bp.queue(rtpPacket(2, 100), &bp.to)
	bp.b.flush()
	require.NotNil(t, bp.recv(t, 2*time.Second))
}

// Queuing and sending a batch allocates nothing.
func TestSendBatchAllocatesNothing(t *testing.T) {
	bp := newBatchPair(t)
	pkt := rtpPacket(1, 1000)
	send := func() {
		for range 10 {
			bp.queue(pkt, &bp.to)
		}
		bp.b.flush()
	}
	send()
	require.Zero(t, testing.AllocsPerRun(200, send))
}
