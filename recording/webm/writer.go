package webm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/at-wat/ebml-go"
	"github.com/at-wat/ebml-go/webm"
	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v3/pkg/media"
	"github.com/pion/webrtc/v3/pkg/media/samplebuilder"
)

// Track kinds accepted by [Writer.WriteRTP].
const (
	KindAudio = "audio" // Opus, 48 kHz RTP clock
	KindVideo = "video" // VP8, 90 kHz RTP clock
)

var (
	// ErrClosed is returned by WriteRTP after Close.
	ErrClosed = errors.New("webm: writer is closed")
	// ErrUnknownKind is returned by WriteRTP for a kind other than
	// KindAudio or KindVideo.
	ErrUnknownKind = errors.New("webm: unknown track kind")
)

const (
	// MaxSyncEvery is the longest fsync interval allowed: the design
	// requires spooled bytes to be durable at least once a second.
	MaxSyncEvery = time.Second

	// Track header size used when no keyframe has arrived by the time the
	// header must be written; players use the real frame size anyway.
	defaultWidth, defaultHeight = 640, 360

	// headerWait is how much media is held back waiting for the first VP8
	// keyframe, so the track header can carry the real frame size.
	headerWait = time.Second
	// interleaveWindow bounds how long a sample waits for the other track
	// to catch up, so blocks are written in (nearly) time order.
	interleaveWindow = 500 * time.Millisecond
	// maxCluster keeps clusters short (WebM guidelines: at most 5 s) and
	// block offsets inside the int16 millisecond range.
	maxCluster = 5 * time.Second
	// sampleMaxDelay is how long the sample builders wait for a missing
	// packet before giving up on its frame.
	sampleMaxDelay = 500 * time.Millisecond

	audioTrackNumber = 1
	videoTrackNumber = 2
	opusSeekPreRoll  = 80 * time.Millisecond
)

// Options configures a Writer.
type Options struct {
	// Path is the file to create. It must not exist; its directory must.
	Path string
	// SyncEvery is the fsync interval: 0 means MaxSyncEvery, and longer
	// intervals are capped at MaxSyncEvery.
	SyncEvery time.Duration
	// Now returns the arrival time of packets; nil means time.Now.
	Now func() time.Time
	// OnKeyframeSynced, if set, is called once, after the first fsync that
	// covers the first VP8 keyframe written. It runs on the Writer's sync
	// goroutine (or in Close), so it must return quickly and must not call
	// Close.
	OnKeyframeSynced func()
	// Logger receives diagnostics; nil means slog.Default().
	Logger *slog.Logger
}

// Writer writes Opus and VP8 RTP packets of one participant into a WebM
// file. Its methods are safe for concurrent use: audio and video usually
// arrive on different goroutines.
type Writer struct {
	f                *os.File
	path             string
	now              func() time.Time
	log              *slog.Logger
	onKeyframeSynced func()

	mu            sync.Mutex // guards the fields below, and writes to f
	closed        bool
	err           error // first write error; the file is unusable after it
	epoch         time.Time
	started       bool
	audio, video  *track
	headerWritten bool
	width, height int
	clusterOpen   bool
	clusterStart  int64 // ms
	cues          []webm.CuePoint
	segmentStart  int64 // file offset of the Segment's data
	durationPos   int64 // file offset of the Void that becomes Duration
	buf           bytes.Buffer

	written     atomic.Int64 // bytes written to f
	headerSize  atomic.Int64 // bytes Close may rewrite, from offset 0
	synced      atomic.Int64 // bytes known durable
	keyframeEnd atomic.Int64 // file offset just past the first keyframe; 0 if none
	mediaEnd    atomic.Int64 // time.Duration of media written

	syncMu   sync.Mutex // serialises fsyncs; guards notified
	notified bool
	stop     chan struct{}
	done     chan struct{}
}

// track is the per-kind state: sample assembly and timeline mapping.
type track struct {
	number    uint64
	clockRate int64
	sb        *samplebuilder.SampleBuilder

	started       bool
	offset        time.Duration // first arrival, relative to the file's epoch
	maxSeq        uint16        // highest sequence number pushed
	maxTS         uint32        // RTP timestamp of that packet
	frameTicks    uint32        // last sample duration in RTP ticks
	lastRaw       uint32        // RTP timestamp of the last accepted sample
	lastExt       int64         // ticks since the first packet, for lastRaw
	accepted      bool          // a sample has been accepted
	keyframe      bool          // video: a keyframe has been seen
	droppedFrames int           // video: frames dropped before the first keyframe

	frontier time.Duration // time of the newest sample seen
	queue    []frame       // samples waiting to be interleaved
	lastMs   int64         // time of the last block written, ms
	written  bool
}

type frame struct {
	t    time.Duration
	key  bool
	data []byte
}

// Create creates the file at o.Path and starts the background fsync loop.
// The file is created with O_EXCL and mode 0600, and its directory entry is
// made durable before Create returns.
func Create(o Options) (*Writer, error) {
	if o.Path == "" {
		return nil, errors.New("webm: no path")
	}
	every := o.SyncEvery
	if every <= 0 || every > MaxSyncEvery {
		every = MaxSyncEvery
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	f, err := os.OpenFile(o.Path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create recording: %w", err)
	}
	if err := syncDir(filepath.Dir(o.Path)); err != nil {
		_ = f.Close()
		_ = os.Remove(o.Path)
		return nil, fmt.Errorf("create recording %s: %w", o.Path, err)
	}
	w := &Writer{
		f:                f,
		path:             o.Path,
		now:              o.Now,
		log:              o.Logger.With(slog.String("file", filepath.Base(o.Path))),
		onKeyframeSynced: o.OnKeyframeSynced,
		audio:            newTrack(audioTrackNumber, 48000, 960, 64, &codecs.OpusPacket{}),
		// A keyframe may span many packets: maxLate must exceed that; the
		// time limit bounds the wait after a loss instead.
		video: newTrack(videoTrackNumber, 90000, 3000, 512, &codecs.VP8Packet{}),
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
	}
	go w.syncLoop(every)
	return w, nil
}

// newTrack returns a track whose frames are frameTicks long until the
// sample builder measures them.
func newTrack(number uint64, clockRate, frameTicks uint32, maxLate uint16, d rtp.Depacketizer) *track {
	return &track{
		number:     number,
		clockRate:  int64(clockRate),
		frameTicks: frameTicks,
		sb: samplebuilder.New(maxLate, d, clockRate,
			samplebuilder.WithMaxTimeDelay(sampleMaxDelay)),
	}
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// WriteRTP adds one RTP packet of the given kind. Packets may arrive out of
// order or duplicated; frames are written once complete. The packet is
// copied, so the caller may reuse it.
func (w *Writer) WriteRTP(kind string, pkt *rtp.Packet) error {
	if pkt == nil {
		return errors.New("webm: nil packet")
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return ErrClosed
	}
	if w.err != nil {
		return w.err
	}
	var tr *track
	switch kind {
	case KindAudio:
		tr = w.audio
	case KindVideo:
		tr = w.video
	default:
		return fmt.Errorf("%w %q", ErrUnknownKind, kind)
	}

	if !tr.started {
		now := w.now()
		if !w.started {
			w.started, w.epoch = true, now
		}
		tr.started = true
		tr.offset = now.Sub(w.epoch)
		tr.maxSeq, tr.maxTS = pkt.SequenceNumber, pkt.Timestamp
		tr.lastRaw = pkt.Timestamp
	} else if int16(pkt.SequenceNumber-tr.maxSeq) > 0 {
		tr.maxSeq, tr.maxTS = pkt.SequenceNumber, pkt.Timestamp
	}

	tr.sb.Push(pkt.Clone())
	w.popSamples(tr)
	return w.drain(false)
}

func (w *Writer) popSamples(tr *track) {
	for s := tr.sb.Pop(); s != nil; s = tr.sb.Pop() {
		w.accept(tr, s)
	}
}

// accept places a sample assembled by the sample builder on the file's
// timeline and queues it for writing.
func (w *Writer) accept(tr *track, s *media.Sample) {
	ext := tr.lastExt + int64(int32(s.PacketTimestamp-tr.lastRaw))
	if tr.accepted && ext <= tr.lastExt {
		return // a duplicate or a straggler of a frame already written
	}
	tr.accepted, tr.lastRaw, tr.lastExt = true, s.PacketTimestamp, ext
	if ticks := s.Duration * time.Duration(tr.clockRate) / time.Second; ticks > 0 && ticks < time.Duration(tr.clockRate) {
		tr.frameTicks = uint32(ticks)
	}

	t := tr.offset + ticksToDuration(ext, tr.clockRate)
	if t < 0 {
		t = 0
	}
	if t > tr.frontier {
		tr.frontier = t
	}

	key := true // every Opus frame stands alone
	if tr == w.video {
		key = vp8Keyframe(s.Data)
		if !tr.keyframe {
			if !key {
				tr.droppedFrames++
				return
			}
			tr.keyframe = true
			if wd, ht, ok := vp8Size(s.Data); ok && !w.headerWritten {
				w.width, w.height = wd, ht
			}
			w.log.Debug("first video keyframe",
				slog.Duration("at", t), slog.Int("dropped_frames", tr.droppedFrames))
		}
	}
	tr.queue = append(tr.queue, frame{t: t, key: key, data: s.Data})
}

func ticksToDuration(ticks, rate int64) time.Duration {
	return time.Duration(ticks/rate)*time.Second + time.Duration(ticks%rate)*time.Second/time.Duration(rate)
}

// drain writes queued samples in time order. Unless force is set, a sample
// waits while the other track may still produce an earlier one, and nothing
// is written until the track header can be.
func (w *Writer) drain(force bool) error {
	for {
		a, v := w.audio, w.video
		var tr, other *track
		switch {
		case len(a.queue) == 0 && len(v.queue) == 0:
			if force && !w.headerWritten {
				return w.writeHeader()
			}
			return nil
		case len(v.queue) == 0 || (len(a.queue) > 0 && a.queue[0].t <= v.queue[0].t):
			tr, other = a, v
		default:
			tr, other = v, a
		}
		f := tr.queue[0]
		if !force {
			if !w.headerWritten && w.width == 0 && max(a.frontier, v.frontier)-f.t < headerWait {
				return nil
			}
			if other.started && len(other.queue) == 0 && f.t > other.frontier &&
				tr.frontier-f.t < interleaveWindow {
				return nil
			}
		}
		if !w.headerWritten {
			if err := w.writeHeader(); err != nil {
				return err
			}
		}
		tr.queue[0] = frame{}
		tr.queue = tr.queue[1:]
		if err := w.writeBlock(tr, f); err != nil {
			return err
		}
	}
}

// info is the Segment Info, ending in a Void that Close overwrites with
// the Duration element of the same size (11 bytes).
type info struct {
	TimecodeScale uint64    `ebml:"TimecodeScale"`
	MuxingApp     string    `ebml:"MuxingApp"`
	WritingApp    string    `ebml:"WritingApp"`
	DateUTC       time.Time `ebml:"DateUTC,omitempty"`
	Void          []byte    `ebml:"Void"`
}

// writeHeader writes the EBML header and the head of a Segment of unknown
// size: a Void reserved for the SeekHead that Close writes, Info and Tracks.
// Clusters follow one by one.
func (w *Writer) writeHeader() error {
	width, height := w.width, w.height
	if width == 0 {
		width, height = defaultWidth, defaultHeight
	}
	ebmlHead := struct {
		EBML webm.EBMLHeader `ebml:"EBML"`
	}{*webm.DefaultEBMLHeader}
	segInfo := struct {
		Info info `ebml:"Info"`
	}{info{
		TimecodeScale: uint64(time.Millisecond),
		MuxingApp:     "chaperone",
		WritingApp:    "chaperone",
		DateUTC:       w.epoch,
		Void:          make([]byte, durationSize-2),
	}}
	tracks := struct {
		Tracks webm.Tracks `ebml:"Tracks"`
	}{webm.Tracks{TrackEntry: []webm.TrackEntry{
		{
			Name:         "Audio",
			TrackNumber:  audioTrackNumber,
			TrackUID:     rand.Uint64(),
			CodecID:      "A_OPUS",
			CodecPrivate: opusHead(),
			TrackType:    2,
			SeekPreRoll:  uint64(opusSeekPreRoll),
			Audio:        &webm.Audio{SamplingFrequency: 48000, Channels: 2},
		},
		{
			Name:        "Video",
			TrackNumber: videoTrackNumber,
			TrackUID:    rand.Uint64(),
			CodecID:     "V_VP8",
			TrackType:   1,
			Video:       &webm.Video{PixelWidth: uint64(width), PixelHeight: uint64(height)},
		},
	}}}

	if err := ebml.Marshal(&ebmlHead, &w.buf); err != nil {
		return w.fail(fmt.Errorf("webm: marshal header: %w", err))
	}
	w.buf.Write(segmentUnknownSize)
	w.segmentStart = int64(w.buf.Len())
	w.buf.Write(void(seekHeadReserve))
	if err := ebml.Marshal(&segInfo, &w.buf); err != nil {
		return w.fail(fmt.Errorf("webm: marshal info: %w", err))
	}
	w.durationPos = int64(w.buf.Len() - durationSize)
	if err := ebml.Marshal(&tracks, &w.buf); err != nil {
		return w.fail(fmt.Errorf("webm: marshal tracks: %w", err))
	}
	if !bytes.Equal(w.buf.Bytes()[w.durationPos:][:2], void(durationSize)[:2]) {
		return w.fail(errors.New("webm: duration placeholder misplaced"))
	}
	w.headerSize.Store(int64(w.buf.Len()))
	w.headerWritten = true
	return w.emit()
}

const (
	// seekHeadReserve is the room left at the start of the Segment for
	// a SeekHead pointing at the Cues.
	seekHeadReserve = 64
	// durationSize is the size of a Duration element holding a float64.
	durationSize = 11
)

// segmentUnknownSize is a Segment element ID with an unknown size.
var segmentUnknownSize = []byte{0x18, 0x53, 0x80, 0x67, 0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// void returns a Void element of n bytes in total, 2 <= n <= 128.
func void(n int) []byte {
	b := make([]byte, n)
	b[0], b[1] = 0xec, 0x80|byte(n-2)
	return b
}

// opusHead is the Opus identification header (RFC 7845 section 5.1) that
// Matroska carries as CodecPrivate: WebRTC Opus is signalled as 2 channels,
// no pre-skip, 48 kHz, mapping family 0.
func opusHead() []byte {
	return []byte{
		'O', 'p', 'u', 's', 'H', 'e', 'a', 'd',
		1,    // version
		2,    // channels
		0, 0, // pre-skip
		0x80, 0xbb, 0, 0, // input sample rate 48000, little-endian
		0, 0, // output gain
		0, // channel mapping family
	}
}

type clusterHead struct {
	Cluster struct {
		Timecode uint64 `ebml:"Timecode"`
	} `ebml:"Cluster,size=unknown"`
}

type simpleBlock struct {
	Block ebml.Block `ebml:"SimpleBlock"`
}

// writeBlock writes one frame as a SimpleBlock, opening a new Cluster at a
// video keyframe or when the current one is full.
func (w *Writer) writeBlock(tr *track, f frame) error {
	ms := int64((f.t + time.Millisecond/2) / time.Millisecond)
	if tr.written && ms < tr.lastMs {
		ms = tr.lastMs // keep each track's timestamps monotonic
	}
	rel := ms - w.clusterStart
	if !w.clusterOpen || (tr == w.video && f.key && rel > 0) ||
		rel >= maxCluster.Milliseconds() || rel < -0x8000 {
		w.cues = append(w.cues, webm.CuePoint{
			CueTime: uint64(max(ms, 0)),
			CueTrackPositions: []webm.CueTrackPosition{{
				CueTrack:           tr.number,
				CueClusterPosition: uint64(w.written.Load() + int64(w.buf.Len()) - w.segmentStart),
			}},
		})
		var c clusterHead
		c.Cluster.Timecode = uint64(max(ms, 0))
		if err := ebml.Marshal(&c, &w.buf); err != nil {
			return w.fail(fmt.Errorf("webm: marshal cluster: %w", err))
		}
		w.clusterOpen, w.clusterStart, rel = true, ms, 0
	}
	b := simpleBlock{Block: ebml.Block{
		TrackNumber: tr.number,
		Timecode:    int16(rel),
		Keyframe:    f.key,
		Data:        [][]byte{f.data},
	}}
	if err := ebml.Marshal(&b, &w.buf); err != nil {
		return w.fail(fmt.Errorf("webm: marshal block: %w", err))
	}
	if err := w.emit(); err != nil {
		return err
	}
	tr.written, tr.lastMs = true, ms
	if tr == w.video && f.key && w.keyframeEnd.Load() == 0 {
		w.keyframeEnd.Store(w.written.Load())
	}
	end := time.Duration(ms)*time.Millisecond + ticksToDuration(int64(tr.frameTicks), tr.clockRate)
	if int64(end) > w.mediaEnd.Load() {
		w.mediaEnd.Store(int64(end))
	}
	return nil
}

// emit writes the buffered bytes to the file.
func (w *Writer) emit() error {
	n, err := w.f.Write(w.buf.Bytes())
	w.written.Add(int64(n))
	w.buf.Reset()
	if err != nil {
		return w.fail(fmt.Errorf("write recording %s: %w", w.path, err))
	}
	return nil
}

func (w *Writer) fail(err error) error {
	if w.err == nil {
		w.err = err
		w.log.Error("recording write failed", slog.Any("err", err))
	}
	return w.err
}

func (w *Writer) syncLoop(every time.Duration) {
	defer close(w.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-t.C:
			if err := w.sync(); err != nil {
				w.log.Error("recording fsync failed", slog.Any("err", err))
			}
		}
	}
}

// sync fsyncs the file if anything was written since the last fsync, and
// fires OnKeyframeSynced once the first keyframe is durable.
func (w *Writer) sync() error {
	w.syncMu.Lock()
	defer w.syncMu.Unlock()
	n := w.written.Load() // everything up to n was written before Sync starts
	if n > w.synced.Load() {
		if err := w.f.Sync(); err != nil {
			return fmt.Errorf("fsync recording %s: %w", w.path, err)
		}
		w.synced.Store(n)
	}
	if kf := w.keyframeEnd.Load(); !w.notified && kf > 0 && kf <= n {
		w.notified = true
		w.log.Info("recording has a durable keyframe")
		if w.onKeyframeSynced != nil {
			w.onKeyframeSynced()
		}
	}
	return nil
}

// Close writes the samples still held back, fsyncs and closes the file.
// It appends Cues and fills in the Duration and SeekHead reserved in the
// header (see HeaderSize), so the finished file is seekable.
// Calling Close again returns nil.
func (w *Writer) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.closed = true
	var errs []error
	if w.err != nil {
		errs = append(errs, w.err)
	} else {
		for _, tr := range []*track{w.audio, w.video} {
			w.flushTrack(tr)
		}
		if err := w.drain(true); err != nil {
			errs = append(errs, err)
		} else if err := w.finish(); err != nil {
			errs = append(errs, err)
		}
	}
	w.mu.Unlock()

	close(w.stop)
	<-w.done
	if err := w.sync(); err != nil {
		errs = append(errs, err)
	}
	if err := w.f.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close recording %s: %w", w.path, err))
	}
	return errors.Join(errs...)
}

// finish makes the complete file seekable: it appends Cues, then turns the
// Voids reserved in the header into a SeekHead pointing at them and the
// Segment's Duration. Were these last writes lost, the file would still be
// a valid streaming WebM, only without duration and index.
func (w *Writer) finish() error {
	if len(w.cues) > 0 {
		cuesPos := w.written.Load()
		cues := struct {
			Cues webm.Cues `ebml:"Cues"`
		}{webm.Cues{CuePoint: w.cues}}
		if err := ebml.Marshal(&cues, &w.buf); err != nil {
			return w.fail(fmt.Errorf("webm: marshal cues: %w", err))
		}
		if err := w.emit(); err != nil {
			return err
		}
		seekHead := struct {
			SeekHead webm.SeekHead `ebml:"SeekHead"`
		}{webm.SeekHead{Seek: []webm.Seek{{
			SeekID:       []byte{0x1c, 0x53, 0xbb, 0x6b}, // Cues
			SeekPosition: uint64(cuesPos - w.segmentStart),
		}}}}
		var b bytes.Buffer
		if err := ebml.Marshal(&seekHead, &b); err != nil {
			return w.fail(fmt.Errorf("webm: marshal seek head: %w", err))
		}
		if pad := seekHeadReserve - b.Len(); pad >= 2 {
			b.Write(void(pad))
			if err := w.patch(b.Bytes(), w.segmentStart); err != nil {
				return err
			}
		}
	}
	if d := w.Duration(); d > 0 {
		b := make([]byte, durationSize)
		copy(b, []byte{0x44, 0x89, 0x88}) // Duration, 8-byte float
		binary.BigEndian.PutUint64(b[3:], math.Float64bits(float64(d)/float64(time.Millisecond)))
		if err := w.patch(b, w.durationPos); err != nil {
			return err
		}
	}
	return nil
}

func (w *Writer) patch(b []byte, off int64) error {
	if _, err := w.f.WriteAt(b, off); err != nil {
		return w.fail(fmt.Errorf("finish recording %s: %w", w.path, err))
	}
	return nil
}

// flushTrack releases the last complete frame, which the sample builder
// holds until a later packet shows the frame has ended, by pushing an empty
// packet just after the newest one.
func (w *Writer) flushTrack(tr *track) {
	if !tr.started {
		return
	}
	tr.sb.Push(&rtp.Packet{Header: rtp.Header{
		Version:        2,
		SequenceNumber: tr.maxSeq + 1,
		Timestamp:      tr.maxTS + tr.frameTicks,
	}})
	w.popSamples(tr)
}

// HeaderSize returns the length of the file's header. Close rewrites
// reserved bytes inside it (the Duration and a SeekHead for the Cues it
// appends); every other byte, once written, never changes. An uploader that
// sends the file while it grows should send this prefix again after Close;
// if it does not, the file still plays but has no duration or seek index.
func (w *Writer) HeaderSize() int64 { return w.headerSize.Load() }

// Start returns the arrival time of the first packet, which is time zero
// of the file, or the zero Time if no packet has arrived. A session
// manifest uses it to line participants' files up.
func (w *Writer) Start() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.epoch
}

// Bytes returns the number of bytes written to the file so far.
func (w *Writer) Bytes() int64 { return w.written.Load() }

// SyncedBytes returns the number of bytes known to be durable: the file up
// to this offset survives a crash and will not change.
func (w *Writer) SyncedBytes() int64 { return w.synced.Load() }

// Duration returns the media time written so far, from the start of the file
// to the end of the latest frame.
func (w *Writer) Duration() time.Duration { return time.Duration(w.mediaEnd.Load()) }
