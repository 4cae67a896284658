//go:build linux

package sfu

import (
	"encoding/binary"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// batchPair is a batching socket and a plain receiving socket on loopback.
type batchPair struct {
	g    *batchGroup
	conn *batchConn
	rx   *net.UDPConn
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
	g := &batchGroup{log: slog.Default()}
	bc, ok := g.wrap(tx).(*batchConn)
	require.True(t, ok, "a UDP socket is wrapped")
	return &batchPair{g: g, conn: bc, rx: rx}
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

// While a batch is held, RTP waits for the release and goes out in order;
// anything else (here a STUN-like packet) goes out at once.
func TestBatchConnQueuesRTPUntilRelease(t *testing.T) {
	t.Parallel()
	bp := newBatchPair(t)
	to := bp.rx.LocalAddr()

	bp.g.hold()
	for i := range 3 {
		n, err := bp.conn.WriteTo(rtpPacket(uint16(i), 200), to)
		require.NoError(t, err)
		require.Equal(t, 200, n, "a queued write reports the whole packet written")
	}
	stun := []byte{0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}
	_, err := bp.conn.WriteTo(stun, to)
	require.NoError(t, err)
	require.Equal(t, stun, bp.recv(t, 2*time.Second), "non-RTP is not held back")
	require.Nil(t, bp.recv(t, 100*time.Millisecond), "RTP waits for the release")

	bp.g.release()
	for i := range 3 {
		got := bp.recv(t, 2*time.Second)
		require.Len(t, got, 200)
		require.Equal(t, uint16(i), binary.BigEndian.Uint16(got[2:]))
	}

	// No batch open: RTP goes out at once.
	_, err = bp.conn.WriteTo(rtpPacket(7, 100), to)
	require.NoError(t, err)
	got := bp.recv(t, 2*time.Second)
	require.Len(t, got, 100)
}

// A full batch is sent without waiting for the release; a datagram too big
// for a slot is sent on its own, after what was queued before it.
func TestBatchConnFlushesFullBatchAndBigPackets(t *testing.T) {
	t.Parallel()
	bp := newBatchPair(t)
	to := bp.rx.LocalAddr()

	bp.g.hold()
	for i := range batchSlots + 1 {
		_, err := bp.conn.WriteTo(rtpPacket(uint16(i), 100), to)
		require.NoError(t, err)
	}
	for i := range batchSlots {
		got := bp.recv(t, 2*time.Second)
		require.NotNil(t, got, "packet %d of a full batch", i)
		require.Equal(t, uint16(i), binary.BigEndian.Uint16(got[2:]))
	}
	require.Nil(t, bp.recv(t, 100*time.Millisecond), "the next batch is held")

	big := rtpPacket(1000, batchSlotSize+1)
	n, err := bp.conn.WriteTo(big, to)
	require.NoError(t, err)
	require.Equal(t, len(big), n)
	require.Equal(t, uint16(batchSlots), binary.BigEndian.Uint16(bp.recv(t, 2*time.Second)[2:]), "queued before the big one")
	require.Len(t, bp.recv(t, 2*time.Second), len(big))
	bp.g.release()
	require.Nil(t, bp.recv(t, 100*time.Millisecond), "nothing left")
}

// A message the kernel refuses (broadcast without SO_BROADCAST) is dropped;
// the messages before and after it in the batch are sent.
func TestBatchConnDropsRefusedMessage(t *testing.T) {
	t.Parallel()
	bp := newBatchPair(t)
	to := bp.rx.LocalAddr()
	port := bp.rx.LocalAddr().(*net.UDPAddr).Port
	bad := &net.UDPAddr{IP: net.IPv4bcast, Port: port}

	bp.g.hold()
	for i, addr := range []net.Addr{to, bad, to, bad, bad, to} {
		n, err := bp.conn.WriteTo(rtpPacket(uint16(i), 100), addr)
		require.NoError(t, err)
		require.Equal(t, 100, n)
	}
	bp.g.release()
	for _, want := range []uint16{0, 2, 5} {
		got := bp.recv(t, 2*time.Second)
		require.NotNil(t, got, "packet %d", want)
		require.Equal(t, want, binary.BigEndian.Uint16(got[2:]))
	}
	require.Nil(t, bp.recv(t, 100*time.Millisecond))
}

// Forwarders on several goroutines share the socket: every packet arrives,
// whichever release sends it (run with -race).
func TestBatchConnConcurrentHolders(t *testing.T) {
	t.Parallel()
	bp := newBatchPair(t)
	to := bp.rx.LocalAddr()
	const writers, rounds, perRound = 4, 25, 5

	got := make(chan map[uint16]bool)
	go func() {
		seen := map[uint16]bool{}
		buf := make([]byte, 2048)
		for len(seen) < writers*rounds*perRound {
			_ = bp.rx.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, _, err := bp.rx.ReadFrom(buf)
			if err != nil || n < 4 {
				break
			}
			seen[binary.BigEndian.Uint16(buf[2:])] = true
		}
		got <- seen
	}()
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for r := range rounds {
				bp.g.hold()
				for i := range perRound {
					_, _ = bp.conn.WriteTo(rtpPacket(uint16((w*rounds+r)*perRound+i), 200), to)
				}
				bp.g.release()
			}
		})
	}
	wg.Wait()
	require.Len(t, <-got, writers*rounds*perRound)
}

// Queuing and sending a batch allocates nothing.
func TestBatchConnAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector's sync.Pool drops items at random")
	}
	bp := newBatchPair(t)
	to := bp.rx.LocalAddr()
	pkt := rtpPacket(1, 1000)
	send := func() {
		bp.g.hold()
		for range 10 {
			_, _ = bp.conn.WriteTo(pkt, to)
		}
		bp.g.release()
	}
	for range 10 {
		send()
	}
	require.Zero(t, testing.AllocsPerRun(200, send))
}
