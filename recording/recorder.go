package recording

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
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
	// NextPart takes the part number of a file's next part (a durable
	// counter: never the same number twice for a session and file, across
	// restarts). Required. If it fails, that file is not recorded and the
	// recording fails (closed).
	NextPart func(ctx context.Context, sessionID, fileID string) (int, error)
}

// Recorder records live sessions: WebM files spooled to disk, streamed to S3.
type Recorder struct {
	cfg Config
	log *slog.Logger

	mu     sync.Mutex
	active map[string]bool // spool paths a live session (or a recovery) on this gateway holds
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
	if cfg.NextPart == nil {
		return nil, errors.New("recording: no part counter")
	}
	r := &Recorder{cfg: cfg, log: cfg.Logger, active: map[string]bool{}}
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

// ObjectKey is the S3 key of a participant's recording in a session, as
// written before recordings had parts (kept for playing those).
func ObjectKey(sessionID, participantID string) string {
	return "sessions/" + sessionID + "/" + participantID + ".webm"
}

// PartKey is the S3 key of one part of a file (a participant's camera and
// microphone, or their screen) of a session: each (re)start of the
// recording is a part of its own, so no key is ever written twice.
func PartKey(sessionID, fileID string, part int) string {
	return "sessions/" + sessionID + "/" + fileID + ".part" + strconv.Itoa(part) + ".webm"
}

// PartManifestKey is the S3 key of a part's manifest (PartManifest).
func PartManifestKey(sessionID, fileID string, part int) string {
	return "sessions/" + sessionID + "/" + fileID + ".part" + strconv.Itoa(part) + ".json"
}

// ManifestKey is the S3 key of a session's manifest, as written before
// recordings had parts (each part now has its own, PartManifestKey).
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

// sidecar describes a spool file so that, after a crash, it can be
// uploaded and indexed with nothing but the spool: the part it is, whose,
// and where it goes.
type sidecar struct {
	Part
	Meta map[string]string `json:"meta"`
}

// Part is one part of a file of a session's recording: one spool file, one
// object, written once.
type Part struct {
	Session      string      `json:"session"`
	Participant  Participant `json:"participant"` // ID is the file ID: the participant's, or ScreenFileID of it
	Number       int         `json:"part"`
	Key          string      `json:"key"`
	SessionStart time.Time   `json:"session_start"` // when the session's recording started (the manifest's offsets count from it)
	FirstPacket  time.Time   `json:"first_packet"`
	RetainUntil  time.Time   `json:"retain_until"` // the object's retention (extended from the upload's completion)
	Size         int64       `json:"size,omitempty"`
	SpoolSize    int64       `json:"spool_size,omitempty"` // the spool file's size: equals Size when nothing was lost
	VersionID    string      `json:"version_id,omitempty"`
	// Recovered is set when the part was uploaded from a spool leftover
	// (a crash, or a finish that could not be indexed).
	Recovered bool `json:"recovered,omitempty"`

	path string // the spool file
}

// PartManifest is the manifest stored beside each part: who and what it is,
// for the player and the DSL.
type PartManifest struct {
	Part
	Title       string          `json:"title,omitempty"`
	StartOffset float64         `json:"start_offset_seconds"` // from SessionStart
	Events      []ManifestEvent `json:"events,omitempty"`
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
	part        int
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
	if err := r.cfg.Bucket.Ready(pctx); err != nil {
		if Misconfigured(err) {
			return nil, err
		}
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
		s.fail(spoolWhy(err))
		return
	}
	if err := f.w.WriteRTP(kind, &pkt); err != nil {
		s.fail(spoolWhy(err))
	}
}

// ErrNoPart means no part number could be taken for a new part: it is not
// recorded (a number is needed to be sure no key is written twice).
var ErrNoPart = errors.New("recording: no part number")

// spoolWhy says, for people, why a file could not be written.
func spoolWhy(err error) string {
	switch {
	case errors.Is(err, syscall.ENOSPC):
		return "the server's disk is full"
	case errors.Is(err, ErrNoPart):
		return "the database cannot be written"
	}
	return "cannot write to the spool: " + err.Error()
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
	if f, ok := s.files[pid]; ok {
		s.mu.Unlock()
		return f, nil
	}
	s.mu.Unlock()
	// Only the writer goroutine creates files: no other can race this one.
	nctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
	part, err := s.rec.cfg.NextPart(nctx, s.id, pid)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("%w for %s: %v", ErrNoPart, pid, err)
	}
	who := s.who(publisher)
	who.ID = pid
	if screen {
		who.Name = strings.TrimSpace(who.Name + " — screen")
	}
	base := pid + ".part" + strconv.Itoa(part)
	f := &file{participant: who, part: part, path: filepath.Join(s.dir, base+".webm"), key: PartKey(s.id, pid, part),
		firstPacket: s.rec.cfg.Now(), uploaded: make(chan UploadInfo, 1)}
	meta := map[string]string{"session": s.id, "participant": pid, "part": strconv.Itoa(part)}
	sc, _ := json.Marshal(sidecar{Part: Part{Session: s.id, Participant: who, Number: part, Key: f.key, SessionStart: s.start,
		FirstPacket: f.firstPacket, RetainUntil: s.retainUntil}, Meta: meta})
	s.rec.hold(f.path)
	if err := writeSynced(f.path+".json", sc); err != nil {
		s.rec.unhold(f.path)
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	w, err := webm.Create(webm.Options{Path: f.path, Now: s.rec.cfg.Now, Logger: s.rec.log,
		OnKeyframeSynced: func() { f.keyframe.Store(true); s.maybeConfirm() }})
	if err != nil {
		os.Remove(f.path + ".json")
		s.rec.unhold(f.path)
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
		if attempt > 1 && src.Done() {
			// An earlier attempt may have completed the object and lost
			// only the answer: never write the key a second time.
			if info, ok := s.rec.alreadyStored(s.ctx, f.key, f.path, s.retainUntil); ok {
				f.info = info
				f.uploaded <- info
				return
			}
		}
		info, err := s.rec.cfg.Bucket.Upload(s.ctx, f.key, src, s.retainUntil, meta, func() { f.uploading.Store(true); s.maybeConfirm() })
		if errors.Is(err, ErrRetentionNotExtended) {
			s.rec.log.Warn("recording stored, its retention counted from the lesson's start", slog.String("key", f.key), slog.Any("err", err))
			err = nil // stored: never write the key again
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
// returns the parts that are stored, in the order they started. Spool
// files stay until the caller has indexed a part and calls Release (or
// Leave, to let Recover retry); a part not uploaded by ctx is Left at once
// and its error joined into the one returned. Manifests are the caller's to
// write (PartManifest).
func (s *Session) Close(ctx context.Context) ([]Part, error) {
	if !s.closed.CompareAndSwap(false, true) {
		return nil, errors.New("recording: already closed")
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
	var parts []Part
	for _, f := range files {
		p := Part{Session: s.id, Participant: f.participant, Number: f.part, Key: f.key, SessionStart: s.start, FirstPacket: f.firstPacket,
			RetainUntil: s.retainUntil, SpoolSize: f.spoolSize, path: f.path}
		select {
		case info := <-f.uploaded:
			p.Size, p.VersionID = info.Size, info.VersionID
			if info.RetainUntil.After(p.RetainUntil) {
				p.RetainUntil = info.RetainUntil
			}
			parts = append(parts, p)
		case <-ctx.Done():
			errs = append(errs, fmt.Errorf("upload of %s not finished: it stays in the spool and resumes: %w", f.key, ctx.Err()))
		}
	}
	s.cancel()
	s.wg.Wait()
	for _, f := range files {
		if !slices.ContainsFunc(parts, func(p Part) bool { return p.path == f.path }) {
			s.rec.unhold(f.path)
		}
	}
	sort.Slice(parts, func(i, j int) bool { return parts[i].FirstPacket.Before(parts[j].FirstPacket) })
	return parts, errors.Join(errs...)
}

// Release removes a stored (and indexed) part's spool files.
func (r *Recorder) Release(p Part) {
	if p.path == "" {
		return
	}
	os.Remove(p.path)
	os.Remove(p.path + ".json")
	os.Remove(filepath.Dir(p.path)) // only if empty
	r.unhold(p.path)
}

// Leave gives a part's spool files back to Recover, which uploads (if
// needed) and returns them again: for a part that could not be indexed.
func (r *Recorder) Leave(p Part) { r.unhold(p.path) }

func (r *Recorder) hold(path string) {
	r.mu.Lock()
	r.active[path] = true
	r.mu.Unlock()
}

// claim holds path unless something on this gateway already does.
func (r *Recorder) claim(path string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.active[path] {
		return false
	}
	r.active[path] = true
	return true
}

func (r *Recorder) unhold(path string) {
	r.mu.Lock()
	delete(r.active, path)
	r.mu.Unlock()
}

// alreadyStored reports whether key already holds the complete spool file
// at path, and makes sure its retention runs from its upload.
func (r *Recorder) alreadyStored(ctx context.Context, key, path string, retainUntil time.Time) (UploadInfo, bool) {
	fi, err := os.Stat(path)
	if err != nil {
		return UploadInfo{}, false
	}
	st, err := r.cfg.Bucket.Stat(ctx, key)
	if err != nil || st.Size != fi.Size() {
		return UploadInfo{}, false
	}
	info := UploadInfo{Key: key, VersionID: st.VersionID, Size: st.Size, RetainUntil: retainUntil}
	if err := r.cfg.Bucket.extendRetention(ctx, &info); err != nil {
		// Stored all the same: it must not be written again.
		r.log.Warn("recording stored, its retention counted from the lesson's start", slog.String("key", key), slog.Any("err", err))
	}
	return info, true
}

// Recover uploads every spool file that no live session on this gateway
// holds (left by a crash, a restart, or a finish that could not be
// indexed) and returns its part, Recovered, for the caller to index and
// then Release (or Leave). A file already stored whole is not uploaded
// again: no key is written twice. Files it cannot upload stay for the next
// call; their errors are joined.
func (r *Recorder) Recover(ctx context.Context) ([]Part, error) {
	var errs []error
	var out []Part
	matches, _ := filepath.Glob(filepath.Join(r.cfg.SpoolDir, "*", "*.webm"))
	for _, path := range matches {
		if !r.claim(path) {
			continue // being written, or being indexed
		}
		p, err := r.recoverOne(ctx, path)
		if err != nil {
			r.unhold(path)
			errs = append(errs, err)
			continue
		}
		out = append(out, p)
	}
	return out, errors.Join(errs...)
}

func (r *Recorder) recoverOne(ctx context.Context, path string) (Part, error) {
	b, err := os.ReadFile(path + ".json")
	if err != nil {
		return Part{}, fmt.Errorf("recover %s: no sidecar: %w", path, err)
	}
	var sc sidecar
	if err := json.Unmarshal(b, &sc); err != nil || !strings.HasPrefix(sc.Key, "sessions/") || sc.Session == "" {
		return Part{}, fmt.Errorf("recover %s: bad sidecar", path)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return Part{}, fmt.Errorf("recover %s: %w", path, err)
	}
	p := sc.Part
	p.path, p.SpoolSize, p.Recovered = path, fi.Size(), true
	info, ok := r.alreadyStored(ctx, p.Key, path, p.RetainUntil)
	if !ok {
		info, err = r.cfg.Bucket.UploadFile(ctx, p.Key, path, p.RetainUntil, sc.Meta)
		if errors.Is(err, ErrRetentionNotExtended) {
			r.log.Warn("recording stored, its retention counted from the lesson's start", slog.String("key", p.Key), slog.Any("err", err))
			err = nil // stored: never write the key again
		}
		if err != nil {
			return Part{}, fmt.Errorf("recover %s: %w", p.Key, err)
		}
		r.log.Info("uploaded a recording part left in the spool", slog.String("key", p.Key))
	}
	p.Size, p.VersionID = info.Size, info.VersionID
	if info.RetainUntil.After(p.RetainUntil) {
		p.RetainUntil = info.RetainUntil
	}
	return p, nil
}

// writeSynced writes a small file and fsyncs it, so a crash leaves it whole.
func writeSynced(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// abandon stops the session as a crash would: no closing, no final
// upload; the spool files stay for Recover, and the recorder forgets
// them as a new process would. (Tests use it.)
func (s *Session) abandon() {
	s.closed.Store(true)
	s.cancel()
	close(s.stop)
	<-s.wrote
	s.wg.Wait()
	s.mu.Lock()
	for _, f := range s.files {
		s.rec.unhold(f.path)
	}
	s.mu.Unlock()
}
