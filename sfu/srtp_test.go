package sfu

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"log/slog"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/srtp/v2"
	"github.com/stretchr/testify/require"
)

// TestSRTPMatchesPion: the SFU's GCM encryption gives, byte for byte, what
// pion's SRTP context gives for the same keys and packets, for both GCM
// profiles and across a rollover of the sequence numbers (with a resend from
// before it), and pion decrypts it.
func TestSRTPMatchesPion(t *testing.T) {
	for _, tc := range []struct {
		name    string
		profile srtp.ProtectionProfile
		keyLen  int
	}{
		{"AEAD_AES_128_GCM", srtp.ProtectionProfileAeadAes128Gcm, 16},
		{"AEAD_AES_256_GCM", srtp.ProtectionProfileAeadAes256Gcm, 32},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key, salt := make([]byte, tc.keyLen), make([]byte, 12)
			_, _ = rand.Read(key)
			_, _ = rand.Read(salt)
			ours, err := newSRTPGCM(key, salt)
			require.NoError(t, err)
			theirs, err := srtp.CreateContext(key, salt, tc.profile)
			require.NoError(t, err)
			dec, err := srtp.CreateContext(key, salt, tc.profile)
			require.NoError(t, err)

			var roc rocTracker
			var iv [12]byte
			buf := make([]byte, 0, slotSize+gcmTagLen)
			payload := make([]byte, 1000)
			send := func(seq uint16) {
				t.Helper()
				_, _ = rand.Read(payload)
				h := rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: seq, Timestamp: uint32(seq) * 3000, SSRC: 0x1234abcd, Marker: seq%3 == 0}
				plain, err := (&rtp.Packet{Header: h, Payload: payload}).Marshal()
				require.NoError(t, err)
				want, err := theirs.EncryptRTP(nil, plain, nil)
				require.NoError(t, err)
				got, err := ours.seal(buf[:0], &iv, &h, payload, roc.next(seq))
				require.NoError(t, err)
				require.True(t, bytes.Equal(want, got), "seq %d: differs from pion", seq)
				back, err := dec.DecryptRTP(nil, got, nil)
				require.NoError(t, err, "seq %d", seq)
				require.Equal(t, plain, back)
			}
			for seq := uint16(65530); seq != 5; seq++ {
				send(seq)
			}
			// A resend from before the rollover goes with the old counter:
			// same bytes as the first time.
			_, err = ours.seal(buf[:0], &iv, &rtp.Header{Version: 2, SequenceNumber: 65533, SSRC: 1}, payload, roc.next(65533))
			require.NoError(t, err)
			require.Equal(t, uint32(0), roc.next(65534))
			require.Equal(t, uint32(1), roc.next(2))
			send(5)
		})
	}
}

func TestSRTPRefusesBadInput(t *testing.T) {
	_, err := newSRTPGCM(make([]byte, 15), make([]byte, 12))
	require.Error(t, err)
	_, err = newSRTPGCM(make([]byte, 16), make([]byte, 14))
	require.Error(t, err)
	s, err := newSRTPGCM(make([]byte, 16), make([]byte, 12))
	require.NoError(t, err)
	var iv [12]byte
	_, err = s.seal(make([]byte, 0, 100), &iv, &rtp.Header{Version: 2}, make([]byte, 90), 0)
	require.ErrorIs(t, err, errSRTPBuffer, "never reallocates the caller's buffer")
}

func TestRolloverCounter(t *testing.T) {
	var r rocTracker
	require.Equal(t, uint32(0), r.next(65000))
	require.Equal(t, uint32(0), r.next(65535))
	require.Equal(t, uint32(1), r.next(0))
	require.Equal(t, uint32(0), r.next(65535), "resend from before the rollover")
	require.Equal(t, uint32(1), r.next(0), "resend after it")
	require.Equal(t, uint32(1), r.next(30000))
	require.Equal(t, uint32(1), r.next(60000))
	require.Equal(t, uint32(1), r.next(65535))
	require.Equal(t, uint32(2), r.next(10), "second rollover, with a gap")
	require.Equal(t, uint32(1), r.next(65534))
}

// TestSRTPSealAllocatesNothing: encrypting a forwarded packet allocates
// nothing.
func TestSRTPSealAllocatesNothing(t *testing.T) {
	s, err := newSRTPGCM(make([]byte, 16), make([]byte, 12))
	require.NoError(t, err)
	var iv [12]byte
	var roc rocTracker
	buf := make([]byte, 0, slotSize+gcmTagLen)
	payload := make([]byte, 1000)
	h := rtp.Header{Version: 2, PayloadType: 96, SSRC: 7}
	allocs := testing.AllocsPerRun(1000, func() {
		h.SequenceNumber++
		if _, err := s.seal(buf[:0], &iv, &h, payload, roc.next(h.SequenceNumber)); err != nil {
			t.Fatal(err)
		}
	})
	require.Zero(t, allocs)
}

// The SFU's writer: pion writes until the connection has keys and a pair;
// then the SFU encrypts and sends itself (batched or not), and what it sends
// decrypts with the same keys; once it has, pion never writes that SSRC
// again, even if the pair goes away.
func TestSRTPWriterHandOver(t *testing.T) {
	key, salt := make([]byte, 16), make([]byte, 12)
	_, _ = rand.Read(key)
	_, _ = rand.Read(salt)
	k, err := newSRTPGCM(key, salt)
	require.NoError(t, err)
	dec, err := srtp.CreateContext(key, salt, srtp.ProtectionProfileAeadAes128Gcm)
	require.NoError(t, err)

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
	out := &downOut{viaPion: &via}
	pion := &fakeWriter{}
	w := newSRTPWriter(out, pion)
	payload := []byte("a forwarded frame")
	h := rtp.Header{Version: 2, PayloadType: 96, SSRC: 42}

	h.SequenceNumber = 1
	_, err = w.WriteRTP(&h, payload)
	require.NoError(t, err)
	require.Equal(t, 1, pion.n, "no keys yet: pion writes")
	out.keys.Store(k)
	h.SequenceNumber = 2
	_, err = w.WriteRTP(&h, payload)
	require.NoError(t, err)
	require.Equal(t, 2, pion.n, "no pair yet: pion writes")
	require.Equal(t, uint64(2), via.Load())

	out.to.Store(&sendTo{conn: tx, addr: raddr, dst: makeDst(ownSocket(tx), raddr)})
	h.SequenceNumber = 3
	_, err = w.WriteRTP(&h, payload)
	require.NoError(t, err)
	require.Equal(t, 2, pion.n)
	plain := recv()
	require.Equal(t, payload, plain[12:])
	require.Equal(t, uint16(3), binary.BigEndian.Uint16(plain[2:]))

	b := newSendBatch(slog.Default())
	for seq := uint16(4); seq < 7; seq++ {
		h.SequenceNumber = seq
		n, err := w.send(b, &h, payload)
		require.NoError(t, err)
		require.Equal(t, 12+len(payload)+gcmTagLen, n)
	}
	b.flush()
	for seq := uint16(4); seq < 7; seq++ {
		if ownSocket(tx) == nil {
			break // no batches here: sent one by one above
		}
		require.Equal(t, seq, binary.BigEndian.Uint16(recv()[2:]))
	}

	out.to.Store(nil)
	h.SequenceNumber = 7
	_, err = w.WriteRTP(&h, payload)
	require.ErrorIs(t, err, errNoDestination)
	require.Equal(t, 2, pion.n, "pion never writes an SSRC the SFU has encrypted")
}
