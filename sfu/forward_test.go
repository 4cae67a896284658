package sfu

import (
	"encoding/binary"
	"sync/atomic"
	"testing"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v3"
	"github.com/stretchr/testify/require"
)

// fakeWriter is a down-track's write stream that keeps what it is given.
type fakeWriter struct {
	n       int
	last    rtp.Header
	payload []byte
	seqs    []uint16 // when keep is set
	keep    bool
}

func (w *fakeWriter) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	w.n++
	w.last = *h
	w.payload = append(w.payload[:0], payload...)
	if w.keep {
		w.seqs = append(w.seqs, h.SequenceNumber)
	}
	return h.MarshalSize() + len(payload), nil
}

func (w *fakeWriter) Write(b []byte) (int, error) { return len(b), nil }

type feedTest struct {
	t       *upTrack
	allowed atomic.Bool
	subs    []*downTrack
	writers []*fakeWriter
	seq     uint16
	raw     []byte
}

func newFeedTest(k int) *feedTest {
	r := &Room{}
	pub := &Peer{id: "pub", room: r}
	f := &feedTest{t: makeUpTrack(r, pub, kindVideo, webrtc.MimeTypeVP8, 0xabc)}
	f.allowed.Store(true)
	f.t.allowed = &f.allowed
	for i := range k {
		e := &edge{}
		e.open.Store(true)
		d := newDownTrack(f.t, &Peer{id: "sub"}, e)
		w := &fakeWriter{keep: true}
		d.local.out.Store(&binding{ssrc: uint32(1000 + i), pt: 100, w: w})
		f.t.addSub(d)
		f.subs = append(f.subs, d)
		f.writers = append(f.writers, w)
	}
	f.seq = 65000 // wraps soon
	return f
}

// feed receives the next packet of the publisher: a header extension
// (which the subscribers must not get) and 4 bytes of payload, the last
// one the low byte of its sequence number.
func (f *feedTest) feed() {
	if f.raw == nil {
		p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SSRC: 0xabc}, Payload: []byte{1, 2, 3, 0}}
		if err := p.SetExtension(1, []byte{0xaa}); err != nil {
			panic(err)
		}
		f.raw, _ = p.Marshal()
	}
	f.seq++
	binary.BigEndian.PutUint16(f.raw[2:], f.seq)
	binary.BigEndian.PutUint32(f.raw[4:], uint32(f.seq)*3000)
	f.raw[len(f.raw)-1] = byte(f.seq)
	f.t.receive(copy(f.t.ring.readBuf(), f.raw))
}

func nack(seqs ...uint16) *rtcp.TransportLayerNack {
	return &rtcp.TransportLayerNack{Nacks: rtcp.NackPairsFromSequenceNumbers(seqs)}
}

func TestForwardRenumbersAcrossGates(t *testing.T) {
	t.Parallel()
	f := newFeedTest(2)
	d, w := f.subs[0], f.writers[0]
	for range 10 {
		f.feed()
	}
	d.edge.open.Store(false)
	for range 20 {
		f.feed()
	}
	d.edge.open.Store(true)
	for range 10 {
		f.feed()
	}
	f.allowed.Store(false)
	for range 5 {
		f.feed()
	}
	f.allowed.Store(true)
	for range 5 {
		f.feed()
	}
	require.Len(t, w.seqs, 25)
	for i := 1; i < len(w.seqs); i++ {
		require.Equal(t, w.seqs[i-1]+1, w.seqs[i], "subscriber numbers are contiguous across gates (%v)", w.seqs)
	}
	require.Len(t, f.writers[1].seqs, 45, "the other subscriber missed only the stopped source")
	require.Equal(t, uint32(1000), w.last.SSRC)
	require.Equal(t, uint8(100), w.last.PayloadType)
	require.False(t, w.last.Extension)
	require.Empty(t, w.last.Extensions)
	require.Equal(t, []byte{1, 2, 3, byte(f.seq)}, w.payload)
}

func TestNACKAnsweredOnlyForThisRun(t *testing.T) {
	t.Parallel()
	f := newFeedTest(1)
	d, w := f.subs[0], f.writers[0]
	for range 10 {
		f.feed()
	}
	firstRun := w.seqs[5]
	d.edge.open.Store(false)
	for range 10 {
		f.feed() // held back from the subscriber
	}
	d.edge.open.Store(true)
	for range 10 {
		f.feed()
	}
	cur, next := w.seqs[15], w.seqs[19]+1
	sent := w.n

	// Numbers of the earlier run, or not yet used, are not answered: with
	// the gate's renumbering they could name packets the gate held back.
	d.handleRTCP(nack(firstRun, next, next+5))
	require.Equal(t, sent, w.n)
	require.Zero(t, d.up.retransmits.Load())

	d.handleRTCP(nack(cur))
	require.Equal(t, sent+1, w.n)
	require.Equal(t, cur, w.last.SequenceNumber)
	require.Equal(t, uint32(1000), w.last.SSRC)
	require.Equal(t, uint8(100), w.last.PayloadType)
	require.False(t, w.last.Extension)
	require.Equal(t, []byte{1, 2, 3, byte(f.seq - 4)}, w.payload, "the packet it numbered cur")
	require.Equal(t, uint64(1), d.edge.retransmits[kindVideo].Load())

	// Nothing while the gate is closed or the source stopped.
	d.edge.open.Store(false)
	d.handleRTCP(nack(cur))
	d.edge.open.Store(true)
	f.allowed.Store(false)
	d.handleRTCP(nack(cur))
	require.Equal(t, sent+1, w.n)

	// Nor once the ring no longer holds it.
	f.allowed.Store(true)
	for range videoSlots {
		f.feed()
	}
	n := w.n
	d.handleRTCP(nack(cur))
	require.Equal(t, n, w.n)
}

// A run longer than half the sequence space goes on being forwarded.
func TestForwardLongRun(t *testing.T) {
	t.Parallel()
	f := newFeedTest(1)
	f.writers[0].keep = false
	for range 70000 {
		f.feed()
	}
	require.Equal(t, 70000, f.writers[0].n)
}

func TestForwardAllocatesNothing(t *testing.T) {
	f := newFeedTest(10)
	for _, w := range f.writers {
		w.keep = false
	}
	for range 2 * videoSlots { // the ring's headers grow their slices once
		f.feed()
	}
	require.Zero(t, testing.AllocsPerRun(1000, f.feed))
}

// The publisher's numbers jump back (a restarted encoder, say): forwarding
// goes on, still contiguous for the subscriber; a packet a little late is
// forwarded with its own number.
func TestForwardSequenceJumps(t *testing.T) {
	t.Parallel()
	f := newFeedTest(1)
	w := f.writers[0]
	for range 10 {
		f.feed()
	}
	f.seq -= 20000
	for range 10 {
		f.feed()
	}
	require.Len(t, w.seqs, 20)
	for i := 1; i < len(w.seqs); i++ {
		require.Equal(t, w.seqs[i-1]+1, w.seqs[i], "%v", w.seqs)
	}
	f.seq -= 3 // the one three back arrives again, late: the ring holds it already
	f.feed()
	require.Len(t, w.seqs, 20, "a network duplicate is not sent again")
}
