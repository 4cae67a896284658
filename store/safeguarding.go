package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

const concernColumns = `id, session_id, raised_by_sub, raised_by, about, details, created, recorded, held_objects, state, pupils, kind`

// CreateConcern stores a new concern.
func (s *SQL) CreateConcern(ctx context.Context, c Concern) error {
	if c.Kind == "" {
		c.Kind = ConcernKindConcern
	}
	if c.Kind != ConcernKindConcern && c.Kind != ConcernKindWorry {
		return fmt.Errorf("store: create concern: kind %q is not %q or %q", c.Kind, ConcernKindConcern, ConcernKindWorry)
	}
	if c.ID == "" || c.SessionID == "" && c.Kind != ConcernKindWorry {
		return errors.New("store: create concern: ID and session required")
	}
	var enc rowEncoder
	created := enc.time("created", c.Created)
	if enc.err != nil {
		return fmt.Errorf("store: create concern: %w", enc.err)
	}
	if c.State == "" {
		c.State = ConcernFiled
	}
	if c.State != ConcernFiled && c.State != ConcernPending {
		return fmt.Errorf("store: create concern: state %q is not %q or %q", c.State, ConcernPending, ConcernFiled)
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO concerns (`+concernColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
		c.ID, c.SessionID, c.RaisedBySub, c.RaisedBy, c.About, c.Details, created, boolInt(c.Recorded), c.HeldObjects, c.State, encodeList(c.Pupils), c.Kind)
	if s.d.isDuplicateKey(err) {
		return fmt.Errorf("store: create concern %s: %w", c.ID, ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("store: create concern: %w", err)
	}
	return nil
}

func scanConcern(r rowScanner) (Concern, error) {
	var c Concern
	var created string
	var recorded int
	var pupils string
	if err := r.Scan(&c.ID, &c.SessionID, &c.RaisedBySub, &c.RaisedBy, &c.About, &c.Details, &created, &recorded, &c.HeldObjects,
		&c.State, &pupils, &c.Kind); err != nil {
		return Concern{}, err
	}
	var dec rowDecoder
	c.Created = dec.time("created", created)
	if c.Pupils = dec.list("pupils", pupils); len(c.Pupils) == 0 {
		c.Pupils = nil
	}
	c.Recorded = recorded != 0
	if dec.err != nil {
		return Concern{}, fmt.Errorf("concern %s: %w", c.ID, dec.err)
	}
	return c, nil
}

// CompleteConcern fills in a pending concern (raised in the room) from the
// concern form: who it is about, what happened, the pupils ticked, whether
// the session was recorded and how many objects were held; its state
// becomes filed. A concern that is not pending is ErrConflict.
func (s *SQL) CompleteConcern(ctx context.Context, c Concern) error {
	res, err := s.db.ExecContext(ctx, `UPDATE concerns SET about = $1, details = $2, pupils = $3, recorded = $4, held_objects = $5, state = $6
		WHERE id = $7 AND state = $8`, c.About, c.Details, encodeList(c.Pupils), boolInt(c.Recorded), c.HeldObjects, ConcernFiled, c.ID, ConcernPending)
	if err != nil {
		return fmt.Errorf("store: complete concern %s: %w", c.ID, err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		if _, err := s.GetConcern(ctx, c.ID); err != nil {
			return fmt.Errorf("store: complete concern: %w", err)
		}
		return fmt.Errorf("store: complete concern %s: not pending: %w", c.ID, ErrConflict)
	}
	return nil
}

// GetConcern returns a concern by ID.
func (s *SQL) GetConcern(ctx context.Context, id string) (Concern, error) {
	c, err := scanConcern(s.db.QueryRowContext(ctx, `SELECT `+concernColumns+` FROM concerns WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Concern{}, fmt.Errorf("store: concern %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Concern{}, fmt.Errorf("store: get concern: %w", err)
	}
	return c, nil
}

// ListConcerns returns concerns newest first; sessionID "" means all.
func (s *SQL) ListConcerns(ctx context.Context, sessionID string) ([]Concern, error) {
	q, args := `SELECT `+concernColumns+` FROM concerns`, []any{}
	if sessionID != "" {
		q += ` WHERE session_id = $1`
		args = append(args, sessionID)
	}
	rows, err := s.db.QueryContext(ctx, q+` ORDER BY created DESC, id`, args...)
	if err != nil {
		return nil, fmt.Errorf("store: list concerns: %w", err)
	}
	defer rows.Close()
	var out []Concern
	for rows.Next() {
		c, err := scanConcern(rows)
		if err != nil {
			return nil, fmt.Errorf("store: list concerns: %w", err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

const recordingColumns = `key, session_id, participant_id, participant_name, role, size, version_id, retain_until, held, created, deleted, part, started`

// PutRecordingObject inserts or replaces the index row of an object.
func (s *SQL) PutRecordingObject(ctx context.Context, o RecordingObject) error {
	if o.Key == "" || o.SessionID == "" {
		return errors.New("store: put recording object: key and session required")
	}
	var enc rowEncoder
	retain := enc.time("retain until", o.RetainUntil)
	created := enc.time("created", o.Created)
	deleted := enc.optTime("deleted", o.Deleted)
	started := enc.optTime("started", o.Started)
	if enc.err != nil {
		return fmt.Errorf("store: put recording object %s: %w", o.Key, enc.err)
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO recording_objects (`+recordingColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
		ON CONFLICT (key) DO UPDATE SET session_id = excluded.session_id, participant_id = excluded.participant_id,
			participant_name = excluded.participant_name, role = excluded.role, size = excluded.size,
			version_id = excluded.version_id, retain_until = excluded.retain_until, held = excluded.held,
			created = excluded.created, deleted = excluded.deleted, part = excluded.part, started = excluded.started`,
		o.Key, o.SessionID, o.ParticipantID, o.ParticipantName, o.Role, o.Size, o.VersionID, retain, boolInt(o.Held), created, deleted, o.Part, started)
	if err != nil {
		return fmt.Errorf("store: put recording object %s: %w", o.Key, err)
	}
	return nil
}

// ListRecordingObjects returns matching objects ordered by created, key.
func (s *SQL) ListRecordingObjects(ctx context.Context, f RecordingFilter) ([]RecordingObject, error) {
	var conds []string
	var args []any
	add := func(cond string, v any) {
		args = append(args, v)
		conds = append(conds, strings.ReplaceAll(cond, "?", fmt.Sprintf("$%d", len(args))))
	}
	if f.SessionID != "" {
		add("session_id = ?", f.SessionID)
	}
	if f.Held != nil {
		add("held = ?", boolInt(*f.Held))
	}
	if !f.Since.IsZero() {
		add("created >= ?", mustEncodeTime(f.Since))
	}
	if !f.Until.IsZero() {
		add("created < ?", mustEncodeTime(f.Until))
	}
	if !f.Deleted {
		conds = append(conds, "deleted IS NULL")
	}
	q := `SELECT ` + recordingColumns + ` FROM recording_objects`
	if len(conds) > 0 {
		q += ` WHERE ` + strings.Join(conds, " AND ")
	}
	rows, err := s.db.QueryContext(ctx, q+` ORDER BY created, key`, args...)
	if err != nil {
		return nil, fmt.Errorf("store: list recording objects: %w", err)
	}
	defer rows.Close()
	var out []RecordingObject
	name := strings.ToLower(f.Name)
	for rows.Next() {
		var o RecordingObject
		var retain, created string
		var held int
		var deleted, started sql.NullString
		if err := rows.Scan(&o.Key, &o.SessionID, &o.ParticipantID, &o.ParticipantName, &o.Role, &o.Size, &o.VersionID,
			&retain, &held, &created, &deleted, &o.Part, &started); err != nil {
			return nil, fmt.Errorf("store: list recording objects: %w", err)
		}
		var dec rowDecoder
		o.RetainUntil = dec.time("retain until", retain)
		o.Created = dec.time("created", created)
		o.Deleted = dec.optTime("deleted", deleted)
		o.Started = dec.optTime("started", started)
		o.Held = held != 0
		if dec.err != nil {
			return nil, fmt.Errorf("store: recording object %s: %w", o.Key, dec.err)
		}
		if name != "" && !strings.Contains(strings.ToLower(o.ParticipantName), name) {
			continue
		}
		out = append(out, o)
	}
	return out, rows.Err()
}

// SetRecordingHeld marks every object of a session held or released.
func (s *SQL) SetRecordingHeld(ctx context.Context, sessionID string, held bool) (int, error) {
	res, err := s.db.ExecContext(ctx, `UPDATE recording_objects SET held = $1 WHERE session_id = $2 AND deleted IS NULL`, boolInt(held), sessionID)
	if err != nil {
		return 0, fmt.Errorf("store: set recording held: %w", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}

// MarkRecordingDeleted records that the sweeper deleted an object; an
// object not in the index is an error wrapping ErrNotFound.
func (s *SQL) MarkRecordingDeleted(ctx context.Context, key string, at time.Time) error {
	var enc rowEncoder
	t := enc.time("deleted", at)
	if enc.err != nil {
		return fmt.Errorf("store: mark deleted: %w", enc.err)
	}
	res, err := s.db.ExecContext(ctx, `UPDATE recording_objects SET deleted = $1 WHERE key = $2`, t, key)
	if err != nil {
		return fmt.Errorf("store: mark deleted %s: %w", key, err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return fmt.Errorf("store: mark deleted: recording object %s: %w", key, ErrNotFound)
	}
	return nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// NextRecordingPart takes the next part number (1, 2, ...) of a file of a
// session. The number is durable once returned: it is never returned again
// for that file, whatever restarts in between.
func (s *SQL) NextRecordingPart(ctx context.Context, sessionID, fileID string) (int, error) {
	if sessionID == "" || fileID == "" {
		return 0, errors.New("store: next recording part: session and file required")
	}
	var n int
	err := s.db.QueryRowContext(ctx, `INSERT INTO recording_parts (session_id, file_id, last_part) VALUES ($1, $2, 1)
		ON CONFLICT (session_id, file_id) DO UPDATE SET last_part = recording_parts.last_part + 1
		RETURNING last_part`, sessionID, fileID).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("store: next recording part of %s/%s: %w", sessionID, fileID, err)
	}
	return n, nil
}
