package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// RoomRecord is the durable state of a live room (R16): what must survive a
// reconnection, a gateway restart or a move to another gateway. A room
// created again for the session starts from it.
type RoomRecord struct {
	SessionID string `json:"-"`
	Locked    bool   `json:"locked"`
	// ChatSeq is the number of the last chat message ID given out (m1, m2,
	// ...): IDs never repeat in a session.
	ChatSeq int `json:"chat_seq"`
	// RecordingTriggered: the one-to-one rule has applied, so (policy
	// one_to_one) the session is recorded to its end.
	RecordingTriggered bool `json:"recording_triggered"`
	// RecordChosen: staff chose to record a lone pupil's lesson (a class
	// lesson is otherwise not recorded for one pupil there).
	RecordChosen     bool `json:"record_chosen,omitempty"`
	PupilAudioLocked bool `json:"pupil_audio_locked"`
	PupilVideoLocked bool `json:"pupil_video_locked"`
	ChatOff          bool `json:"chat_off"`
	// Ended: the room ended the session; it is never opened again.
	Ended        bool              `json:"ended,omitempty"`
	Participants []RoomParticipant `json:"participants"`
	// Saved is when the room last saved (it saves at least every
	// RoomKeepAlive while it runs): after a crash, how long it has been gone.
	Saved time.Time `json:"-"`
}

// RoomParticipant is one participant's durable state in a room.
type RoomParticipant struct {
	ID            string `json:"id"`
	Subject       string `json:"subject"`
	Name          string `json:"name"`
	Email         string `json:"email,omitempty"`
	Role          string `json:"role"`
	State         string `json:"state"`
	Reason        string `json:"reason,omitempty"`
	NoticeAcked   bool   `json:"notice_acked,omitempty"`
	AudioMuted    bool   `json:"audio_muted,omitempty"`
	VideoMuted    bool   `json:"video_muted,omitempty"`
	ScreenGranted bool   `json:"screen_granted,omitempty"`
	// AwaySince is when an admitted participant's connection closed (zero
	// while connected): they may come back without admission until it is
	// rejoin_grace old.
	AwaySince time.Time `json:"away_since,omitzero"`
}

// Rooms is the part of Store that keeps live rooms' durable state.
type Rooms interface {
	// SaveRoom replaces the session's room record.
	SaveRoom(ctx context.Context, r RoomRecord) error
	// LoadRoom returns the session's room record, or ErrNotFound.
	LoadRoom(ctx context.Context, sessionID string) (RoomRecord, error)
}

// SaveRoom replaces the session's room record.
func (s *SQL) SaveRoom(ctx context.Context, r RoomRecord) error {
	if r.SessionID == "" {
		return errors.New("store: save room: session ID required")
	}
	body, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("store: save room %s: %w", r.SessionID, err)
	}
	var enc rowEncoder
	saved := enc.time("saved", r.Saved)
	if enc.err != nil {
		return fmt.Errorf("store: save room %s: %w", r.SessionID, enc.err)
	}
	if _, err := s.db.ExecContext(ctx, `INSERT INTO room_state (session_id, record, saved) VALUES ($1, $2, $3)
		ON CONFLICT (session_id) DO UPDATE SET record = excluded.record, saved = excluded.saved`, r.SessionID, string(body), saved); err != nil {
		return fmt.Errorf("store: save room %s: %w", r.SessionID, err)
	}
	return nil
}

// LoadRoom returns the session's room record, or ErrNotFound.
func (s *SQL) LoadRoom(ctx context.Context, sessionID string) (RoomRecord, error) {
	var body, saved string
	err := s.db.QueryRowContext(ctx, `SELECT record, saved FROM room_state WHERE session_id = $1`, sessionID).Scan(&body, &saved)
	if errors.Is(err, sql.ErrNoRows) {
		return RoomRecord{}, fmt.Errorf("store: room %s: %w", sessionID, ErrNotFound)
	}
	if err != nil {
		return RoomRecord{}, fmt.Errorf("store: load room %s: %w", sessionID, err)
	}
	var r RoomRecord
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		return RoomRecord{}, fmt.Errorf("store: room %s: bad record: %w", sessionID, err)
	}
	var dec rowDecoder
	r.SessionID, r.Saved = sessionID, dec.time("saved", saved)
	if dec.err != nil {
		return RoomRecord{}, fmt.Errorf("store: room %s: %w", sessionID, dec.err)
	}
	return r, nil
}
