package sfu

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/pion/rtp"
)

// The SFU's own SRTP encryption for the packets it forwards (RFC 7714,
// AEAD_AES_128_GCM and AEAD_AES_256_GCM). pion's SRTP write path allocates
// on every packet (see downout.go); this one encrypts into the caller's
// buffer and allocates nothing. It is used only for the two GCM profiles,
// which the SFU prefers and browsers offer; any other profile goes through
// pion.

const (
	gcmTagLen   = 16
	gcmSaltLen  = 12 // RFC 7714 §12: a 96-bit master salt
	labelRTPKey = 0x00
	labelRTPSlt = 0x02
)

var errSRTPBuffer = errors.New("sfu: srtp: packet larger than the buffer")

// srtpGCM encrypts the RTP of one direction of one SRTP session. It holds no
// per-packet state, so any number of goroutines may use it at once (the
// AEAD from crypto/cipher is safe for concurrent use).
type srtpGCM struct {
	aead cipher.AEAD
	salt [gcmSaltLen]byte // the session salt
}

// newSRTPGCM derives the session key and salt from the master key (16 bytes
// for AEAD_AES_128_GCM, 32 for AEAD_AES_256_GCM) and the 12-byte master salt
// that DTLS-SRTP exported.
func newSRTPGCM(masterKey, masterSalt []byte) (*srtpGCM, error) {
	if len(masterKey) != 16 && len(masterKey) != 32 {
		return nil, fmt.Errorf("sfu: srtp: master key of %d bytes, want 16 or 32", len(masterKey))
	}
	if len(masterSalt) != gcmSaltLen {
		return nil, fmt.Errorf("sfu: srtp: master salt of %d bytes, want %d", len(masterSalt), gcmSaltLen)
	}
	key, err := srtpKDF(masterKey, masterSalt, labelRTPKey, len(masterKey))
	if err != nil {
		return nil, err
	}
	salt, err := srtpKDF(masterKey, masterSalt, labelRTPSlt, gcmSaltLen)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("sfu: srtp: session cipher: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("sfu: srtp: gcm: %w", err)
	}
	s := &srtpGCM{aead: aead}
	copy(s.salt[:], salt)
	return s, nil
}

// srtpKDF is the AES-CM key derivation function of RFC 3711 §4.3.3 with a
// key derivation rate of 0, as RFC 7714 §11 uses it for the GCM profiles:
// the label is XORed into the master salt (padded to 112 bits) and the
// result, times 2^16, is the counter block of an AES-CTR keystream under the
// master key.
func srtpKDF(masterKey, masterSalt []byte, label byte, n int) ([]byte, error) {
	block, err := aes.NewCipher(masterKey)
	if err != nil {
		return nil, fmt.Errorf("sfu: srtp: key derivation: %w", err)
	}
	var in [aes.BlockSize]byte
	copy(in[:14], masterSalt)
	in[7] ^= label
	out := make([]byte, (n+aes.BlockSize-1)/aes.BlockSize*aes.BlockSize)
	for i := 0; i*aes.BlockSize < n; i++ {
		binary.BigEndian.PutUint16(in[14:], uint16(i))
		block.Encrypt(out[i*aes.BlockSize:], in[:])
	}
	return out[:n], nil
}

// seal writes the SRTP packet for h and payload, whose packet index is
// roc·2^16 + h.SequenceNumber, into dst[:0] and returns it: the header in
// clear as the additional data, then the encrypted payload and the tag. dst
// must have room for it (it is never reallocated). iv is scratch space for
// the nonce, kept by the caller so that it does not escape to the heap.
func (s *srtpGCM) seal(dst []byte, iv *[12]byte, h *rtp.Header, payload []byte, roc uint32) ([]byte, error) {
	hl := h.MarshalSize()
	if cap(dst) < hl+len(payload)+gcmTagLen {
		return nil, errSRTPBuffer
	}
	dst = dst[:hl]
	if _, err := h.MarshalTo(dst); err != nil {
		return nil, fmt.Errorf("sfu: srtp: marshal header: %w", err)
	}
	// RFC 7714 §8.1: 00 00 || SSRC || ROC || SEQ, XOR the session salt.
	iv[0], iv[1] = 0, 0
	binary.BigEndian.PutUint32(iv[2:], h.SSRC)
	binary.BigEndian.PutUint32(iv[6:], roc)
	binary.BigEndian.PutUint16(iv[10:], h.SequenceNumber)
	for i := range iv {
		iv[i] ^= s.salt[i]
	}
	return s.aead.Seal(dst, iv[:], payload, dst[:hl]), nil
}

// sentWindowSize is how many recent packet indices a sentWindow remembers:
// more than a NACK can reach back (the video ring's 512) and than forward
// lets a late packet come (maxReorder).
const sentWindowSize = 2 * maxReorder

// sentWindow is what one sender has sent on one SSRC under one key: the
// highest packet index (RFC 3711 §3.3.1: ROC·2^16 + SEQ) and, for the last
// sentWindowSize indices, which ring entry (commit number) each carried. It
// keeps the promise AES-GCM rests on: an index is encrypted again only with
// the same packet, whatever numbers a publisher sends. Its zero value is
// empty.
type sentWindow struct {
	started bool
	highest uint64
	recs    [sentWindowSize]sentRec
}

type sentRec struct {
	idx uint32 // the index's low 32 bits
	gen uint32 // the ring entry it carried; 0: none
}

// index returns the packet index seq stands for: the one nearest the highest
// sent (RFC 3711 Appendix A; a number exactly half the space away counts as
// behind). false if that would be before the first packet.
func (w *sentWindow) index(seq uint16) (uint64, bool) {
	if !w.started {
		return uint64(seq), true
	}
	hs := uint16(w.highest)
	if ahead := seq - hs; ahead < 0x8000 {
		return w.highest + uint64(ahead), true
	}
	behind := uint64(hs - seq)
	if behind > w.highest {
		return 0, false
	}
	return w.highest - behind, true
}

// admit reports whether the packet of ring commit gen (never 0) may go out
// with index idx, and records it if so. A resend must be of an index sent
// before with the same packet; a first send must be of an index not sent
// yet and not older than the window (which cannot be told). Sending the very
// same packet again under its index is allowed: the output is the same.
func (w *sentWindow) admit(idx uint64, gen uint32, resend bool) bool {
	r := &w.recs[idx%sentWindowSize]
	if w.started && r.gen != 0 && r.idx == uint32(idx) {
		return r.gen == gen
	}
	if resend || gen == 0 || (w.started && idx+sentWindowSize <= w.highest) {
		return false
	}
	*r = sentRec{idx: uint32(idx), gen: gen}
	if !w.started || idx > w.highest {
		w.started, w.highest = true, idx
	}
	return true
}
