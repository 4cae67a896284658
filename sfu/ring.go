package sfu

import (
	"bytes"
	"sync"

	"github.com/pion/rtp"
)

// Ring sizes. A slot holds one packet of at most slotSize bytes (pion's
// receive MTU is 1460). Video keeps about five seconds at 100 packets a
// second for answering NACKs; audio (Opus, negotiated without NACK) keeps
// just enough to read into.
const (
	slotSize   = 1500
	videoSlots = 512
	audioSlots = 8
)

// packetRing is a published track's receive buffer and NACK cache: a fixed
// set of packet buffers allocated once, each with its parsed header. Slot
// seq%len(slots) holds the latest packet with that sequence number. The read
// loop reads each packet into the spare entry, parses it there, and then
// swaps it with the slot of its sequence number, so a packet is never copied
// and the old occupant of that slot becomes the next spare.
//
// The read loop is the only writer. It touches the spare entry without the
// lock (no one else sees it) and takes mu only to swap; readers (NACK answers
// on subscribers' RTCP goroutines) copy out under mu.
type packetRing struct {
	entries []ringEntry // len(slots)+1; one is the spare
	mask    uint16

	mu    sync.Mutex
	slots []uint16 // seq&mask → index in entries, or noEntry
	spare uint16   // index in entries; owned by the read loop
	fresh uint16   // entries[fresh:] have never been used
	gens  uint32   // commits so far; owned by the read loop
}

const noEntry = ^uint16(0)

type ringEntry struct {
	buf []byte     // slotSize bytes, part of one allocation
	hdr rtp.Header // parsed from buf[:n]; its slices point into buf or are reused
	n   int        // packet length
	off int        // payload is buf[off:end]
	end int
	gen uint32 // which commit stored it: two entries with one gen hold the same packet
}

// newPacketRing returns a ring of n slots; n must be a power of two no larger
// than 1<<15 (so that seq%n is stable across the 16-bit wrap).
func newPacketRing(n int) *packetRing {
	if n <= 0 || n&(n-1) != 0 || n > 1<<15 {
		panic("sfu: ring size must be a power of two ≤ 32768")
	}
	mem := make([]byte, (n+1)*slotSize)
	r := &packetRing{
		entries: make([]ringEntry, n+1),
		mask:    uint16(n - 1),
		slots:   make([]uint16, n),
		spare:   0,
		fresh:   1,
	}
	for i := range r.entries {
		r.entries[i].buf = mem[i*slotSize : (i+1)*slotSize : (i+1)*slotSize]
	}
	for i := range r.slots {
		r.slots[i] = noEntry
	}
	return r
}

// readBuf returns the buffer the next packet is to be read into. Read loop only.
func (r *packetRing) readBuf() []byte { return r.entries[r.spare].buf }

// commit parses the n bytes just read into readBuf and stores the packet
// under its sequence number. It returns the stored entry, valid until the
// read loop's next commit of the same slot (len(slots) sequence numbers
// later), or nil if the bytes are not RTP or repeat the packet held under
// that number. Read loop only.
func (r *packetRing) commit(n int) *ringEntry {
	e := &r.entries[r.spare]
	hl, err := e.hdr.Unmarshal(e.buf[:n])
	if err != nil {
		return nil
	}
	end := n
	if e.hdr.Padding {
		if hl >= n {
			return nil
		}
		pad := int(e.buf[n-1])
		if pad == 0 || hl+pad > n {
			return nil
		}
		end -= pad
	}
	i := e.hdr.SequenceNumber & r.mask
	if o := r.slots[i]; o != noEntry {
		// The very same packet again (a network duplicate): keep the one
		// held, and its commit number, which NACK answers are checked by.
		if p := &r.entries[o]; p.hdr.SequenceNumber == e.hdr.SequenceNumber && bytes.Equal(p.buf[:p.n], e.buf[:n]) {
			return nil
		}
	}
	if r.gens++; r.gens == 0 {
		r.gens = 1 // 0 stands for no packet
	}
	e.n, e.off, e.end, e.gen = n, hl, end, r.gens
	r.mu.Lock()
	old := r.slots[i]
	r.slots[i] = r.spare
	if old == noEntry {
		// A slot filled for the first time takes a never-used entry: there
		// are len(slots) of them besides the first spare.
		old = r.fresh
		r.fresh++
	}
	r.spare = old
	r.mu.Unlock()
	return e
}

// get copies the packet with sequence number seq, if still held, into buf
// and returns its header (sharing no memory with the ring), payload (a
// slice of buf) and commit number. Safe from any goroutine.
func (r *packetRing) get(seq uint16, buf []byte) (hdr rtp.Header, payload []byte, gen uint32, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	i := r.slots[seq&r.mask]
	if i == noEntry {
		return hdr, nil, 0, false
	}
	e := &r.entries[i]
	if e.hdr.SequenceNumber != seq || e.end-e.off > len(buf) {
		return hdr, nil, 0, false
	}
	hdr = e.hdr
	hdr.CSRC = nil // the caller sends none; see forward
	hdr.Extensions = nil
	n := copy(buf, e.buf[e.off:e.end])
	return hdr, buf[:n], e.gen, true
}
