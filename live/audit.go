package live

import "time"

// Action is an audit action this package writes.
type Action string

// Audit actions written by the recording lifecycle. Their details are the
// typed structs below, encoded as JSON.
const (
	ActionRecordingStored  Action = "recording.stored"  // StoredDetail
	ActionRecordingDeleted Action = "recording.deleted" // DeletedDetail
	ActionChatPurged       Action = "chat.purged"       // PurgedDetail
	ActionSessionEnded     Action = "session.ended"     // EndedDetail
)

// StoredDetail is the detail of ActionRecordingStored.
type StoredDetail struct {
	Participant string    `json:"participant"`
	Role        string    `json:"role,omitempty"`
	Part        int       `json:"part,omitempty"`
	Size        int64     `json:"size"`
	SpoolSize   int64     `json:"spool_size,omitempty"`
	RetainUntil time.Time `json:"retain_until"`
	// Recovered is set for a part indexed by the reconciler (a crash, a
	// restart, or a finish whose index write failed).
	Recovered bool `json:"recovered,omitempty"`
}

// DeletedDetail is the detail of ActionRecordingDeleted.
type DeletedDetail struct {
	Version     string    `json:"version"`
	RetainUntil time.Time `json:"retain_until"`
	Size        int64     `json:"size"`
}

// PurgedDetail is the detail of ActionChatPurged.
type PurgedDetail struct {
	Messages int    `json:"messages"`
	Reason   string `json:"reason"`
}

// EndedDetail is the detail of ActionSessionEnded.
type EndedDetail struct {
	Reason string `json:"reason"`
}
