package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chaperone-edu/chaperone/internal/signin"
	"github.com/chaperone-edu/chaperone/sfu/sfutest"
)

// config is one load run.
type config struct {
	URL                             string
	MetricsURL                      string // the gateway's /metrics (its metrics_listen)
	Publishers, Subscribers         int
	Duration, Warmup                time.Duration
	ConnectTimeout                  time.Duration
	Parallel                        int
	VideoBytes                      int
	Password, Head, HeadOTP         string
	DropRTP                         float64 // at each subscriber, before SRTP
	NoNACK                          bool
	Logf                            func(format string, a ...any)
	grace                           time.Duration // after the window, for late packets and retransmissions
	mediaTimeout                    time.Duration // after admission, before a subscriber without media rejoins
	admitEvery                      time.Duration // the host's pace of admits (the room allows 50 messages a second)
	maxVideoBytes, audioFrameLength int
}

func defaultConfig() config {
	return config{URL: "http://localhost:8080", MetricsURL: "http://127.0.0.1:9090/metrics", Publishers: 1, Subscribers: 200, Duration: 30 * time.Second, Warmup: 2 * time.Second,
		ConnectTimeout: 5 * time.Minute, Parallel: 8, VideoBytes: 1000, Password: "oakfield", Head: "head", HeadOTP: defaultHeadOTP,
		Logf: func(string, ...any) {}, grace: time.Second, mediaTimeout: 20 * time.Second, admitEvery: 40 * time.Millisecond, maxVideoBytes: 1100, audioFrameLength: 80}
}

func (c config) validate() error {
	switch {
	case c.Publishers < 1 || c.Publishers > maxPublishers:
		return fmt.Errorf("-publishers must be 1 to %d", maxPublishers)
	case c.Subscribers < 1 || c.Subscribers > 5000:
		return errors.New("-subscribers must be 1 to 5000")
	case c.Duration <= 0 || c.Warmup < 0 || c.ConnectTimeout <= 0:
		return errors.New("-duration and -connect_timeout must be above 0, -warmup not below 0")
	case c.Parallel < 1:
		return errors.New("-parallel must be at least 1")
	case c.VideoBytes < stampOffset+stampLen || c.VideoBytes > c.maxVideoBytes:
		return fmt.Errorf("-video_bytes must be %d to %d (one packet a frame, so that every packet carries its send time)", stampOffset+stampLen, c.maxVideoBytes)
	case c.DropRTP < 0 || c.DropRTP >= 1:
		return errors.New("-drop must be at least 0 and below 1")
	}
	return nil
}

// result is what a run measured. Packet counts are over the window: the
// packets the publishers sent during it, and what the subscribers received
// of those.
type result struct {
	Publishers, Subscribers int
	Receiving               int           // subscribers receiving every publisher track when the window opened
	Rejoins                 int           // joins tried again: the room did not open, or media did not start
	Connect                 time.Duration // sign-in to every subscriber receiving
	Window                  time.Duration
	Sent                    uint64 // packets sent by all publishers in the window
	Expected                uint64 // Sent × Subscribers
	Received                uint64 // distinct packets received of those
	Lost                    uint64 // Expected − Received
	// Of those, video (the SFU answers NACKs for video; Opus is not resent).
	VideoExpected, VideoReceived uint64
	Duplicates                   uint64
	SeqGaps                      uint64  // packets missing between the first and last received, by RTP sequence number
	WorstLoss                    float64 // the worst subscriber's loss, 0 to 1
	Forwarded                    float64 // chaperone_forwarded_packets_total, over the window
	Retransmits                  float64 // chaperone_nack_retransmits_total, over the window
	ViaPion                      float64 // chaperone_forwarded_via_pion_total, over the window
	GatewayCPU                   float64 // process_cpu_seconds_total of the gateway, over the window
	LoadgenCPU                   time.Duration
	// Scheduling delay (runnable goroutines waiting for a CPU) over the
	// window, in the gateway (0 if its /metrics lacks it) and here.
	GatewaySchedP50, GatewaySchedP99 time.Duration
	LoadgenSchedP50, LoadgenSchedP99 time.Duration
	P50, P99, Max                    time.Duration
	Samples                          uint64
	Load                             string // /proc/loadavg at the end
}

// Loss is the fraction of expected packets not received.
func (r *result) Loss() float64 {
	if r.Expected == 0 {
		return 0
	}
	return float64(r.Lost) / float64(r.Expected)
}

// VideoLoss is the fraction of expected video packets not received.
func (r *result) VideoLoss() float64 {
	if r.VideoExpected == 0 {
		return 0
	}
	return 1 - float64(r.VideoReceived)/float64(r.VideoExpected)
}

// ForwardedPerSecond is the gateway's forwarding rate over the window.
func (r *result) ForwardedPerSecond() float64 { return r.Forwarded / r.Window.Seconds() }

// CPUPerMillion is the gateway's CPU seconds per million forwarded packets.
func (r *result) CPUPerMillion() float64 {
	if r.Forwarded == 0 {
		return math.NaN()
	}
	return r.GatewayCPU / r.Forwarded * 1e6
}

// gen is the shared state of a run: the publishers' counters, the
// measurement windows and the latency histogram.
type gen struct {
	cfg     config
	epoch   time.Time
	sent    []atomic.Uint32 // per publisher track (publisher i: audio 2i, video 2i+1): the next packet index
	windows []window
	hist    histogram
}

// subscriber is what one subscriber has received, per publisher track.
type subscriber struct {
	g         *gen
	m         *member
	tracks    []*trackTally
	got       []atomic.Bool
	nGot      atomic.Int32
	unstamped atomic.Uint64
	rejoins   atomic.Int32
}

func (s *subscriber) onRTP(_ string, pkt []byte) {
	at := time.Since(s.g.epoch)
	in, err := parseRTP(pkt)
	if err != nil || int(in.Track) >= len(s.tracks) {
		s.unstamped.Add(1)
		return
	}
	if !s.got[in.Track].Swap(true) {
		s.nGot.Add(1)
	}
	w := &s.g.windows[in.Track]
	if !w.contains(in.Index) {
		return
	}
	if s.tracks[in.Track].add(in, w.start.Load()) {
		s.g.hist.add(at - time.Duration(in.SentNs))
	}
}

// frameFunc stamps the frames of publisher p.
func (g *gen) frameFunc(p int) func(kind, id string, frame []byte) []byte {
	audio := make([]byte, g.cfg.audioFrameLength)
	audio[0] = 0xf8 // Opus TOC: CELT fullband 20 ms, one frame
	return func(kind, _ string, frame []byte) []byte {
		track, buf := 2*p, audio
		if kind == "video" {
			track, buf = 2*p+1, frame
		}
		idx := g.sent[track].Add(1) - 1
		putStamp(buf, uint16(track), idx, int64(time.Since(g.epoch)))
		return buf
	}
}

// run sets up a live session, connects the publishers and subscribers,
// measures for cfg.Duration and returns the figures. At the end the host
// ends the session and everyone hangs up.
func run(ctx context.Context, cfg config) (*result, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	logf := cfg.Logf
	nTracks := 2 * cfg.Publishers
	g := &gen{cfg: cfg, epoch: time.Now(), sent: make([]atomic.Uint32, nTracks), windows: newWindows(nTracks)}
	began := time.Now()
	setupCtx, cancel := context.WithTimeout(ctx, cfg.ConnectTimeout)
	defer cancel()

	// The session: requested by the first publisher, approved by the head,
	// opened by the first publisher; the others are co-staff.
	var pubAPI []*signin.Client
	for i := 0; i < cfg.Publishers; i++ {
		a, err := signin.Login(setupCtx, cfg.URL, fmt.Sprintf(staffUsername, i+1), cfg.Password, "")
		if err != nil {
			return nil, fmt.Errorf("%w (does the gateway have the load generator's accounts? see loadgen -write-users)", err)
		}
		pubAPI = append(pubAPI, a)
	}
	sessionID, err := openSession(setupCtx, cfg, pubAPI)
	if err != nil {
		return nil, err
	}
	logf("session %s is live", sessionID)

	var members []*member
	var mmu sync.Mutex
	keep := func(m *member) { mmu.Lock(); members = append(members, m); mmu.Unlock() }
	defer func() {
		var wg sync.WaitGroup
		for _, m := range members {
			wg.Add(1)
			go func() { defer wg.Done(); m.close() }()
		}
		wg.Wait()
	}()

	var host *member
	for i, a := range pubAPI {
		m, err := joinRoom(setupCtx, a, sessionID, sfutest.Options{Audio: true, Video: true, VideoFrameBytes: cfg.VideoBytes, Frame: g.frameFunc(i)}, logf)
		if err != nil {
			return nil, fmt.Errorf("publisher %d: %w", i+1, err)
		}
		keep(m)
		if _, err := m.waitPhase(setupCtx, "admitted"); err != nil {
			return nil, fmt.Errorf("publisher %d: %w", i+1, err)
		}
		if err := m.media.Start(); err != nil {
			return nil, fmt.Errorf("publisher %d: publish: %w", i+1, err)
		}
		if i == 0 {
			host = m
		}
	}
	defer func() { _ = host.sendJSON(map[string]string{"type": "end"}) }()

	subs, err := connectSubscribers(setupCtx, g, sessionID, host, keep)
	if err != nil {
		return nil, err
	}
	ready := func() int {
		n := 0
		for _, s := range subs {
			if int(s.nGot.Load()) == nTracks {
				n++
			}
		}
		return n
	}
	for last := time.Now(); ready() < len(subs) && setupCtx.Err() == nil; {
		time.Sleep(100 * time.Millisecond)
		if time.Since(last) >= 5*time.Second {
			last = time.Now()
			some := 0
			for _, s := range subs {
				if s.nGot.Load() > 0 {
					some++
				}
			}
			logf("waiting: %d of %d subscribers receive every publisher track, %d at least one", ready(), len(subs), some)
		}
	}
	res := &result{Publishers: cfg.Publishers, Subscribers: cfg.Subscribers, Receiving: ready(), Connect: time.Since(began)}
	for _, s := range subs {
		res.Rejoins += int(s.rejoins.Load())
	}
	if res.Receiving < len(subs) {
		shown := 0
		for i, s := range subs {
			if int(s.nGot.Load()) < nTracks && shown < 5 {
				shown++
				s.m.mu.Lock()
				phase := s.m.phase
				s.m.mu.Unlock()
				logf("subscriber %d (%s) receives %d of %d tracks; phase %q, %d signalling messages received; pion client: tracks %+v, error %v",
					i+1, s.m.api.Name, s.nGot.Load(), nTracks, phase, s.m.signals.Load(), s.m.media.Tracks(), s.m.media.Err())
			}
		}
		logf("only %d of %d subscribers receive every publisher after %s; measuring anyway (the others count as loss)", res.Receiving, len(subs), res.Connect.Round(time.Millisecond))
	}
	logf("%d subscribers receiving after %s; warming up for %s", res.Receiving, res.Connect.Round(time.Millisecond), cfg.Warmup)
	if err := sleep(ctx, cfg.Warmup); err != nil {
		return nil, err
	}

	// The window.
	m0, err := scrape(ctx, cfg.MetricsURL)
	if err != nil {
		return nil, err
	}
	cpu0, sched0 := selfCPU(), selfSched()
	t0 := time.Now()
	for i := range g.windows {
		g.windows[i].start.Store(g.sent[i].Load())
	}
	logf("measuring for %s", cfg.Duration)
	werr := sleep(ctx, cfg.Duration)
	for i := range g.windows {
		g.windows[i].end.Store(g.sent[i].Load())
	}
	res.Window = time.Since(t0)
	res.LoadgenCPU = selfCPU() - cpu0
	selfSch := selfSched().sub(sched0)
	res.LoadgenSchedP50, res.LoadgenSchedP99 = selfSch.quantile(0.5), selfSch.quantile(0.99)
	m1, err := scrape(ctx, cfg.MetricsURL)
	if err != nil {
		return nil, err
	}
	if werr != nil {
		return nil, werr
	}
	res.Forwarded = m1.forwarded - m0.forwarded
	res.GatewayCPU = m1.cpu - m0.cpu
	res.Retransmits = m1.retransmits - m0.retransmits
	res.ViaPion = m1.viaPion - m0.viaPion
	gwSch := m1.sched.sub(m0.sched)
	res.GatewaySchedP50, res.GatewaySchedP99 = gwSch.quantile(0.5), gwSch.quantile(0.99)
	_ = sleep(ctx, cfg.grace) // late packets and retransmissions of packets sent in the window

	var videoSent uint64
	for i := range g.windows {
		n := uint64(g.windows[i].end.Load() - g.windows[i].start.Load())
		res.Sent += n
		if i%2 == 1 {
			videoSent += n
		}
	}
	res.Expected = res.Sent * uint64(len(subs))
	res.VideoExpected = videoSent * uint64(len(subs))
	for _, s := range subs {
		var got uint64
		for i, t := range s.tracks {
			u, d, gaps := t.result()
			got += u
			if i%2 == 1 {
				res.VideoReceived += u
			}
			res.Duplicates += d
			res.SeqGaps += gaps
		}
		res.Received += got
		if res.Sent > 0 {
			res.WorstLoss = max(res.WorstLoss, 1-float64(got)/float64(res.Sent))
		}
	}
	res.Lost = res.Expected - res.Received
	res.P50, res.Samples = g.hist.quantile(0.50)
	res.P99, _ = g.hist.quantile(0.99)
	res.Max = time.Duration(g.hist.max.Load())
	res.Load = loadAverage()
	return res, nil
}

// openSession requests, approves and opens a session for the publishers.
func openSession(ctx context.Context, cfg config, pubs []*signin.Client) (string, error) {
	head, err := signin.Login(ctx, cfg.URL, cfg.Head, cfg.Password, cfg.HeadOTP)
	if err != nil {
		return "", err
	}
	defer head.HTTP.CloseIdleConnections()
	start := time.Now().Truncate(time.Minute).Add(time.Minute)
	coStaff := []string{}
	for i := 1; i < len(pubs); i++ {
		coStaff = append(coStaff, fmt.Sprintf("lgstaff%02d@%s", i+1, loadgenDomain))
	}
	body := map[string]any{"title": "Load test " + start.Format("15:04"), "start": start.Format(time.RFC3339),
		"end": start.Add(2 * time.Hour).Format(time.RFC3339), "roster_group": rosterGroup, "co_staff": coStaff}
	var created struct {
		Sessions []struct {
			ID string `json:"id"`
		} `json:"sessions"`
	}
	if err := pubs[0].Call(ctx, http.MethodPost, "/api/sessions", body, &created); err != nil {
		return "", fmt.Errorf("request the session: %w", err)
	}
	if len(created.Sessions) == 0 {
		return "", errors.New("request the session: no session in the reply")
	}
	id := created.Sessions[0].ID
	if err := head.Call(ctx, http.MethodPost, "/api/sessions/"+id+"/approve", nil, nil); err != nil {
		return "", fmt.Errorf("approve the session as %s: %w", cfg.Head, err)
	}
	if err := pubs[0].Call(ctx, http.MethodPost, "/api/sessions/"+id+"/open", nil, nil); err != nil {
		return "", fmt.Errorf("open the session: %w", err)
	}
	return id, nil
}

// connectSubscribers signs the pupils in, cfg.Parallel at a time; each joins
// the lobby and the host admits them at a steady pace.
func connectSubscribers(ctx context.Context, g *gen, sessionID string, host *member, keep func(*member)) ([]*subscriber, error) {
	cfg := g.cfg
	subs := make([]*subscriber, cfg.Subscribers)
	admit := make(chan string)
	admitErr := make(chan error, 1)
	go func() { // the host, admitting as a teacher would click
		t := time.NewTicker(cfg.admitEvery)
		defer t.Stop()
		for id := range admit {
			<-t.C
			if err := host.sendJSON(map[string]string{"type": "admit", "id": id}); err != nil {
				select {
				case admitErr <- fmt.Errorf("admit: %w", err):
				default:
				}
			}
		}
	}()
	defer close(admit)
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	sem := make(chan struct{}, cfg.Parallel)
	var wg sync.WaitGroup
	for i := range subs {
		s := &subscriber{g: g, tracks: make([]*trackTally, len(g.windows)), got: make([]atomic.Bool, len(g.windows))}
		for t := range s.tracks {
			s.tracks[t] = newTrackTally()
		}
		subs[i] = s
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			err := s.connect(ctx, i, sessionID, admit, keep, func() { <-sem })
			if err != nil {
				cancel(fmt.Errorf("subscriber %d: %w", i+1, err))
			}
		}()
	}
	wg.Wait()
	select {
	case err := <-admitErr:
		return nil, err
	default:
	}
	if err := context.Cause(ctx); err != nil {
		return nil, err
	}
	return subs, nil
}

// connect signs subscriber i in, joins the room, waits for admission and
// for media. release frees its sign-in slot once it waits in the lobby. A
// subscriber that cannot open the room, or gets no media within
// cfg.mediaTimeout of admission (its connection failed, which happens on an
// overloaded machine), joins again, as the room page tells a pupil to; at
// most twice.
func (s *subscriber) connect(ctx context.Context, i int, sessionID string, admit chan<- string, keep func(*member), release func()) error {
	released := false
	defer func() {
		if !released {
			release()
		}
	}()
	cfg := s.g.cfg
	a, err := signin.Login(ctx, cfg.URL, fmt.Sprintf(pupilUsername, i+1), cfg.Password, "")
	if err != nil {
		return fmt.Errorf("%w (does the gateway have the load generator's accounts? see loadgen -write-users)", err)
	}
	for attempt := 0; ; attempt++ {
		m, err := joinRoom(ctx, a, sessionID, sfutest.Options{OnRTP: s.onRTP, DropRTP: cfg.DropRTP, NoNACK: cfg.NoNACK}, cfg.Logf)
		if err != nil {
			if attempt == 2 || ctx.Err() != nil {
				return err
			}
			cfg.Logf("subscriber %d (%s): %v; trying again", i+1, a.Name, err)
			s.rejoins.Add(1)
			time.Sleep(time.Second)
			continue
		}
		s.m = m
		keep(m)
		id, err := m.participantID(ctx)
		if err != nil {
			return err
		}
		phase, err := m.waitPhase(ctx, "waiting", "admitted")
		if err != nil {
			return err
		}
		if !released {
			release()
			released = true
		}
		if phase == "waiting" {
			select {
			case admit <- id:
			case <-ctx.Done():
				return ctx.Err()
			}
			if _, err := m.waitPhase(ctx, "admitted"); err != nil {
				return err
			}
		}
		deadline := time.Now().Add(cfg.mediaTimeout)
		for s.nGot.Load() == 0 && time.Now().Before(deadline) && ctx.Err() == nil {
			time.Sleep(50 * time.Millisecond)
		}
		if s.nGot.Load() > 0 || attempt == 2 || ctx.Err() != nil {
			return nil
		}
		s.rejoins.Add(1)
		cfg.Logf("subscriber %d (%s): no media %s after admission; leaving and joining again", i+1, a.Name, cfg.mediaTimeout)
		m.close()
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// gatewayMetrics are what the report needs from /metrics.
type gatewayMetrics struct {
	forwarded, cpu, retransmits, viaPion float64
	sched                                cumHist // go_sched_latencies_seconds (empty if the gateway does not export it)
}

func scrape(ctx context.Context, metricsURL string) (gatewayMetrics, error) {
	var gm gatewayMetrics
	status, body, err := signin.Do(ctx, http.DefaultClient, metricsURL, http.MethodGet, "", nil, "")
	if err != nil {
		return gm, fmt.Errorf("read the gateway's metrics: %w", err)
	}
	if status != http.StatusOK {
		return gm, fmt.Errorf("read the gateway's metrics: status %d", status)
	}
	var haveF, haveC bool
	for _, line := range strings.Split(string(body), "\n") {
		name, val, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		var v float64
		if _, err := fmt.Sscan(val, &v); err != nil {
			continue
		}
		switch name {
		case "chaperone_forwarded_packets_total":
			gm.forwarded, haveF = v, true
		case "process_cpu_seconds_total":
			gm.cpu, haveC = v, true
		case "chaperone_nack_retransmits_total":
			gm.retransmits = v
		case "chaperone_forwarded_via_pion_total":
			gm.viaPion = v
		}
	}
	gm.sched = parsePromHist(string(body), "go_sched_latencies_seconds")
	if !haveF || !haveC {
		return gm, errors.New("the gateway's /metrics lacks chaperone_forwarded_packets_total or process_cpu_seconds_total")
	}
	return gm, nil
}
