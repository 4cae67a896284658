// Package sfutest is a pion WebRTC test client for the SFU: it publishes
// synthetic Opus and VP8 on an "up" connection, answers the server's "down"
// offers, trickles candidates and counts what it receives. Its signalling is
// the JSON message shape the WebSocket uses, so the same client can be driven
// in-process (Connect) or over a socket (Options.Send and Client.Handle).
package sfutest

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/pion/dtls/v2"
	"github.com/pion/ice/v2"
	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/nack"
	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v3"
	"github.com/pion/webrtc/v3/pkg/media"
)

// Message is one signalling message, as JSON-decoded from the WebSocket:
//
//	{"type":"offer"|"answer"|"candidate", "pc":"up"|"down", "sdp":"…", "candidate":{…}}
type Message = map[string]any

// Options configures a Client.
type Options struct {
	// Send delivers an outgoing message to the server. It is called from the
	// client's goroutines and must not block for long. Connect sets it.
	Send func(msg Message)
	// Audio and Video publish a synthetic Opus (every 20 ms) and VP8 (every
	// 33 ms) track when Start is called.
	Audio, Video bool
	// AllInterfaces gathers candidates on every interface; by default the
	// client uses loopback only.
	AllInterfaces bool
	// Logf, when set, receives the client's errors as they happen (t.Logf).
	Logf func(format string, args ...any)
	// VideoFrameBytes is the size of each synthetic VP8 frame; 0 means 1000
	// (one packet a frame). Larger frames span several packets.
	VideoFrameBytes int
	// DropRTP, above 0, is the fraction of the RTP packets arriving for the
	// client that are dropped at random before SRTP, as on a lossy link
	// (RTCP, ICE and DTLS pass). The client then has a single UDP socket on
	// 127.0.0.1. See SetDropRTP and Dropped.
	DropRTP float64
	// NoNACK turns off the NACKs the client sends for packets it missed
	// (benchmarks that overrun the client on purpose).
	NoNACK bool
	// Frame, when set, is called before each synthetic frame is sent, with
	// the track's kind ("audio" or "video"), its ID and the frame (a copy
	// owned by that track, reused for every frame). It returns the frame to
	// send: the one given, written into, or a buffer of its own. The load
	// generator writes a send time into it.
	Frame func(kind, id string, frame []byte) []byte
	// OnRTP, when set, is called from a track's read goroutine for each RTP
	// packet received on the down connection, with the track's kind and the
	// decrypted packet (valid only during the call).
	OnRTP func(kind string, pkt []byte)
	// SRTPProfiles, when set, are the only SRTP protection profiles the
	// client offers (as an older browser might); by default pion's.
	SRTPProfiles []dtls.SRTPProtectionProfile
	// ICEServers are the client's STUN/TURN servers (as the gateway hands
	// them out); RelayOnly makes it use relayed candidates alone, as a
	// browser on a network that lets through only TURN.
	ICEServers []webrtc.ICEServer
	RelayOnly  bool
	// UDPConns, when set, are the UDP sockets of the up and the down
	// connection's ICE (an ICE UDP mux over each), e.g. made in another
	// network namespace. Two, as a browser has: behind a NAT each then
	// gets a mapping of its own. The client closes them.
	UDPConns *[2]net.PacketConn
	// IPFilter, when set, picks the local addresses the client gathers on
	// (by default loopback only, or every one with AllInterfaces).
	IPFilter func(net.IP) bool
	// IPv6 makes the client use UDP over IPv6 alone (with TCPOnly: TCP
	// over IPv6).
	IPv6 bool
	// TCPOnly makes the client use ICE-TCP alone (no UDP at all), as a
	// browser on a network that drops UDP: it connects to the server's
	// passive TCP candidates.
	TCPOnly bool
}

// Counts is what a client has received on some tracks.
type Counts struct{ Packets, Bytes uint64 }

// RemoteTrack describes one track the client has received on its down
// connection. Ended is set once the track's reads return an error, i.e. the
// server removed it (or the connection closed).
type RemoteTrack struct {
	StreamID, TrackID, Kind string
	Ended                   bool
	Counts
}

// Client is a test participant. Methods are safe for concurrent use.
type Client struct {
	opts Options
	up   *webrtc.PeerConnection
	down *webrtc.PeerConnection
	done chan struct{}
	mux  ice.UDPMux // with DropRTP or UDPConns
	// downMux is the down connection's, with UDPConns.
	downMux ice.UDPMux
	lossy   *lossyConn // with DropRTP

	mu          sync.Mutex
	closed      bool
	wg          sync.WaitGroup
	upPending   []webrtc.ICECandidateInit
	downPending []webrtc.ICECandidateInit
	tracks      []*RemoteTrack
	published   map[string]*published
	screens     []string // published track IDs declared as screen share
	plis        int
	rrs         []rtcp.ReceptionReport
	err         error
}

type published struct {
	sender *webrtc.RTPSender
	stop   chan struct{}
}

type wireMsg struct {
	Type      string                   `json:"type"`
	PC        string                   `json:"pc"`
	SDP       string                   `json:"sdp,omitempty"`
	Candidate *webrtc.ICECandidateInit `json:"candidate,omitempty"`
}

// NewClient makes a client with its own pion API: UDP4 only, mDNS off,
// loopback candidates on. Like a browser, it sends NACKs for the packets it
// misses on its down connection (pion's NACK generator interceptor) unless
// Options.NoNACK. Nothing is sent until Start.
func NewClient(opts Options) (*Client, error) {
	if opts.Send == nil {
		return nil, errors.New("sfutest: Options.Send is nil")
	}
	me := &webrtc.MediaEngine{}
	if err := me.RegisterDefaultCodecs(); err != nil {
		return nil, err
	}
	se := webrtc.SettingEngine{}
	switch {
	case opts.TCPOnly && opts.IPv6:
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeTCP6})
	case opts.TCPOnly:
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeTCP4})
	case opts.IPv6:
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP6})
	default:
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	}
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetIncludeLoopbackCandidate(true)
	// The client is the DTLS client; a ClientHello sent before the server's
	// DTLS is listening is resent after this, not pion's default second.
	se.SetDTLSRetransmissionInterval(100 * time.Millisecond)
	if len(opts.SRTPProfiles) > 0 {
		se.SetSRTPProtectionProfiles(opts.SRTPProfiles...)
	}
	switch {
	case opts.IPFilter != nil:
		se.SetIPFilter(opts.IPFilter)
	case !opts.AllInterfaces:
		se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	}
	ir := &interceptor.Registry{}
	if !opts.NoNACK {
		gen, err := nack.NewGeneratorInterceptor()
		if err != nil {
			return nil, err
		}
		ir.Add(gen)
	}
	var (
		mux   ice.UDPMux
		lossy *lossyConn
	)
	if opts.DropRTP > 0 {
		conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			return nil, err
		}
		lossy = &lossyConn{PacketConn: conn}
		lossy.setRate(opts.DropRTP)
		mux = ice.NewUDPMuxDefault(ice.UDPMuxParams{UDPConn: lossy})
		se.SetICEUDPMux(mux)
	}
	var downMux ice.UDPMux
	downAPI := (*webrtc.API)(nil)
	if opts.UDPConns != nil && opts.DropRTP == 0 {
		mux = ice.NewUDPMuxDefault(ice.UDPMuxParams{UDPConn: opts.UDPConns[0]})
		se.SetICEUDPMux(mux)
		downSE := se
		downMux = ice.NewUDPMuxDefault(ice.UDPMuxParams{UDPConn: opts.UDPConns[1]})
		downSE.SetICEUDPMux(downMux)
		downAPI = webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithSettingEngine(downSE), webrtc.WithInterceptorRegistry(ir))
	}
	api := webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithSettingEngine(se), webrtc.WithInterceptorRegistry(ir))
	if downAPI == nil {
		downAPI = api
	}
	closeMux := func() {
		for _, m := range []ice.UDPMux{mux, downMux} {
			if m != nil {
				_ = m.Close()
			}
		}
	}
	pcCfg := webrtc.Configuration{ICEServers: opts.ICEServers}
	if opts.RelayOnly {
		pcCfg.ICETransportPolicy = webrtc.ICETransportPolicyRelay
	}
	up, err := api.NewPeerConnection(pcCfg)
	if err != nil {
		closeMux()
		return nil, err
	}
	down, err := downAPI.NewPeerConnection(pcCfg)
	if err != nil {
		_ = up.Close()
		closeMux()
		return nil, err
	}
	c := &Client{opts: opts, up: up, down: down, mux: mux, downMux: downMux, lossy: lossy, done: make(chan struct{}), published: map[string]*published{}}
	for name, pc := range map[string]*webrtc.PeerConnection{"up": up, "down": down} {
		pc.OnICECandidate(func(cand *webrtc.ICECandidate) {
			if cand == nil {
				return
			}
			c.send(Message{"type": "candidate", "pc": name, "candidate": cand.ToJSON()})
		})
	}
	down.OnTrack(c.onTrack)
	return c, nil
}

// Start publishes the tracks asked for in Options and sends the up offer;
// with neither asked for it does nothing (the client only receives).
func (c *Client) Start() error {
	if !c.opts.Audio && !c.opts.Video {
		return nil
	}
	if c.opts.Audio {
		if err := c.addTrack("audio", "audio"); err != nil {
			return err
		}
	}
	if c.opts.Video {
		if err := c.addTrack("video", "video"); err != nil {
			return err
		}
	}
	return c.offerUp()
}

// PublishVideo adds another synthetic VP8 track (a screen share, say) named
// id and re-offers the up connection.
func (c *Client) PublishVideo(id string) error {
	if err := c.addTrack("video", id); err != nil {
		return err
	}
	return c.offerUp()
}

// PublishScreen adds a synthetic VP8 track named id, declares it as a
// screen share (the offer's "screen_tracks", as the room page sends it) and
// re-offers the up connection.
func (c *Client) PublishScreen(id string) error {
	if err := c.addTrack("video", id); err != nil {
		return err
	}
	c.mu.Lock()
	c.screens = append(c.screens, id)
	c.mu.Unlock()
	return c.offerUp()
}

// Unpublish stops the track named id ("audio", "video", or a PublishVideo
// id) and re-offers the up connection.
func (c *Client) Unpublish(id string) error {
	c.mu.Lock()
	p := c.published[id]
	delete(c.published, id)
	c.screens = slices.DeleteFunc(c.screens, func(s string) bool { return s == id })
	c.mu.Unlock()
	if p == nil {
		return fmt.Errorf("sfutest: no published track %q", id)
	}
	close(p.stop)
	if err := c.up.RemoveTrack(p.sender); err != nil {
		return err
	}
	return c.offerUp()
}

// Handle applies one message from the server. Candidates that arrive before
// their connection's remote description are held until it is set.
func (c *Client) Handle(msg Message) error {
	err := c.handle(msg)
	if err != nil {
		c.fail(err)
	}
	return err
}

func (c *Client) handle(msg Message) error {
	raw, err := json.Marshal(msg)
	if err != nil {
		return fmt.Errorf("sfutest: encode message: %w", err)
	}
	var m wireMsg
	if err := json.Unmarshal(raw, &m); err != nil {
		return fmt.Errorf("sfutest: decode message: %w", err)
	}
	switch {
	case m.Type == "offer" && m.PC == "down":
		return c.answerDown(m.SDP)
	case m.Type == "answer" && m.PC == "up":
		c.mu.Lock()
		defer c.mu.Unlock()
		if err := c.up.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: m.SDP}); err != nil {
			return fmt.Errorf("sfutest: up answer: %w", err)
		}
		c.upPending = addPending(c.up, c.upPending)
		return nil
	case m.Type == "candidate" && (m.PC == "up" || m.PC == "down") && m.Candidate != nil:
		pc, pending := c.up, &c.upPending
		if m.PC == "down" {
			pc, pending = c.down, &c.downPending
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		if pc.RemoteDescription() == nil {
			*pending = append(*pending, *m.Candidate)
			return nil
		}
		return pc.AddICECandidate(*m.Candidate)
	}
	return fmt.Errorf("sfutest: unexpected message type %q pc %q", m.Type, m.PC)
}

func (c *Client) answerDown(sdp string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.down.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: sdp}); err != nil {
		return fmt.Errorf("sfutest: down offer: %w", err)
	}
	c.downPending = addPending(c.down, c.downPending)
	answer, err := c.down.CreateAnswer(nil)
	if err != nil {
		return fmt.Errorf("sfutest: down answer: %w", err)
	}
	if err := c.down.SetLocalDescription(answer); err != nil {
		return fmt.Errorf("sfutest: down answer: %w", err)
	}
	c.send(Message{"type": "answer", "pc": "down", "sdp": answer.SDP})
	return nil
}

func addPending(pc *webrtc.PeerConnection, pending []webrtc.ICECandidateInit) []webrtc.ICECandidateInit {
	for _, cand := range pending {
		_ = pc.AddICECandidate(cand)
	}
	return nil
}

// RestartICE restarts ICE on both connections, as the room page does when
// a connection goes disconnected or failed: an up offer with new ICE
// credentials (pion gathers anew, on new sockets, so the client's address
// changes), and an "ice_restart" message asking the server for a down
// offer that restarts ICE.
func (c *Client) RestartICE() error {
	if err := c.offerUpWith(&webrtc.OfferOptions{ICERestart: true}); err != nil {
		return err
	}
	c.send(Message{"type": "ice_restart"})
	return nil
}

func (c *Client) offerUp() error { return c.offerUpWith(nil) }

func (c *Client) offerUpWith(opts *webrtc.OfferOptions) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	// The answer to the previous offer may still be on its way, as a
	// browser's would be: wait for it, as the room page does.
	for deadline := time.Now().Add(5 * time.Second); c.up.SignalingState() != webrtc.SignalingStateStable; {
		if time.Now().After(deadline) {
			return fmt.Errorf("sfutest: up offer in signalling state %s", c.up.SignalingState())
		}
		c.mu.Unlock()
		time.Sleep(10 * time.Millisecond)
		c.mu.Lock()
	}
	offer, err := c.up.CreateOffer(opts)
	if err != nil {
		return fmt.Errorf("sfutest: up offer: %w", err)
	}
	if err := c.up.SetLocalDescription(offer); err != nil {
		return fmt.Errorf("sfutest: up offer: %w", err)
	}
	m := Message{"type": "offer", "pc": "up", "sdp": offer.SDP}
	if len(c.screens) > 0 {
		m["screen_tracks"] = slices.Clone(c.screens)
	}
	c.send(m)
	return nil
}

// vp8Frame is a valid-looking VP8 keyframe header (16x16) with filler.
var vp8Frame = func() []byte {
	b := make([]byte, 1000)
	copy(b, []byte{0x50, 0x01, 0x00, 0x9d, 0x01, 0x2a, 0x10, 0x00, 0x10, 0x00})
	for i := 10; i < len(b); i++ {
		b[i] = byte(i)
	}
	return b
}()

// opusFrame is an Opus packet (TOC for 20 ms CELT) with filler.
var opusFrame = []byte{0xf8, 0xff, 0xfe, 0x01, 0x02, 0x03, 0x04, 0x05}

func (c *Client) addTrack(kind, id string) error {
	codec := webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}
	frame, every := opusFrame, 20*time.Millisecond
	if kind == "video" {
		codec = webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}
		frame, every = vp8Frame, 33*time.Millisecond
		if n := c.opts.VideoFrameBytes; n > 0 {
			frame = make([]byte, n)
			copy(frame, vp8Frame)
		}
	}
	track, err := webrtc.NewTrackLocalStaticSample(codec, id, "local")
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return errors.New("sfutest: client closed")
	}
	if c.published[id] != nil {
		return fmt.Errorf("sfutest: track %q already published", id)
	}
	tr, err := c.up.AddTransceiverFromTrack(track, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
	if err != nil {
		return err
	}
	p := &published{sender: tr.Sender(), stop: make(chan struct{})}
	c.published[id] = p
	stamp := c.opts.Frame
	if stamp != nil {
		frame = slices.Clone(frame)
	}
	c.wg.Add(2)
	go func() {
		defer c.wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-c.done:
				return
			case <-p.stop:
				return
			case <-t.C:
				data := frame
				if stamp != nil {
					data = stamp(kind, id, frame)
				}
				_ = track.WriteSample(media.Sample{Data: data, Duration: every})
			}
		}
	}()
	go func() {
		defer c.wg.Done()
		for {
			pkts, _, err := p.sender.ReadRTCP()
			if err != nil {
				return
			}
			c.mu.Lock()
			for _, pkt := range pkts {
				if isKeyframeRequest(pkt) {
					c.plis++
				}
				if rr, ok := pkt.(*rtcp.ReceiverReport); ok {
					c.rrs = append(c.rrs, rr.Reports...)
				}
			}
			c.mu.Unlock()
		}
	}()
	return nil
}

func (c *Client) onTrack(remote *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
	rt := &RemoteTrack{StreamID: remote.StreamID(), TrackID: remote.ID(), Kind: remote.Kind().String()}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.tracks = append(c.tracks, rt)
	c.wg.Add(1)
	c.mu.Unlock()
	defer c.wg.Done()
	buf := make([]byte, 1500)
	for {
		n, _, err := remote.Read(buf)
		c.mu.Lock()
		if err != nil {
			rt.Ended = true
			c.mu.Unlock()
			return
		}
		rt.Packets++
		rt.Bytes += uint64(n)
		c.mu.Unlock()
		if c.opts.OnRTP != nil {
			c.opts.OnRTP(rt.Kind, buf[:n])
		}
	}
}

// Received sums what arrived on the tracks of one stream (the publisher's
// peer ID, or sfu.ScreenStreamID of it for a screen share) and kind ("audio"
// or "video"), ended tracks included.
func (c *Client) Received(streamID, kind string) Counts {
	c.mu.Lock()
	defer c.mu.Unlock()
	var n Counts
	for _, t := range c.tracks {
		if t.StreamID == streamID && t.Kind == kind {
			n.Packets += t.Packets
			n.Bytes += t.Bytes
		}
	}
	return n
}

// Tracks returns a snapshot of every track received so far.
func (c *Client) Tracks() []RemoteTrack {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]RemoteTrack, len(c.tracks))
	for i, t := range c.tracks {
		out[i] = *t
	}
	return out
}

// KeyframeRequests counts the PLIs and FIRs the server sent for published tracks.
func (c *Client) KeyframeRequests() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.plis
}

// ReceiverReports returns the reception reports the server sent about the
// client's published tracks, oldest first.
func (c *Client) ReceiverReports() []rtcp.ReceptionReport {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.rrs)
}

// Connected reports whether both connections have reached "connected".
func (c *Client) Connected() bool {
	return c.up.ConnectionState() == webrtc.PeerConnectionStateConnected &&
		c.down.ConnectionState() == webrtc.PeerConnectionStateConnected
}

// Err returns the first error met while handling messages asynchronously.
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

func (c *Client) fail(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	if c.err == nil {
		c.err = err
	}
	if c.opts.Logf != nil {
		c.opts.Logf("sfutest: %v", err)
	}
}

func (c *Client) send(m Message) {
	select {
	case <-c.done:
	default:
		c.opts.Send(m)
	}
}

// Close closes both connections and waits for the client's goroutines.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	close(c.done)
	c.mu.Unlock()
	err := errors.Join(c.up.Close(), c.down.Close())
	for _, m := range []ice.UDPMux{c.mux, c.downMux} {
		if m != nil {
			err = errors.Join(err, m.Close())
		}
	}
	c.wg.Wait()
	return err
}

// SetDropRTP changes the fraction of arriving RTP packets dropped; it works
// only for a client made with Options.DropRTP above 0.
func (c *Client) SetDropRTP(f float64) {
	if c.lossy != nil {
		c.lossy.setRate(f)
	}
}

// Dropped counts the RTP packets dropped because of Options.DropRTP.
func (c *Client) Dropped() uint64 {
	if c.lossy == nil {
		return 0
	}
	return c.lossy.dropped.Load()
}
