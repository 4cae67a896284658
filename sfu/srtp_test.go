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
