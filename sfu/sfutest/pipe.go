package sfutest

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/chaperone-edu/chaperone/sfu"
	"github.com/pion/rtcp"
)

func isKeyframeRequest(p rtcp.Packet) bool {
	switch p.(type) {
	case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
		return true
	}
	return false
}

// Connect adds a peer with the given id to room and connects a new client to
// it through an in-process signalling pipe that behaves like a WebSocket:
// messages each way are delivered in order on their own goroutine. Options.Send
// is ignored. Start (publishing) has been called when Connect returns.
// Closing the client stops the pipe; remove the peer from the room yourself.
func Connect(room *sfu.Room, id string, opts Options) (*Client, *sfu.Peer, error) {
	p := &pipe{}
	opts.Send = p.toServer.push
	c, err := NewClient(opts)
	if err != nil {
		return nil, nil, err
	}
	p.toServer.done = c.done
	p.toClient.done = c.done
	peer, err := room.AddPeer(id, p)
	if err != nil {
		_ = c.Close()
		return nil, nil, err
	}
	c.mu.Lock()
	c.wg.Add(2)
	c.mu.Unlock()
	go func() {
		defer c.wg.Done()
		p.toServer.run(func(m Message) {
			// ErrClosed: the room or peer went away, as a socket would close.
			if err := serve(peer, p, m); err != nil && !errors.Is(err, sfu.ErrClosed) {
				c.fail(err)
			}
		})
	}()
	go func() {
		defer c.wg.Done()
		p.toClient.run(func(m Message) { _ = c.Handle(m) })
	}()
	if err := c.Start(); err != nil {
		_ = c.Close()
		peer.Close()
		return nil, nil, err
	}
	return c, peer, nil
}

// serve plays the server's part for one client message, as the WebSocket
// layer would.
func serve(peer *sfu.Peer, p *pipe, m Message) error {
	raw, err := json.Marshal(m)
	if err != nil {
		return err
	}
	var msg struct {
		Type      string         `json:"type"`
		PC        string         `json:"pc"`
		SDP       string         `json:"sdp"`
		Candidate *sfu.Candidate `json:"candidate"`
		Screen    []string       `json:"screen_tracks"`
	}
	if err := json.Unmarshal(raw, &msg); err != nil {
		return err
	}
	switch {
	case msg.Type == "offer" && msg.PC == sfu.PCUp:
		if err := peer.DeclareScreen(msg.Screen...); err != nil {
			return err
		}
		answer, err := peer.HandleOffer(msg.SDP)
		if err != nil {
			return err
		}
		p.toClient.push(Message{"type": "answer", "pc": sfu.PCUp, "sdp": answer})
		return nil
	case msg.Type == "answer" && msg.PC == sfu.PCDown:
		return peer.HandleAnswer(msg.SDP)
	case msg.Type == "ice_restart":
		if err := peer.RestartICE(); err != nil && !errors.Is(err, sfu.ErrRestartTooSoon) {
			return err
		}
		return nil
	case msg.Type == "candidate" && msg.Candidate != nil:
		// A refused candidate changes nothing, and the WebSocket layer
		// does not tell the client either.
		if err := peer.AddCandidate(msg.PC, *msg.Candidate); err != nil && !errors.Is(err, sfu.ErrCandidateRefused) {
			return err
		}
		return nil
	}
	return fmt.Errorf("sfutest: server got unexpected message type %q pc %q", msg.Type, msg.PC)
}

// pipe is the in-process signalling channel; it is the peer's sfu.Signal.
type pipe struct {
	toServer, toClient queue
}

func (p *pipe) Offer(pc, sdp string) {
	p.toClient.push(Message{"type": "offer", "pc": pc, "sdp": sdp})
}

func (p *pipe) Candidate(pc string, c sfu.Candidate) {
	p.toClient.push(Message{"type": "candidate", "pc": pc, "candidate": c})
}

// queue is an unbounded FIFO drained by one goroutine, so push never blocks.
type queue struct {
	mu    sync.Mutex
	items []Message
	wake  chan struct{}
	done  <-chan struct{}
	once  sync.Once
}

func (q *queue) init() { q.once.Do(func() { q.wake = make(chan struct{}, 1) }) }

func (q *queue) push(m Message) {
	q.init()
	q.mu.Lock()
	q.items = append(q.items, m)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (q *queue) run(handle func(Message)) {
	q.init()
	for {
		q.mu.Lock()
		items := q.items
		q.items = nil
		q.mu.Unlock()
		for _, m := range items {
			select {
			case <-q.done:
				return
			default:
				handle(m)
			}
		}
		select {
		case <-q.done:
			return
		case <-q.wake:
		}
	}
}
