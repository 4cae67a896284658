package sfu_test

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

type countSink struct {
	mu sync.Mutex
	n  map[string]int
}

func (s *countSink) Packet(publisher, kind string, raw []byte) {
	s.mu.Lock()
	s.n[publisher+"/"+kind]++
	s.mu.Unlock()
}

func (s *countSink) get(k string) int { s.mu.Lock(); defer s.mu.Unlock(); return s.n[k] }

// TestSinkSeesHeldMedia: the recorder's sink gets every allowed packet even
// while all gates are closed, and nothing of a source staff switched off.
func TestSinkSeesHeldMedia(t *testing.T) {
	t.Parallel()
	r := newRoom(t)
	sink := &countSink{n: map[string]int{}}
	r.SetSink(sink)
	join(t, r, "a")
	join(t, r, "b")
	waitPublished(t, r, 4)
	require.Eventually(t, func() bool {
		return sink.get("a/audio") > 10 && sink.get("a/video") > 5 && sink.get("b/video") > 5
	}, 5*time.Second, 20*time.Millisecond, "the sink receives media with every gate closed")
	r.SetSourceAllowed("a", "audio", false)
	time.Sleep(100 * time.Millisecond)
	before := sink.get("a/audio")
	time.Sleep(500 * time.Millisecond)
	require.Equal(t, before, sink.get("a/audio"), "a muted source is not recorded")
	r.SetSink(nil)
	time.Sleep(100 * time.Millisecond)
	v := sink.get("b/video")
	time.Sleep(300 * time.Millisecond)
	require.Equal(t, v, sink.get("b/video"), "a detached sink receives nothing")
}
