package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// UpsertUser creates the user or refreshes name, e-mail, roles, groups and
// last-seen time. first_seen is set on creation only.
func (s *SQLite) UpsertUser(ctx context.Context, u User) error {
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
func (s *SQLite) GetUser(ctx context.Context, issuer, subject string) (User, error) {
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
