package sfu

import (
	"encoding/binary"
	"log/slog"
	"math/rand/v2"
	"net"
	"sync/atomic"
	"testing"

	"github.com/pion/rtp"
	"github.com/pion/srtp/v2"
)

// openAny finds the rollover counter under which c authenticates.
func (s *srtpKeys) openAny(c []byte) (roc uint32, plain []byte, ok bool) {
	var h rtp.Header
	hl, err := h.Unmarshal(c)
	if err != nil {
		return 0, nil, false
	}
	for r := uint32(0); r < 256; r++ {
		var iv [12]byte
		binary.BigEndian.PutUint32(iv[2:], h.SSRC)
		binary.BigEndian.PutUint32(iv[6:], r)
		binary.BigEndian.PutUint16(iv[10:], h.SequenceNumber)
		for i := range iv {
			iv[i] ^= s.salt[i]
		}
		p, err := s.aead.Open(nil, iv[:], c[hl:], c[:hl])
		if err == nil {
			return r, append(append([]byte(nil), c[:hl]...), p...), true
		}
	}
	return 0, nil, false
}

// TestRegressFuzzNoNonceReuse: 150 random publisher streams of 40,000
// packets (restarts, half-space jumps, jumps back, repeats, gates, NACKs;
// pion-only connections, drops before pion is ready, hand-overs): every
// packet sent decrypts under some rollover counter, and no SRTP index ever
// carries two contents.
func TestRegressFuzzNoNonceReuse(t *testing.T) {
	if testing.Short() {
		t.Skip("4 s")
	}
	for iter := 0; iter < 150; iter++ {
		rng := rand.New(rand.NewPCG(uint64(iter), 7))
		key, salt, k := testKeyMaterial(t)
		enc, _ := srtp.CreateContext(key, salt, srtp.ProtectionProfileAeadAes128Gcm)
		conn := &captureConn{}
		up := testUpTrack()
		out := &downOut{viaPion: &atomic.Uint64{}, log: slog.Default()}
		pionMode := rng.IntN(2) == 0
		if pionMode {
			out.pionOnly.Store(true)
		}
		p := &readyPion{ctx: enc, conn: conn}
		e := &edge{}
		e.open.Store(true)
		d := newDownTrack(up, &Peer{id: "sub"}, e)
		d.local.out.Store(&binding{ssrc: 777, pt: 96, w: &fakeWriter{}, own: newSRTPWriter(out, p, 777)})
		up.addSub(d)
		to := &sendTo{conn: conn, addr: &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9}}
		if !pionMode {
			out.keys.Store(k)
			out.to.Store(to)
		}
		seq := uint16(rng.IntN(65536))
		for i := 0; i < 40000; i++ {
			if pionMode && !p.ready && rng.IntN(50) == 0 {
				p.ready = true
			}
			if pionMode && p.ready && out.to.Load() == nil && rng.IntN(2000) == 0 {
				out.keys.Store(k)
				out.to.Store(to) // hand-over
			}
			switch x := rng.IntN(1000); {
			case x < 2:
				seq += 0x8000 - uint16(rng.IntN(3))
			case x < 5:
				seq += uint16(rng.IntN(65536)) // restart anywhere
			case x < 20:
				seq -= uint16(rng.IntN(1200))
			case x < 30:
				seq += uint16(rng.IntN(3000))
			case x < 35:
				e.open.Store(!e.open.Load())
			case x < 60:
				seq -= uint16(rng.IntN(40)) // dup / reorder
			}
			pk := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: seq, Timestamp: uint32(i), SSRC: 0xabc}, Payload: []byte{byte(i), byte(i >> 8), byte(rng.IntN(256))}}
			raw, _ := pk.Marshal()
			up.receive(copy(up.ring.readBuf(), raw))
			seq++
			if rng.IntN(10) == 0 {
				run := d.run.Load()
				last := uint16(run>>16) - uint16(run>>32)
				d.handleRTCP(nack(last-uint16(rng.IntN(600)), last-uint16(rng.IntN(30))))
			}
		}
		byIdx := map[uint64]string{}
		for _, c := range conn.pkts {
			roc, plain, ok := k.openAny(c)
			if !ok {
				t.Fatalf("iter %d: undecryptable", iter)
			}
			idx := uint64(roc)<<16 | uint64(binary.BigEndian.Uint16(c[2:]))
			if prev, ok := byIdx[idx]; ok && prev != string(plain) {
				t.Fatalf("iter %d (pion %v): index %d reused with other content", iter, pionMode, idx)
			}
			byIdx[idx] = string(plain)
		}
	}
}
