package sfu

import (
	"bytes"
	"crypto/rand"
	"testing"

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
		saltLen int
	}{
		{"AEAD_AES_128_GCM", srtp.ProtectionProfileAeadAes128Gcm, 16, 12},
		{"AEAD_AES_256_GCM", srtp.ProtectionProfileAeadAes256Gcm, 32, 12},
		{"AES_CM_128_HMAC_SHA1_80", srtp.ProtectionProfileAes128CmHmacSha1_80, 16, 14},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key, salt := make([]byte, tc.keyLen), make([]byte, tc.saltLen)
			_, _ = rand.Read(key)
			_, _ = rand.Read(salt)
			ours, err := newSRTPKeys(tc.profile, key, salt)
			require.NoError(t, err)
			theirs, err := srtp.CreateContext(key, salt, tc.profile)
			require.NoError(t, err)
			dec, err := srtp.CreateContext(key, salt, tc.profile)
			require.NoError(t, err)

			var win sentWindow
			var gen uint32
			var sc sealScratch
			buf := make([]byte, 0, slotSize+maxTagLen)
			payload := make([]byte, 1000)
			sent := map[uint16][]byte{}
			send := func(seq uint16) {
				t.Helper()
				_, _ = rand.Read(payload)
				h := rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: seq, Timestamp: uint32(seq) * 3000, SSRC: 0x1234abcd, Marker: seq%3 == 0}
				plain, err := (&rtp.Packet{Header: h, Payload: payload}).Marshal()
				require.NoError(t, err)
				want, err := theirs.EncryptRTP(nil, plain, nil)
				require.NoError(t, err)
				idx, ok := win.index(seq)
				require.True(t, ok)
				gen++
				require.True(t, win.admit(idx, gen, false))
				got, err := ours.seal(buf[:0], &sc, &h, payload, uint32(idx>>16))
				require.NoError(t, err)
				require.True(t, bytes.Equal(want, got), "seq %d: differs from pion", seq)
				back, err := dec.DecryptRTP(nil, got, nil)
				require.NoError(t, err, "seq %d", seq)
				require.Equal(t, plain, back)
				sent[seq] = append([]byte(nil), got...)
			}
			for seq := uint16(65530); seq != 5; seq++ {
				send(seq)
			}
			// A resend from before the rollover goes with the old counter:
			// the same bytes as the first time.
			idx, ok := win.index(65533)
			require.True(t, ok)
			require.Equal(t, uint32(0), uint32(idx>>16))
			h := rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: 65533, Timestamp: 65533 * 3000, SSRC: 0x1234abcd}
			var first rtp.Packet
			d2, err := srtp.CreateContext(key, salt, tc.profile, srtp.SRTPNoReplayProtection())
			require.NoError(t, err)
			for s := uint16(65530); s != 65534; s++ {
				plain, err := d2.DecryptRTP(nil, sent[s], nil)
				require.NoError(t, err)
				if s == 65533 {
					require.NoError(t, first.Unmarshal(plain))
				}
			}
			h.Marker = first.Marker
			again, err := ours.seal(buf[:0], &sc, &h, first.Payload, uint32(idx>>16))
			require.NoError(t, err)
			require.Equal(t, sent[65533], again)
			send(5)
		})
	}
}

func TestSRTPRefusesBadInput(t *testing.T) {
	gcm, cm := srtp.ProtectionProfileAeadAes128Gcm, srtp.ProtectionProfileAes128CmHmacSha1_80
	_, err := newSRTPKeys(gcm, make([]byte, 15), make([]byte, 12))
	require.Error(t, err)
	_, err = newSRTPKeys(gcm, make([]byte, 16), make([]byte, 14))
	require.Error(t, err)
	_, err = newSRTPKeys(srtp.ProtectionProfileAeadAes256Gcm, make([]byte, 16), make([]byte, 12))
	require.Error(t, err)
	_, err = newSRTPKeys(cm, make([]byte, 16), make([]byte, 12))
	require.Error(t, err)
	_, err = newSRTPKeys(srtp.ProtectionProfileNullHmacSha1_80, make([]byte, 16), make([]byte, 14))
	require.Error(t, err, "a profile the SFU leaves to pion")
	for _, p := range []srtp.ProtectionProfile{gcm, cm} {
		salt := 12
		if p == cm {
			salt = 14
		}
		s, err := newSRTPKeys(p, make([]byte, 16), make([]byte, salt))
		require.NoError(t, err)
		var sc sealScratch
		_, err = s.seal(make([]byte, 0, 100), &sc, &rtp.Header{Version: 2}, make([]byte, 90), 0)
		require.ErrorIs(t, err, errSRTPBuffer, "never reallocates the caller's buffer")
	}
}

// The sent window numbers packets across rollovers and lets an index be
// used again only with the same ring entry.
func TestSentWindow(t *testing.T) {
	var w sentWindow
	first := func(seq uint16, gen uint32) (uint64, bool) {
		idx, ok := w.index(seq)
		if !ok {
			return 0, false
		}
		return idx, w.admit(idx, gen, false)
	}
	idx, ok := first(65000, 1)
	require.True(t, ok)
	require.Equal(t, uint64(65000), idx)
	idx, ok = first(65535, 2)
	require.True(t, ok)
	require.Equal(t, uint64(65535), idx)
	idx, ok = first(0, 3)
	require.True(t, ok)
	require.Equal(t, uint64(1<<16), idx, "rollover")

	// Resends: the same entry under its index again; nothing else.
	i, _ := w.index(65535)
	require.Equal(t, uint64(65535), i, "from before the rollover")
	require.True(t, w.admit(i, 2, true))
	require.False(t, w.admit(i, 9, true), "another packet under a used index")
	require.False(t, w.admit(i, 9, false), "a first send under a used index")
	i, _ = w.index(65534)
	require.False(t, w.admit(i, 4, true), "a resend of a number never sent")
	require.True(t, w.admit(i, 4, false), "a late first send within the window")
	require.False(t, w.admit(i, 5, false))

	// A jump of exactly half the space counts as behind, beyond the window.
	i, ok = w.index(0x8000)
	require.True(t, ok)
	require.Equal(t, uint64(1<<16)-0x8000, i)
	require.False(t, w.admit(i, 6, false), "older than the window")
	_, ok = first(100, 7)
	require.True(t, ok)
	_, ok = first(100+sentWindowSize+1, 8)
	require.True(t, ok)
	i, _ = w.index(100)
	require.True(t, w.admit(i, 7, true), "the same packet again: the same bytes")
	require.False(t, w.admit(i, 10, false), "another under an index out of the window")
	i, _ = w.index(99)
	require.False(t, w.admit(i, 11, false), "a first send older than the window")
	require.False(t, w.admit(1<<40, 0, false), "gen 0 is no packet")

	var empty sentWindow
	_, ok = empty.index(5)
	require.True(t, ok)
	empty.started, empty.highest = true, 3
	_, ok = empty.index(65535)
	require.False(t, ok, "before the first packet")
}

// TestSRTPSealAllocatesNothing: encrypting a forwarded packet allocates
// nothing.
func TestSRTPSealAllocatesNothing(t *testing.T) {
	for _, tc := range []struct {
		profile srtp.ProtectionProfile
		salt    int
	}{{srtp.ProtectionProfileAeadAes128Gcm, 12}, {srtp.ProtectionProfileAes128CmHmacSha1_80, 14}} {
		s, err := newSRTPKeys(tc.profile, make([]byte, 16), make([]byte, tc.salt))
		require.NoError(t, err)
		var sc sealScratch
		var win sentWindow
		var gen uint32
		buf := make([]byte, 0, slotSize+maxTagLen)
		payload := make([]byte, 1000)
		h := rtp.Header{Version: 2, PayloadType: 96, SSRC: 7}
		allocs := testing.AllocsPerRun(1000, func() {
			h.SequenceNumber++
			gen++
			idx, _ := win.index(h.SequenceNumber)
			if !win.admit(idx, gen, false) {
				t.Fatal("refused")
			}
			if _, err := s.seal(buf[:0], &sc, &h, payload, uint32(idx>>16)); err != nil {
				t.Fatal(err)
			}
		})
		require.Zero(t, allocs, "profile %v", tc.profile)
	}
}

// BenchmarkSeal: the cost of encrypting one 1000-byte forwarded packet.
func BenchmarkSeal(b *testing.B) {
	for _, tc := range []struct {
		name    string
		profile srtp.ProtectionProfile
		salt    int
	}{{"AEAD_AES_128_GCM", srtp.ProtectionProfileAeadAes128Gcm, 12}, {"AES_CM_128_HMAC_SHA1_80", srtp.ProtectionProfileAes128CmHmacSha1_80, 14}} {
		b.Run(tc.name, func(b *testing.B) {
			s, err := newSRTPKeys(tc.profile, make([]byte, 16), make([]byte, tc.salt))
			require.NoError(b, err)
			var sc sealScratch
			buf := make([]byte, 0, slotSize+maxTagLen)
			payload := make([]byte, 1000)
			h := rtp.Header{Version: 2, PayloadType: 96, SSRC: 7}
			b.SetBytes(int64(len(payload)))
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				h.SequenceNumber = uint16(i)
				if _, err := s.seal(buf[:0], &sc, &h, payload, 0); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
