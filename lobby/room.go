package lobby

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"reflect"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/chaperone-edu/chaperone/audit"
	"github.com/chaperone-edu/chaperone/store"
)

// Client is one participant's connection, implemented by the web layer.
// Its methods are called from the Room's goroutine and must not block.
type Client interface {
	Send(msg any)        // queue a message (StateMsg, RosterMsg, ...)
	StartMedia()         // the participant is admitted: set up their media
	Close(reason string) // terminal (removed, ended, replaced): close the connection
}

// Gate is the media gate the Room drives (package sfu implements it).
type Gate interface {
	SetEdge(from, to string, open bool)
	SetSourceAllowed(peer, kind string, allowed bool)
}

// Audit appends to the audit log (package store implements it).
type Audit interface {
	AppendAudit(ctx context.Context, e store.AuditEntry) (store.AuditRecord, error)
}

// ChatStore keeps a session's chat text (package store implements it). The
// audit log gets only each message's ID, sender and SHA-256, so the text
// can be deleted when its retention has passed.
type ChatStore interface {
	AddChatMessage(ctx context.Context, m store.ChatMessage) error
	DeleteChatMessage(ctx context.Context, sessionID, id, by string, at time.Time) error
}

// Errors a Join can return.
var (
	ErrRemoved = &Error{Kind: Forbidden, Message: "A member of staff removed you from this session, so you cannot rejoin it."}
	ErrLocked  = &Error{Kind: Conflict, Message: "The lobby is locked: your teacher is not letting anyone else in right now."}
	ErrEnded   = &Error{Kind: Conflict, Message: "This session has ended."}
)

// RoomConfig configures a Room.
type RoomConfig struct {
	Session store.Session
	Policy  Policy
	Gate    Gate
	Audit   Audit
	// Chat stores the chat's text; nil keeps it in the room only (tests).
	Chat  ChatStore
	Now   func() time.Time
	Grace time.Duration       // after the last staff member leaves, end after this (0 = 5 min)
	OnEnd func(reason string) // called once, from the Room's goroutine, when the session ends
	// StartRecording is called (on the Room's goroutine; it must not block)
	// when the rules need recording and none is running. The recorder
	// reports back through SetRecording. Nil means no recorder: recording
	// cannot be guaranteed and media that needs it stays held.
	StartRecording func()
	Logger         *slog.Logger
	// Saver keeps the room's durable state (R16); nil keeps it in memory
	// only (tests of pure room logic).
	Saver RoomSaver
	// Restore is the durable state of an earlier room of this session (the
	// gateway restarted, or the room moved here), and Chat its messages so
	// far; the room starts from them.
	Restore     *store.RoomRecord
	RestoreChat []store.ChatMessage
	// Removed are the participants the audit log says staff removed from
	// this session: they stay removed even if the state that said so was
	// not saved (a crash, a full disk).
	Removed []string
	// RejoinGrace is how long an admitted participant whose connection
	// closed may come back straight into the lesson (0 = DefaultRejoinGrace).
	RejoinGrace time.Duration
}

// Joiner is a signed-in person entering the room.
type Joiner struct {
	Subject, Name, Email string
	IsStaff              bool // school staff
	SessionStaff         bool // host or co-staff of this session
	OnRoster             bool
	LooksLike            string // see Participant.LooksLike
	IP                   string
}

// Room is the actor that owns one live session's state. Every change goes
// through its goroutine; after each, it recomputes Decide and pushes the
// result to the gate, the audit log and the clients.
type Room struct {
	cfg      RoomConfig
	ops      chan func()
	done     chan struct{}
	state    RoomState
	clients  map[string]Client
	edges    map[Edge]bool
	handSeq  int                  // the last raised hand's position (Participant.Hand)
	handAt   map[string]time.Time // when each participant last raised or lowered their hand
	sent     map[string]any       // last message of each kind sent to each participant
	media    bool                 // last PupilMedia, for gate audit rows
	hadStaff bool
	stopped  bool
	chatLog  []ChatMsg
	chatOff  bool                   // staff switched pupils' chat off
	chatSent map[string][]time.Time // recent messages per pupil, for the rate limit
	// heldSince is when pupils' media was last held (zero while it flows
	// or no pupil is present); heldTotal accumulates earlier holds.
	heldSince time.Time
	heldTotal time.Duration
	grace     *time.Timer
	log       *slog.Logger
	// Durable state (durable.go): the chat's last message number, the
	// rejoin-grace timers of participants who are away, the saver and the
	// record it was last given.
	chatSeq int
	away    map[string]*time.Timer
	saver   *saver
	saved   store.RoomRecord
	savedAt time.Time
	auditq  *auditQueue // the room's audit rows, written in order off its goroutine
	// chatw stores the chat's text off the room's goroutine (chatq.go);
	// deleting are the messages whose deletion it is storing. closing is
	// closed when the room starts to stop: what the writers hand back
	// after that is dropped.
	chatw    *chatWriter
	deleting map[string]bool
	closing  chan struct{}
}

// NewRoom starts the actor of a live session.
func NewRoom(cfg RoomConfig) *Room {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Grace == 0 {
		cfg.Grace = 5 * time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.RejoinGrace == 0 {
		cfg.RejoinGrace = DefaultRejoinGrace
	}
	r := &Room{cfg: cfg, ops: make(chan func()), done: make(chan struct{}), clients: map[string]Client{}, edges: map[Edge]bool{},
		sent: map[string]any{}, chatSent: map[string][]time.Time{}, handAt: map[string]time.Time{}, away: map[string]*time.Timer{},
		deleting: map[string]bool{}, closing: make(chan struct{}), log: cfg.Logger.With(slog.String("session", cfg.Session.ID))}
	r.state.Recording = RecOff
	r.state.Streamed = cfg.Session.Kind == KindStreamed
	r.state.OneToOneLesson = IsOneToOne(cfg.Session)
	if cfg.Audit != nil {
		r.auditq = newAuditQueue(cfg.Audit, r.log)
	}
	if cfg.Chat != nil {
		r.chatw = newChatWriter(cfg.Chat, r.log)
	}
	r.restore(cfg.Restore, cfg.RestoreChat)
	r.restoreRemoved(cfg.Removed)
	if cfg.Saver != nil {
		r.saver = newSaver(cfg.Saver, r.log)
	}
	go r.loop()
	return r
}

func (r *Room) loop() {
	alive := time.NewTicker(RoomKeepAlive)
	defer alive.Stop()
	for {
		select {
		case <-alive.C:
			r.persist()
		case f := <-r.ops:
			f()
			if r.state.Ended || r.stopped {
				r.stopGrace()
				r.stopAwayTimers()
				r.persist()
				close(r.closing)
				if r.chatw != nil {
					r.chatw.close(20 * time.Second) // before the audit queue: it adds chat rows (a write with its retries takes up to ~16 s)
				}
				if r.saver != nil {
					r.saver.close(5 * time.Second)
				}
				if r.auditq != nil {
					r.auditq.close(10 * time.Second)
				}
				close(r.done)
				return
			}
		case <-r.done:
			return
		}
	}
}

// do runs f on the Room's goroutine and waits for it. It returns ErrEnded
// once the room has ended.
func (r *Room) do(f func()) error {
	ran := make(chan struct{})
	select {
	case r.ops <- func() { f(); close(ran) }:
	case <-r.done:
		return ErrEnded
	}
	select {
	case <-ran:
	case <-r.done:
	}
	return nil
}

// post runs f on the Room's goroutine without waiting for it, from the
// writers' goroutines; once the room is stopping, f is dropped.
func (r *Room) post(f func()) {
	select {
	case r.ops <- f:
	case <-r.closing:
	case <-r.done:
	}
}

// Done is closed when the session has ended and the Room has stopped.
func (r *Room) Done() <-chan struct{} { return r.done }

// ParticipantID is the stable ID of a person in a session.
func ParticipantID(sessionID, subject string) string {
	h := sha256.Sum256([]byte(sessionID + "\x00" + subject))
	return "p" + hex.EncodeToString(h[:6])
}

// Join adds (or reconnects) a participant with their connection. Staff of
// the session are admitted at once; everyone else waits in the lobby.
func (r *Room) Join(j Joiner, c Client) (string, error) {
	id := ParticipantID(r.cfg.Session.ID, j.Subject)
	var err error
	if derr := r.do(func() { err = r.join(id, j, c) }); derr != nil {
		return id, derr
	}
	return id, err
}

func (r *Room) join(id string, j Joiner, c Client) error {
	p := r.find(id)
	if p != nil && p.State == Removed {
		r.audit(j.Subject, j.Name, audit.RoomJoinRefused, id, audit.Reason{Reason: "removed"}, j.IP)
		return ErrRemoved
	}
	role := Pupil
	if j.IsStaff {
		role = Staff
	}
	// Back within the rejoin grace (a reload, a Wi-Fi blip, a gateway
	// restart), or a new page while the old one is still connected: straight
	// back into the lesson, no admission again (the lock keeps out newcomers
	// only).
	within := p != nil && !p.AwaySince.IsZero() && r.cfg.Now().Sub(p.AwaySince) <= r.cfg.RejoinGrace
	back := p != nil && p.State == Admitted && (p.Connected || within)
	// A pupil whose connection dropped while waiting keeps their place in
	// the lobby within the grace, even if staff locked it meanwhile.
	waitingBack := p != nil && p.State == Waiting && (p.Connected || within)
	if r.state.Locked && !j.SessionStaff && !back && !waitingBack && (p == nil || p.State != Denied) {
		r.audit(j.Subject, j.Name, audit.RoomJoinRefused, id, audit.Reason{Reason: "locked"}, j.IP)
		return ErrLocked
	}
	if old, ok := r.clients[id]; ok && old != c {
		old.Send(ErrorMsg{Type: "error", Code: "replaced", Message: "You opened this lesson in another window, so this one has closed."})
		old.Close("replaced")
	}
	if p == nil {
		r.state.Participants = append(r.state.Participants, Participant{ID: id})
		p = &r.state.Participants[len(r.state.Participants)-1]
	}
	p.Subject, p.Name, p.Email, p.Role, p.SessionStaff, p.OnRoster = j.Subject, j.Name, j.Email, role, j.SessionStaff, j.OnRoster
	p.LooksLike = j.LooksLike
	p.Connected, p.MediaReconnecting, p.NoVideoBrowser = true, false, false
	r.clients[id] = c
	delete(r.sent, id+"/state")
	delete(r.sent, id+"/roster")
	delete(r.sent, id+"/lobby")
	delete(r.sent, id+"/chat")
	away := p.AwaySince
	p.AwaySince = time.Time{}
	if t := r.away[id]; t != nil {
		t.Stop()
		delete(r.away, id)
	}
	if p.State != Denied && !back {
		p.State = Waiting
		p.Reason = ""
	}
	if j.SessionStaff {
		p.State = Admitted
	}
	if !back { // a return is one row, room.rejoin, in the register
		r.audit(j.Subject, j.Name, audit.RoomJoin, id, audit.Join{Role: string(role), OnRoster: j.OnRoster, SessionStaff: j.SessionStaff}, j.IP)
	}
	switch {
	case back:
		r.audit(j.Subject, j.Name, audit.RoomRejoin, id, audit.Rejoin{AwaySince: away}, j.IP)
		c.StartMedia()
	case p.State == Admitted:
		r.audit(j.Subject, j.Name, audit.RoomAdmit, id, audit.Person{By: "session staff: joined directly"}, j.IP)
		c.StartMedia()
	}
	r.apply()
	return nil
}

// Leave records that a participant's connection c closed. A stale
// connection (replaced by a newer one) changes nothing.
func (r *Room) Leave(id string, c Client) {
	_ = r.do(func() {
		if r.clients[id] != c {
			return
		}
		delete(r.clients, id)
		p := r.find(id)
		if p == nil {
			return
		}
		p.Connected, p.MediaReconnecting = false, false
		p.Hand = 0
		if r.state.Spotlight.ID == id {
			r.state.Spotlight = Spotlight{}
		}
		switch p.State {
		case Admitted:
			// Away: they may come back within the rejoin grace; staff see
			// them as reconnecting until then.
			p.AwaySince = r.cfg.Now()
			r.awayTimer(id, p.AwaySince)
			r.audit(p.Subject, p.Name, audit.RoomConnectionLost, id, nil, "")
		case Waiting:
			// Still in the lobby for the rejoin grace (the page reconnects
			// by itself); then left.
			p.AwaySince = r.cfg.Now()
			r.awayTimer(id, p.AwaySince)
			r.audit(p.Subject, p.Name, audit.RoomConnectionLost, id, audit.Lost{Waiting: true}, "")
		default:
			r.audit(p.Subject, p.Name, audit.RoomLeave, id, nil, "")
		}
		r.apply()
	})
}

// MediaReady tells the Room that a participant's media connection exists,
// so the gate is applied to it again.
func (r *Room) MediaReady(id string) {
	_ = r.do(func() {
		for e, open := range r.edges {
			if e.From == id || e.To == id {
				r.cfg.Gate.SetEdge(e.From, e.To, open)
			}
		}
		if p := r.find(id); p != nil {
			r.applySources(*p)
		}
	})
}

// MediaReconnecting tells the Room that a connected participant's media is
// reconnecting (on) or back (off), as their page reports it while it
// restarts ICE; staff see them reconnecting meanwhile. Only an admitted
// participant's flag is kept.
func (r *Room) MediaReconnecting(id string, on bool) {
	_ = r.do(func() {
		p := r.find(id)
		if p == nil || p.State != Admitted || !p.Connected || p.MediaReconnecting == on {
			return
		}
		p.MediaReconnecting = on
		r.apply()
	})
}

// NoVideoBrowser tells the Room that a connected participant's page has
// no WebRTC: it cannot join the video, and staff see that in the lobby
// and the people list.
func (r *Room) NoVideoBrowser(id string) {
	_ = r.do(func() {
		p := r.find(id)
		if p == nil || !p.Connected || p.NoVideoBrowser {
			return
		}
		p.NoVideoBrowser = true
		r.apply()
	})
}

// Command is an action on the room: by staff, except chat, hand and
// unmute_self, which anyone admitted may send.
type Command struct {
	// Type is one of admit, deny, remove, mute, unmute, lock, end, concern,
	// record (staff choose to record a lone pupil's lesson), chat,
	// chat_delete, chat_pupils, and the lesson tools (tools.go):
	// admit_all, mute_all, pupil_media, hand, lower_hand, let_speak,
	// unmute_self, screen_grant, spotlight.
	Type    string
	Target  string // participant ID (chat_delete: the message ID)
	Reason  string
	Kind    string // for mute/unmute/mute_all/pupil_media/unmute_self: "audio" or "video"
	Locked  bool   // for lock
	Text    string // for chat
	Allowed bool   // for chat_pupils, pupil_media, screen_grant; hand: raised
	Screen  bool   // for spotlight: the participant's screen, not their camera
}

// Do runs a command from participant by. Refusals are *Error and change nothing.
func (r *Room) Do(by string, cmd Command) error {
	var err error
	if derr := r.do(func() { err = r.command(by, cmd) }); derr != nil {
		return derr
	}
	return err
}

// MayCommand reports, changing nothing, whether participant by may send
// staff commands now (admitted, connected staff). The shell checks it
// before a command's effects outside the room: a concern raised in the room
// is stored and mailed only for someone the room would obey.
func (r *Room) MayCommand(by string) error {
	var err error
	if derr := r.do(func() { _, err = r.staffActor(by) }); derr != nil {
		return derr
	}
	return err
}

// staffActor is participant by if they are admitted, connected staff.
func (r *Room) staffActor(by string) (*Participant, error) {
	actor := r.find(by)
	if actor == nil || actor.State != Admitted || !actor.Connected || actor.Role != Staff {
		return nil, &Error{Kind: Forbidden, Message: "Only staff in the room can do that."}
	}
	return actor, nil
}

func (r *Room) command(by string, cmd Command) error {
	switch cmd.Type {
	case "chat":
		return r.chat(by, cmd.Text)
	case "hand", "unmute_self":
		return r.selfCommand(by, cmd)
	}
	actor, err := r.staffActor(by)
	if err != nil {
		return err
	}
	reason := strings.Join(strings.Fields(cmd.Reason), " ")
	if utf8.RuneCountInString(reason) > 300 {
		return &Error{Kind: Invalid, Field: "reason", Message: "Keep the reason to 300 characters."}
	}
	if err := CheckText("reason", "reason", reason); err != nil {
		return err
	}
	switch cmd.Type {
	case "record":
		// Staff choose to record and teach the one pupil there: from now
		// on the session is recorded (policy one_to_one: to its end).
		if r.state.RecordChosen {
			return nil
		}
		r.state.RecordChosen = true
		r.audit(actor.Subject, actor.Name, audit.RoomRecordChosen, "", nil, "")
		r.apply()
		return nil
	case "lock":
		r.state.Locked = cmd.Locked
		r.audit(actor.Subject, actor.Name, audit.RoomLock, "", audit.Lock{Locked: cmd.Locked}, "")
		r.apply()
		return nil
	case "end":
		r.audit(actor.Subject, actor.Name, audit.SessionEnded, r.cfg.Session.ID, audit.Reason{Reason: "ended by staff"}, "")
		r.end("The session was ended by " + actor.Name + ".")
		return nil
	case "chat_pupils":
		r.chatOff = !cmd.Allowed
		r.audit(actor.Subject, actor.Name, audit.ChatPupils, "", audit.Allowed{Allowed: cmd.Allowed}, "")
		r.apply()
		return nil
	case "chat_delete":
		for i := range r.chatLog {
			if m := &r.chatLog[i]; m.ID == cmd.Target && !m.Deleted {
				return r.deleteChat(actor, i)
			}
		}
		return &Error{Kind: NotFound, Field: "id", Message: "There is no such message."}
	case "admit_all", "mute_all", "pupil_media", "spotlight":
		return r.roomTool(actor, cmd)
	case "concern":
		// Pupils are not told why: they see that staff ended the session.
		r.audit(actor.Subject, actor.Name, audit.ConcernRaised, r.cfg.Session.ID, audit.Raised{Recording: string(r.state.Recording)}, "")
		r.audit(actor.Subject, actor.Name, audit.SessionEnded, r.cfg.Session.ID, audit.Reason{Reason: "stopped to raise a safeguarding concern"}, "")
		r.end("The session was ended by " + actor.Name + ".")
		return nil
	}
	t := r.find(cmd.Target)
	if t == nil || t.ID == actor.ID {
		return &Error{Kind: NotFound, Field: "id", Message: "There is no such participant."}
	}
	switch cmd.Type {
	case "admit":
		if t.State != Waiting && t.State != Denied || !t.Connected {
			return &Error{Kind: Conflict, Message: t.Name + " is not waiting to join."}
		}
		t.State, t.Reason = Admitted, ""
		r.audit(actor.Subject, actor.Name, audit.RoomAdmit, t.ID, audit.Person{Whom: t.Name, OnRoster: &t.OnRoster}, "")
		if c := r.clients[t.ID]; c != nil {
			c.StartMedia()
		}
	case "deny":
		if reason == "" {
			return &Error{Kind: Invalid, Field: "reason", Message: "Give a reason; the pupil will see it."}
		}
		if t.State != Waiting {
			return &Error{Kind: Conflict, Message: t.Name + " is not waiting to join."}
		}
		t.State, t.Reason = Denied, reason
		r.audit(actor.Subject, actor.Name, audit.RoomDeny, t.ID, audit.Person{Whom: t.Name, Reason: reason}, "")
	case "remove":
		if t.State == Removed {
			return &Error{Kind: Conflict, Message: t.Name + " has already been removed."}
		}
		if t.SessionStaff {
			return &Error{Kind: Forbidden, Message: "Staff of the session cannot be removed."}
		}
		t.State, t.Reason, t.Connected = Removed, reason, false
		r.audit(actor.Subject, actor.Name, audit.RoomRemove, t.ID, audit.Person{Whom: t.Name, Reason: reason}, "")
		r.apply() // close the gate before the connection goes
		if c := r.clients[t.ID]; c != nil {
			c.Send(r.stateMsg(*t, Decide(r.state, r.cfg.Policy)))
			c.Close("removed")
			delete(r.clients, t.ID)
		}
	case "mute", "unmute":
		if cmd.Kind != "audio" && cmd.Kind != "video" {
			return &Error{Kind: Invalid, Field: "kind", Message: "Say which: audio or video."}
		}
		setMuted(t, cmd.Kind, cmd.Type == "mute")
		r.audit(actor.Subject, actor.Name, muteAction(cmd.Type), t.ID, audit.Person{Whom: t.Name, Kind: cmd.Kind}, "")
	case "lower_hand", "let_speak", "screen_grant":
		if err := r.personTool(actor, t, cmd); err != nil {
			return err
		}
	default:
		return &Error{Kind: Invalid, Message: "Unknown command."}
	}
	r.apply()
	return nil
}

// AckNotice records that participant id acknowledged the recording notice.
func (r *Room) AckNotice(id string) error {
	var err error
	if derr := r.do(func() {
		p := r.find(id)
		if p == nil || p.State != Admitted {
			err = &Error{Kind: Conflict, Message: "There is no recording notice to acknowledge."}
			return
		}
		if p.NoticeAcked {
			return
		}
		if r.state.Recording != RecStarting && r.state.Recording != RecConfirmed {
			err = &Error{Kind: Conflict, Message: "This lesson is not being recorded."}
			return
		}
		p.NoticeAcked = true
		r.audit(p.Subject, p.Name, audit.RecordingNoticeAcknowledged, id, nil, "")
		r.apply()
	}); derr != nil {
		return derr
	}
	return err
}

// SetRecording reports the recorder's state (from the recording package),
// with the reason for a failure.
func (r *Room) SetRecording(s RecState, reason string) {
	_ = r.do(func() {
		if r.state.Recording == s {
			return
		}
		r.state.Recording = s
		r.state.RecordingWhy = reason
		r.audit("", "", s.action(), r.cfg.Session.ID, audit.Reason{Reason: reason}, "")
		r.apply()
	})
}

// End ends the session for everyone (e.g. its time is over).
func (r *Room) End(reason string) {
	_ = r.do(func() {
		r.audit("", "", audit.SessionEnded, r.cfg.Session.ID, audit.Reason{Reason: reason}, "")
		r.end(reason)
	})
}

// Stop disconnects everyone and stops the Room without ending the session
// (the gateway is shutting down; the session can be rejoined after restart).
func (r *Room) Stop() {
	_ = r.do(func() {
		for id, c := range r.clients {
			c.Send(ErrorMsg{Type: "error", Code: "restarting", Message: "The lesson server is restarting. You will be back in the lesson in a moment."})
			c.Close("stopped")
			delete(r.clients, id)
		}
		r.stopped = true
	})
}

// AuditWritten waits until the audit rows the room has queued so far are in
// the store (or ctx ends): for readers that need the log up to now, such as
// the attendance register.
func (r *Room) AuditWritten(ctx context.Context) error {
	if r.chatw != nil {
		if err := r.chatw.wait(ctx); err != nil {
			return err
		}
	}
	if r.auditq == nil {
		return nil
	}
	return r.auditq.wait(ctx)
}

// Held reports how long pupils' media has been held in this room so far,
// and whether it is held now.
func (r *Room) Held() (time.Duration, bool) {
	var total time.Duration
	var now bool
	if err := r.do(func() {
		total, now = r.heldTotal, !r.heldSince.IsZero()
		if now {
			total += r.cfg.Now().Sub(r.heldSince)
		}
	}); err != nil {
		return 0, false
	}
	return total, now
}

// Snapshot returns a copy of the room's state (for tests and pages).
func (r *Room) Snapshot() RoomState {
	var s RoomState
	if err := r.do(func() {
		s = r.state
		s.Participants = append([]Participant(nil), r.state.Participants...)
	}); err != nil {
		return RoomState{Ended: true}
	}
	return s
}

func (r *Room) end(reason string) {
	r.state.Ended = true
	for i := range r.state.Participants {
		if p := &r.state.Participants[i]; Reconnecting(*p) {
			r.audit(p.Subject, p.Name, audit.RoomLeave, p.ID, audit.Left{AwaySince: p.AwaySince, Reason: "the session ended while they were away"}, "")
			p.State, p.AwaySince = Left, time.Time{}
		}
	}
	for e, open := range r.edges {
		if open {
			r.cfg.Gate.SetEdge(e.From, e.To, false)
		}
	}
	for id, c := range r.clients {
		c.Send(StateMsg{Type: "state", Phase: "ended", Gate: "held", Banner: "This session has ended.", Reason: reason, Recording: string(r.state.Recording)})
		c.Close("ended")
		delete(r.clients, id)
	}
	if r.cfg.OnEnd != nil {
		r.cfg.OnEnd(reason)
	}
}

func (r *Room) find(id string) *Participant {
	for i := range r.state.Participants {
		if r.state.Participants[i].ID == id {
			return &r.state.Participants[i]
		}
	}
	return nil
}

// apply recomputes the decision and pushes it out.
func (r *Room) apply() {
	d := Decide(r.state, r.cfg.Policy)
	r.state.RecordingTriggered = d.RecordingTriggered
	if d.NeedRecording && r.state.Recording == RecOff {
		if r.cfg.StartRecording == nil {
			// No recorder: recording cannot be guaranteed, so the rule
			// holds media (fail closed).
			r.state.Recording = RecFailed
			r.audit("", "", audit.RecordingFailed, r.cfg.Session.ID, audit.Reason{Reason: "no recorder configured"}, "")
		} else {
			r.state.Recording = RecStarting
			r.audit("", "", audit.RecordingStarting, r.cfg.Session.ID, nil, "")
			r.cfg.StartRecording()
		}
		d = Decide(r.state, r.cfg.Policy)
	}
	want := make(map[Edge]bool, len(d.Edges))
	for _, e := range d.Edges {
		want[e] = true
	}
	for e, open := range r.edges {
		if open && !want[e] {
			r.cfg.Gate.SetEdge(e.From, e.To, false)
			r.edges[e] = false
		}
	}
	for e := range want {
		if !r.edges[e] {
			r.cfg.Gate.SetEdge(e.From, e.To, true)
			r.edges[e] = true
		}
	}
	for _, p := range r.state.Participants {
		r.applySources(p)
	}
	holding := d.Pupils > 0 && !d.PupilMedia
	switch now := r.cfg.Now(); {
	case holding && r.heldSince.IsZero():
		r.heldSince = now
	case !holding && !r.heldSince.IsZero():
		r.heldTotal += now.Sub(r.heldSince)
		r.heldSince = time.Time{}
	}
	if d.Pupils > 0 && d.PupilMedia != r.media {
		action := audit.GateOpen
		if !d.PupilMedia {
			action = audit.GateHeld
		}
		r.audit("", "", action, r.cfg.Session.ID, audit.Gate{Reason: d.Hold, Pupils: d.Pupils, Staff: d.Staff}, "")
		r.media = d.PupilMedia
	}
	r.graceTimer(d)
	r.broadcast(d)
	r.persist()
}

func (r *Room) graceTimer(d Decision) {
	if d.Staff > 0 {
		r.hadStaff = true
		r.stopGrace()
		return
	}
	if r.hadStaff && r.grace == nil {
		r.grace = time.AfterFunc(r.cfg.Grace, func() {
			_ = r.do(func() {
				if Decide(r.state, r.cfg.Policy).Staff == 0 && !r.state.Ended {
					r.audit("", "", audit.SessionEnded, r.cfg.Session.ID, audit.Reason{Reason: "no staff returned"}, "")
					r.end("No member of staff returned, so the session has ended.")
				}
			})
		})
	}
}

func (r *Room) stopGrace() {
	if r.grace != nil {
		r.grace.Stop()
		r.grace = nil
	}
}

func (r *Room) stateMsg(p Participant, d Decision) StateMsg {
	gate := "open"
	if !d.PupilMedia && (p.Role == Pupil || d.Pupils > 0) || p.State != Admitted {
		gate = "held"
	}
	phase := string(p.State)
	if p.State == Left {
		phase = "waiting"
	}
	recording := r.state.Recording == RecStarting || r.state.Recording == RecConfirmed
	if recording && p.State == Admitted && NeedsNotice(p) {
		gate = "held"
	}
	msg := StateMsg{Type: "state", Phase: phase, Gate: gate, Banner: Banner(p, r.state, d), Reason: p.Reason,
		Recording: string(r.state.Recording), Locked: r.state.Locked, ChatPupils: !r.chatOff,
		Notice: recording && p.State == Admitted && NeedsNotice(p), WatchOnly: p.Role == Pupil && r.state.Streamed}
	if p.State == Admitted { // the lesson tools concern those in the lesson only
		msg.Muted, msg.CanUnmute = MutedOf(p, r.state), CanUnmute(p, r.state)
		msg.Screen, msg.Hand = SourcesOf(p, r.state).Screen, p.Hand > 0
		msg.OfferRecord = p.Role == Staff && d.Hold == HoldClassWaiting
	}
	return msg
}

// broadcast sends each connected participant what changed for them.
func (r *Room) broadcast(d Decision) {
	spot := SpotlightOf(r.state)
	roster := RosterMsg{Type: "roster", Participants: []Person{}, Hands: Hands(r.state), PupilMedia: PupilMediaOf(r.state)}
	if spot.ID != "" {
		roster.Spotlight = &spot
	}
	lobby := LobbyMsg{Type: "lobby", Waiting: []WaitingPerson{}}
	for _, p := range r.state.Participants {
		switch {
		case inRoom(p), Reconnecting(p):
			roster.Participants = append(roster.Participants, Person{ID: p.ID, Name: p.Name, Role: string(p.Role), Muted: MutedOf(p, r.state),
				Screen: SourcesOf(p, r.state).Screen, Hand: p.Hand > 0, Reconnecting: Reconnecting(p) || p.MediaReconnecting,
				NoVideoBrowser: p.NoVideoBrowser})
		case p.Connected && (p.State == Waiting || p.State == Denied):
			lobby.Waiting = append(lobby.Waiting, WaitingPerson{ID: p.ID, Name: p.Name, Email: p.Email, Role: string(p.Role),
				OnRoster: p.OnRoster, LooksLike: p.LooksLike, Denied: p.State == Denied, Reason: p.Reason, NoVideoBrowser: p.NoVideoBrowser})
		}
	}
	for _, p := range r.state.Participants {
		c := r.clients[p.ID]
		if c == nil {
			continue
		}
		r.sendIfChanged(c, p.ID+"/state", r.stateMsg(p, d))
		if p.State == Admitted {
			if _, ok := r.sent[p.ID+"/chat"]; !ok {
				r.sent[p.ID+"/chat"] = true
				c.Send(ChatHistoryMsg{Type: "chat_history", Messages: r.visibleChat()})
			}
			r.sendIfChanged(c, p.ID+"/roster", roster)
			if p.Role == Staff {
				r.sendIfChanged(c, p.ID+"/lobby", lobby)
			}
		}
	}
}

func (r *Room) sendIfChanged(c Client, key string, msg any) {
	if prev, ok := r.sent[key]; ok && reflect.DeepEqual(prev, msg) {
		return
	}
	r.sent[key] = msg
	c.Send(msg)
}

func (r *Room) audit(sub, name string, action audit.Action, target string, detail audit.Detail, ip string) {
	if r.cfg.Audit == nil {
		return
	}
	r.auditq.add(store.AuditEntry{Time: r.cfg.Now(), ActorSub: sub, ActorName: name,
		Action: action, Target: target, SessionID: r.cfg.Session.ID, Detail: audit.Encode(detail), RemoteIP: ip})
}

// auditAt queues an audit row of an event at t; unlike the room's other
// methods it may be called from any goroutine (the chat writer's).
func (r *Room) auditAt(t time.Time, sub, name string, action audit.Action, target string, detail audit.Detail) {
	if r.cfg.Audit == nil {
		return
	}
	r.auditq.add(store.AuditEntry{Time: t, ActorSub: sub, ActorName: name,
		Action: action, Target: target, SessionID: r.cfg.Session.ID, Detail: audit.Encode(detail)})
}

// muteAction is the audit action of staff's mute or unmute.
func muteAction(cmdType string) audit.Action {
	if cmdType == "mute" {
		return audit.RoomMute
	}
	return audit.RoomUnmute
}

// IsRefusal reports whether err is a rule refusal (not an internal fault).
func IsRefusal(err error) bool {
	var e *Error
	return errors.As(err, &e)
}
