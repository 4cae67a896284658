package sfu

import "github.com/pion/rtp"

// maxRunSpan bounds how far back a run's start is kept: well beyond the
// ring, well within the 1<<15 that 16-bit serial-number comparison allows.
const maxRunSpan = 1 << 14

// maxReorder is the furthest a packet may come behind the highest number
// seen and still count as late rather than as the publisher's numbering
// starting again elsewhere.
const maxReorder = 1 << 10

// forward writes one packet of t to every subscriber whose gate is open. It
// runs on t's read goroutine for every packet, so it takes no lock and
// allocates nothing: the source permission, the subscriber list, each edge
// and each binding are atomic loads. hdr and payload are the packet in t's
// ring; they are only read. Each down-track gets its own header value with
// its SSRC, payload type and sequence number (see downTrack); CSRCs and
// header extensions are dropped: the extension IDs were negotiated on the
// publisher's connection, not the subscriber's.
func (t *upTrack) forward(hdr *rtp.Header, payload []byte, gen uint32) {
	subs := t.subs.Load()
	if subs == nil {
		return
	}
	if !t.allowed.Load() || len(payload) == 0 {
		// Nothing is sent to anyone: every run breaks.
		for _, d := range *subs {
			d.sending = false
		}
		return
	}
	// The SFU's own writer queues the packets in t's batch, sent with one
	// sendmmsg when the loop ends (sendbatch_linux.go).
	batch := t.batch
	in := hdr.SequenceNumber
	for _, d := range *subs {
		b := d.local.out.Load()
		if b == nil || !d.edge.open.Load() {
			d.sending = false
			continue
		}
		if d.sending {
			switch ahead := in - d.lastIn; {
			case ahead == 0:
				continue // the latest number again: sent already
			case ahead >= 0x8000: // behind, or half the number space away
				if d.lastIn-in > maxReorder {
					d.sending = false // the publisher's numbers jumped back: start again
				} else if int16(in-d.runIn) < 0 {
					continue // late, from before this run: its number may be taken
				}
			case ahead > maxReorder:
				// Jumped ahead: start again too, so that the subscriber
				// never sees a jump it could take for one backwards and
				// guess the wrong SRTP rollover counter.
				d.sending = false
			}
		}
		if !d.sending {
			// A new run: go on from the subscriber's last number.
			d.sending, d.runIn, d.lastIn = true, in, in
			if d.started {
				d.offset = in - (d.lastOut + 1)
			} else {
				// The first number is low in the space, so that losing the
				// first packets cannot make the subscriber's first one come
				// after a rollover it never saw.
				first := in&0x3fff + 1
				d.started, d.offset, d.lastOut = true, in-first, first-1
			}
		}
		out := in - d.offset
		if int16(out-d.lastOut) > 0 {
			d.lastOut, d.lastIn = out, in
			if d.lastIn-d.runIn > maxRunSpan {
				// Keep the run's start near enough for the int16
				// comparisons; older packets are out of the ring anyway.
				d.runIn = d.lastIn - maxRunSpan
			}
		}
		d.run.Store(uint64(d.runIn) | uint64(d.lastIn)<<16 | uint64(d.offset)<<32 | 1<<48)

		d.hdr = *hdr
		outHeader(&d.hdr, b, out)
		n, err := b.send(batch, &d.hdr, payload, gen, false)
		if err == errRefused {
			// Its number was used (a publisher's repeat, or numbers
			// started again a little behind): start a new run.
			d.sending = false
		}
		if err != nil || n == 0 {
			continue
		}
		d.edge.packets[t.kind].Add(1)
		d.edge.bytes[t.kind].Add(uint64(n))
	}
	batch.flush()
}

// outHeader makes h, a publisher's header, the header binding b's
// subscriber gets for its packet numbered out, the same for a first send and
// a resend (SRTP must never see one index with two contents).
func outHeader(h *rtp.Header, b *binding, out uint16) {
	h.SSRC, h.PayloadType, h.SequenceNumber = b.ssrc, b.pt, out
	h.Padding = false
	h.Extension, h.ExtensionProfile, h.Extensions = false, 0, nil
	h.CSRC = nil
}
