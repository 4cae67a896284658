package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// pendingRosterLifetime is how long a previewed import can be applied.
const pendingRosterLifetime = 24 * time.Hour

// ReplaceRoster implements Rosters.
func (s *SQL) ReplaceRoster(ctx context.Context, r Roster, base string, st RosterState) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: replace roster: %w", err)
	}
	defer tx.Rollback()
	var cur string
	err = tx.QueryRowContext(ctx, `SELECT hash FROM roster_state WHERE id = 1`).Scan(&cur)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("store: replace roster: %w", err)
	}
	if cur != base {
		return fmt.Errorf("store: replace roster: the class list changed since the preview: %w", ErrConflict)
	}
	at, err := encodeTime(st.ImportedAt)
	if err != nil {
		return fmt.Errorf("store: replace roster: %w", err)
	}
	for _, q := range []string{`DELETE FROM roster_enrollments`, `DELETE FROM roster_classes`, `DELETE FROM roster_people`, `DELETE FROM roster_state`} {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("store: replace roster: %w", err)
		}
	}
	for _, p := range r.People {
		if _, err := tx.ExecContext(ctx, `INSERT INTO roster_people (sourced_id, email, given_name, family_name) VALUES ($1, $2, $3, $4)`,
			p.SourcedID, strings.ToLower(p.Email), p.GivenName, p.FamilyName); err != nil {
			return fmt.Errorf("store: replace roster: person %s: %w", p.SourcedID, err)
		}
	}
	for _, c := range r.Classes {
		if _, err := tx.ExecContext(ctx, `INSERT INTO roster_classes (sourced_id, title) VALUES ($1, $2)`, c.SourcedID, c.Title); err != nil {
			return fmt.Errorf("store: replace roster: class %s: %w", c.SourcedID, err)
		}
	}
	for _, e := range r.Enrollments {
		if _, err := tx.ExecContext(ctx, `INSERT INTO roster_enrollments (class_id, person_id, role) VALUES ($1, $2, $3)`, e.ClassID, e.PersonID, string(e.Role)); err != nil {
			return fmt.Errorf("store: replace roster: enrolment %s in %s: %w", e.PersonID, e.ClassID, err)
		}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO roster_state (id, hash, source, imported_at, imported_by) VALUES (1, $1, $2, $3, $4)`,
		st.Hash, st.Source, at, st.ImportedBy); err != nil {
		return fmt.Errorf("store: replace roster: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: replace roster: %w", err)
	}
	return nil
}

// GetRoster implements Rosters.
func (s *SQL) GetRoster(ctx context.Context) (Roster, RosterState, error) {
	var r Roster
	var st RosterState
	var at string
	err := s.db.QueryRowContext(ctx, `SELECT hash, source, imported_at, imported_by FROM roster_state WHERE id = 1`).Scan(&st.Hash, &st.Source, &at, &st.ImportedBy)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return r, st, nil
	case err != nil:
		return r, st, fmt.Errorf("store: get roster: %w", err)
	}
	if st.ImportedAt, err = decodeTime(at); err != nil {
		return r, st, fmt.Errorf("store: get roster: %w", err)
	}
	err = s.queryEach(ctx, `SELECT sourced_id, email, given_name, family_name FROM roster_people ORDER BY sourced_id`, func(rows *sql.Rows) error {
		var p RosterPerson
		err := rows.Scan(&p.SourcedID, &p.Email, &p.GivenName, &p.FamilyName)
		r.People = append(r.People, p)
		return err
	})
	if err == nil {
		err = s.queryEach(ctx, `SELECT sourced_id, title FROM roster_classes ORDER BY sourced_id`, func(rows *sql.Rows) error {
			var c RosterClass
			err := rows.Scan(&c.SourcedID, &c.Title)
			r.Classes = append(r.Classes, c)
			return err
		})
	}
	if err == nil {
		err = s.queryEach(ctx, `SELECT class_id, person_id, role FROM roster_enrollments ORDER BY class_id, person_id`, func(rows *sql.Rows) error {
			var e RosterEnrollment
			err := rows.Scan(&e.ClassID, &e.PersonID, &e.Role)
			r.Enrollments = append(r.Enrollments, e)
			return err
		})
	}
	if err != nil {
		return Roster{}, st, fmt.Errorf("store: get roster: %w", err)
	}
	return r, st, nil
}

func (s *SQL) queryEach(ctx context.Context, q string, scan func(*sql.Rows) error, args ...any) error {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

const rosterClassCountQuery = `
	SELECT c.sourced_id, c.title,
	       (SELECT COUNT(*) FROM roster_enrollments e WHERE e.class_id = c.sourced_id AND e.role = 'student')
	FROM roster_classes c`

// ListRosterClasses implements Rosters.
func (s *SQL) ListRosterClasses(ctx context.Context) ([]RosterClassCount, error) {
	var out []RosterClassCount
	err := s.queryEach(ctx, rosterClassCountQuery+` ORDER BY c.title, c.sourced_id`, func(rows *sql.Rows) error {
		var c RosterClassCount
		err := rows.Scan(&c.SourcedID, &c.Title, &c.Pupils)
		out = append(out, c)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: list roster classes: %w", err)
	}
	return out, nil
}

// GetRosterClass implements Rosters.
func (s *SQL) GetRosterClass(ctx context.Context, id string) (RosterClassCount, error) {
	var c RosterClassCount
	err := s.db.QueryRowContext(ctx, rosterClassCountQuery+` WHERE c.sourced_id = $1`, id).Scan(&c.SourcedID, &c.Title, &c.Pupils)
	if errors.Is(err, sql.ErrNoRows) {
		return c, ErrNotFound
	}
	if err != nil {
		return c, fmt.Errorf("store: get roster class %s: %w", id, err)
	}
	return c, nil
}

// RosterClassesOf implements Rosters.
func (s *SQL) RosterClassesOf(ctx context.Context, email string) ([]string, error) {
	var out []string
	err := s.queryEach(ctx, `
		SELECT e.class_id FROM roster_enrollments e JOIN roster_people p ON p.sourced_id = e.person_id
		WHERE p.email = $1 AND e.role = 'student' ORDER BY e.class_id`, func(rows *sql.Rows) error {
		var id string
		err := rows.Scan(&id)
		out = append(out, id)
		return err
	}, strings.ToLower(strings.TrimSpace(email)))
	if err != nil {
		return nil, fmt.Errorf("store: roster classes of a pupil: %w", err)
	}
	return out, nil
}

type pendingBody struct {
	Source string `json:"source"`
	Hash   string `json:"hash"`
	Roster Roster `json:"roster"`
}

// SavePendingRoster implements Rosters.
func (s *SQL) SavePendingRoster(ctx context.Context, p PendingRoster) error {
	created, err := encodeTime(p.Created)
	if err != nil {
		return fmt.Errorf("store: save pending roster: %w", err)
	}
	old, err := encodeTime(p.Created.Add(-pendingRosterLifetime))
	if err != nil {
		return fmt.Errorf("store: save pending roster: %w", err)
	}
	body, err := json.Marshal(pendingBody{Source: p.Source, Hash: p.Hash, Roster: p.Roster})
	if err != nil {
		return fmt.Errorf("store: save pending roster: %w", err)
	}
	if _, err := s.db.ExecContext(ctx, `DELETE FROM roster_pending WHERE created < $1`, old); err != nil {
		return fmt.Errorf("store: save pending roster: %w", err)
	}
	if _, err := s.db.ExecContext(ctx, `INSERT INTO roster_pending (id, created, created_by, base_hash, body) VALUES ($1, $2, $3, $4, $5)`,
		p.ID, created, p.CreatedBy, p.BaseHash, string(body)); err != nil {
		return fmt.Errorf("store: save pending roster: %w", err)
	}
	return nil
}

// GetPendingRoster implements Rosters.
func (s *SQL) GetPendingRoster(ctx context.Context, id string) (PendingRoster, error) {
	p := PendingRoster{ID: id}
	var created, body string
	err := s.db.QueryRowContext(ctx, `SELECT created, created_by, base_hash, body FROM roster_pending WHERE id = $1`, id).Scan(&created, &p.CreatedBy, &p.BaseHash, &body)
	if errors.Is(err, sql.ErrNoRows) {
		return p, ErrNotFound
	}
	if err != nil {
		return p, fmt.Errorf("store: get pending roster: %w", err)
	}
	if p.Created, err = decodeTime(created); err != nil {
		return p, fmt.Errorf("store: get pending roster: %w", err)
	}
	var b pendingBody
	if err := json.Unmarshal([]byte(body), &b); err != nil {
		return p, fmt.Errorf("store: get pending roster: %w", err)
	}
	p.Source, p.Hash, p.Roster = b.Source, b.Hash, b.Roster
	return p, nil
}

// DeletePendingRoster implements Rosters.
func (s *SQL) DeletePendingRoster(ctx context.Context, id string) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM roster_pending WHERE id = $1`, id); err != nil {
		return fmt.Errorf("store: delete pending roster: %w", err)
	}
	return nil
}
