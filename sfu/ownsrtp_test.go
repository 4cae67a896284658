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

// TestOtherSRTPProfileThroughPion: a subscriber that offers only
// AES_CM_HMAC_SHA1_80 gets its media through pion's writer.
func TestOtherSRTPProfileThroughPion(t *testing.T) {
	t.Parallel()
	r := newRoom(t)
	connect(t, r, "alice", sfutest.Options{Video: true})
	bob, bobPeer := connect(t, r, "bob", sfutest.Options{SRTPProfiles: []dtls.SRTPProtectionProfile{dtls.SRTP_AES128_CM_HMAC_SHA1_80}})
	r.SetEdge("alice", "bob", true)
	waitReceiving(t, bob, "alice", "video", 5*time.Second)
	require.False(t, sfu.OwnSRTP(bobPeer), "pion writes a non-GCM profile")
}
