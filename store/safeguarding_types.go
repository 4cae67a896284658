package store

import (
	"context"
	"time"
)

// Concern is a safeguarding concern raised by staff about a session.
type Concern struct {
	ID          string
	SessionID   string
	RaisedBySub string
	RaisedBy    string // verified full name
	About       string // who it is about (names), as the member of staff wrote it
	Details     string // what happened, free text
	Created     time.Time
	Recorded    bool     // the session was being recorded
	HeldObjects int      // recording object versions put on legal hold
	State       string   // ConcernPending or ConcernFiled
	Pupils      []string // subjects of the pupils ticked on the form
	// Kind is ConcernKindConcern (raised by staff) or ConcernKindWorry (a
	// pupil's "I'm worried": RaisedBy is the pupil, Details their words,
	// SessionID the lesson it came from, if any).
	Kind string
}

// Kinds of a Concern.
const (
	ConcernKindConcern = "concern"
	ConcernKindWorry   = "worry"
)

// States of a Concern.
const (
	// ConcernPending: raised in the room ("stop and raise a concern"); the
	// DSL has been told; the form with the details is not filled in yet.
	ConcernPending = "pending"
	// ConcernFiled: the concern form has been filled in.
	ConcernFiled = "filed"
)

// ChatMessage is one message of a session's chat, as the room stored it.
type ChatMessage struct {
	SessionID  string
	ID         string // the room's message ID
	Time       time.Time
	SenderSub  string
	SenderName string // verified full name
	Role       string
	Text       string
	DeletedAt  time.Time // zero unless staff deleted it in the room
	DeletedBy  string
}

// Chat is the part of Store that holds sessions' chat. The text lives only
// here (the audit log has a hash of it), so it can be deleted with the
// session's stored transcript when retention has passed.
type Chat interface {
	// AddChatMessage stores a message.
	AddChatMessage(ctx context.Context, m ChatMessage) error
	// DeleteChatMessage marks the latest undeleted message of a session
	// with that ID deleted (the text stays); none is ErrNotFound.
	DeleteChatMessage(ctx context.Context, sessionID, id, by string, at time.Time) error
	// ListChatMessages returns a session's messages, oldest first.
	ListChatMessages(ctx context.Context, sessionID string) ([]ChatMessage, error)
	// PurgeChat deletes a session's messages and returns how many.
	PurgeChat(ctx context.Context, sessionID string) (int, error)
}

// RecordingObject is one stored recording file (or manifest) of a session.
type RecordingObject struct {
	Key             string // S3 key; primary key
	SessionID       string
	ParticipantID   string // "" for the manifest
	ParticipantName string
	Role            string
	Size            int64
	VersionID       string
	RetainUntil     time.Time
	Held            bool
	Created         time.Time
	Deleted         time.Time // zero while it exists
	Part            int       // the recording part (1, 2, ...); 0 for manifests, transcripts and older recordings
	Started         time.Time // when the part's first packet was written; zero if unknown
}

// RecordingFilter selects recording objects; zero fields match everything.
type RecordingFilter struct {
	SessionID string
	Name      string // participant name contains (case-insensitive)
	Held      *bool
	Since     time.Time // Created at or after
	Until     time.Time // Created before
	Deleted   bool      // include deleted rows
}

// Safeguarding is the part of Store that holds concerns and the index of
// stored recordings.
type Safeguarding interface {
	CreateConcern(ctx context.Context, c Concern) error
	GetConcern(ctx context.Context, id string) (Concern, error)
	// ListConcerns returns concerns newest first; sessionID "" means all.
	ListConcerns(ctx context.Context, sessionID string) ([]Concern, error)
	// CompleteConcern fills in a pending concern and files it; a concern
	// that is not pending is ErrConflict.
	CompleteConcern(ctx context.Context, c Concern) error

	// PutRecordingObject inserts or replaces the index row of an object.
	PutRecordingObject(ctx context.Context, o RecordingObject) error
	ListRecordingObjects(ctx context.Context, f RecordingFilter) ([]RecordingObject, error)
	// NextRecordingPart takes the next part number of a file (a
	// participant's camera or screen) of a session: 1 the first time, and
	// never the same number twice.
	NextRecordingPart(ctx context.Context, sessionID, fileID string) (int, error)
	// SetRecordingHeld marks every object of a session held or released.
	SetRecordingHeld(ctx context.Context, sessionID string, held bool) (int, error)
	// MarkRecordingDeleted records that an object was deleted by the sweeper.
	MarkRecordingDeleted(ctx context.Context, key string, at time.Time) error
}

// E-mail states of a Notification.
const (
	EmailNone     = ""         // no SMTP server configured
	EmailQueued   = "queued"   // waiting to be sent
	EmailRetrying = "retrying" // an attempt failed; it will be tried again
	EmailSent     = "sent"     // the SMTP server accepted it
	EmailFailed   = "failed"   // given up; EmailError says why
)

// Notification records that one person was told of a concern.
type Notification struct {
	ID             string
	ConcernID      string
	RecipientEmail string // lower case
	RecipientName  string
	Reason         string // e.g. "safeguarding lead", "year lead (year-8)"
	Created        time.Time
	Opened         time.Time // zero until the recipient opens the concern
	EmailStatus    string    // one of the Email* states
	EmailError     string
	EmailAt        time.Time // when EmailStatus last changed (zero: never)
}

// NotificationFilter selects notifications; zero fields match everything.
type NotificationFilter struct {
	ConcernID string
	Email     string // recipient, compared in lower case
	Limit     int    // 0 means no limit
}

// Notifications is the part of Store that records who was told of a
// concern.
type Notifications interface {
	// CreateNotification stores a notification; a second one for the same
	// concern and recipient is ErrConflict.
	CreateNotification(ctx context.Context, n Notification) error
	// ListNotifications returns matching notifications, newest first.
	ListNotifications(ctx context.Context, f NotificationFilter) ([]Notification, error)
	// MarkNotificationOpened sets the opened time of the recipient's
	// notification of a concern, if it is not set yet (and their name, if
	// it was not known); it reports whether the recipient has a
	// notification of that concern.
	MarkNotificationOpened(ctx context.Context, concernID, email, name string, at time.Time) (bool, error)
	// SetNotificationEmail records the e-mail state of a notification.
	SetNotificationEmail(ctx context.Context, id, status, errText string, at time.Time) error
}
