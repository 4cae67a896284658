package sfu_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/chaperone-edu/chaperone/sfu"
	"github.com/chaperone-edu/chaperone/sfu/sfutest"
)

func newSFU(t *testing.T) *sfu.SFU {
	t.Helper()
	s, err := sfu.New(sfu.Config{
		ListenIP: "127.0.0.1",
		Loopback: true,
		Logger:   testLogger(),
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func newRoom(t *testing.T) *sfu.Room {
	t.Helper()
	r := newSFU(t).NewRoom(t.Name())
	t.Cleanup(r.Close)
	return r
}

// join connects a client that publishes audio and video.
func join(t *testing.T, r *sfu.Room, id string) (*sfutest.Client, *sfu.Peer) {
	t.Helper()
	return connect(t, r, id, sfutest.Options{Audio: true, Video: true})
}

// connect connects a client with opts; the test's cleanup closes it and
// checks it met no error.
func connect(t *testing.T, r *sfu.Room, id string, opts sfutest.Options) (*sfutest.Client, *sfu.Peer) {
	t.Helper()
	opts.Logf = t.Logf
	c, p, err := sfutest.Connect(r, id, opts)
	require.NoError(t, err)
	t.Cleanup(func() {
		_ = c.Close()
		require.NoError(t, c.Err(), "client %s", id)
	})
	return c, p
}

// openAll opens every edge between the given peers.
func openAll(r *sfu.Room, ids ...string) {
	for _, a := range ids {
		for _, b := range ids {
			if a != b {
				r.SetEdge(a, b, true)
			}
		}
	}
}

// waitPublished waits until the room has n tracks that have received packets.
func waitPublished(t *testing.T, r *sfu.Room, n int) {
	t.Helper()
	require.Eventually(t, func() bool {
		ts, _ := r.Stats()
		live := 0
		for _, s := range ts {
			if s.PacketsIn > 0 {
				live++
			}
		}
		return live == n
	}, 5*time.Second, 20*time.Millisecond, "tracks published")
}

func waitReceiving(t *testing.T, c *sfutest.Client, from, kind string, within time.Duration) {
	t.Helper()
	start := c.Received(from, kind).Packets
	require.Eventually(t, func() bool { return c.Received(from, kind).Packets > start+5 },
		within, 20*time.Millisecond, "receiving %s %s", from, kind)
}

// requireStopped checks that what c receives from `from` stops increasing.
func requireStopped(t *testing.T, c *sfutest.Client, from, kind string) {
	t.Helper()
	time.Sleep(200 * time.Millisecond) // packets already in flight
	before := c.Received(from, kind).Packets
	time.Sleep(600 * time.Millisecond)
	require.Equal(t, before, c.Received(from, kind).Packets, "%s %s still flowing", from, kind)
}

func edgeStat(es []sfu.EdgeStats, from, to, kind string) sfu.EdgeStats {
	for _, e := range es {
		if e.From == from && e.To == to && e.Kind == kind {
			return e
		}
	}
	return sfu.EdgeStats{}
}

func TestGateOpensAndCloses(t *testing.T) {
	t.Parallel()
	r := newRoom(t)
	a, _ := join(t, r, "alice")
	b, _ := join(t, r, "bob")
	waitPublished(t, r, 4)

	// Edges start closed: nothing reaches anyone.
	time.Sleep(time.Second)
	for _, k := range []string{"audio", "video"} {
		require.Zero(t, a.Received("bob", k).Packets)
		require.Zero(t, b.Received("alice", k).Packets)
	}
	_, es := r.Stats()
	for _, e := range es {
		require.Zero(t, e.Packets, "edge %+v", e)
	}

	plis := a.KeyframeRequests()
	openAll(r, "alice", "bob")
	for _, k := range []string{"audio", "video"} {
		waitReceiving(t, a, "bob", k, 2*time.Second)
		waitReceiving(t, b, "alice", k, 2*time.Second)
	}
	require.Greater(t, a.KeyframeRequests(), plis, "opening an edge asks the publisher for a keyframe")

	// Stats count what was written per edge and kind.
	ts, es := r.Stats()
	require.Len(t, ts, 4)
	for _, s := range ts {
		require.NotZero(t, s.BytesIn, "%+v", s)
	}
	for _, k := range []string{"audio", "video"} {
		e := edgeStat(es, "alice", "bob", k)
		require.NotZero(t, e.Packets, k)
		require.NotZero(t, e.Bytes, k)
		require.GreaterOrEqual(t, e.Packets, b.Received("alice", k).Packets, k)
	}

	// Closing one direction stops only that direction.
	r.SetEdge("alice", "bob", false)
	requireStopped(t, b, "alice", "video")
	requireStopped(t, b, "alice", "audio")
	waitReceiving(t, a, "bob", "video", 2*time.Second)

	// Reopening resumes.
	r.SetEdge("alice", "bob", true)
	waitReceiving(t, b, "alice", "video", 2*time.Second)
}

func TestSourceAllowedAndLateJoiner(t *testing.T) {
	t.Parallel()
	r := newRoom(t)
	r.SetSourceAllowed("alice", "bogus", false) // ignored
	a, _ := join(t, r, "alice")
	b, _ := join(t, r, "bob")
	openAll(r, "alice", "bob", "carol") // before carol is here: edges are kept by ID
	waitPublished(t, r, 4)
	waitReceiving(t, b, "alice", "audio", 2*time.Second)

	// A third peer joining later receives the tracks published before it came.
	c, _ := join(t, r, "carol")
	for _, k := range []string{"audio", "video"} {
		waitReceiving(t, c, "alice", k, 3*time.Second)
		waitReceiving(t, c, "bob", k, 3*time.Second)
		waitReceiving(t, a, "carol", k, 3*time.Second)
	}

	// Muting alice's microphone stops her audio to everyone, not her video.
	r.SetSourceAllowed("alice", "audio", false)
	requireStopped(t, b, "alice", "audio")
	requireStopped(t, c, "alice", "audio")
	waitReceiving(t, b, "alice", "video", time.Second)
	waitReceiving(t, c, "alice", "video", time.Second)
	waitReceiving(t, c, "bob", "audio", time.Second)

	r.SetSourceAllowed("alice", "audio", true)
	waitReceiving(t, c, "alice", "audio", 2*time.Second)
}

func TestRemovePeer(t *testing.T) {
	t.Parallel()
	r := newRoom(t)
	a, _ := join(t, r, "alice")
	b, _ := join(t, r, "bob")
	c, _ := join(t, r, "carol")
	openAll(r, "alice", "bob", "carol")
	waitPublished(t, r, 6)
	waitReceiving(t, a, "bob", "video", 3*time.Second)
	waitReceiving(t, c, "bob", "audio", 3*time.Second)

	r.RemovePeer("bob")
	r.RemovePeer("nobody") // ignored
	for _, cl := range []*sfutest.Client{a, c} {
		require.Eventually(t, func() bool {
			n := 0
			for _, tr := range cl.Tracks() {
				if tr.StreamID == "bob" && tr.Ended {
					n++
				}
			}
			return n == 2
		}, 3*time.Second, 20*time.Millisecond, "bob's tracks end")
		requireStopped(t, cl, "bob", "video")
	}
	ts, _ := r.Stats()
	for _, s := range ts {
		require.NotEqual(t, "bob", s.Publisher)
	}
	// The others still talk.
	waitReceiving(t, a, "carol", "video", 2*time.Second)
	waitReceiving(t, c, "alice", "audio", 2*time.Second)
	_ = b
}

func TestScreenShareReoffer(t *testing.T) {
	t.Parallel()
	r := newRoom(t)
	a, _ := join(t, r, "alice")
	b, _ := join(t, r, "bob")
	openAll(r, "alice", "bob")
	waitPublished(t, r, 4)
	waitReceiving(t, b, "alice", "video", 2*time.Second)

	require.NoError(t, a.PublishVideo("screen"))
	waitPublished(t, r, 5)
	videos := func(stream string, ended bool) int {
		n := 0
		for _, tr := range b.Tracks() {
			if tr.StreamID == stream && tr.Kind == "video" && tr.Ended == ended {
				n++
			}
		}
		return n
	}
	screen := sfu.ScreenStreamID("alice")
	require.Eventually(t, func() bool { return videos("alice", false) == 1 && videos(screen, false) == 1 }, 3*time.Second, 20*time.Millisecond)

	require.NoError(t, a.Unpublish("screen"))
	require.Eventually(t, func() bool { return videos(screen, false) == 0 && videos(screen, true) == 1 }, 3*time.Second, 20*time.Millisecond)
	require.Equal(t, 1, videos("alice", false), "the camera stays")
	waitReceiving(t, b, "alice", "video", 2*time.Second)
}

// Viewers waiting before the publisher comes get its tracks one by one, each
// an offer soon after the last; all of them must connect.
func TestViewersBeforePublisher(t *testing.T) {
	t.Parallel()
	r := newRoom(t)
	// Viewers first, so alice's audio, then video, then screen each trigger an
	// offer while the previous negotiation is young.
	var viewers []*sfutest.Client
	for i := range 4 {
		id := fmt.Sprintf("viewer%d", i)
		r.SetEdge("alice", id, true)
		c, _, err := sfutest.Connect(r, id, sfutest.Options{Logf: t.Logf})
		require.NoError(t, err)
		t.Cleanup(func() { _ = c.Close() })
		viewers = append(viewers, c)
	}
	a, _ := join(t, r, "alice")
	waitPublished(t, r, 2)
	require.NoError(t, a.PublishVideo("screen"))
	for _, c := range viewers {
		require.Eventually(t, func() bool {
			live := 0
			for _, tr := range c.Tracks() {
				if tr.Packets > 0 {
					live++
				}
			}
			return live == 3
		}, 4*time.Second, 20*time.Millisecond, "viewer gets alice's three tracks")
		require.NoError(t, c.Err())
	}
}

// recSignal records what the SFU sends, for tests that play the client's
// part by hand.
type recSignal struct {
	offers chan string
	cands  chan sfu.Candidate
}

func (s recSignal) Offer(_ string, sdp string)          { s.offers <- sdp }
func (s recSignal) Candidate(_ string, c sfu.Candidate) { s.cands <- c }

// Pion v3 takes a re-offer applied before its ICE transport has started (an
// asynchronous step after the first description) for an ICE restart, and the
// down connection never comes up (seen as "username mismatch" when tracks
// arrived milliseconds apart). So the SFU holds every offer after the first
// until the down connection's ICE has connected.
func TestReofferWaitsForICE(t *testing.T) {
	t.Parallel()
	r := newRoom(t)
	a, _ := join(t, r, "alice")
	waitPublished(t, r, 2)
	r.SetEdge("alice", "viewer", true)

	sig := recSignal{offers: make(chan string, 16), cands: make(chan sfu.Candidate, 64)}
	peer, err := r.AddPeer("viewer", sig)
	require.NoError(t, err)
	var held []sfu.Candidate // the client's candidates, not yet given to the SFU
	var mu sync.Mutex
	c, err := sfutest.NewClient(sfutest.Options{Logf: t.Logf, Send: func(m sfutest.Message) {
		switch m["type"] {
		case "answer":
			if err := peer.HandleAnswer(m["sdp"].(string)); err != nil {
				t.Error(err)
			}
		case "candidate": // on pion's goroutine: no require here
			var cand sfu.Candidate
			raw, _ := json.Marshal(m["candidate"])
			if err := json.Unmarshal(raw, &cand); err != nil {
				t.Error(err)
			}
			mu.Lock()
			held = append(held, cand)
			mu.Unlock()
		}
	}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })

	first := <-sig.offers
	require.NoError(t, c.Handle(sfutest.Message{"type": "offer", "pc": "down", "sdp": first}))

	// A new track while ICE cannot connect (no candidates exchanged): no offer.
	require.NoError(t, a.PublishVideo("screen"))
	waitPublished(t, r, 3)
	select {
	case <-sig.offers:
		t.Fatal("re-offer sent before the down connection's ICE connected")
	case <-time.After(500 * time.Millisecond):
	}

	// Let ICE connect: the held offer follows.
	mu.Lock()
	for _, cand := range held {
		require.NoError(t, peer.AddCandidate("down", cand))
	}
	mu.Unlock()
	for len(sig.cands) > 0 {
		require.NoError(t, c.Handle(sfutest.Message{"type": "candidate", "pc": "down", "candidate": <-sig.cands}))
	}
	select {
	case second := <-sig.offers:
		require.NoError(t, c.Handle(sfutest.Message{"type": "offer", "pc": "down", "sdp": second}))
	case <-time.After(3 * time.Second):
		t.Fatal("no re-offer after ICE connected")
	}
	require.Eventually(t, func() bool {
		live := 0
		for _, tr := range c.Tracks() {
			if tr.Packets > 0 {
				live++
			}
		}
		return live == 3
	}, 3*time.Second, 20*time.Millisecond, "viewer gets alice's three tracks")
	require.NoError(t, c.Err())
}

type nopSignal struct{}

func (nopSignal) Offer(string, string)            {}
func (nopSignal) Candidate(string, sfu.Candidate) {}

func TestBadInput(t *testing.T) {
	t.Parallel()
	r := newRoom(t)
	a, _ := join(t, r, "alice")
	b, pb := join(t, r, "bob")
	openAll(r, "alice", "bob")
	waitReceiving(t, a, "bob", "video", 5*time.Second)

	_, err := pb.HandleOffer("garbage")
	require.ErrorIs(t, err, sfu.ErrBadSDP)
	require.ErrorIs(t, pb.HandleAnswer("v=garbage"), sfu.ErrBadSDP)
	require.ErrorIs(t, pb.AddCandidate("sideways", sfu.Candidate{Candidate: "x"}), sfu.ErrUnknownPC)
	// The session carries on unharmed.
	waitReceiving(t, a, "bob", "video", 2*time.Second)
	waitReceiving(t, b, "alice", "audio", 2*time.Second)

	// A fresh peer: garbage leaves it ready for a real offer.
	p, err := r.AddPeer("carol", nopSignal{})
	require.NoError(t, err)
	_, err = p.HandleOffer("")
	require.ErrorIs(t, err, sfu.ErrBadSDP)
	require.ErrorIs(t, p.HandleAnswer("v=0"), sfu.ErrBadSDP)
	require.NoError(t, p.AddCandidate("up", sfu.Candidate{Candidate: "candidate:1 1 udp 1 127.0.0.1 9 typ host"}))
	p.Close()
	_, err = p.HandleOffer("v=0")
	require.ErrorIs(t, err, sfu.ErrClosed)

	r.Close()
	_, err = r.AddPeer("dave", nopSignal{})
	require.ErrorIs(t, err, sfu.ErrClosed)
}

func TestReplacePeer(t *testing.T) {
	t.Parallel()
	r := newRoom(t)
	a, _ := join(t, r, "alice")
	_, old := join(t, r, "bob")
	openAll(r, "alice", "bob")
	waitReceiving(t, a, "bob", "video", 5*time.Second)

	// bob reconnects: the new peer replaces the old one, whose late Close
	// must not remove the new one.
	b2, _ := join(t, r, "bob")
	old.Close()
	waitReceiving(t, b2, "alice", "video", 3*time.Second)
	require.Eventually(t, func() bool {
		live := 0
		for _, tr := range a.Tracks() {
			if tr.StreamID == "bob" && !tr.Ended {
				live++
			}
		}
		return live == 2
	}, 3*time.Second, 20*time.Millisecond)
	waitReceiving(t, a, "bob", "audio", 2*time.Second)
}

func TestNewConfig(t *testing.T) {
	t.Parallel()
	_, err := sfu.New(sfu.Config{ListenIP: "not-an-ip"})
	require.Error(t, err)
	if s6, err := sfu.New(sfu.Config{ListenIP: "::1", Loopback: true}); err == nil { // an IPv6 address is fine (issue 19)
		require.Regexp(t, `^\[::1\]:[1-9][0-9]*$`, s6.UDPAddr())
		require.NoError(t, s6.Close())
	}
	_, err = sfu.New(sfu.Config{UDPPort: 70000})
	require.Error(t, err)
	_, err = sfu.New(sfu.Config{PublicIPs: []string{"not-an-ip"}})
	require.Error(t, err)

	// All interfaces, one port: the address reports it.
	s, err := sfu.New(sfu.Config{Loopback: true, PublicIPs: []string{"203.0.113.7"}})
	require.NoError(t, err)
	require.Regexp(t, `^0\.0\.0\.0:[1-9][0-9]*$`, s.UDPAddr())
	require.NoError(t, s.Close())
	r := s.NewRoom("after-close")
	_, err = r.AddPeer("x", nopSignal{})
	require.True(t, errors.Is(err, sfu.ErrClosed), fmt.Sprint(err))
}

// TestNoGoroutineLeak runs serially (before the parallel tests) so the
// goroutine count is its own.
func TestNoGoroutineLeak(t *testing.T) {
	base := runtime.NumGoroutine()
	func() {
		s, err := sfu.New(sfu.Config{ListenIP: "127.0.0.1", Loopback: true,
			Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))})
		require.NoError(t, err)
		defer func() { require.NoError(t, s.Close()) }()
		r := s.NewRoom("leak")
		var clients []*sfutest.Client
		for _, id := range []string{"alice", "bob", "carol"} {
			c, _, err := sfutest.Connect(r, id, sfutest.Options{Audio: true, Video: true})
			require.NoError(t, err)
			clients = append(clients, c)
		}
		openAll(r, "alice", "bob", "carol")
		waitReceiving(t, clients[0], "carol", "video", 5*time.Second)
		r.RemovePeer("bob")
		waitReceiving(t, clients[2], "alice", "audio", 2*time.Second)
		r.Close()
		for _, c := range clients {
			require.NoError(t, c.Close())
		}
	}()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("goroutines: %d at start, %d now:\n%s", base, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func testLogger() *slog.Logger {
	level := slog.LevelError
	if os.Getenv("SFU_DEBUG") != "" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}
