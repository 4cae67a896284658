package sfu

import (
	"crypto/rand"
	"encoding/binary"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/srtp/v2"
	"github.com/pion/webrtc/v3"
	"github.com/stretchr/testify/require"
)

// testKeyMaterial returns a random AES-128-GCM master key and salt and the
// SFU's encryptor for them.
func testKeyMaterial(t *testing.T) (key, salt []byte, k *srtpKeys) {
	t.Helper()
	key, salt = make([]byte, 16), make([]byte, 12)
	_, _ = rand.Read(key)
	_, _ = rand.Read(salt)
	k, err := newSRTPKeys(srtp.ProtectionProfileAeadAes128Gcm, key, salt)
	require.NoError(t, err)
	return key, salt, k
}

// testKeys returns the SFU's encryptor for random keys and a pion context
// that decrypts what it sends (without replay protection, so that resends
// decrypt too).
func testKeys(t *testing.T) (*srtpKeys, *srtp.Context) {
	t.Helper()
	key, salt, k := testKeyMaterial(t)
	dec, err := srtp.CreateContext(key, salt, srtp.ProtectionProfileAeadAes128Gcm, srtp.SRTPNoReplayProtection())
	require.NoError(t, err)
	return k, dec
}

// captureConn keeps what is written to it.
type captureConn struct {
	net.PacketConn // unused
	mu             sync.Mutex
	pkts           [][]byte
}

func (c *captureConn) WriteTo(p []byte, _ net.Addr) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pkts = append(c.pkts, append([]byte(nil), p...))
	return len(p), nil
}

// The writer's modes: nothing is sent before the connection has keys and a
// pair; then the SFU encrypts itself, batched or not, and the receiver
// decrypts it; a connection left to pion (another profile) is written by
// pion; once the SFU's context has sent on an SSRC, pion's never does.
func TestSRTPWriterModes(t *testing.T) {
	k, dec := testKeys(t)
	rx, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	defer rx.Close()
	tx, err := listenUDP4(net.IPv4(127, 0, 0, 1), 0)
	require.NoError(t, err)
	defer tx.Close()
	raddr := rx.LocalAddr().(*net.UDPAddr)
	recv := func() []byte {
		t.Helper()
		buf := make([]byte, 2048)
		require.NoError(t, rx.SetReadDeadline(time.Now().Add(2*time.Second)))
		n, _, err := rx.ReadFrom(buf)
		require.NoError(t, err)
		plain, err := dec.DecryptRTP(nil, buf[:n], nil)
		require.NoError(t, err)
		return plain
	}

	var via atomic.Uint64
	out := &downOut{viaPion: &via, log: slog.Default()}
	pion := &fakeWriter{}
	w := newSRTPWriter(out, pion, 42)
	payload := []byte("a forwarded frame")
	h := rtp.Header{Version: 2, PayloadType: 96, SSRC: 42}
	gen := uint32(0)
	send := func(b *sendBatch, seq uint16) (int, error) {
		h.SequenceNumber = seq
		gen++
		return w.send(b, &h, payload, gen, false)
	}

	n, err := send(nil, 1)
	require.NoError(t, err)
	require.Zero(t, n, "no keys: dropped")
	out.keys.Store(k)
	n, err = send(nil, 2)
	require.NoError(t, err)
	require.Zero(t, n, "no pair: dropped")
	require.Zero(t, pion.n)

	out.to.Store(&sendTo{conn: tx, addr: raddr, dst: makeDst(ownSocket(tx), raddr)})
	n, err = send(nil, 3)
	require.NoError(t, err)
	require.Equal(t, 12+len(payload)+gcmTagLen, n)
	plain := recv()
	require.Equal(t, payload, plain[12:])
	require.Equal(t, uint16(3), binary.BigEndian.Uint16(plain[2:]))

	b := newSendBatch(slog.Default())
	for seq := uint16(4); seq < 7; seq++ {
		_, err := send(b, seq)
		require.NoError(t, err)
	}
	b.flush()
	if ownSocket(tx) != nil { // Linux: those three went out in the batch
		for seq := uint16(4); seq < 7; seq++ {
			require.Equal(t, seq, binary.BigEndian.Uint16(recv()[2:]))
		}
	}

	// The pair goes away (say it changed to one the SFU cannot place):
	// dropped, never handed to pion.
	out.pionOnly.Store(true)
	out.to.Store(nil)
	n, err = send(nil, 7)
	require.NoError(t, err)
	require.Zero(t, n)
	require.Zero(t, pion.n, "pion never writes an SSRC the SFU has encrypted")
	require.Zero(t, via.Load())

	// Another SSRC of a connection left to pion is written by pion, and
	// stays with pion (its context has the rollover counter) even if the
	// SFU could take over; pion's are kept to the same rule.
	w2 := newSRTPWriter(out, pion, 43)
	h.SSRC, h.SequenceNumber = 43, 1
	_, err = w2.send(nil, &h, payload, 99, false)
	require.NoError(t, err)
	require.Equal(t, 1, pion.n)
	require.Equal(t, uint64(1), via.Load())
	_, err = w2.send(nil, &h, []byte("other"), 100, false)
	require.ErrorIs(t, err, errRefused)
	require.Equal(t, 1, pion.n)
	out.pionOnly.Store(false)
	out.to.Store(&sendTo{conn: tx, addr: raddr, dst: makeDst(ownSocket(tx), raddr)})
	h.SequenceNumber = 2
	_, err = w2.send(nil, &h, payload, 101, false)
	require.NoError(t, err)
	require.Equal(t, 2, pion.n, "no hand-over from pion to the SFU")

	// A binding with an SSRC already used on the connection shares its
	// index space: it cannot reuse an index with another packet.
	w3 := newSRTPWriter(out, pion, 42)
	h.SSRC, h.SequenceNumber = 42, 6
	_, err = w3.send(nil, &h, payload, 555, false)
	require.ErrorIs(t, err, errRefused)

	// Packets pion drops (its SRTP not started) do not count as sent.
	drop := newSRTPWriter(&downOut{viaPion: &via, log: slog.Default()}, dropWriter{}, 7)
	drop.out.pionOnly.Store(true)
	h.SSRC, h.SequenceNumber = 7, 1
	n, err = drop.send(nil, &h, payload, 1, false)
	require.NoError(t, err)
	require.Zero(t, n)
	require.False(t, drop.st.pionSent)
	require.Equal(t, uint64(2), via.Load())
}

// dropWriter is pion's writer before its SRTP has started: it drops.
type dropWriter struct{}

func (dropWriter) WriteRTP(*rtp.Header, []byte) (int, error) { return 0, nil }
func (dropWriter) Write([]byte) (int, error)                 { return 0, nil }

// ownFeed is a published track forwarded by the SFU's own writer to one
// subscriber, whose encrypted packets a captureConn keeps.
type ownFeed struct {
	t    *upTrack
	d    *downTrack
	conn *captureConn
	dec  *srtp.Context
}

// testUpTrack is a published video track, allowed, in a room of its own.
func testUpTrack() *upTrack {
	r := &Room{}
	up := makeUpTrack(r, &Peer{id: "pub", room: r}, kindVideo, webrtc.MimeTypeVP8, 0xabc)
	up.allowed = &atomic.Bool{}
	up.allowed.Store(true)
	return up
}

func newOwnFeed(t *testing.T) *ownFeed {
	up := testUpTrack()
	k, dec := testKeys(t)
	conn := &captureConn{}
	out := &downOut{viaPion: &atomic.Uint64{}, log: slog.Default()}
	out.keys.Store(k)
	out.to.Store(&sendTo{conn: conn, addr: &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9}})
	e := &edge{}
	e.open.Store(true)
	d := newDownTrack(up, &Peer{id: "sub"}, e)
	d.local.out.Store(&binding{ssrc: 777, pt: 96, w: &fakeWriter{}, own: newSRTPWriter(out, &fakeWriter{}, 777)})
	up.addSub(d)
	return &ownFeed{t: up, d: d, conn: conn, dec: dec}
}

// feed receives a publisher packet numbered seq whose payload is body.
func (f *ownFeed) feed(seq uint16, body string) {
	p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: seq, Timestamp: uint32(seq) * 3000, SSRC: 0xabc}, Payload: []byte(body)}
	raw, _ := p.Marshal()
	f.t.receive(copy(f.t.ring.readBuf(), raw))
}

// check decrypts everything sent and fails if one SRTP index carried two
// different packets (a GCM nonce used twice), or a packet did not decrypt.
func (f *ownFeed) check(t *testing.T) (sent int) {
	t.Helper()
	var roc uint32
	var last uint16
	byIndex := map[uint64]string{}
	for i, c := range f.conn.pkts {
		plain, err := f.dec.DecryptRTP(nil, c, nil)
		require.NoError(t, err, "packet %d does not decrypt", i)
		var p rtp.Packet
		require.NoError(t, p.Unmarshal(plain))
		seq := p.SequenceNumber
		// The receiver's estimate of the index (RFC 3711 Appendix A).
		r := roc
		switch {
		case i == 0:
		case int16(seq-last) > 0 && seq < last:
			r = roc + 1
		case int16(seq-last) <= 0 && seq > last && roc > 0:
			r = roc - 1
		}
		if i == 0 || int16(seq-last) > 0 {
			roc, last = r, seq
		}
		idx := uint64(r)<<16 | uint64(seq)
		if prev, ok := byIndex[idx]; ok {
			require.Equal(t, prev, string(plain), "SRTP index %d sent with two contents", idx)
		}
		byIndex[idx] = string(plain)
	}
	return len(f.conn.pkts)
}

// Whatever numbers a publisher sends, the SFU never encrypts two different
// packets under one SRTP index for a subscriber: the cases a review found in
// forward and the ring, each with NACKs asking for the numbers involved.
func TestForwardNeverReusesAnIndex(t *testing.T) {
	t.Run("duplicate number, other payload", func(t *testing.T) {
		f := newOwnFeed(t)
		for seq := uint16(1); seq <= 5; seq++ {
			f.feed(seq, "first")
		}
		f.feed(5, "second copy of 5")
		f.feed(3, "second copy of 3")
		offset := uint16(f.d.run.Load() >> 32)
		f.d.handleRTCP(nack(3-offset, 4-offset, 5-offset))
		f.feed(6, "next")
		require.Equal(t, 7, f.check(t), "6 first sends and one resend (of 4: 3 and 5 now hold other packets)")
	})
	t.Run("jump by half the number space", func(t *testing.T) {
		f := newOwnFeed(t)
		for seq := uint16(100); seq < 110; seq++ {
			f.feed(seq, "before")
		}
		for seq := uint16(100 + 0x8000); seq < 110+0x8000; seq++ {
			f.feed(seq, "after")
		}
		f.d.handleRTCP(nack(95, 100, 105, 109))
		n := f.check(t)
		require.Greater(t, n, 10, "the stream goes on after the jump")
	})
	t.Run("numbers used again with old packets in the ring", func(t *testing.T) {
		f := newOwnFeed(t)
		for seq := uint16(1000); seq < 1100; seq++ {
			f.feed(seq, "first time round")
		}
		for seq := uint16(6000); seq < 6010; seq++ {
			f.feed(seq, "elsewhere")
		}
		// The publisher starts again at 1000 and skips 1012: the ring still
		// holds the first time round's 1012.
		for seq := uint16(1000); seq < 1020; seq++ {
			if seq != 1012 {
				f.feed(seq, "second time round")
			}
		}
		offset := uint16(f.d.run.Load() >> 32)
		f.d.handleRTCP(nack(1012-offset, 1013-offset))
		f.feed(1012, "second time round, late")
		f.d.handleRTCP(nack(1012 - offset))
		require.Equal(t, 100+10+20+2, f.check(t), "every first send, and the resends of 1013 and the late 1012")
	})
	t.Run("long run across rollovers with resends", func(t *testing.T) {
		f := newOwnFeed(t)
		seq := uint16(65000)
		for i := range 140000 {
			f.feed(seq, "p"+string(rune('a'+i%26)))
			if i%1000 == 999 {
				f.d.handleRTCP(nack(uint16(f.d.run.Load()>>16) - uint16(f.d.run.Load()>>32) - 3))
			}
			seq++
		}
		require.Equal(t, 140000+140, f.check(t))
	})
}

type addrConn struct {
	net.PacketConn // unused
	addr           *net.UDPAddr
}

func (c addrConn) LocalAddr() net.Addr { return c.addr }

// The writer finds the socket a selected pair's local candidate is on as
// pion's ICE agent chose it, with and without a NAT 1:1 IP; a pair it cannot
// place goes to pion (warned once); ICE failing stops the writer.
func TestPairPlacement(t *testing.T) {
	a := addrConn{addr: &net.UDPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 5000}}
	b := addrConn{addr: &net.UDPAddr{IP: net.IPv4(172, 17, 0, 1), Port: 5000}}
	socks := []sfuSock{{conn: a}, {conn: b}}
	remote := &webrtc.ICECandidate{Address: "192.0.2.9", Port: 40000, Protocol: webrtc.ICEProtocolUDP}
	pair := func(local string) *webrtc.ICECandidatePair {
		return webrtc.NewICECandidatePair(&webrtc.ICECandidate{Address: local, Port: 5000, Protocol: webrtc.ICEProtocolUDP}, remote)
	}

	o := &downOut{socks: socks, log: slog.Default()}
	o.pairChanged(pair("172.17.0.1"))
	require.NotNil(t, o.to.Load())
	require.Equal(t, b, o.to.Load().conn, "the socket with the candidate's address")
	require.Equal(t, "192.0.2.9:40000", o.to.Load().addr.String())
	require.False(t, o.pionOnly.Load())
	o.iceStateChanged(webrtc.ICEConnectionStateDisconnected)
	require.NotNil(t, o.to.Load(), "disconnected may come back")
	o.iceStateChanged(webrtc.ICEConnectionStateFailed)
	require.Nil(t, o.to.Load(), "failed: nothing more is sent")

	nat := &downOut{socks: socks, log: slog.Default(), natIP: net.ParseIP("203.0.113.7")}
	nat.pairChanged(pair("203.0.113.7"))
	require.NotNil(t, nat.to.Load())
	require.Equal(t, a, nat.to.Load().conn, "with a NAT 1:1 IP pion keeps the first socket's candidate")

	var logs strings.Builder // pairChanged logs on this goroutine
	lost := &downOut{socks: socks, log: slog.New(slog.NewTextHandler(&logs, nil))}
	lost.pairChanged(pair("198.51.100.1"))
	lost.pairChanged(pair("198.51.100.2"))
	require.Nil(t, lost.to.Load())
	require.True(t, lost.pionOnly.Load(), "a pair the SFU cannot place is left to pion")
	require.Equal(t, 1, strings.Count(logs.String(), "cannot place"), "warned once")
}
