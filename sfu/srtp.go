package sfu

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha1" //nolint:gosec // RFC 3711's AES_CM_128_HMAC_SHA1_80, which browsers negotiate
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"

	"github.com/pion/rtp"
	"github.com/pion/srtp/v2"
)

// The SFU's own SRTP encryption for the packets it forwards: the AEAD
// profiles of RFC 7714 (AEAD_AES_128_GCM, AEAD_AES_256_GCM) and RFC 3711's
// AES_CM_128_HMAC_SHA1_80, which Chrome lists first and so gets whenever it
// is the DTLS client. pion's SRTP write path allocates on every packet (see
// downout.go); this one encrypts into the caller's buffer with the caller's
// scratch space and allocates nothing. Any other profile goes through pion.

const (
	gcmTagLen   = 16
	gcmSaltLen  = 12 // RFC 7714 §12: a 96-bit master salt
	cmSaltLen   = 14 // RFC 3711: a 112-bit master salt
	cmTagLen    = 10 // HMAC-SHA1 truncated to 80 bits
	cmAuthLen   = 20 // the HMAC-SHA1 session authentication key
	labelRTPKey = 0x00
	labelRTPAut = 0x01
	labelRTPSlt = 0x02
	maxTagLen   = gcmTagLen
)

var errSRTPBuffer = errors.New("sfu: srtp: packet larger than the buffer")

// srtpKeys encrypts the RTP of one direction of one SRTP session. It holds
// no per-packet state, so any number of goroutines may use it at once, each
// with its own sealScratch.
type srtpKeys struct {
	aead  cipher.AEAD  // AEAD profiles; nil for AES-CM
	block cipher.Block // AES-CM: the session encryption key
	auth  []byte       // AES-CM: the session authentication key
	salt  [cmSaltLen]byte
}

// sealScratch is one sender's working space for seal, so that nothing it
// uses escapes to the heap per packet.
type sealScratch struct {
	iv     [12]byte
	ctr    [aes.BlockSize]byte
	ks     [aes.BlockSize]byte
	roc    [4]byte
	tag    [sha1.Size]byte
	mac    hash.Hash // AES-CM: HMAC-SHA1 with the keys' auth key, made on first use
	macFor *srtpKeys // the keys mac was made for
}

// newSRTPKeys derives the session keys of profile from the master key and
// salt that DTLS-SRTP exported.
func newSRTPKeys(profile srtp.ProtectionProfile, masterKey, masterSalt []byte) (*srtpKeys, error) {
	switch profile {
	case srtp.ProtectionProfileAeadAes128Gcm, srtp.ProtectionProfileAeadAes256Gcm:
		if want := map[srtp.ProtectionProfile]int{srtp.ProtectionProfileAeadAes128Gcm: 16, srtp.ProtectionProfileAeadAes256Gcm: 32}[profile]; len(masterKey) != want {
			return nil, fmt.Errorf("sfu: srtp: master key of %d bytes, want %d", len(masterKey), want)
		}
		if len(masterSalt) != gcmSaltLen {
			return nil, fmt.Errorf("sfu: srtp: master salt of %d bytes, want %d", len(masterSalt), gcmSaltLen)
		}
	case srtp.ProtectionProfileAes128CmHmacSha1_80:
		if len(masterKey) != 16 || len(masterSalt) != cmSaltLen {
			return nil, fmt.Errorf("sfu: srtp: AES-CM master key/salt of %d/%d bytes, want 16/%d", len(masterKey), len(masterSalt), cmSaltLen)
		}
	default:
		return nil, fmt.Errorf("sfu: srtp: profile %d not supported", profile)
	}
	key, err := srtpKDF(masterKey, masterSalt, labelRTPKey, len(masterKey))
	if err != nil {
		return nil, err
	}
	salt, err := srtpKDF(masterKey, masterSalt, labelRTPSlt, len(masterSalt))
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("sfu: srtp: session cipher: %w", err)
	}
	k := &srtpKeys{}
	copy(k.salt[:], salt)
	if profile == srtp.ProtectionProfileAes128CmHmacSha1_80 {
		if k.auth, err = srtpKDF(masterKey, masterSalt, labelRTPAut, cmAuthLen); err != nil {
			return nil, err
		}
		k.block = block
		return k, nil
	}
	if k.aead, err = cipher.NewGCM(block); err != nil {
		return nil, fmt.Errorf("sfu: srtp: gcm: %w", err)
	}
	return k, nil
}

// srtpKDF is the AES-CM key derivation function of RFC 3711 §4.3.3 with a
// key derivation rate of 0 (as WebRTC uses it, and RFC 7714 §11 for GCM):
// the label is XORed into the master salt (a 96-bit one padded to 112 bits)
// and the result, times 2^16, is the counter block of an AES-CTR keystream
// under the master key.
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
// roc·2^16 + h.SequenceNumber, into dst[:0] and returns it. dst must have
// room for it (it is never reallocated). sc is the sender's own scratch.
func (k *srtpKeys) seal(dst []byte, sc *sealScratch, h *rtp.Header, payload []byte, roc uint32) ([]byte, error) {
	hl := h.MarshalSize()
	if cap(dst) < hl+len(payload)+maxTagLen {
		return nil, errSRTPBuffer
	}
	dst = dst[:hl]
	if _, err := h.MarshalTo(dst); err != nil {
		return nil, fmt.Errorf("sfu: srtp: marshal header: %w", err)
	}
	if k.aead != nil {
		// RFC 7714 §8.1: 00 00 || SSRC || ROC || SEQ, XOR the session
		// salt; the header is the additional data.
		iv := &sc.iv
		iv[0], iv[1] = 0, 0
		binary.BigEndian.PutUint32(iv[2:], h.SSRC)
		binary.BigEndian.PutUint32(iv[6:], roc)
		binary.BigEndian.PutUint16(iv[10:], h.SequenceNumber)
		for i := range iv {
			iv[i] ^= k.salt[i]
		}
		return k.aead.Seal(dst, iv[:], payload, dst[:hl]), nil
	}
	// RFC 3711 §4.1.1: AES in counter mode from (salt·2^16) XOR (SSRC·2^64)
	// XOR (index·2^16), then §4.2: HMAC-SHA1 over the packet and the ROC,
	// 80 bits of it appended.
	ctr := &sc.ctr
	*ctr = [aes.BlockSize]byte{}
	copy(ctr[:], k.salt[:])
	for i, b := range [10]byte{byte(h.SSRC >> 24), byte(h.SSRC >> 16), byte(h.SSRC >> 8), byte(h.SSRC),
		byte(roc >> 24), byte(roc >> 16), byte(roc >> 8), byte(roc), byte(h.SequenceNumber >> 8), byte(h.SequenceNumber)} {
		ctr[4+i] ^= b
	}
	dst = dst[:hl+len(payload)]
	for off := 0; off < len(payload); off += aes.BlockSize {
		k.block.Encrypt(sc.ks[:], ctr[:])
		end := min(off+aes.BlockSize, len(payload))
		subtle.XORBytes(dst[hl+off:hl+end], payload[off:end], sc.ks[:end-off])
		binary.BigEndian.PutUint16(ctr[14:], binary.BigEndian.Uint16(ctr[14:])+1)
	}
	if sc.mac == nil || sc.macFor != k {
		sc.mac, sc.macFor = hmac.New(sha1.New, k.auth), k
	}
	sc.mac.Reset()
	sc.mac.Write(dst)
	binary.BigEndian.PutUint32(sc.roc[:], roc)
	sc.mac.Write(sc.roc[:])
	tag := sc.mac.Sum(sc.tag[:0])
	return append(dst, tag[:cmTagLen]...), nil
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
