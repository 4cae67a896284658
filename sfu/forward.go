package sfu

import "github.com/pion/rtp"

// forward writes one packet of t to every subscriber whose gate is open. It
// runs on t's read goroutine for every packet, so it takes no lock: the
// source permission, the subscriber list, each edge and each binding are
// atomic loads. The header is copied into the down-track's own scratch value
// (SSRC and payload type are the subscriber's); the payload is shared and
// only read. Header extensions are dropped: their IDs were negotiated on the
// publisher's connection, not the subscriber's.
func (t *upTrack) forward(pkt *rtp.Packet) {
	if !t.allowed.Load() || len(pkt.Payload) == 0 {
		return
	}
	subs := t.subs.Load()
	if subs == nil {
		return
	}
	for _, d := range *subs {
		if !d.edge.open.Load() {
			continue
		}
		b := d.local.out.Load()
		if b == nil {
			continue // not negotiated yet
		}
		d.hdr = pkt.Header
		d.hdr.SSRC = b.ssrc
		d.hdr.PayloadType = b.pt
		d.hdr.Padding = false
		d.hdr.Extension = false
		d.hdr.ExtensionProfile = 0
		d.hdr.Extensions = nil
		n, err := b.w.WriteRTP(&d.hdr, pkt.Payload)
		if err != nil || n == 0 {
			continue
		}
		d.edge.packets[t.kind].Add(1)
		d.edge.bytes[t.kind].Add(uint64(n))
	}
}
