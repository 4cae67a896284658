package lobby

import (
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/chaperone-edu/chaperone/audit"
	"github.com/chaperone-edu/chaperone/store"
)

// Chat limits.
const (
	ChatMaxRunes   = 1000
	chatPupilBurst = 5                // messages a pupil may send ...
	chatPupilEvery = 10 * time.Second // ... in this long
)

// chat posts a message from participant by to the whole room. There is no
// private channel: every message goes to everyone admitted.
func (r *Room) chat(by, text string) error {
	p := r.find(by)
	if p == nil || p.State != Admitted || !p.Connected {
		return &Error{Kind: Forbidden, Message: "Only people in the lesson can chat."}
	}
	if p.Role == Pupil && r.chatOff {
		return &Error{Kind: Forbidden, Message: "Your teacher has turned the chat off for pupils."}
	}
	text = strings.TrimSpace(strings.Map(func(c rune) rune {
		if c == '\n' || !unicode.IsControl(c) {
			return c
		}
		return -1
	}, text))
	switch n := utf8.RuneCountInString(text); {
	case n == 0:
		return &Error{Kind: Invalid, Field: "text", Message: "The message is empty."}
	case n > ChatMaxRunes:
		return &Error{Kind: Invalid, Field: "text", Message: "Messages can be at most 1,000 characters long."}
	}
	if err := CheckText("text", "message", text); err != nil {
		return err
	}
	now := r.cfg.Now()
	if p.Role == Pupil {
		recent := r.chatSent[p.ID][:0]
		for _, t := range r.chatSent[p.ID] {
			if now.Sub(t) < chatPupilEvery {
				recent = append(recent, t)
			}
		}
		if len(recent) >= chatPupilBurst {
			r.chatSent[p.ID] = recent
			return &Error{Kind: Conflict, Message: "You are sending messages too quickly. Wait a few seconds."}
		}
		r.chatSent[p.ID] = append(recent, now)
	}
	m := ChatMsg{Type: "chat", ID: "m" + strconv.Itoa(r.chatSeq+1), From: Person{ID: p.ID, Name: p.Name, Role: string(p.Role)}, Text: text, Time: now}
	sender, subject := p.ID, p.Subject
	sent := func() { // on the room's goroutine, once the text is stored
		r.chatLog = append(r.chatLog, m)
		for id, c := range r.clients {
			if q := r.find(id); q != nil && q.State == Admitted {
				c.Send(m)
			}
		}
	}
	if r.chatw == nil {
		r.chatSeq++
		r.persist()
		r.audit(subject, m.From.Name, audit.ChatMessage, m.ID, audit.Chat{Role: m.From.Role, SHA256: textHash(text)}, "")
		sent()
		return nil
	}
	// The text is stored before anyone sees it: a message that cannot be
	// kept for the DSL is not sent. The store is written off the room's
	// goroutine (chatq.go); the message's number is taken now, so numbers
	// never repeat, even if this one is never sent.
	row := store.ChatMessage{SessionID: r.cfg.Session.ID, ID: m.ID, Time: now, SenderSub: subject, SenderName: m.From.Name, Role: m.From.Role, Text: text}
	queued := r.chatw.add(chatOp{add: &row, after: func(err error) {
		if err != nil {
			r.log.Error("chat message not stored", slog.String("message", m.ID), slog.Any("err", err))
			r.post(func() { r.tell(sender, errChatNotSent) })
			return
		}
		r.auditAt(now, subject, m.From.Name, audit.ChatMessage, m.ID, audit.Chat{Role: m.From.Role, SHA256: textHash(text)})
		r.post(sent)
	}})
	if !queued {
		return &Error{Kind: Conflict, Message: errChatNotSent.Message}
	}
	r.chatSeq++
	r.persist()
	return nil
}

// errChatNotSent tells a sender their message was not kept (the store
// refused it): it was not sent either.
var errChatNotSent = ErrorMsg{Type: "error", Code: "conflict", Message: "Your message could not be sent just now; try again."}

// tell sends msg to participant id's connection, if they are connected.
func (r *Room) tell(id string, msg any) {
	if c, ok := r.clients[id]; ok {
		c.Send(msg)
	}
}

// deleteChat deletes chat message i (staff's tool) once the store has
// marked it deleted.
func (r *Room) deleteChat(actor *Participant, i int) error {
	m := r.chatLog[i]
	if r.deleting[m.ID] {
		return nil // already on its way
	}
	by, sub, id := actor.Name, actor.Subject, actor.ID
	at := r.cfg.Now()
	deleted := func() { // on the room's goroutine, once the store has it
		delete(r.deleting, m.ID)
		for i := range r.chatLog {
			if c := &r.chatLog[i]; c.ID == m.ID && !c.Deleted {
				c.Deleted = true
				for pid, cl := range r.clients {
					if p := r.find(pid); p != nil && p.State == Admitted {
						cl.Send(ChatDeletedMsg{Type: "chat_deleted", ID: m.ID})
					}
				}
			}
		}
	}
	detail := audit.Chat{Whom: m.From.Name, SHA256: textHash(m.Text)}
	if r.chatw == nil {
		r.audit(sub, by, audit.ChatDeleted, m.ID, detail, "")
		deleted()
		return nil
	}
	r.deleting[m.ID] = true
	queued := r.chatw.add(chatOp{del: &chatDeletion{sessionID: r.cfg.Session.ID, id: m.ID, by: by, at: at}, after: func(err error) {
		if err != nil {
			r.log.Error("chat deletion not stored", slog.String("message", m.ID), slog.Any("err", err))
			r.post(func() { delete(r.deleting, m.ID); r.tell(id, errChatNotDeleted) })
			return
		}
		r.auditAt(at, sub, by, audit.ChatDeleted, m.ID, detail)
		r.post(deleted)
	}})
	if !queued {
		delete(r.deleting, m.ID)
		return &Error{Kind: Conflict, Message: errChatNotDeleted.Message}
	}
	return nil
}

var errChatNotDeleted = ErrorMsg{Type: "error", Code: "conflict", Message: "The message could not be deleted just now; try again."}

// textHash is the hex SHA-256 of a chat message's text: the audit log keeps
// it so the record proves what was said without holding the words.
func textHash(text string) string {
	sum := sha256.Sum256([]byte(text))
	return hex.EncodeToString(sum[:])
}

// visibleChat is the chat so far without deleted messages.
func (r *Room) visibleChat() []ChatMsg {
	out := []ChatMsg{}
	for _, m := range r.chatLog {
		if !m.Deleted {
			out = append(out, m)
		}
	}
	return out
}
