package testkit

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/chaperone-edu/chaperone/internal/signin"
	"github.com/chaperone-edu/chaperone/sfu/sfutest"
)

// RoomConn is a test client's signalling WebSocket to a live room.
type RoomConn struct {
	T    testing.TB
	WS   *websocket.Conn
	msgs chan map[string]any
	done chan struct{}
	mu   sync.Mutex
	last map[string]map[string]any // last message of each type
	wmu  sync.Mutex
	hook func(map[string]any) // signalling messages go here when set
	// early is the signalling that came before a media client was set.
	early []map[string]any
}

// DialRoom opens the room WebSocket of a session as a signed-in API
// client, with the given Origin ("" = the gateway's own). It returns the
// HTTP response on a refused upgrade.
func DialRoom(t testing.TB, a *APIClient, sessionID, origin string) (*RoomConn, *http.Response, error) {
	t.Helper()
	ws, resp, err := signin.DialRoom(context.Background(), a.HTTP, a.Base, sessionID, origin)
	if err != nil {
		return nil, resp, err
	}
	rc := &RoomConn{T: t, WS: ws, msgs: make(chan map[string]any, 1024), done: make(chan struct{}), last: map[string]map[string]any{}}
	go rc.read()
	t.Cleanup(func() { ws.Close() })
	return rc, resp, nil
}

func (rc *RoomConn) read() {
	defer close(rc.done)
	for {
		_, data, err := rc.WS.ReadMessage()
		if err != nil {
			return
		}
		var m map[string]any
		if json.Unmarshal(data, &m) != nil {
			continue
		}
		rc.mu.Lock()
		typ, _ := m["type"].(string)
		if typ != "" {
			rc.last[typ] = m
		}
		hook := rc.hook
		signal := typ == "offer" || typ == "answer" || typ == "candidate"
		if hook == nil && signal {
			// No media client yet: keep the server's signalling for it (the
			// gateway may offer as soon as someone is admitted).
			rc.early = append(rc.early, m)
		}
		rc.mu.Unlock()
		if hook != nil && signal {
			hook(m)
			continue
		}
		select {
		case rc.msgs <- m:
		default: // tests that do not read messages must not block the reader
		}
	}
}

// Send writes one JSON message.
func (rc *RoomConn) Send(m any) error {
	rc.wmu.Lock()
	defer rc.wmu.Unlock()
	return rc.WS.WriteJSON(m)
}

// SendRaw writes a text frame as is.
func (rc *RoomConn) SendRaw(b []byte) error {
	rc.wmu.Lock()
	defer rc.wmu.Unlock()
	return rc.WS.WriteMessage(websocket.TextMessage, b)
}

// Next returns the next message for which match is true, failing the test
// after timeout.
func (rc *RoomConn) Next(timeout time.Duration, match func(map[string]any) bool) map[string]any {
	rc.T.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case m := <-rc.msgs:
			if match(m) {
				return m
			}
		case <-rc.done:
			for { // the reader stopped: look through what it had already received
				select {
				case m := <-rc.msgs:
					if match(m) {
						return m
					}
					continue
				default:
				}
				break
			}
			rc.T.Fatalf("connection closed while waiting for a message")
		case <-deadline:
			rc.T.Fatalf("no matching message within %s", timeout)
		}
	}
}

// NextType waits for the next message of a type.
func (rc *RoomConn) NextType(typ string) map[string]any {
	rc.T.Helper()
	return rc.Next(5*time.Second, func(m map[string]any) bool { return m["type"] == typ })
}

// WaitState waits for a state message whose fields contain want (e.g.
// {"phase": "admitted"}); banner values match as substrings.
func (rc *RoomConn) WaitState(want map[string]any) map[string]any {
	rc.T.Helper()
	return rc.Next(5*time.Second, func(m map[string]any) bool {
		if m["type"] != "state" {
			return false
		}
		for k, v := range want {
			if k == "banner" {
				if s, _ := m[k].(string); !strings.Contains(s, v.(string)) {
					return false
				}
				continue
			}
			if m[k] != v {
				return false
			}
		}
		return true
	})
}

// Last returns the last message of a type received so far.
func (rc *RoomConn) Last(typ string) map[string]any {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.last[typ]
}

// Closed is closed when the server has closed the connection.
func (rc *RoomConn) Closed() <-chan struct{} { return rc.done }

// Media connects a pion test client to this room connection's signalling
// (offer/answer/candidate messages go to it from now on). Call its Start
// once the participant is admitted, to publish.
func (rc *RoomConn) Media(audio, video bool) *sfutest.Client {
	rc.T.Helper()
	c, err := sfutest.NewClient(sfutest.Options{Audio: audio, Video: video, Send: func(m sfutest.Message) {
		if err := rc.Send(m); err != nil {
			rc.T.Logf("send signalling: %v", err)
		}
	}})
	if err != nil {
		rc.T.Fatalf("media client: %v", err)
	}
	rc.T.Cleanup(func() { c.Close() })
	hook := func(m map[string]any) {
		if err := c.Handle(m); err != nil {
			rc.T.Logf("media client: handle %v: %v", m["type"], err)
		}
	}
	rc.mu.Lock()
	early := rc.early
	rc.early = nil
	rc.hook = hook
	for _, m := range early { // in order, before any later message (the reader waits on mu)
		hook(m)
	}
	rc.mu.Unlock()
	return c
}
