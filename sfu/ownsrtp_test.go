package sfu_test

import (
	"testing"
	"time"

	"github.com/pion/dtls/v2"
	"github.com/stretchr/testify/require"

	"github.com/chaperone-edu/chaperone/sfu"
	"github.com/chaperone-edu/chaperone/sfu/sfutest"
)

// TestOwnSRTPInUse: a subscriber that negotiates AES-GCM is written by the
// SFU's own SRTP writer, and pion on the other end decrypts what it sends:
// audio and video keep arriving. This fails if a pion upgrade moves the
// internals downout.go reads the keys from.
func TestOwnSRTPInUse(t *testing.T) {
	t.Parallel()
	r := newRoom(t)
	connect(t, r, "alice", sfutest.Options{Audio: true, Video: true, VideoFrameBytes: 3000})
	bob, bobPeer := connect(t, r, "bob", sfutest.Options{})
	r.SetEdge("alice", "bob", true)
	waitReceiving(t, bob, "alice", "video", 5*time.Second)
	waitReceiving(t, bob, "alice", "audio", 5*time.Second)
	require.True(t, sfu.OwnSRTP(bobPeer), "the SFU's own writer is in use")
	before := bob.Received("alice", "video").Packets
	time.Sleep(time.Second)
	got := bob.Received("alice", "video").Packets - before
	require.Greater(t, got, uint64(60), "about 90 video packets a second arrive and decrypt")
	_, es := r.Stats()
	require.NotZero(t, edgeStat(es, "alice", "bob", "audio").Packets)
}

// TestAESCMClient: a subscriber that offers AES_CM_HMAC_SHA1_80 first, as
// Chrome does (pion's DTLS server takes the client's first choice), is
// written by the SFU's own writer too, and decrypts what it gets.
func TestAESCMClient(t *testing.T) {
	t.Parallel()
	r := newRoom(t)
	connect(t, r, "alice", sfutest.Options{Video: true, VideoFrameBytes: 3000})
	bob, bobPeer := connect(t, r, "bob", sfutest.Options{SRTPProfiles: []dtls.SRTPProtectionProfile{dtls.SRTP_AES128_CM_HMAC_SHA1_80, dtls.SRTP_AEAD_AES_128_GCM}})
	r.SetEdge("alice", "bob", true)
	waitReceiving(t, bob, "alice", "video", 5*time.Second)
	require.True(t, sfu.OwnSRTP(bobPeer), "the SFU's own writer is in use")
	before := bob.Received("alice", "video").Packets
	time.Sleep(time.Second)
	require.Greater(t, bob.Received("alice", "video").Packets-before, uint64(60), "video keeps arriving and decrypting")
}
