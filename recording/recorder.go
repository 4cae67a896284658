package recording

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"

	"github.com/chaperone-edu/chaperone/recording/webm"
)

// State is what a session's recording reports to the rules engine.
type State string

// Recording states, as package lobby names them.
const (
	StateConfirmed State = "confirmed" // a keyframe is durable on disk and the upload has begun
	StateFailed    State = "failed"    // recording cannot be guaranteed
)

// ErrSpool means the spool directory cannot be written.
var ErrSpool = errors.New("recording: spool directory not writable")

// Config configures a Recorder.
type Config struct {
	Bucket   *Bucket
	SpoolDir string
	Now      func() time.Time
	Logger   *slog.Logger
	// Retry is the wait between upload attempts while S3 is unreachable.
	Retry time.Duration
	// QueueLen bounds the packets waiting to be written; a recorder that
	// falls further behind fails (it never slows forwarding).
	QueueLen int
}

// Recorder records live sessions: WebM files spooled to disk, streamed to S3.
type Recorder struct {
	cfg Config
	log *slog.Logger
}

// New checks the spool directory and returns a Recorder.
func New(cfg Config) (*Recorder, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Retry == 0 {
		cfg.Retry = 2 * time.Second
	}
	if cfg.QueueLen == 0 {
		cfg.QueueLen = 4096
	}
	if cfg.Bucket == nil {
		return nil, errors.New("recording: no bucket")
	}
	r := &Recorder{cfg: cfg, log: cfg.Logger}
	if err := r.checkSpool(); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *Recorder) checkSpool() error {
	if err := os.MkdirAll(r.cfg.SpoolDir, 0o700); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrSpool, r.cfg.SpoolDir, err)
	}
	f, err := os.CreateTemp(r.cfg.SpoolDir, ".probe-*")
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrSpool, r.cfg.SpoolDir, err)
	}
	name := f.Name()
	f.Close()
	return os.Remove(name)
}

// ObjectKey is the S3 key of a participant's recording in a session.
func ObjectKey(sessionID, participantID string) string {
	return "sessions/" + sessionID + "/" + participantID + ".webm"
}

// ManifestKey is the S3 key of a session's manifest.
func ManifestKey(sessionID string) string { return "sessions/" + sessionID + "/manifest.json" }

// TranscriptKey is the S3 key of a session's chat transcript (CSV).
func TranscriptKey(sessionID string) string { return "sessions/" + sessionID + "/chat.csv" }

// PrefixOf returns the session prefix of an object key ("sessions/<id>/"),
// so the sweeper keeps a whole session while any of it is on hold.
func PrefixOf(key string) string {
	parts := strings.SplitN(key, "/", 3)
	if len(parts) < 3 {
		return key
	}
	return parts[0] + "/" + parts[1] + "/"
}

// SessionPrefix is the S3 prefix of everything recorded for a session.
func SessionPrefix(sessionID string) string { return "sessions/" + sessionID + "/" }

// sidecar describes a spool file so an upload can resume after a restart.
type sidecar struct {
	Key         string            `json:"key"`
	RetainUntil time.Time         `json:"retain_until"`
	Meta        map[string]string `json:"meta"`
}

// Participant is who a publisher is, for the manifest.
type Participant struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Role string `json:"role"`
}

// Session is one session's recording. It implements sfu.Sink.
type Session struct {
	rec         *Recorder
	id          string
	start       time.Time
	retainUntil time.Time
	who         func(id string) Participant
	onState     func(State, string)
	dir         string

	queue  chan packet
	stop   chan struct{} // closed by Close: the writer drains the queue and exits
	wrote  chan struct{} // closed when the writer has exited
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // the writer loop and the uploads
	closed atomic.Bool
	failed atomic.Bool

	mu        sync.Mutex
	files     map[string]*file
	confirmed bool
}

type packet struct {
	publisher, kind string
	raw             []byte
}

type file struct {
	participant Participant
	path        string
	key         string
	w           *webm.Writer
	firstPacket time.Time
	keyframe    atomic.Bool
	uploading   atomic.Bool
	finished    atomic.Bool     // the writer is closed: the file is final
	uploaded    chan UploadInfo // receives once the final upload succeeded
	info        UploadInfo
	spoolSize   int64
}

// Start begins recording a session: it checks the spool and that S3
// answers, then accepts packets. onState is called with confirmed once a
// keyframe is durable and its upload has begun, or with failed (and why).
func (r *Recorder) Start(ctx context.Context, sessionID string, start time.Time, who func(id string) Participant, onState func(State, string)) (*Session, error) {
	if err := r.checkSpool(); err != nil {
		return nil, err
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := r.cfg.Bucket.Ping(pctx); err != nil {
		return nil, fmt.Errorf("recording storage unreachable: %w", err)
	}
	dir := filepath.Join(r.cfg.SpoolDir, sessionID)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSpool, err)
	}
	sctx, scancel := context.WithCancel(context.Background())
	s := &Session{rec: r, id: sessionID, start: start, retainUntil: r.cfg.Bucket.RetainUntil(start), who: who, onState: onState, dir: dir,
		queue: make(chan packet, r.cfg.QueueLen), stop: make(chan struct{}), wrote: make(chan struct{}), ctx: sctx, cancel: scancel, files: map[string]*file{}}
	go s.writeLoop()
	return s, nil
}

// Packet implements sfu.Sink: it copies the packet into the queue, never
// blocking; a full queue fails the recording. A screen share's packets
// (kind "screen" and "screen_audio") go to a file of their own, named by
// ScreenFileID.
func (s *Session) Packet(publisher, kind string, raw []byte) {
	if s.closed.Load() || s.failed.Load() {
		return
	}
	p := packet{publisher: publisher, kind: kind, raw: append([]byte(nil), raw...)}
	select {
	case s.queue <- p:
	default:
		s.fail("the recorder fell behind")
	}
}

func (s *Session) fail(why string) {
	if s.failed.CompareAndSwap(false, true) {
		s.rec.log.Error("recording failed", slog.String("session", s.id), slog.String("reason", why))
		s.onState(StateFailed, why)
	}
}

func (s *Session) writeLoop() {
	defer close(s.wrote)
	for {
		select {
		case p := <-s.queue:
			s.write(p)
		case <-s.stop:
			for {
				select {
				case p := <-s.queue:
					s.write(p)
				default:
					return
				}
			}
		}
	}
}

func (s *Session) write(p packet) {
	if s.failed.Load() {
		return
	}
	var pkt rtp.Packet
	if err := pkt.Unmarshal(p.raw); err != nil {
		return
	}
	kind, screen := p.kind, false
	switch p.kind {
	case "screen":
		kind, screen = "video", true
	case "screen_audio":
		kind, screen = "audio", true
	}
	f, err := s.fileFor(p.publisher, screen)
	if err != nil {
		s.fail("cannot write to the spool: " + err.Error())
		return
	}
	if err := f.w.WriteRTP(kind, &pkt); err != nil {
		s.fail("cannot write to the spool: " + err.Error())
	}
}

// ScreenFileID is the file ID (in place of a participant ID) of a
// participant's screen share: recorded to its own file, like a camera.
func ScreenFileID(participantID string) string { return participantID + "-screen" }

// fileFor returns the spool file of the participant's camera and
// microphone, or of their screen share, creating it and starting its upload.
func (s *Session) fileFor(publisher string, screen bool) (*file, error) {
	pid := publisher
	if screen {
		pid = ScreenFileID(publisher)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if f, ok := s.files[pid]; ok {
		return f, nil
	}
	who := s.who(publisher)
	who.ID = pid
	if screen {
		who.Name = strings.TrimSpace(who.Name + " — screen")
	}
	f := &file{participant: who, path: filepath.Join(s.dir, pid+".webm"), key: ObjectKey(s.id, pid),
		firstPacket: s.rec.cfg.Now(), uploaded: make(chan UploadInfo, 1)}
	meta := map[string]string{"session": s.id, "participant": pid}
	sc, _ := json.Marshal(sidecar{Key: f.key, RetainUntil: s.retainUntil, Meta: meta})
	if err := os.WriteFile(f.path+".json", sc, 0o600); err != nil {
		return nil, err
	}
	w, err := webm.Create(webm.Options{Path: f.path, Now: s.rec.cfg.Now, Logger: s.rec.log,
		OnKeyframeSynced: func() { f.keyframe.Store(true); s.maybeConfirm() }})
	if err != nil {
		return nil, err
	}
	f.w = w
	s.files[pid] = f
	s.wg.Add(1)
	go s.upload(f, meta)
	return f, nil
}

func (s *Session) maybeConfirm() {
	s.mu.Lock()
	ok := false
	for _, f := range s.files {
		if f.keyframe.Load() && f.uploading.Load() {
			ok = true
		}
	}
	first := ok && !s.confirmed && !s.failed.Load()
	if first {
		s.confirmed = true
	}
	s.mu.Unlock()
	if first {
		s.onState(StateConfirmed, "")
	}
}

// spoolSource lets the uploader read a spool file up to what is durable.
type spoolSource struct {
	f    *os.File
	w    *webm.Writer
	done func() bool
}

func (src *spoolSource) ReadAt(p []byte, off int64) (int, error) { return src.f.ReadAt(p, off) }
func (src *spoolSource) Synced() int64                           { return src.w.SyncedBytes() }
func (src *spoolSource) Done() bool                              { return src.done() }

// upload streams the file to S3 while it grows, retrying from the start
// of the spool file whenever S3 fails, until it succeeds or the recorder
// is shut down.
func (s *Session) upload(f *file, meta map[string]string) {
	defer s.wg.Done()
	rf, err := os.Open(f.path)
	if err != nil {
		s.fail("cannot read the spool: " + err.Error())
		return
	}
	defer rf.Close()
	src := &spoolSource{f: rf, w: f.w, done: f.finished.Load}
	for attempt := 1; ; attempt++ {
		info, err := s.rec.cfg.Bucket.Upload(s.ctx, f.key, src, s.retainUntil, meta, func() { f.uploading.Store(true); s.maybeConfirm() })
		if err == nil {
			// The writer rewrote the file's first bytes at Close (duration
			// and seek index), after the stream had sent them: store the
			// final file as the object's newest version. The streamed
			// version stays, locked, as a record of what was spooled live.
			info, err = s.rec.cfg.Bucket.UploadFile(s.ctx, f.key, f.path, s.retainUntil, meta)
		}
		if err == nil {
			f.info = info
			f.uploaded <- info
			return
		}
		if s.ctx.Err() != nil {
			return
		}
		s.rec.log.Warn("recording upload failed; retrying from the spool", slog.String("key", f.key), slog.Int("attempt", attempt), slog.Any("err", err))
		select {
		case <-time.After(s.rec.cfg.Retry):
		case <-s.ctx.Done():
			return
		}
	}
}

// Manifest describes a session's recording for the player and the DSL.
type Manifest struct {
	Session      string          `json:"session"`
	Title        string          `json:"title"`
	Start        time.Time       `json:"start"`
	End          time.Time       `json:"end"`
	RetainUntil  time.Time       `json:"retain_until"`
	Participants []ManifestEntry `json:"participants"`
	Events       []ManifestEvent `json:"events"`
}

// ManifestEntry is one participant's file.
type ManifestEntry struct {
	Participant
	Key         string    `json:"key"`
	Size        int64     `json:"size"`
	SpoolSize   int64     `json:"spool_size"`           // the local file's size when it was closed: equals Size when nothing was lost
	StartOffset float64   `json:"start_offset_seconds"` // from the manifest's Start
	FirstPacket time.Time `json:"first_packet"`
}

// ManifestEvent is a gate or recording event.
type ManifestEvent struct {
	Time   time.Time `json:"time"`
	Action string    `json:"action"`
	Detail string    `json:"detail,omitempty"`
}

// Close stops recording, finishes every upload (waiting up to ctx) and
// writes the manifest. Spool files are removed once uploaded; those not
// uploaded stay for Resume.
func (s *Session) Close(ctx context.Context, title string, events []ManifestEvent) (Manifest, error) {
	if !s.closed.CompareAndSwap(false, true) {
		return Manifest{}, errors.New("recording: already closed")
	}
	close(s.stop)
	<-s.wrote // the queue is drained
	s.mu.Lock()
	files := make([]*file, 0, len(s.files))
	for _, f := range s.files {
		files = append(files, f)
	}
	s.mu.Unlock()
	var errs []error
	for _, f := range files {
		if err := f.w.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close %s: %w", f.path, err))
		}
		if fi, err := os.Stat(f.path); err == nil {
			f.spoolSize = fi.Size()
		}
		f.finished.Store(true)
	}
	m := Manifest{Session: s.id, Title: title, Start: s.start, End: s.rec.cfg.Now(), RetainUntil: s.retainUntil, Events: events}
	for _, f := range files {
		select {
		case info := <-f.uploaded:
			m.Participants = append(m.Participants, ManifestEntry{Participant: f.participant, Key: f.key, Size: info.Size, SpoolSize: f.spoolSize,
				StartOffset: f.firstPacket.Sub(s.start).Seconds(), FirstPacket: f.firstPacket})
			os.Remove(f.path)
			os.Remove(f.path + ".json")
		case <-ctx.Done():
			errs = append(errs, fmt.Errorf("upload of %s not finished: it stays in the spool and resumes: %w", f.key, ctx.Err()))
		}
	}
	s.cancel()
	s.wg.Wait()
	sort.Slice(m.Participants, func(i, j int) bool { return m.Participants[i].StartOffset < m.Participants[j].StartOffset })
	if err := s.rec.cfg.Bucket.PutJSON(ctx, ManifestKey(s.id), m, s.retainUntil); err != nil {
		errs = append(errs, fmt.Errorf("write manifest: %w", err))
	}
	os.Remove(s.dir) // only if empty
	return m, errors.Join(errs...)
}

// Resume uploads every spool file left by an earlier run (a crash or a
// restart) and removes each once it is safely in S3.
func (r *Recorder) Resume(ctx context.Context) (int, error) {
	var errs []error
	n := 0
	matches, _ := filepath.Glob(filepath.Join(r.cfg.SpoolDir, "*", "*.webm"))
	for _, path := range matches {
		b, err := os.ReadFile(path + ".json")
		if err != nil {
			errs = append(errs, fmt.Errorf("resume %s: no sidecar: %w", path, err))
			continue
		}
		var sc sidecar
		if err := json.Unmarshal(b, &sc); err != nil || !strings.HasPrefix(sc.Key, "sessions/") {
			errs = append(errs, fmt.Errorf("resume %s: bad sidecar", path))
			continue
		}
		if _, err := r.cfg.Bucket.UploadFile(ctx, sc.Key, path, sc.RetainUntil, sc.Meta); err != nil {
			errs = append(errs, fmt.Errorf("resume %s: %w", sc.Key, err))
			continue
		}
		os.Remove(path)
		os.Remove(path + ".json")
		os.Remove(filepath.Dir(path))
		r.log.Info("resumed recording upload", slog.String("key", sc.Key))
		n++
	}
	return n, errors.Join(errs...)
}

// abandon stops the session as a crash would: no closing, no final
// upload; the spool files stay for Resume. (Tests use it.)
func (s *Session) abandon() {
	s.closed.Store(true)
	s.cancel()
	close(s.stop)
	<-s.wrote
	s.wg.Wait()
}
