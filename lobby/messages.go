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
	// CanUnmute says which muted sources the participant may switch back
	// on themselves (see CanUnmute); the others only staff can.
	CanUnmute Muted `json:"can_unmute"`
	// Screen says whether the participant may share a screen.
	Screen bool `json:"screen"`
	// Hand says whether the participant's hand is raised.
	Hand bool `json:"hand"`
	// WatchOnly says the participant only watches and listens (a pupil in a
	// streamed session): the page neither captures nor sends camera or
	// microphone.
	WatchOnly bool `json:"watch_only"`
	// OfferRecord asks staff to choose: admit one more pupil, or start
	// recording to teach the one pupil there (Command "record").
	OfferRecord bool `json:"offer_record,omitempty"`
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

// Muted says which of a participant's sources staff have switched off (by
// muting them, or by not letting pupils unmute themselves).
type Muted struct {
	Audio bool `json:"audio"`
	Video bool `json:"video"`
}

// Person is an admitted participant as others see them.
type Person struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Role   string `json:"role"`
	Muted  Muted  `json:"muted"`
	Screen bool   `json:"screen"` // may share a screen
	Hand   bool   `json:"hand"`   // hand raised (RosterMsg.Hands has the order)
	// Reconnecting: their connection closed; they may be back in a moment
	// (within the rejoin grace) without being admitted again.
	Reconnecting bool `json:"reconnecting,omitempty"`
	// NoVideoBrowser: their browser cannot make video calls (they were
	// told which browsers work).
	NoVideoBrowser bool `json:"no_video_browser,omitempty"`
}

// RosterMsg lists the admitted, connected participants, with the lesson
// tools' state everyone sees.
type RosterMsg struct {
	Type         string   `json:"type"` // "roster"
	Participants []Person `json:"participants"`
	// Hands are the IDs of those with a raised hand, first raised first.
	Hands []string `json:"hands"`
	// Spotlight is what staff pinned as everyone's main view, if anything.
	Spotlight *Spotlight `json:"spotlight"`
	// PupilMedia says whether pupils may unmute themselves and switch
	// their cameras on.
	PupilMedia PupilMedia `json:"pupil_media"`
}

// WaitingPerson is someone in the lobby, as staff see them.
type WaitingPerson struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	Email    string `json:"email"`
	Role     string `json:"role"`
	OnRoster bool   `json:"on_roster"`
	// LooksLike: another pupil on the class list has a name that looks
	// like this one's (Participant.LooksLike).
	LooksLike string `json:"looks_like,omitempty"`
	Denied    bool   `json:"denied,omitempty"`
	Reason    string `json:"reason,omitempty"`
	// NoVideoBrowser: see Person.
	NoVideoBrowser bool `json:"no_video_browser,omitempty"`
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
