//go:build unix

package sfu_test

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v3"

	"github.com/chaperone-edu/chaperone/sfu"
	"github.com/chaperone-edu/chaperone/sfu/sfutest"
)

// The forwarding benchmark: one publisher, K subscribers. The subscribers
// are real pion clients (sfutest) in a child process (this test binary run
// as TestBenchSubscribers), so that the allocations counted are the SFU's
// alone; they are connected over loopback with DTLS-SRTP (AES-GCM). The
// publisher's packets are fed to each forwarder directly:
//
//   - chaperone: the SFU's receive path (sfu.BenchTrack: ring, parse,
//     forward to every down-track), with its own SRTP writer, batched sends
//     and its own UDP socket.
//   - naive: a forwarder made of what pion offers, on pion as it comes (a
//     second SFU configured with sfu.WithStockPion: the ICE UDP mux over a
//     net.UDPConn, pion's SRTP writer), with K subscribers of its own: the
//     equivalent of TrackRemote.ReadRTP (a new buffer and rtp.Packet per
//     packet) and one TrackLocalStaticRTP per subscriber, each written with
//     WriteRTP.
//   - naive-oursock: the same naive forwarder on chaperone's subscribers'
//     connections, so on chaperone's UDP socket (unbatched, pion's SRTP):
//     what the socket alone is worth.
//
//	go test -run '^$' -bench Forward -benchmem ./sfu/

const benchChildEnv = "CHAPERONE_SFU_BENCH_SUBSCRIBERS"

func BenchmarkForward(b *testing.B) {
	for _, k := range []int{1, 10, 50} {
		b.Run(fmt.Sprintf("K=%d", k), func(b *testing.B) {
			f := newBenchFixture(b, k)
			for _, wire := range []bool{true, false} {
				mode := "wire"
				if !wire {
					mode = "nosend"
				}
				b.Run(mode+"/chaperone", func(b *testing.B) { f.run(b, wire, true, f.feedChaperone) })
				b.Run(mode+"/naive", func(b *testing.B) { f.run(b, wire, false, f.feedNaive(f.stock)) })
				b.Run(mode+"/naive-oursock", func(b *testing.B) { f.run(b, wire, false, f.feedNaive(f.shared)) })
			}
		})
	}
}

// benchConn wraps the SFU's UDP socket as pion writes to it. With discard
// set it drops outgoing RTP instead of sending it, for figures without the
// kernel's share (chaperone's own batched sends: sfu.DiscardSends).
type benchConn struct {
	net.PacketConn
	discard atomic.Bool
}

func (c *benchConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	if c.discard.Load() && sfutest.IsRTP(p) {
		return len(p), nil
	}
	return c.PacketConn.WriteTo(p, addr)
}

type benchFixture struct {
	sfu    *sfu.SFU // set by newTransportFixture
	room   *sfu.Room
	k      int
	conns  []*benchConn // chaperone's socket, stock pion's
	child  *benchChild
	track  *sfu.BenchTrack
	stock  []*webrtc.TrackLocalStaticRTP // the naive forwarder on stock pion
	shared []*webrtc.TrackLocalStaticRTP // the naive forwarder on chaperone's connections
	pkt    []byte                        // the packet fed, its sequence number and timestamp rewritten

	seqChaperone, seqNaive uint16
}

// packet returns the packet numbered seq: a 1000-byte VP8 payload, three
// packets a frame.
func (f *benchFixture) packet(seq uint16) []byte {
	binary.BigEndian.PutUint16(f.pkt[2:], seq)
	binary.BigEndian.PutUint32(f.pkt[4:], uint32(seq/3)*3000)
	if seq%3 == 0 {
		f.pkt[1] |= 0x80 // marker
	} else {
		f.pkt[1] &^= 0x80
	}
	return f.pkt
}

func (f *benchFixture) feedChaperone() {
	f.seqChaperone++
	f.track.Feed(f.packet(f.seqChaperone))
}

// feedNaive is what a pion SFU written the obvious way does per packet:
// TrackRemote.ReadRTP (make a receive-MTU buffer, read into it, unmarshal
// into a new rtp.Packet), then WriteRTP on each subscriber's
// TrackLocalStaticRTP.
func (f *benchFixture) feedNaive(tracks []*webrtc.TrackLocalStaticRTP) func() {
	return func() {
		f.seqNaive++
		p := readRTP(f.packet(f.seqNaive))
		for _, t := range tracks {
			_ = t.WriteRTP(p)
		}
	}
}

// readRTP does what TrackRemote.ReadRTP does once the packet has been read
// (copied here from raw).
//
//go:noinline
func readRTP(raw []byte) *rtp.Packet {
	buf := make([]byte, 1460) // pion's receive MTU
	n := copy(buf, raw)
	p := &rtp.Packet{}
	if err := p.Unmarshal(buf[:n]); err != nil {
		panic(err)
	}
	return p
}

// run measures feed; counted says whether the room counts what it sends
// (the naive forwarder's sends are not counted).
func (f *benchFixture) run(b *testing.B, wire, counted bool, feed func()) {
	for _, c := range f.conns {
		c.discard.Store(!wire)
	}
	sfu.DiscardSends(f.room, !wire)
	defer func() {
		for _, c := range f.conns {
			c.discard.Store(false)
		}
		sfu.DiscardSends(f.room, false)
	}()
	for range 1000 { // warm: the ring fills, pools fill
		feed()
	}
	// The subscribers stop while the clock runs: their sockets fill and the
	// kernel drops what follows, as a remote client's would not slow the
	// SFU. Measured is the SFU's work, encryption and the send syscalls
	// included (chaperone's batched sendmmsg, the naive forwarder's sendto).
	f.child.pause(b)
	defer f.child.resume(b)
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	sent0, _ := f.room.Sent()
	cpu0 := cpuTime()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		feed()
	}
	b.StopTimer()
	cpu := cpuTime() - cpu0
	runtime.ReadMemStats(&after)
	if sent1, _ := f.room.Sent(); counted && sent1-sent0 != uint64(b.N*f.k) {
		b.Errorf("sent %d packets, want %d", sent1-sent0, b.N*f.k)
	}
	sends := float64(b.N) * float64(f.k)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/sends, "ns/pkt-sub")
	b.ReportMetric(float64(cpu.Nanoseconds())/sends, "cpu-ns/pkt-sub")
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/sends, "allocs/pkt-sub")
}

// cpuTime is the CPU time (user and system) this process has used: on a
// shared machine, steadier than the wall clock.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		panic(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// newBenchSFU starts an SFU (cfg adjusted by opt) whose socket the
// benchmark can switch to discarding, and a room on it.
func newBenchSFU(b *testing.B, name string, opt func(sfu.Config) sfu.Config) (*sfu.Room, *benchConn) {
	b.Helper()
	conn := &benchConn{}
	cfg := sfu.WithConnWrapper(opt(sfu.Config{ListenIP: "127.0.0.1", Loopback: true, Logger: testLogger()}),
		func(c net.PacketConn) net.PacketConn { conn.PacketConn = c; return conn })
	s, err := sfu.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	r := s.NewRoom(name)
	b.Cleanup(r.Close)
	return r, conn
}

// naiveTracks adds a TrackLocalStaticRTP to each peer's down connection.
func naiveTracks(b *testing.B, peers []*sfu.Peer) []*webrtc.TrackLocalStaticRTP {
	b.Helper()
	var ts []*webrtc.TrackLocalStaticRTP
	for _, p := range peers {
		t, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "naive", "naive")
		if err != nil {
			b.Fatal(err)
		}
		if err := sfu.AddDownTrack(p, t); err != nil {
			b.Fatal(err)
		}
		ts = append(ts, t)
	}
	return ts
}

func newBenchFixture(b *testing.B, k int) *benchFixture {
	b.Helper()
	r, conn := newBenchSFU(b, "bench", func(c sfu.Config) sfu.Config { return c })
	stockRoom, stockConn := newBenchSFU(b, "bench-stock", sfu.WithStockPion)

	child, err := startBenchChild(b)
	if err != nil {
		b.Fatal(err)
	}
	// chaperone's subscribers receive its track and the naive-oursock
	// one; stock pion's receive the naive one.
	peers, err := child.addPeers(r, "sub", k, 2)
	if err != nil {
		b.Fatal(err)
	}
	stockPeers, err := child.addPeers(stockRoom, "stock", k, 1)
	if err != nil {
		b.Fatal(err)
	}
	f := &benchFixture{room: r, k: k, child: child, conns: []*benchConn{conn, stockConn}}
	f.publish(b, peers)
	f.shared = naiveTracks(b, peers)
	f.stock = naiveTracks(b, stockPeers)

	// Feed every path slowly until every subscriber receives its tracks.
	deadline := time.Now().Add(30*time.Second + 2*time.Duration(k)*time.Second)
	feedStock, feedShared := f.feedNaive(f.stock), f.feedNaive(f.shared)
	for !child.ready() {
		if time.Now().After(deadline) {
			b.Fatalf("subscribers not receiving after %v: %d of %d ready", time.Until(deadline), child.readyCount(), 2*k)
		}
		f.feedChaperone()
		feedStock()
		feedShared()
		time.Sleep(5 * time.Millisecond)
	}
	return f
}

// benchChild is the parent's side of the subscriber process.
type benchChild struct {
	cmd  *exec.Cmd
	out  chan benchMsg // to the child; buffered so that signalling never blocks the reader of the child's output
	stop chan struct{}

	mu      sync.Mutex
	peers   map[string]*sfu.Peer
	want    map[string]int // the streams each subscriber should receive
	streams map[string]int // the streams it receives
}

type benchMsg struct {
	ID      string          `json:"id"`
	Msg     sfutest.Message `json:"msg,omitempty"`
	Streams int             `json:"streams,omitempty"` // streams receiving (when it grows), child → parent
}

func (c *benchChild) pause(b *testing.B) {
	if err := c.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		b.Fatal(err)
	}
}

func (c *benchChild) resume(b *testing.B) {
	if err := c.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		b.Error(err)
	}
}

func (c *benchChild) ready() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.readyLocked() == len(c.want)
}

func (c *benchChild) readyCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.readyLocked()
}

func (c *benchChild) readyLocked() int {
	n := 0
	for id, w := range c.want {
		if c.streams[id] >= w {
			n++
		}
	}
	return n
}

// addPeers adds k subscribers named prefix0… to r, each to receive streams
// streams, with a client each in the child.
func (c *benchChild) addPeers(r *sfu.Room, prefix string, k, streams int) ([]*sfu.Peer, error) {
	var ps []*sfu.Peer
	for i := range k {
		id := fmt.Sprintf("%s%d", prefix, i)
		p, err := r.AddPeer(id, benchSignal{c: c, id: id})
		if err != nil {
			return nil, err
		}
		c.mu.Lock()
		c.peers[id], c.want[id] = p, streams
		c.mu.Unlock()
		ps = append(ps, p)
	}
	return ps, nil
}

func (c *benchChild) send(m benchMsg) {
	select {
	case c.out <- m:
	case <-c.stop:
	}
}

// benchSignal carries one peer's offers and candidates to the child.
type benchSignal struct {
	c  *benchChild
	id string
}

func (s benchSignal) Offer(pc, sdp string) {
	s.c.send(benchMsg{ID: s.id, Msg: sfutest.Message{"type": "offer", "pc": pc, "sdp": sdp}})
}

func (s benchSignal) Candidate(pc string, cand sfu.Candidate) {
	s.c.send(benchMsg{ID: s.id, Msg: sfutest.Message{"type": "candidate", "pc": pc, "candidate": cand}})
}

func startBenchChild(b *testing.B) (*benchChild, error) {
	cmd := exec.Command(os.Args[0], "-test.run=^TestBenchSubscribers$", "-test.count=1")
	cmd.Env = append(os.Environ(), benchChildEnv+"=1")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := &benchChild{cmd: cmd, out: make(chan benchMsg, 1<<16), stop: make(chan struct{}),
		peers: map[string]*sfu.Peer{}, want: map[string]int{}, streams: map[string]int{}}
	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		enc := json.NewEncoder(stdin)
		for {
			select {
			case m := <-c.out:
				_ = enc.Encode(m)
			case <-c.stop:
				_ = stdin.Close()
				return
			}
		}
	}()
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			if !strings.HasPrefix(line, "{") {
				continue // the child's test output
			}
			var m benchMsg
			if err := json.Unmarshal([]byte(line), &m); err != nil {
				b.Error(err)
				continue
			}
			c.mu.Lock()
			p := c.peers[m.ID]
			if m.Streams > 0 {
				c.streams[m.ID] = m.Streams
			}
			c.mu.Unlock()
			if p == nil || m.Streams > 0 {
				continue
			}
			if err := serveBench(p, m.Msg); err != nil {
				b.Error(err)
			}
		}
	}()
	b.Cleanup(func() {
		close(c.stop)
		<-wrote
		<-done
		_ = cmd.Wait()
	})
	return c, nil
}

// serveBench plays the WebSocket layer's part for one message from a client.
func serveBench(p *sfu.Peer, m sfutest.Message) error {
	switch m["type"] {
	case "answer":
		return p.HandleAnswer(m["sdp"].(string))
	case "candidate":
		raw, err := json.Marshal(m["candidate"])
		if err != nil {
			return err
		}
		var cand sfu.Candidate
		if err := json.Unmarshal(raw, &cand); err != nil {
			return err
		}
		if err := p.AddCandidate(m["pc"].(string), cand); err != nil && !errors.Is(err, sfu.ErrCandidateRefused) {
			return err
		}
		return nil
	}
	return fmt.Errorf("unexpected message %v", m["type"])
}

// TestBenchSubscribers is the benchmark's subscriber process; it does
// nothing unless started by BenchmarkForward. It reads the SFU's messages
// for each subscriber from stdin, runs a receive-only sfutest client per
// subscriber, and writes the clients' messages to stdout, with a line
// {"id":…,"streams":n} when the number of tracks a client receives grows.
func TestBenchSubscribers(t *testing.T) {
	if os.Getenv(benchChildEnv) == "" {
		t.Skip("the benchmark's subscriber process")
	}
	var outMu sync.Mutex
	enc := json.NewEncoder(os.Stdout)
	out := func(m benchMsg) {
		outMu.Lock()
		defer outMu.Unlock()
		_ = enc.Encode(m)
	}
	clients := map[string]*sfutest.Client{}
	defer func() {
		for _, c := range clients {
			_ = c.Close()
		}
	}()
	stop := make(chan struct{})
	defer close(stop)
	var mu sync.Mutex
	reported := map[string]int{}
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			mu.Lock()
			for id, c := range clients {
				live := 0
				for _, tr := range c.Tracks() {
					if tr.Packets > 0 {
						live++
					}
				}
				if live > reported[id] {
					reported[id] = live
					out(benchMsg{ID: id, Streams: live})
				}
			}
			mu.Unlock()
		}
	}()
	dec := json.NewDecoder(os.Stdin)
	for {
		var m benchMsg
		if err := dec.Decode(&m); err != nil {
			if err != io.EOF {
				t.Error(err)
			}
			return
		}
		mu.Lock()
		c := clients[m.ID]
		if c == nil {
			id := m.ID
			var err error
			c, err = sfutest.NewClient(sfutest.Options{NoNACK: true, TCPOnly: strings.HasPrefix(id, tcpBenchPrefix), Send: func(msg sfutest.Message) {
				out(benchMsg{ID: id, Msg: msg})
			}})
			if err != nil {
				mu.Unlock()
				t.Fatal(err)
			}
			clients[id] = c
		}
		mu.Unlock()
		if err := c.Handle(m.Msg); err != nil {
			t.Error(err)
		}
	}
}

// tcpBenchPrefix names the benchmark's subscribers that use ICE-TCP only.
const tcpBenchPrefix = "tcp"

// BenchmarkForwardTransport: the SFU's own writer to K subscribers on UDP
// and to K subscribers on ICE-TCP (RFC 4571 frames queued on each
// connection), side by side on one SFU. nosend: everything but the kernel's
// share (UDP: the batch is encrypted, not sent; TCP: frames are encrypted
// and copied into the connection's queue, not written). wire: UDP with the
// subscribers stopped (the kernel drops what overflows, as in
// BenchmarkForward); TCP with the subscribers running, since a stopped TCP
// peer stops the stream (the queue fills and frames are dropped before the
// write), so the TCP writer goroutines' writes are in cpu-ns/pkt-sub.
//
//	go test -run '^$' -bench ForwardTransport -benchmem ./sfu/
func BenchmarkForwardTransport(b *testing.B) {
	for _, k := range []int{1, 10} {
		b.Run(fmt.Sprintf("K=%d", k), func(b *testing.B) {
			for _, tr := range []string{"udp", tcpBenchPrefix} {
				f := newTransportFixture(b, k, tr)
				for _, wire := range []bool{false, true} {
					mode := "nosend"
					if wire {
						mode = "wire"
					}
					b.Run(mode+"/"+tr, func(b *testing.B) { f.runTransport(b, wire, tr == tcpBenchPrefix) })
				}
			}
		})
	}
}

// newTransportFixture: one SFU with ICE-TCP, a publisher's test-fed track,
// k subscribers named prefix0… in the child process.
func newTransportFixture(b *testing.B, k int, prefix string) *benchFixture {
	b.Helper()
	s, err := sfu.New(sfu.Config{ListenIP: "127.0.0.1", Loopback: true, TCP: true, Logger: testLogger()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	r := s.NewRoom("bench-" + prefix)
	b.Cleanup(r.Close)
	child, err := startBenchChild(b)
	if err != nil {
		b.Fatal(err)
	}
	peers, err := child.addPeers(r, prefix, k, 1)
	if err != nil {
		b.Fatal(err)
	}
	f := &benchFixture{room: r, k: k, child: child, sfu: s}
	f.publish(b, peers)
	deadline := time.Now().Add(30*time.Second + 2*time.Duration(k)*time.Second)
	for !child.ready() {
		if time.Now().After(deadline) {
			b.Fatalf("subscribers not receiving: %d of %d ready", child.readyCount(), k)
		}
		f.feedChaperone()
		time.Sleep(5 * time.Millisecond)
	}
	for _, p := range peers {
		if sfu.DownOverTCP(p) != (prefix == tcpBenchPrefix) || !sfu.OwnSRTP(p) {
			b.Fatalf("subscriber %s: over TCP %v, own writer %v", p.ID(), sfu.DownOverTCP(p), sfu.OwnSRTP(p))
		}
	}
	return f
}

// publish adds the publisher "pub" with its test-fed video track, opens
// its edge to every peer, and makes the packet it is fed.
func (f *benchFixture) publish(b *testing.B, peers []*sfu.Peer) {
	b.Helper()
	pub, err := f.room.AddPeer("pub", nopSignal{})
	if err != nil {
		b.Fatal(err)
	}
	for _, p := range peers {
		f.room.SetEdge("pub", p.ID(), true)
	}
	track, ok := sfu.AttachBenchTrack(f.room, pub, 0x1234abcd)
	if !ok {
		b.Fatal("attach bench track")
	}
	f.track = track
	b.Cleanup(track.End) // before the room's Close, which waits for it
	hdr := rtp.Header{Version: 2, PayloadType: 96, SSRC: 0x1234abcd}
	f.pkt, _ = hdr.Marshal()
	payload := make([]byte, 1000)
	copy(payload, []byte{0x10, 0x00, 0x9d, 0x01, 0x2a}) // VP8 descriptor, start of partition
	f.pkt = append(f.pkt, payload...)
}

// runTransport measures the own writer's forwarding on one transport.
func (f *benchFixture) runTransport(b *testing.B, wire, tcp bool) {
	sfu.DiscardSends(f.room, !wire)
	defer sfu.DiscardSends(f.room, false)
	for range 1000 {
		f.feedChaperone()
	}
	if !tcp {
		f.child.pause(b)
		defer f.child.resume(b)
	}
	via0, drop0 := f.sfu.ViaPion(), sfu.TCPDropped(f.sfu)
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	cpu0 := cpuTime()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		f.feedChaperone()
	}
	b.StopTimer()
	cpu := cpuTime() - cpu0
	runtime.ReadMemStats(&after)
	if v := f.sfu.ViaPion() - via0; v != 0 {
		b.Errorf("%d packets forwarded through pion's writer", v)
	}
	sends := float64(b.N) * float64(f.k)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/sends, "ns/pkt-sub")
	b.ReportMetric(float64(cpu.Nanoseconds())/sends, "cpu-ns/pkt-sub")
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/sends, "allocs/pkt-sub")
	if tcp && wire {
		b.ReportMetric(float64(sfu.TCPDropped(f.sfu)-drop0)/sends, "tcp-dropped/pkt-sub")
	}
}
