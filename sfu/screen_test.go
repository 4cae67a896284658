package sfu_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/chaperone-edu/chaperone/sfu"
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
	require.NoError(t, a.PublishVideo("sneaky"))
	waitPublished(t, r, 5)
	time.Sleep(time.Second)
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
