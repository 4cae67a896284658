package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// A stamp is written into every synthetic frame the publishers send, at
// stampOffset (after the VP8 keyframe header, so the frame still looks like
// a keyframe): magic, the publisher track's number, the packet's index on
// that track and the send time in nanoseconds since the run's epoch.
const (
	stampOffset = 10
	stampLen    = 4 + 2 + 4 + 8
)

var stampMagic = []byte("LGv1")

func putStamp(frame []byte, track uint16, index uint32, sentNs int64) {
	b := frame[stampOffset : stampOffset+stampLen]
	copy(b, stampMagic)
	binary.BigEndian.PutUint16(b[4:], track)
	binary.BigEndian.PutUint32(b[6:], index)
	binary.BigEndian.PutUint64(b[10:], uint64(sentNs))
}

// rtpInfo is what a subscriber reads from a received RTP packet.
type rtpInfo struct {
	SSRC   uint32
	Seq    uint16
	Track  uint16
	Index  uint32
	SentNs int64
}

var errNoStamp = errors.New("no stamp in the packet")

// parseRTP reads the RTP header and the stamp in the payload. The stamp is
// looked for near the start of the payload, since a VP8 payload descriptor
// (1 to 6 bytes) comes before the frame.
func parseRTP(pkt []byte) (rtpInfo, error) {
	var in rtpInfo
	if len(pkt) < 12 || pkt[0]>>6 != 2 {
		return in, errors.New("not an RTP packet")
	}
	in.Seq = binary.BigEndian.Uint16(pkt[2:])
	in.SSRC = binary.BigEndian.Uint32(pkt[8:])
	off := 12 + 4*int(pkt[0]&0x0f)
	if pkt[0]&0x10 != 0 { // header extension
		if len(pkt) < off+4 {
			return in, errors.New("short RTP header extension")
		}
		off += 4 + 4*int(binary.BigEndian.Uint16(pkt[off+2:]))
	}
	end := len(pkt)
	if pkt[0]&0x20 != 0 && end > off { // padding
		end -= int(pkt[end-1])
	}
	if off > end {
		return in, errors.New("short RTP packet")
	}
	payload := pkt[off:end]
	look := payload[:min(len(payload), stampOffset+8+len(stampMagic))]
	i := bytes.Index(look, stampMagic)
	if i < 0 || len(payload) < i+stampLen {
		return in, errNoStamp
	}
	b := payload[i:]
	in.Track = binary.BigEndian.Uint16(b[4:])
	in.Index = binary.BigEndian.Uint32(b[6:])
	in.SentNs = int64(binary.BigEndian.Uint64(b[10:]))
	return in, nil
}

// window is the measured interval of one publisher track, as indexes of its
// packets: [start, end). Both are MaxUint32 until set, so nothing counts
// before the measurement starts.
type window struct{ start, end atomic.Uint32 }

func newWindows(n int) []window {
	w := make([]window, n)
	for i := range w {
		w[i].start.Store(math.MaxUint32)
		w[i].end.Store(math.MaxUint32)
	}
	return w
}

func (w *window) contains(i uint32) bool { return i >= w.start.Load() && i < w.end.Load() }

// histogram counts latencies in 10 µs buckets up to 500 ms; slower ones go
// into the last bucket.
type histogram struct {
	buckets [50000]atomic.Uint64
	max     atomic.Int64
}

const bucketWidth = 10 * time.Microsecond

func (h *histogram) add(d time.Duration) {
	if d < 0 {
		d = 0
	}
	i := int(d / bucketWidth)
	if i >= len(h.buckets) {
		i = len(h.buckets) - 1
	}
	h.buckets[i].Add(1)
	for {
		m := h.max.Load()
		if int64(d) <= m || h.max.CompareAndSwap(m, int64(d)) {
			return
		}
	}
}

// quantile returns the upper edge of the bucket holding quantile q, and the
// number of samples.
func (h *histogram) quantile(q float64) (time.Duration, uint64) {
	var n uint64
	for i := range h.buckets {
		n += h.buckets[i].Load()
	}
	if n == 0 {
		return 0, 0
	}
	rank := uint64(math.Ceil(q * float64(n)))
	if rank == 0 {
		rank = 1
	}
	var c uint64
	for i := range h.buckets {
		c += h.buckets[i].Load()
		if c >= rank {
			return time.Duration(i+1) * bucketWidth, n
		}
	}
	return time.Duration(len(h.buckets)) * bucketWidth, n
}

// trackTally is what one subscriber received of one publisher track inside
// the window. Only that track's read goroutine writes it; the mutex lets the
// report read it.
type trackTally struct {
	mu       sync.Mutex
	seen     []uint64 // bit i: index start+i received
	unique   uint64   // distinct indexes received
	dups     uint64   // the same index again (a retransmission after a NACK that was not needed)
	ssrc     uint32
	extSeq   int64 // last extended sequence number, -1 before the first packet
	lo, hi   int64 // lowest and highest extended sequence number in the window
	seqSpan  uint64
	seqCount uint64
}

func newTrackTally() *trackTally { return &trackTally{extSeq: -1, lo: -1} }

// add records one stamped packet whose index is inside the window starting
// at start; it reports whether the packet is new (not a duplicate).
func (t *trackTally) add(in rtpInfo, start uint32) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if in.SSRC != t.ssrc || t.extSeq < 0 { // first packet, or the down track was replaced: a new sequence space
		t.closeSeqRange()
		t.ssrc, t.extSeq = in.SSRC, int64(in.Seq)
	} else {
		t.extSeq += int64(int16(in.Seq - uint16(t.extSeq)))
	}
	i := in.Index - start
	w := int(i / 64)
	for len(t.seen) <= w {
		t.seen = append(t.seen, 0)
	}
	if t.seen[w]&(1<<(i%64)) != 0 {
		t.dups++
		return false
	}
	t.seen[w] |= 1 << (i % 64)
	t.unique++
	t.seqCount++
	if t.lo < 0 || t.extSeq < t.lo {
		if t.lo < 0 {
			t.hi = t.extSeq
		}
		t.lo = t.extSeq
	}
	if t.extSeq > t.hi {
		t.hi = t.extSeq
	}
	return true
}

// closeSeqRange adds the current sequence range to the span.
func (t *trackTally) closeSeqRange() {
	if t.lo >= 0 {
		t.seqSpan += uint64(t.hi - t.lo + 1)
	}
	t.lo, t.hi = -1, -1
}

// result returns the distinct packets received, duplicates, and the
// packets the RTP sequence numbers say are missing between the first and
// last received.
func (t *trackTally) result() (unique, dups, seqGaps uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	span := t.seqSpan
	if t.lo >= 0 {
		span += uint64(t.hi - t.lo + 1)
	}
	return t.unique, t.dups, span - t.seqCount
}
