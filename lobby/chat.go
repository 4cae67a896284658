package lobby

import (
	"context"
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
	// The text is stored before anyone sees it: a message that cannot be
	// kept for the DSL is not sent.
	if r.cfg.Chat != nil {
		if err := r.cfg.Chat.AddChatMessage(context.Background(), store.ChatMessage{SessionID: r.cfg.Session.ID, ID: m.ID, Time: now,
			SenderSub: p.Subject, SenderName: p.Name, Role: string(p.Role), Text: text}); err != nil {
			r.log.Error("chat message not stored", slog.String("message", m.ID), slog.Any("err", err))
			return &Error{Kind: Conflict, Message: "Your message could not be sent just now; try again."}
		}
	}
	r.chatSeq++
	r.chatLog = append(r.chatLog, m)
	r.persist()
	r.audit(p.Subject, p.Name, audit.ChatMessage, m.ID, audit.Chat{Role: string(p.Role), SHA256: textHash(text)}, "")
	for id, c := range r.clients {
		if q := r.find(id); q != nil && q.State == Admitted {
			c.Send(m)
		}
	}
	return nil
}

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
