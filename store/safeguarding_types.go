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
	Recorded    bool // the session was being recorded
	HeldObjects int  // recording object versions put on legal hold
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

	// PutRecordingObject inserts or replaces the index row of an object.
	PutRecordingObject(ctx context.Context, o RecordingObject) error
	ListRecordingObjects(ctx context.Context, f RecordingFilter) ([]RecordingObject, error)
	// SetRecordingHeld marks every object of a session held or released.
	SetRecordingHeld(ctx context.Context, sessionID string, held bool) (int, error)
	// MarkRecordingDeleted records that an object was deleted by the sweeper.
	MarkRecordingDeleted(ctx context.Context, key string, at time.Time) error
}
