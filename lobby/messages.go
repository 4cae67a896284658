package lobby

import "time"

// The messages the Room sends to clients. The web layer sends them as JSON
// over the WebSocket (DESIGN.md "Signalling").

// StateMsg tells one participant where they are and whether media flows.
type StateMsg struct {
	Type      string `json:"type"` // "state"
	Phase     string `json:"phase"`
	Gate      string `json:"gate"` // "open" or "held"
	Banner    string `json:"banner"`
	Reason    string `json:"reason,omitempty"`
	Recording string `json:"recording"`
	Locked    bool   `json:"locked"`
	Muted     Muted  `json:"muted"`
	// Notice asks the participant to acknowledge that the session is recorded.
	Notice bool `json:"notice"`
	// ChatPupils says whether pupils may write in the chat.
	ChatPupils bool `json:"chat_pupils"`
}

// ChatMsg is one chat message; it always goes to the whole room.
type ChatMsg struct {
	Type    string    `json:"type"` // "chat"
	ID      string    `json:"id"`
	From    Person    `json:"from"`
	Text    string    `json:"text"`
	Time    time.Time `json:"time"`
	Deleted bool      `json:"-"`
}

// ChatHistoryMsg gives a newly admitted participant the chat so far.
type ChatHistoryMsg struct {
	Type     string    `json:"type"` // "chat_history"
	Messages []ChatMsg `json:"messages"`
}

// ChatDeletedMsg tells the room that staff removed a message from view.
type ChatDeletedMsg struct {
	Type string `json:"type"` // "chat_deleted"
	ID   string `json:"id"`
}

// Muted says which of a participant's sources staff have switched off.
type Muted struct {
	Audio bool `json:"audio"`
	Video bool `json:"video"`
}

// Person is an admitted participant as others see them.
type Person struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	Role  string `json:"role"`
	Muted Muted  `json:"muted"`
}

// RosterMsg lists the admitted, connected participants.
type RosterMsg struct {
	Type         string   `json:"type"` // "roster"
	Participants []Person `json:"participants"`
}

// WaitingPerson is someone in the lobby, as staff see them.
type WaitingPerson struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	Email    string `json:"email"`
	Role     string `json:"role"`
	OnRoster bool   `json:"on_roster"`
	Denied   bool   `json:"denied,omitempty"`
	Reason   string `json:"reason,omitempty"`
}

// LobbyMsg is the waiting list, for staff.
type LobbyMsg struct {
	Type    string          `json:"type"` // "lobby"
	Waiting []WaitingPerson `json:"waiting"`
}

// ErrorMsg reports a refused or malformed message; nothing changed.
type ErrorMsg struct {
	Type    string `json:"type"` // "error"
	Code    string `json:"code"`
	Message string `json:"message"`
}
