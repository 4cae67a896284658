package sfu_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/chaperone-edu/chaperone/sfu"
	"github.com/chaperone-edu/chaperone/sfu/sfutest"
)

func screenEdge(r *sfu.Room, from, to string) uint64 {
	_, es := r.Stats()
	return edgeStat(es, from, to, "screen").Packets
}

// TestScreenSourceGate: a track declared as a screen share comes to
// subscribers under the publisher's screen stream, is counted as kind
// "screen", goes to the sink as "screen", and is forwarded only while the
// publisher's "screen" source is allowed, while its camera goes on.
func TestScreenSourceGate(t *testing.T) {
	t.Parallel()
	r := newRoom(t)
	sink := &countSink{n: map[string]int{}}
	r.SetSink(sink)
	r.SetSourceAllowed("pupil", "screen", false)
	a, _ := join(t, r, "pupil")
	b, _ := join(t, r, "teacher")
	openAll(r, "pupil", "teacher")
	waitPublished(t, r, 4)
	waitReceiving(t, b, "pupil", "video", 2*time.Second)

	require.NoError(t, a.PublishScreen("slides"))
	waitPublished(t, r, 5)
	ts, _ := r.Stats()
	kinds := map[string]int{}
	for _, s := range ts {
		if s.Publisher == "pupil" {
			kinds[s.Kind]++
		}
	}
	require.Equal(t, map[string]int{"audio": 1, "video": 1, "screen": 1}, kinds)

	screen := sfu.ScreenStreamID("pupil")
	time.Sleep(time.Second)
	require.Zero(t, b.Received(screen, "video").Packets, "no screen without the permission")
	require.Zero(t, screenEdge(r, "pupil", "teacher"))
	require.Zero(t, sink.get("pupil/screen"), "nor is it recorded")
	waitReceiving(t, b, "pupil", "video", time.Second)

	allowed := time.Now()
	r.SetSourceAllowed("pupil", "screen", true)
	waitReceiving(t, b, screen, "video", 2*time.Second)
	t.Logf("screen flowing %s after the permission", time.Since(allowed).Round(time.Millisecond))
	require.Positive(t, sink.get("pupil/screen"))
	require.Positive(t, screenEdge(r, "pupil", "teacher"))

	r.SetSourceAllowed("pupil", "screen", false)
	requireStopped(t, b, screen, "video")
	waitReceiving(t, b, "pupil", "video", time.Second)
}

// TestUndeclaredSecondVideoIsScreen: a page that sends a second video track
// without declaring it cannot pass it off as a camera.
func TestUndeclaredSecondVideoIsScreen(t *testing.T) {
	t.Parallel()
	r := newRoom(t)
	r.SetSourceAllowed("pupil", "screen", false)
	a, _ := join(t, r, "pupil")
	b, _ := join(t, r, "teacher")
	openAll(r, "pupil", "teacher")
	waitPublished(t, r, 4)
	waitReceiving(t, b, "pupil", "video", 10*time.Second) // her camera, before the second video
	require.NoError(t, a.PublishVideo("sneaky"))
	waitPublished(t, r, 5)
	time.Sleep(time.Second) // time for the second video to arrive, were it forwarded
	require.Zero(t, b.Received(sfu.ScreenStreamID("pupil"), "video").Packets)
	require.Zero(t, screenEdge(r, "pupil", "teacher"))
	n := 0
	for _, tr := range b.Tracks() {
		if tr.StreamID == "pupil" && tr.Kind == "video" {
			n++
		}
	}
	require.Equal(t, 1, n, "one camera track only")
}

// publisherKinds counts the tracks of each kind that publisher has in the room.
func publisherKinds(r *sfu.Room, publisher string) map[string]int {
	ts, _ := r.Stats()
	kinds := map[string]int{}
	for _, s := range ts {
		if s.Publisher == publisher {
			kinds[s.Kind]++
		}
	}
	return kinds
}

// TestScreenShareAgainAndAgain: starting and stopping a screen share many
// times (more shares than a peer may declare screen tracks in one offer)
// keeps working: each share is classified as a screen and flows.
func TestScreenShareAgainAndAgain(t *testing.T) {
	t.Parallel()
	r := newRoom(t)
	a, _ := join(t, r, "teacher")
	b, _ := join(t, r, "pupil")
	openAll(r, "teacher", "pupil")
	waitPublished(t, r, 4)
	screen := sfu.ScreenStreamID("teacher")
	for i := range 10 {
		id := "screen" + string(rune('a'+i))
		require.NoError(t, a.PublishScreen(id), "share %d", i+1)
		waitReceiving(t, b, screen, "video", 5*time.Second)
		require.Equal(t, map[string]int{"audio": 1, "video": 1, "screen": 1}, publisherKinds(r, "teacher"), "share %d", i+1)
		require.NoError(t, a.Unpublish(id), "stop %d", i+1)
		require.Eventually(t, func() bool { return publisherKinds(r, "teacher")["screen"] == 0 }, 5*time.Second, 20*time.Millisecond,
			"share %d ends", i+1)
	}
}

// TestDeclareScreenBadIDs: bad screen track IDs are refused and change
// nothing (a declared screen stays declared).
func TestDeclareScreenBadIDs(t *testing.T) {
	t.Parallel()
	r := newRoom(t)
	_, p := join(t, r, "teacher")
	require.NoError(t, p.DeclareScreen("s1"))
	require.ErrorIs(t, p.DeclareScreen("s2", ""), sfu.ErrBadSDP)
	require.ErrorIs(t, p.DeclareScreen(string(make([]byte, 129))), sfu.ErrBadSDP)
	many := make([]string, 9)
	for i := range many {
		many[i] = "t" + string(rune('a'+i))
	}
	require.ErrorIs(t, p.DeclareScreen(many...), sfu.ErrBadSDP)
	require.NoError(t, p.DeclareScreen(many[:8]...), "eight in one offer are fine")
}

// TestNewCameraAfterRemovedOne: a camera that replaces one the client has
// just removed is a camera, not a screen share, even while the old track's
// read loop has not yet ended; it flows under the camera permission
// without a screen grant.
func TestNewCameraAfterRemovedOne(t *testing.T) {
	t.Parallel()
	r := newRoom(t)
	r.SetSourceAllowed("pupil", "screen", false)
	a, p := connect(t, r, "pupil", sfutest.Options{Audio: true})
	b, _ := join(t, r, "teacher")
	openAll(r, "pupil", "teacher")
	waitPublished(t, r, 3)
	old, err := sfu.AttachStaleCamera(r, p, 4242)
	require.NoError(t, err)
	t.Cleanup(old.End)
	require.NoError(t, a.PublishVideo("new-camera"))
	require.Eventually(t, func() bool { return publisherKinds(r, "pupil")["video"] == 2 }, 5*time.Second, 20*time.Millisecond,
		"the new camera is a camera: %v", publisherKinds(r, "pupil"))
	require.Zero(t, publisherKinds(r, "pupil")["screen"])
	waitReceiving(t, b, "pupil", "video", 5*time.Second)
}
