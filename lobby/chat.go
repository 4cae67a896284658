package lobby

import (
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
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
	m := ChatMsg{Type: "chat", ID: "m" + strconv.Itoa(len(r.chatLog)+1), From: Person{ID: p.ID, Name: p.Name, Role: string(p.Role)}, Text: text, Time: now}
	r.chatLog = append(r.chatLog, m)
	r.audit(p.Subject, p.Name, "chat.message", m.ID, map[string]any{"text": text, "role": string(p.Role)}, "")
	for id, c := range r.clients {
		if q := r.find(id); q != nil && q.State == Admitted {
			c.Send(m)
		}
	}
	return nil
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
