package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/gorilla/websocket"

	"github.com/chaperone-edu/chaperone/internal/signin"
	"github.com/chaperone-edu/chaperone/sfu/sfutest"
)

// member is one participant: a signed-in person with the room's signalling
// WebSocket and a pion client (sfutest) for the media, as a browser would be.
type member struct {
	api   *signin.Client
	media *sfutest.Client
	logf  func(string, ...any)

	signals atomic.Int64 // offers, answers and candidates received

	wmu sync.Mutex
	ws  *websocket.Conn

	mu       sync.Mutex
	id       string // participant ID, from the welcome message
	phase    string // from the latest state message; "closed" once the socket is gone
	closeErr error  // why the socket is gone
	changed  chan struct{}
}

// joinRoom connects api to a live session's room. The media client is made
// first so that it is there for the server's first offer.
func joinRoom(ctx context.Context, api *signin.Client, sessionID string, opts sfutest.Options, logf func(string, ...any)) (*member, error) {
	m := &member{api: api, logf: logf, changed: make(chan struct{})}
	opts.Send = m.send
	opts.Logf = logf
	media, err := sfutest.NewClient(opts)
	if err != nil {
		return nil, fmt.Errorf("media client: %w", err)
	}
	m.media = media
	ws, err := api.DialRoom(ctx, sessionID)
	if err != nil {
		media.Close()
		return nil, err
	}
	m.wmu.Lock()
	m.ws = ws
	m.wmu.Unlock()
	go m.read()
	return m, nil
}

func (m *member) send(msg sfutest.Message) {
	if err := m.sendJSON(msg); err != nil {
		m.logf("%s: send signalling: %v", m.api.Name, err)
	}
}

func (m *member) sendJSON(msg any) error {
	m.wmu.Lock()
	defer m.wmu.Unlock()
	if m.ws == nil {
		return errors.New("room not connected")
	}
	return m.ws.WriteJSON(msg)
}

func (m *member) read() {
	acked := false
	for {
		_, data, err := m.ws.ReadMessage()
		if err != nil {
			m.set(func() { m.phase, m.closeErr = "closed", err })
			return
		}
		var msg map[string]any
		if json.Unmarshal(data, &msg) != nil {
			continue
		}
		switch msg["type"] {
		case "welcome":
			you, _ := msg["you"].(map[string]any)
			id, _ := you["id"].(string)
			m.set(func() { m.id = id })
		case "state":
			phase, _ := msg["phase"].(string)
			m.set(func() { m.phase = phase })
			if msg["notice"] == true && !acked { // the recording notice: press "I understand", as a pupil would
				acked = true
				m.send(map[string]any{"type": "ack_recording_notice"})
			}
		case "offer", "answer", "candidate":
			m.signals.Add(1)
			if err := m.media.Handle(msg); err != nil {
				m.logf("%s: media: %v", m.api.Name, err)
			}
		case "error":
			m.logf("%s: gateway says: %v: %v", m.api.Name, msg["code"], msg["message"])
		}
	}
}

// set changes the member's state under its lock and wakes waiters.
func (m *member) set(f func()) {
	m.mu.Lock()
	f()
	close(m.changed)
	m.changed = make(chan struct{})
	m.mu.Unlock()
}

// waitPhase waits until the room puts the member in one of the phases
// wanted ("waiting", "admitted") and returns it; a refusal or a closed
// socket is an error.
func (m *member) waitPhase(ctx context.Context, want ...string) (string, error) {
	for {
		m.mu.Lock()
		phase, ch, cerr := m.phase, m.changed, m.closeErr
		m.mu.Unlock()
		if slices.Contains(want, phase) {
			return phase, nil
		}
		switch phase {
		case "closed":
			return phase, fmt.Errorf("%s: the room's connection closed while waiting to be %s: %w", m.api.Name, want, cerr)
		case "denied", "removed", "ended":
			return phase, fmt.Errorf("%s: room says %q while waiting to be %s", m.api.Name, phase, want)
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return phase, fmt.Errorf("%s: not %s (phase %q): %w", m.api.Name, want, phase, ctx.Err())
		}
	}
}

// participantID waits for the welcome message's participant ID.
func (m *member) participantID(ctx context.Context) (string, error) {
	for {
		m.mu.Lock()
		id, phase, ch := m.id, m.phase, m.changed
		m.mu.Unlock()
		if id != "" {
			return id, nil
		}
		if phase == "closed" {
			return "", fmt.Errorf("%s: room closed before the welcome", m.api.Name)
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return "", fmt.Errorf("%s: no welcome: %w", m.api.Name, ctx.Err())
		}
	}
}

// close hangs up the media and the socket.
func (m *member) close() {
	_ = m.media.Close()
	m.wmu.Lock()
	if m.ws != nil {
		_ = m.ws.Close()
	}
	m.wmu.Unlock()
	m.api.HTTP.CloseIdleConnections()
}
