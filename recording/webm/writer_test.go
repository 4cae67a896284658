package webm_test

import (
	"bytes"
	"cmp"
	"errors"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/at-wat/ebml-go"
	ebmlwebm "github.com/at-wat/ebml-go/webm"
	"github.com/stretchr/testify/require"

	"github.com/chaperone-edu/chaperone/recording/webm"
	"github.com/chaperone-edu/chaperone/recording/webm/webmtest"
)

// clock is a settable Now for Options.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

var epoch = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

func newWriter(t *testing.T, o webm.Options) (*webm.Writer, string) {
	t.Helper()
	if o.Path == "" {
		o.Path = filepath.Join(t.TempDir(), "pupil.webm")
	}
	o.Logger = slog.New(slog.NewTextHandler(t.Output(), nil))
	w, err := webm.Create(o)
	require.NoError(t, err)
	return w, o.Path
}

// play writes pkts as fast as possible, with the clock at each packet's
// arrival time.
func play(t *testing.T, w *webm.Writer, c *clock, pkts []webmtest.Packet) {
	t.Helper()
	for _, p := range pkts {
		c.Set(epoch.Add(p.At))
		require.NoError(t, w.WriteRTP(p.Kind, p.Packet))
	}
}

func within(t *testing.T, want, got, tolerance time.Duration) {
	t.Helper()
	require.InDelta(t, want.Seconds(), got.Seconds(), tolerance.Seconds(), "got %v, want %v", got, want)
}

func TestWriterSession(t *testing.T) {
	t.Parallel()
	var synced atomic.Int32
	c := &clock{}
	w, path := newWriter(t, webm.Options{Now: c.Now, OnKeyframeSynced: func() { synced.Add(1) }})

	play(t, w, c, webmtest.Session(3*time.Second, 100*time.Millisecond, 30))
	require.NoError(t, w.Close())

	fi, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	require.Equal(t, fi.Size(), w.Bytes())
	require.Equal(t, w.Bytes(), w.SyncedBytes())
	require.EqualValues(t, 1, synced.Load(), "OnKeyframeSynced calls")
	within(t, 3*time.Second, w.Duration(), 300*time.Millisecond)

	r := webmtest.Probe(t, path)
	require.ElementsMatch(t, []string{"opus", "vp8"}, r.Codecs())
	within(t, 3*time.Second, r.Duration, 300*time.Millisecond)
	for _, s := range r.Streams {
		if s.CodecName == "vp8" {
			require.Equal(t, webmtest.VP8Width, s.Width)
			require.Equal(t, webmtest.VP8Height, s.Height)
		}
	}
}

// The uploader ships the file up to SyncedBytes while it grows: that prefix
// must already be a readable WebM.
func TestReadableWhileWriting(t *testing.T) {
	t.Parallel()
	var synced atomic.Int32
	c := &clock{}
	w, path := newWriter(t, webm.Options{
		Now:              c.Now,
		SyncEvery:        10 * time.Millisecond,
		OnKeyframeSynced: func() { synced.Add(1) },
	})
	t.Cleanup(func() { _ = w.Close() })

	play(t, w, c, webmtest.Session(2*time.Second, 0, 30))
	require.Eventually(t, func() bool { return w.SyncedBytes() == w.Bytes() && synced.Load() == 1 },
		5*time.Second, 5*time.Millisecond, "fsync loop did not catch up")
	require.Positive(t, w.HeaderSize())
	require.Greater(t, w.SyncedBytes(), w.HeaderSize())

	b, err := os.ReadFile(path)
	require.NoError(t, err)
	prefix := filepath.Join(t.TempDir(), "prefix.webm")
	require.NoError(t, os.WriteFile(prefix, b[:w.SyncedBytes()], 0o600))
	r := webmtest.Probe(t, prefix)
	require.ElementsMatch(t, []string{"opus", "vp8"}, r.Codecs())

	require.NoError(t, w.Close())
	require.EqualValues(t, 1, synced.Load())
}

func TestOutOfOrderAndDuplicatePackets(t *testing.T) {
	t.Parallel()
	c := &clock{}
	w, path := newWriter(t, webm.Options{Now: c.Now})

	pkts := webmtest.Session(3*time.Second, 0, 15)
	rng := rand.New(rand.NewPCG(1, 2))
	var mixed []webmtest.Packet
	for i, p := range pkts {
		mixed = append(mixed, p)
		switch rng.IntN(10) {
		case 0: // duplicate now
			mixed = append(mixed, p)
		case 1: // duplicate much later
			if j := i - 40; j >= 0 {
				mixed = append(mixed, pkts[j])
			}
		}
	}
	for i := 0; i+1 < len(mixed); i += 2 + rng.IntN(3) { // swap neighbours
		mixed[i], mixed[i+1] = mixed[i+1], mixed[i]
	}
	play(t, w, c, mixed)
	require.NoError(t, w.Close())

	r := webmtest.Probe(t, path)
	require.ElementsMatch(t, []string{"opus", "vp8"}, r.Codecs())
	within(t, 3*time.Second, r.Duration, 300*time.Millisecond)
	blocks := readBlocks(t, path)
	for track, times := range blocks {
		for i := 1; i < len(times); i++ {
			require.Greater(t, times[i], times[i-1], "track %d block %d not after the one before", track, i)
		}
	}
}

func TestWriteAfterClose(t *testing.T) {
	t.Parallel()
	w, _ := newWriter(t, webm.Options{})
	require.NoError(t, w.Close())
	require.NoError(t, w.Close(), "second Close")
	err := w.WriteRTP(webm.KindAudio, webmtest.OpusPacket(1, 960))
	require.True(t, errors.Is(err, webm.ErrClosed), "got %v", err)
}

func TestCreateExistingFails(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "pupil.webm")
	require.NoError(t, os.WriteFile(path, []byte("keep me"), 0o600))
	_, err := webm.Create(webm.Options{Path: path})
	require.ErrorIs(t, err, os.ErrExist)
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, "keep me", string(b))

	_, err = webm.Create(webm.Options{Path: filepath.Join(t.TempDir(), "missing", "x.webm")})
	require.Error(t, err)
}

func TestUnknownKind(t *testing.T) {
	t.Parallel()
	w, _ := newWriter(t, webm.Options{})
	defer w.Close()
	require.ErrorIs(t, w.WriteRTP("screen", webmtest.OpusPacket(1, 1)), webm.ErrUnknownKind)
}

// Video that starts later than audio is placed on the audio's timeline by
// arrival time, whatever its RTP timestamps; frames before the first
// keyframe are dropped.
func TestLateVideoAndFirstKeyframe(t *testing.T) {
	t.Parallel()
	c := &clock{}
	w, path := newWriter(t, webm.Options{Now: c.Now})

	var pkts []webmtest.Packet
	for _, p := range webmtest.Session(3*time.Second, 0, 1) {
		if p.Kind == "audio" {
			pkts = append(pkts, p)
		}
	}
	// Video arrives from 1 s; the first keyframe only at 1.5 s.
	var seq uint16 = 7
	ts := uint32(rand.Uint32())
	for i := 0; i < 45; i++ {
		at := time.Second + time.Duration(i)*time.Second/30
		for _, p := range webmtest.VP8Packets(&seq, ts, i == 15) {
			pkts = append(pkts, webmtest.Packet{Kind: "video", At: at, Packet: p})
		}
		ts += webmtest.VP8FrameTicks
	}
	sortByArrival(pkts)
	play(t, w, c, pkts)
	require.NoError(t, w.Close())

	blocks := readBlocks(t, path)
	require.Len(t, blocks[2], 30, "video frames from the first keyframe on")
	require.InDelta(t, 1500, blocks[2][0], 2, "first video block (ms)")
	require.EqualValues(t, 0, blocks[1][0], "first audio block (ms)")
	require.Equal(t, epoch, w.Start())
}

// Audio and video arrive on different goroutines.
func TestConcurrentTracks(t *testing.T) {
	t.Parallel()
	w, path := newWriter(t, webm.Options{SyncEvery: 5 * time.Millisecond})
	var audio, video []webmtest.Packet
	for _, p := range webmtest.Session(2*time.Second, 0, 30) {
		if p.Kind == "audio" {
			audio = append(audio, p)
		} else {
			video = append(video, p)
		}
	}
	var wg sync.WaitGroup
	for _, ps := range [][]webmtest.Packet{audio, video} {
		wg.Go(func() {
			for _, p := range ps {
				if err := w.WriteRTP(p.Kind, p.Packet); err != nil {
					t.Error(err)
					return
				}
				_ = w.Bytes() + w.SyncedBytes() + int64(w.Duration())
			}
		})
	}
	wg.Wait()
	require.NoError(t, w.Close())
	require.Equal(t, w.Bytes(), w.SyncedBytes())
	blocks := readBlocks(t, path)
	require.Len(t, blocks[1], len(audio))
	require.Len(t, blocks[2], 60)
}

func TestCloseWithoutMedia(t *testing.T) {
	t.Parallel()
	var synced atomic.Int32
	w, path := newWriter(t, webm.Options{OnKeyframeSynced: func() { synced.Add(1) }})
	require.NoError(t, w.Close())
	require.Zero(t, synced.Load())
	require.Zero(t, w.Duration())
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.EqualValues(t, len(b), w.SyncedBytes())
	require.Empty(t, readBlocks(t, path))
}

// readBlocks parses the file with ebml-go and returns each track's block
// times in milliseconds, in file order.
func readBlocks(t *testing.T, path string) map[uint64][]int64 {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var f struct {
		Header  ebmlwebm.EBMLHeader `ebml:"EBML"`
		Segment ebmlwebm.Segment    `ebml:"Segment"`
	}
	require.NoError(t, ebml.Unmarshal(bytes.NewReader(b), &f))
	require.Len(t, f.Segment.Tracks.TrackEntry, 2)
	out := map[uint64][]int64{}
	for _, c := range f.Segment.Cluster {
		for _, blk := range c.SimpleBlock {
			out[blk.TrackNumber] = append(out[blk.TrackNumber], int64(c.Timecode)+int64(blk.Timecode))
		}
	}
	return out
}

func sortByArrival(p []webmtest.Packet) {
	slices.SortStableFunc(p, func(a, b webmtest.Packet) int { return cmp.Compare(a.At, b.At) })
}
