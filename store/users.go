package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
)

// UpsertUser creates the user or refreshes name, e-mail, roles, groups and
// last-seen time. first_seen is set on creation only.
func (s *SQL) UpsertUser(ctx context.Context, u User) error {
	if u.Issuer == "" || u.Subject == "" {
		return errors.New("store: upsert user: issuer and subject are required")
	}
	var enc rowEncoder
	lastSeen := enc.time("last seen", u.LastSeen)
	if enc.err != nil {
		return fmt.Errorf("store: upsert user: %w", enc.err)
	}
	_, err := s.db.ExecContext(ctx, `
		INSERT INTO users (issuer, subject, name, email, roles, groups, first_seen, last_seen)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $7)
		ON CONFLICT (issuer, subject) DO UPDATE SET
			name = excluded.name,
			email = excluded.email,
			roles = excluded.roles,
			groups = excluded.groups,
			last_seen = excluded.last_seen`,
		u.Issuer, u.Subject, u.Name, u.Email, encodeList(u.Roles), encodeList(u.Groups), lastSeen)
	if err != nil {
		return fmt.Errorf("store: upsert user: %w", err)
	}
	return nil
}

// GetUser returns a user by issuer and subject, or ErrNotFound.
func (s *SQL) GetUser(ctx context.Context, issuer, subject string) (User, error) {
	var roles, groups, lastSeen string
	u := User{Issuer: issuer, Subject: subject}
	err := s.db.QueryRowContext(ctx, `
		SELECT name, email, roles, groups, last_seen FROM users
		WHERE issuer = $1 AND subject = $2`,
		issuer, subject).Scan(&u.Name, &u.Email, &roles, &groups, &lastSeen)
	if errors.Is(err, sql.ErrNoRows) {
		return User{}, ErrNotFound
	}
	if err != nil {
		return User{}, fmt.Errorf("store: get user: %w", err)
	}
	var dec rowDecoder
	u.Roles = dec.list("roles", roles)
	u.Groups = dec.list("groups", groups)
	u.LastSeen = dec.time("last seen", lastSeen)
	if dec.err != nil {
		return User{}, fmt.Errorf("store: get user: %w", dec.err)
	}
	return u, nil
}

// ListUsersWithRole returns the users whose roles at their last sign-in
// include role, by name.
func (s *SQL) ListUsersWithRole(ctx context.Context, role string) ([]User, error) {
	// roles is a JSON list of plain role words; the LIKE narrows, the
	// decoded list decides.
	rows, err := s.db.QueryContext(ctx, `SELECT issuer, subject, name, email, roles, groups, last_seen FROM users
		WHERE roles LIKE $1 ORDER BY name, subject`, `%"`+role+`"%`)
	if err != nil {
		return nil, fmt.Errorf("store: list users with role %s: %w", role, err)
	}
	defer rows.Close()
	var out []User
	for rows.Next() {
		var u User
		var roles, groups, lastSeen string
		if err := rows.Scan(&u.Issuer, &u.Subject, &u.Name, &u.Email, &roles, &groups, &lastSeen); err != nil {
			return nil, fmt.Errorf("store: list users with role %s: %w", role, err)
		}
		var dec rowDecoder
		u.Roles = dec.list("roles", roles)
		u.Groups = dec.list("groups", groups)
		u.LastSeen = dec.time("last seen", lastSeen)
		if dec.err != nil {
			return nil, fmt.Errorf("store: user %s: %w", u.Subject, dec.err)
		}
		if slices.Contains(u.Roles, role) {
			out = append(out, u)
		}
	}
	return out, rows.Err()
}
