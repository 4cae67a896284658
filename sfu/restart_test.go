package sfu_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/chaperone-edu/chaperone/sfu"
	"github.com/chaperone-edu/chaperone/sfu/sfutest"
)

// restartWithin bounds how long a client's media takes to come back after
// it restarts ICE on a new address (issue 19: within 5 s).
const restartWithin = 5 * time.Second

// TestICERestartNewAddress: mid-lesson a client restarts ICE on new
// sockets, as after a move from Wi-Fi to 4G: its old sockets close and its
// address changes. Media flows again both ways within 5 s on the same
// peer (no new join, no new tracks), and the SFU's own writer sends to the
// new address.
func TestICERestartNewAddress(t *testing.T) {
	t.Parallel()
	r := newRoom(t)
	alice, _ := connect(t, r, "alice", sfutest.Options{Audio: true, Video: true})
	bob, bobPeer := connect(t, r, "bob", sfutest.Options{Audio: true, Video: true})
	openAll(r, "alice", "bob")
	waitReceiving(t, bob, "alice", "video", 5*time.Second)
	waitReceiving(t, alice, "bob", "video", 5*time.Second)
	before := sfu.DownRemote(bobPeer)
	require.NotEmpty(t, before)
	tracks := len(bob.Tracks())

	require.NoError(t, bob.RestartICE())
	require.Eventually(t, func() bool { r := sfu.DownRemote(bobPeer); return r != "" && r != before },
		restartWithin, 20*time.Millisecond, "the SFU sends to bob's new address (was %s)", before)
	waitReceiving(t, bob, "alice", "video", restartWithin)
	waitReceiving(t, bob, "alice", "audio", restartWithin)
	waitReceiving(t, alice, "bob", "video", restartWithin)
	require.Len(t, bob.Tracks(), tracks, "the same tracks, no new ones")
	require.True(t, sfu.OwnSRTP(bobPeer))
}

// TestICERestartTooSoon: a second restart within a second is refused and
// changes nothing.
func TestICERestartTooSoon(t *testing.T) {
	t.Parallel()
	r := newRoom(t)
	_, p := connect(t, r, "alice", sfutest.Options{Audio: true})
	require.NoError(t, p.RestartICE())
	require.ErrorIs(t, p.RestartICE(), sfu.ErrRestartTooSoon)
}
