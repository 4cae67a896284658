package web

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/chaperone-edu/chaperone/auth"
	"github.com/chaperone-edu/chaperone/live"
	"github.com/chaperone-edu/chaperone/lobby"
	"github.com/chaperone-edu/chaperone/safeguard"
	"github.com/chaperone-edu/chaperone/store"
)

// WebSocket limits (DESIGN.md "Signalling").
const (
	wsMaxMessage = 64 << 10
	wsRatePerSec = 50
	// A connection silent for wsIdleTimeout is gone (a pupil's Wi-Fi
	// dropped): staff see them reconnecting within that time, and they come
	// back within the rejoin grace without admission.
	wsPingEvery    = 10 * time.Second
	wsIdleTimeout  = 30 * time.Second
	wsWriteTimeout = 10 * time.Second
	wsSendQueue    = 256
	wsPongEvery    = 5 * time.Second // the page pings every 15 s
)

// inMsg is any client → server message; fields unused by its type are ignored.
type inMsg struct {
	Type         string          `json:"type"`
	PC           string          `json:"pc"`
	SDP          string          `json:"sdp"`
	Candidate    *live.Candidate `json:"candidate"`
	ID           string          `json:"id"`
	Reason       string          `json:"reason"`
	Locked       *bool           `json:"locked"`
	Kind         string          `json:"kind"`
	Text         string          `json:"text"`
	Allowed      *bool           `json:"allowed"`
	Raised       *bool           `json:"raised"`        // hand
	Screen       bool            `json:"screen"`        // spotlight: the screen, not the camera
	Tracks       []string        `json:"screen_tracks"` // offer: the IDs of the tracks that are a screen share
	Reconnecting bool            `json:"reconnecting"`  // media_reconnecting
}

// decodeMsg parses one signalling message. Every failure is an ErrorMsg
// code and message for the client.
func decodeMsg(data []byte) (inMsg, *lobby.ErrorMsg) {
	var m inMsg
	if err := json.Unmarshal(data, &m); err != nil {
		return m, &lobby.ErrorMsg{Type: "error", Code: "bad_json", Message: "That message is not valid JSON."}
	}
	switch m.Type {
	case "offer", "answer", "candidate":
		if m.PC != "up" && m.PC != "down" {
			return m, &lobby.ErrorMsg{Type: "error", Code: "unknown_pc", Message: `"pc" must be "up" or "down".`}
		}
		if m.Type != "candidate" && strings.TrimSpace(m.SDP) == "" {
			return m, &lobby.ErrorMsg{Type: "error", Code: "bad_sdp", Message: "The message has no SDP."}
		}
		if m.Type == "candidate" && m.Candidate == nil {
			return m, &lobby.ErrorMsg{Type: "error", Code: "bad_candidate", Message: "The message has no candidate."}
		}
		if len(m.Tracks) > 0 && (m.Type != "offer" || m.PC != "up") {
			return m, &lobby.ErrorMsg{Type: "error", Code: "bad_message", Message: `Only an "up" offer declares screen tracks.`}
		}
	case "probe":
		if strings.TrimSpace(m.SDP) == "" {
			return m, &lobby.ErrorMsg{Type: "error", Code: "bad_sdp", Message: "The message has no SDP."}
		}
	case "admit", "deny", "remove", "mute", "unmute", "lower_hand", "let_speak":
		if m.ID == "" {
			return m, &lobby.ErrorMsg{Type: "error", Code: "bad_message", Message: `The message needs the participant's "id".`}
		}
	case "lock":
		if m.Locked == nil {
			return m, &lobby.ErrorMsg{Type: "error", Code: "bad_message", Message: `The message needs "locked": true or false.`}
		}
	case "chat":
		if strings.TrimSpace(m.Text) == "" {
			return m, &lobby.ErrorMsg{Type: "error", Code: "bad_message", Message: `The message needs "text".`}
		}
	case "chat_delete":
		if m.ID == "" {
			return m, &lobby.ErrorMsg{Type: "error", Code: "bad_message", Message: `The message needs the chat message's "id".`}
		}
	case "chat_pupils":
		if m.Allowed == nil {
			return m, &lobby.ErrorMsg{Type: "error", Code: "bad_message", Message: `The message needs "allowed": true or false.`}
		}
	case "mute_all", "unmute_self", "pupil_media":
		if m.Kind != "audio" && m.Kind != "video" {
			return m, &lobby.ErrorMsg{Type: "error", Code: "bad_message", Message: `The message needs "kind": "audio" or "video".`}
		}
		if m.Type == "pupil_media" && m.Allowed == nil {
			return m, &lobby.ErrorMsg{Type: "error", Code: "bad_message", Message: `The message needs "allowed": true or false.`}
		}
	case "screen_grant":
		if m.ID == "" || m.Allowed == nil {
			return m, &lobby.ErrorMsg{Type: "error", Code: "bad_message", Message: `The message needs the participant's "id" and "allowed": true or false.`}
		}
	case "hand":
		if m.Raised == nil {
			return m, &lobby.ErrorMsg{Type: "error", Code: "bad_message", Message: `The message needs "raised": true or false.`}
		}
	case "end", "concern", "knock", "ack_recording_notice", "ping", "admit_all", "spotlight", "record", "ice_restart", "media_reconnecting",
		"no_video_browser":
	case "":
		return m, &lobby.ErrorMsg{Type: "error", Code: "bad_message", Message: `The message has no "type".`}
	default:
		return m, &lobby.ErrorMsg{Type: "error", Code: "unknown_type", Message: "Unknown message type."}
	}
	return m, nil
}

// iceServers are the STUN/TURN servers (with this participant's
// short-lived TURN credentials) the page's connections use.
func (s *Server) iceServers(pid string) any {
	if s.cfg.Rooms == nil {
		return []any{}
	}
	return s.cfg.Rooms.ICEServers(pid)
}

// wsConn is one participant's WebSocket. It implements lobby.Client and
// live.Signal.
type wsConn struct {
	s    *Server
	ws   *websocket.Conn
	lr   *live.Room
	pid  string
	who  auth.Identity
	log  *slog.Logger
	out  chan any
	stop chan struct{} // closed to end the connection
	once sync.Once

	lastPong  time.Time // read loop only
	lastProbe time.Time // read loop only: the last connection check asked for

	mu       sync.Mutex
	peer     live.Peer
	starting chan struct{} // made by StartMedia, closed once the peer is set up (or failed)
}

func (c *wsConn) setPeer(p live.Peer) { c.mu.Lock(); c.peer = p; c.mu.Unlock() }

// getPeer returns the media peer, waiting briefly while it is being set up
// (the client may send its offer as soon as it hears it was admitted).
func (c *wsConn) getPeer() live.Peer {
	c.mu.Lock()
	p, starting := c.peer, c.starting
	c.mu.Unlock()
	if p != nil || starting == nil {
		return p
	}
	select {
	case <-starting:
	case <-time.After(5 * time.Second):
	case <-c.stop:
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.peer
}

// Send queues a message; a client too slow to keep up is disconnected.
func (c *wsConn) Send(msg any) {
	select {
	case c.out <- msg:
	case <-c.stop:
	default:
		c.log.Warn("send queue full: closing connection")
		c.Close("too slow")
	}
}

// trySend queues a message that may be dropped when the queue is full (a
// reply to the page's keep-alive ping).
func (c *wsConn) trySend(msg any) {
	select {
	case c.out <- msg:
	default:
	}
}

// Close ends the connection (asynchronously: it is called from the room).
func (c *wsConn) Close(string) { c.once.Do(func() { close(c.stop) }) }

// StartMedia sets up the participant's media peer once admitted.
func (c *wsConn) StartMedia() {
	started := make(chan struct{})
	c.mu.Lock()
	c.starting = started
	c.mu.Unlock()
	go func() {
		p, err := c.lr.StartMedia(c.pid, c)
		if err == nil {
			c.setPeer(p)
		}
		close(started)
		if err != nil {
			c.log.Error("start media", slog.Any("err", err))
			c.Send(lobby.ErrorMsg{Type: "error", Code: "media", Message: "Video could not be set up. Reload the page to try again."})
			return
		}
		c.lr.Lobby().MediaReady(c.pid)
	}()
}

// Offer and Candidate implement live.Signal.
func (c *wsConn) Offer(pc, sdp string) {
	c.Send(map[string]string{"type": "offer", "pc": pc, "sdp": sdp})
}

func (c *wsConn) Candidate(pc string, cand live.Candidate) {
	c.Send(map[string]any{"type": "candidate", "pc": pc, "candidate": cand})
}

func (s *Server) publicOrigin() string {
	u, err := url.Parse(s.cfg.PublicURL)
	if err != nil {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

// wsRoom is GET /ws/rooms/{id}: the room's signalling WebSocket.
func (s *Server) wsRoom(w http.ResponseWriter, r *http.Request) {
	who := sessionFrom(r.Context()).Identity
	if origin := r.Header.Get("Origin"); origin == "" || !strings.EqualFold(origin, s.publicOrigin()) {
		s.fail(w, r, http.StatusForbidden, "bad_origin", "This connection did not come from chaperone's own pages.")
		return
	}
	if !s.allowWS(w, r, who) {
		return
	}
	ss, lr, status, msg := s.admission(r, who)
	if status != http.StatusOK {
		s.fail(w, r, status, "not_allowed", msg)
		return
	}
	up := websocket.Upgrader{ReadBufferSize: 4096, WriteBufferSize: 4096, CheckOrigin: func(*http.Request) bool { return true }}
	ws, err := up.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader has answered
	}
	c := &wsConn{s: s, ws: ws, lr: lr, who: who, out: make(chan any, wsSendQueue), stop: make(chan struct{}),
		log: s.log.With(slog.String("session", ss.ID))}
	c.pid = lobby.ParticipantID(ss.ID, who.Subject)
	c.log = c.log.With(slog.String("participant", c.pid))
	go c.writeLoop()
	c.Send(map[string]any{"type": "welcome", "you": map[string]string{"id": c.pid, "name": who.Name, "role": roomRole(who)},
		"session": map[string]string{"id": ss.ID, "title": ss.Title}, "ice_servers": s.iceServers(c.pid)})
	_, jerr := lr.Lobby().Join(lobby.Joiner{Subject: who.Subject, Name: who.Name, Email: who.Email, IsStaff: who.Has(auth.RoleStaff),
		SessionStaff: lobby.IsSessionStaff(who, ss), OnRoster: lobby.OnRoster(who, ss), LooksLike: s.lookalike(r.Context(), who, ss), IP: auth.ClientIP(r)}, c)
	if jerr != nil {
		phase := "denied"
		switch {
		case errors.Is(jerr, lobby.ErrRemoved):
			phase = "removed"
		case errors.Is(jerr, lobby.ErrEnded):
			phase = "ended"
		}
		c.Send(lobby.StateMsg{Type: "state", Phase: phase, Gate: "held", Banner: jerr.Error(), Recording: "off"})
		c.Close("refused")
		<-c.stop
		return
	}
	c.readLoop()
	c.Close("read loop ended")
	c.lr.StopMedia(c.pid, c)
	lr.Lobby().Leave(c.pid, c)
}

// lookalike names the pupil on the session's class list, other than who,
// whose name looks like who's (auth.LooksLike: "AmeIia Jones" with a
// capital I, or a second Amelia Jones), as "Amelia Jones, amelia.j@…";
// empty if none does. The class list is known from those who have signed
// in. Staff see it in the waiting list.
func (s *Server) lookalike(ctx context.Context, who auth.Identity, ss store.Session) string {
	if !who.Has(auth.RolePupil) {
		return ""
	}
	us, err := s.store.ListUsersWithRole(ctx, string(auth.RolePupil))
	if err != nil {
		s.log.Error("look-alike names: list pupils", slog.String("session", ss.ID), slog.Any("err", err))
		return ""
	}
	for _, u := range us {
		if u.Subject == who.Subject && u.Issuer == who.Issuer || strings.EqualFold(u.Email, who.Email) ||
			!lobby.OnRoster(auth.Identity{Email: u.Email, Groups: u.Groups}, ss) || !auth.LooksLike(u.Name, who.Name) {
			continue
		}
		local, _, _ := strings.Cut(u.Email, "@")
		return u.Name + ", " + local + "@…"
	}
	return ""
}

func roomRole(who auth.Identity) string {
	if who.Has(auth.RoleStaff) {
		return "staff"
	}
	return "pupil"
}

// admission checks that who may connect to the room of the session in the
// request, and returns the live room.
func (s *Server) admission(r *http.Request, who auth.Identity) (store.Session, *live.Room, int, string) {
	id := r.PathValue("id")
	ss, err := s.store.GetSession(r.Context(), id)
	if err != nil || len(id) > 64 {
		return ss, nil, http.StatusNotFound, "There is no such session."
	}
	if !who.Has(auth.RoleStaff) && !who.Has(auth.RolePupil) {
		return ss, nil, http.StatusForbidden, "Only staff and pupils can join live sessions."
	}
	if err := lobby.OpenCheck(ss, s.now(), s.cfg.Schedule); err != nil {
		status, _, msg := s.statusOf(err)
		return ss, nil, status, msg
	}
	if ss.State != store.StateLive {
		return ss, nil, http.StatusConflict, "The room is not open yet: a member of staff opens it from the session's page."
	}
	if s.cfg.Rooms == nil {
		return ss, nil, http.StatusServiceUnavailable, "The live room is not available right now. Try again in a minute."
	}
	lr, err := s.cfg.Rooms.Open(ss)
	if errors.Is(err, lobby.ErrEnded) {
		return ss, nil, http.StatusConflict, lobby.ErrEnded.Message
	}
	if err != nil {
		s.log.Error("start room", slog.Any("err", err))
		return ss, nil, http.StatusServiceUnavailable, "The live room is not available right now. Try again in a minute."
	}
	return ss, lr, http.StatusOK, ""
}

func (c *wsConn) writeLoop() {
	ping := time.NewTicker(wsPingEvery)
	defer ping.Stop()
	defer c.ws.Close()
	write := func(v any) bool {
		_ = c.ws.SetWriteDeadline(time.Now().Add(wsWriteTimeout))
		return c.ws.WriteJSON(v) == nil
	}
	for {
		select {
		case m := <-c.out:
			if !write(m) {
				c.Close("write failed")
				return
			}
		case <-ping.C:
			_ = c.ws.SetWriteDeadline(time.Now().Add(wsWriteTimeout))
			if err := c.ws.WriteMessage(websocket.PingMessage, nil); err != nil {
				c.Close("ping failed")
				return
			}
		case <-c.stop:
		flush: // send what is queued (the final state message), then close
			for {
				select {
				case m := <-c.out:
					if !write(m) {
						return
					}
				default:
					break flush
				}
			}
			_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
			return
		}
	}
}

func (c *wsConn) readLoop() {
	c.ws.SetReadLimit(wsMaxMessage)
	_ = c.ws.SetReadDeadline(time.Now().Add(wsIdleTimeout))
	c.ws.SetPongHandler(func(string) error { return c.ws.SetReadDeadline(time.Now().Add(wsIdleTimeout)) })
	window, count := time.Now(), 0
	for {
		kind, data, err := c.ws.ReadMessage()
		if err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) && ce.Code == websocket.CloseMessageTooBig || errors.Is(err, websocket.ErrReadLimit) {
				c.log.Warn("message too large")
			}
			return
		}
		_ = c.ws.SetReadDeadline(time.Now().Add(wsIdleTimeout))
		if now := time.Now(); now.Sub(window) >= time.Second {
			window, count = now, 0
		}
		if count++; count > wsRatePerSec {
			c.Send(lobby.ErrorMsg{Type: "error", Code: "rate_limited", Message: "Too many messages: at most 50 a second."})
			c.log.Warn("rate limit exceeded: closing")
			return
		}
		if kind != websocket.TextMessage {
			c.Send(lobby.ErrorMsg{Type: "error", Code: "bad_message", Message: "Only text (JSON) messages are accepted."})
			continue
		}
		m, bad := decodeMsg(data)
		if bad != nil {
			c.Send(*bad)
			continue
		}
		if e := c.handle(m); e != nil {
			c.Send(*e)
		}
		select {
		case <-c.stop:
			return
		default:
		}
	}
}

// probeEvery is the least time between two connection checks of one page
// (it checks once on arrival, and again every 15 s while it cannot connect).
const probeEvery = 5 * time.Second

// probe answers the page's connection check, in any phase (a pupil checks
// from the lobby), off the read loop. The answer is a "probe_answer".
func (c *wsConn) probe(offer string) *lobby.ErrorMsg {
	now := time.Now()
	if now.Sub(c.lastProbe) < probeEvery {
		return &lobby.ErrorMsg{Type: "error", Code: "probe_busy", Message: "The connection is being checked already."}
	}
	c.lastProbe = now
	go func() {
		answer, err := c.s.cfg.Rooms.Probe(offer)
		switch {
		case err == nil:
			c.Send(map[string]string{"type": "probe_answer", "sdp": answer})
		case errors.Is(err, live.ErrBadSDP):
			c.Send(lobby.ErrorMsg{Type: "error", Code: "probe_refused", Message: "That connection check could not be used."})
		default: // busy, closing, no media server: the page tries again later
			c.log.Debug("connection check", slog.Any("err", err))
			c.Send(lobby.ErrorMsg{Type: "error", Code: "probe_busy", Message: "The connection could not be checked just now."})
		}
	}()
	return nil
}

// handle acts on one valid message; a refusal comes back as an ErrorMsg.
func (c *wsConn) handle(m inMsg) *lobby.ErrorMsg {
	errMsg := func(code, msg string) *lobby.ErrorMsg {
		return &lobby.ErrorMsg{Type: "error", Code: code, Message: msg}
	}
	switch m.Type {
	case "offer", "answer", "candidate":
		p := c.getPeer()
		if p == nil {
			return errMsg("not_admitted", "Media starts once you have been let in.")
		}
		switch {
		case m.Type == "offer" && m.PC == "up":
			if err := p.DeclareScreen(m.Tracks...); err != nil {
				return errMsg("bad_message", "Screen sharing did not start. Reload the page and try again.")
			}
			answer, err := p.HandleOffer(m.SDP)
			if err != nil {
				return errMsg("bad_sdp", "That offer could not be used.")
			}
			c.Send(map[string]string{"type": "answer", "pc": "up", "sdp": answer})
		case m.Type == "answer" && m.PC == "down":
			if err := p.HandleAnswer(m.SDP); err != nil {
				return errMsg("bad_sdp", "That answer could not be used.")
			}
		case m.Type == "candidate":
			if err := p.AddCandidate(m.PC, *m.Candidate); err != nil {
				if errors.Is(err, live.ErrCandidateRefused) {
					// An address the SFU never checks, or over the limits:
					// nothing changed, and a browser has nothing to fix.
					c.log.Debug("candidate refused", slog.Any("err", err))
					return nil
				}
				if errors.Is(err, live.ErrUnknownPC) {
					return errMsg("unknown_pc", "There is no such connection.")
				}
				return errMsg("bad_candidate", "That candidate could not be used.")
			}
		default:
			return errMsg("unknown_pc", "The server offers on \"down\"; clients offer on \"up\".")
		}
	case "probe":
		return c.probe(m.SDP)
	case "ice_restart": // the page's network changed: the SFU offers down again with new ICE credentials
		if p := c.getPeer(); p != nil {
			if err := p.RestartICE(); err != nil && !errors.Is(err, live.ErrRestartTooSoon) && !errors.Is(err, live.ErrClosed) {
				c.log.Debug("ice restart", slog.Any("err", err))
			}
		}
	case "media_reconnecting": // the page is restarting ICE: staff see it reconnecting
		c.lr.Lobby().MediaReconnecting(c.pid, m.Reconnecting)
	case "no_video_browser": // the page has no WebRTC: its person was told which browsers work; staff see it
		c.lr.Lobby().NoVideoBrowser(c.pid)
	case "admit", "deny", "remove", "mute", "unmute", "lock", "end", "record", "chat", "chat_delete", "chat_pupils",
		"admit_all", "mute_all", "pupil_media", "hand", "lower_hand", "let_speak", "unmute_self", "screen_grant", "spotlight":
		cmd := lobby.Command{Type: m.Type, Target: m.ID, Reason: m.Reason, Kind: m.Kind, Text: m.Text, Screen: m.Screen}
		if m.Locked != nil {
			cmd.Locked = *m.Locked
		}
		if m.Allowed != nil {
			cmd.Allowed = *m.Allowed
		}
		if m.Raised != nil {
			cmd.Allowed = *m.Raised
		}
		if err := c.lr.Lobby().Do(c.pid, cmd); err != nil {
			var le *lobby.Error
			if errors.As(err, &le) {
				code := map[lobby.ErrorKind]string{lobby.Invalid: "invalid", lobby.Forbidden: "forbidden", lobby.Conflict: "conflict", lobby.NotFound: "not_found"}[le.Kind]
				return errMsg(code, le.Message)
			}
			return errMsg("internal", "That did not work; nothing changed.")
		}
	case "concern":
		// Tell the member of staff where the concern form is before the
		// room closes every connection.
		ss := c.lr.Session()
		if !safeguard.MayRaise(c.who, ss) {
			return errMsg("forbidden", "Only staff of this session can do that.")
		}
		// Refused by the room (waiting in the lobby, say): nothing is
		// stored, nobody is told, nothing is held.
		if err := c.lr.Lobby().MayCommand(c.pid); err != nil {
			return errMsg("forbidden", err.Error())
		}
		c.lr.EndForConcern("")
		// The concern is stored (pending its details) and the DSL told now,
		// not when (or if) the form is filled in; the form completes it.
		c.s.cfg.Concerns.RaiseInRoom(c.who, ss)
		c.Send(map[string]string{"type": "concern_form", "url": concernURL(ss.ID)})
		if err := c.lr.Lobby().Do(c.pid, lobby.Command{Type: "concern"}); err != nil {
			c.lr.ClearConcern()
			return errMsg("forbidden", err.Error())
		}
	case "ack_recording_notice":
		if err := c.lr.Lobby().AckNotice(c.pid); err != nil {
			var le *lobby.Error
			if errors.As(err, &le) {
				return errMsg("conflict", le.Message)
			}
			return errMsg("internal", "That did not work; nothing changed.")
		}
	case "ping":
		// The page checks that the connection is alive.
		// At most one answer every few seconds: a flood gets none.
		if now := time.Now(); now.Sub(c.lastPong) >= wsPongEvery {
			c.lastPong = now
			c.trySend(map[string]string{"type": "pong"})
		}
	case "knock":
		// Nothing to do yet: a denied pupil cannot knock again until staff
		// admit them from the lobby list.
	}
	return nil
}
