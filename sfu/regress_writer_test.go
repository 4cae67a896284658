package sfu

import (
	"log/slog"
	"net"
	"sync/atomic"
	"testing"

	"github.com/pion/rtp"
	"github.com/pion/srtp/v2"
	"github.com/stretchr/testify/require"
)

// Regression tests from a review of the SFU's own SRTP writer: each case
// once left the receiver unable to decrypt for good.

// A forward jump a little under 0x8000, with the receiver a few packets
// behind (the last packets before the jump lost), must not leave it with the
// wrong rollover counter.
func TestRegressBigForwardJump(t *testing.T) {
	f := newOwnFeed(t)
	for seq := uint16(60000); seq < 60100; seq++ {
		f.feed(seq, "before")
	}
	for i, seq := 0, uint16(60100+0x7FF0-65536); i < 2000; i, seq = i+1, seq+1 {
		f.feed(seq, "after")
	}
	// receiver with ordinary replay protection; the last 32 before the jump lost
	fails := 0
	for i, c := range f.conn.pkts {
		if i >= 100-32 && i < 100 {
			continue
		}
		if _, err := f.dec.DecryptRTP(nil, c, nil); err != nil {
			fails++
		}
	}
	t.Logf("sent %d, receiver failed to decrypt %d", len(f.conn.pkts), fails)
	require.Len(t, f.conn.pkts, 2100)
	require.Zero(t, fails, "a big jump ahead starts a new run: the receiver keeps the rollover counter")
}

// The first packets sent are lost (browser not done with DTLS yet, or the
// network): the first the receiver gets is after a wrap.
func TestRegressFirstReceivedAfterWrap(t *testing.T) {
	f := newOwnFeed(t)
	for seq := uint16(65530); seq != 40; seq++ {
		f.feed(seq, "x")
	}
	fails := 0
	for i, c := range f.conn.pkts {
		if i < 10 {
			continue // lost
		}
		if _, err := f.dec.DecryptRTP(nil, c, nil); err != nil {
			fails++
		}
	}
	t.Logf("sent %d, receiver failed %d of %d", len(f.conn.pkts), fails, len(f.conn.pkts)-10)
	require.Len(t, f.conn.pkts, 46)
	require.Zero(t, fails, "the first number is low in the space: no rollover for the receiver to miss")
}

// pion writer that drops until ready, then encrypts with a real pion context.
type readyPion struct {
	ready bool
	ctx   *srtp.Context
	conn  *captureConn
}

func (p *readyPion) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	if !p.ready {
		return 0, nil
	}
	b, err := p.ctx.EncryptRTP(nil, append(mustMarshal(h), payload...), nil)
	if err != nil {
		return 0, err
	}
	p.conn.WriteTo(b, nil)
	return len(b), nil
}
func (p *readyPion) Write(b []byte) (int, error) { return len(b), nil }

func mustMarshal(h *rtp.Header) []byte { b, _ := h.Marshal(); return b }

// pionOnly (pair not placeable) before pion's SRTP is ready, across a wrap;
// then a placeable pair: pion keeps the SSRC, so the receiver's rollover
// counter and the sender's agree.
func TestRegressPionPreReadyThenHandOver(t *testing.T) {
	key, salt, k := testKeyMaterial(t)
	enc, _ := srtp.CreateContext(key, salt, srtp.ProtectionProfileAeadAes128Gcm)
	dec, _ := srtp.CreateContext(key, salt, srtp.ProtectionProfileAeadAes128Gcm)
	conn := &captureConn{}
	out := &downOut{viaPion: &atomic.Uint64{}, log: slog.Default()}
	out.pionOnly.Store(true)
	p := &readyPion{ctx: enc, conn: conn}
	w := newSRTPWriter(out, p, 777)
	h := rtp.Header{Version: 2, PayloadType: 96, SSRC: 42}
	gen := uint32(0)
	seq := uint16(65530)
	send := func() {
		gen++
		h.SequenceNumber = seq
		seq++
		_, _ = w.send(nil, &h, []byte("payload"), gen, false)
	}
	for range 10 { // dropped by pion: not ready
		send()
	}
	p.ready = true
	for range 10 {
		send()
	}
	out.keys.Store(k)
	out.to.Store(&sendTo{conn: conn, addr: &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9}})
	for range 10 {
		send()
	}
	fails := 0
	for _, c := range conn.pkts {
		if _, err := dec.DecryptRTP(nil, c, nil); err != nil {
			fails++
		}
	}
	t.Logf("sent %d, failed %d", len(conn.pkts), fails)
	require.Len(t, conn.pkts, 20, "pion sends once ready, and keeps the SSRC")
	require.Zero(t, fails)
}

// The ring's commit number wraps past 0 (which means no packet) without a
// packet being refused.
func TestRegressGenWrap(t *testing.T) {
	f := newOwnFeed(t)
	f.t.ring.gens = ^uint32(0) - 2
	for seq := uint16(1); seq <= 6; seq++ {
		f.feed(seq, "x")
	}
	require.Len(t, f.conn.pkts, 6)
}

// A publisher restarts its numbering a little behind (< maxReorder): the
// first refused number starts a new run, so only that one packet is lost.
func TestRegressSmallBackwardRestart(t *testing.T) {
	f := newOwnFeed(t)
	for seq := uint16(1000); seq < 1500; seq++ {
		f.feed(seq, "a")
	}
	n0 := len(f.conn.pkts)
	for seq := uint16(1000); seq < 1600; seq++ {
		f.feed(seq, "b")
	}
	require.Equal(t, 599, len(f.conn.pkts)-n0)
}
