package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// LoginStateRetention is how long DeleteExpiredWebSessions keeps login
// states. TakeLoginState's maxAge should not exceed it.
const LoginStateRetention = time.Hour

// CreateLoginState records a sign-in in progress.
func (s *SQL) CreateLoginState(ctx context.Context, ls LoginState) error {
	if ls.ID == "" {
		return errors.New("store: create login state: empty ID")
	}
	var enc rowEncoder
	created := enc.time("created", ls.Created)
	if enc.err != nil {
		return fmt.Errorf("store: create login state: %w", enc.err)
	}
	_, err := s.db.ExecContext(ctx, `
		INSERT INTO login_states (id, nonce, pkce_verifier, return_to, created, max_age_seconds)
		VALUES ($1, $2, $3, $4, $5, $6)`,
		ls.ID, ls.Nonce, ls.PKCEVerifier, ls.ReturnTo, created, int64(ls.MaxAge/time.Second))
	if err != nil {
		return fmt.Errorf("store: create login state: %w", err)
	}
	return nil
}

// TakeLoginState deletes the login state and returns it, in one statement, so
// of any number of concurrent callers exactly one gets it. A state created
// more than maxAge before now is deleted all the same and reported as
// ErrNotFound.
func (s *SQL) TakeLoginState(ctx context.Context, id string, now time.Time, maxAge time.Duration) (LoginState, error) {
	ls := LoginState{ID: id}
	var created string
	var maxAgeSec int64
	err := s.db.QueryRowContext(ctx, `
		DELETE FROM login_states WHERE id = $1
		RETURNING nonce, pkce_verifier, return_to, created, max_age_seconds`,
		id).Scan(&ls.Nonce, &ls.PKCEVerifier, &ls.ReturnTo, &created, &maxAgeSec)
	ls.MaxAge = time.Duration(maxAgeSec) * time.Second
	if errors.Is(err, sql.ErrNoRows) {
		return LoginState{}, ErrNotFound
	}
	if err != nil {
		return LoginState{}, fmt.Errorf("store: take login state: %w", err)
	}
	var dec rowDecoder
	ls.Created = dec.time("created", created)
	if dec.err != nil {
		return LoginState{}, fmt.Errorf("store: take login state: %w", dec.err)
	}
	if now.Sub(ls.Created) > maxAge {
		return LoginState{}, ErrNotFound
	}
	return ls, nil
}

// CreateWebSession records a signed-in browser.
func (s *SQL) CreateWebSession(ctx context.Context, ws WebSession) error {
	if ws.ID == "" {
		return errors.New("store: create web session: empty ID")
	}
	if ws.Expires.IsZero() {
		return errors.New("store: create web session: no expiry")
	}
	var enc rowEncoder
	authTime := enc.time("auth time", ws.AuthTime)
	created := enc.time("created", ws.Created)
	lastSeen := enc.time("last seen", ws.LastSeen)
	expires := enc.time("expires", ws.Expires)
	if enc.err != nil {
		return fmt.Errorf("store: create web session: %w", enc.err)
	}
	_, err := s.db.ExecContext(ctx, `
		INSERT INTO web_sessions (id, issuer, subject, name, email, roles, groups,
			csrf_token, auth_time, amr, created, last_seen, expires)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
		ws.ID, ws.Issuer, ws.Subject, ws.Name, ws.Email, encodeList(ws.Roles), encodeList(ws.Groups),
		ws.CSRFToken, authTime, encodeList(ws.AMR), created, lastSeen, expires)
	if err != nil {
		return fmt.Errorf("store: create web session: %w", err)
	}
	return nil
}

// GetWebSession returns the session if, at now, it is before its absolute
// expiry and was last seen no more than idle ago (idle <= 0 turns the idle
// check off). Otherwise it returns ErrNotFound.
func (s *SQL) GetWebSession(ctx context.Context, id string, now time.Time, idle time.Duration) (WebSession, error) {
	ws := WebSession{ID: id}
	var roles, groups, authTime, amr, created, lastSeen, expires string
	err := s.db.QueryRowContext(ctx, `
		SELECT issuer, subject, name, email, roles, groups, csrf_token, auth_time, amr,
			created, last_seen, expires
		FROM web_sessions WHERE id = $1`, id).Scan(
		&ws.Issuer, &ws.Subject, &ws.Name, &ws.Email, &roles, &groups, &ws.CSRFToken,
		&authTime, &amr, &created, &lastSeen, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return WebSession{}, ErrNotFound
	}
	if err != nil {
		return WebSession{}, fmt.Errorf("store: get web session: %w", err)
	}
	var dec rowDecoder
	ws.Roles = dec.list("roles", roles)
	ws.Groups = dec.list("groups", groups)
	ws.AuthTime = dec.time("auth time", authTime)
	ws.AMR = dec.list("amr", amr)
	ws.Created = dec.time("created", created)
	ws.LastSeen = dec.time("last seen", lastSeen)
	ws.Expires = dec.time("expires", expires)
	if dec.err != nil {
		return WebSession{}, fmt.Errorf("store: get web session: %w", dec.err)
	}
	if !now.Before(ws.Expires) || (idle > 0 && now.Sub(ws.LastSeen) > idle) {
		return WebSession{}, ErrNotFound
	}
	return ws, nil
}

// TouchWebSession moves the session's last-seen time forward to now (never
// back). It does not revive a session past its absolute expiry, which is
// ErrNotFound; callers check idle expiry with GetWebSession first.
func (s *SQL) TouchWebSession(ctx context.Context, id string, now time.Time) error {
	var enc rowEncoder
	at := enc.time("now", now)
	if enc.err != nil {
		return fmt.Errorf("store: touch web session: %w", enc.err)
	}
	res, err := s.db.ExecContext(ctx, `
		UPDATE web_sessions
		SET last_seen = CASE WHEN last_seen < $2 THEN $2 ELSE last_seen END
		WHERE id = $1 AND expires > $2`, id, at)
	if err != nil {
		return fmt.Errorf("store: touch web session: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("store: touch web session: %w", err)
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}

// DeleteWebSession removes the session. Removing one that does not exist is
// not an error, so signing out twice is harmless.
func (s *SQL) DeleteWebSession(ctx context.Context, id string) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM web_sessions WHERE id = $1`, id); err != nil {
		return fmt.Errorf("store: delete web session: %w", err)
	}
	return nil
}

// DeleteExpiredWebSessions removes the web sessions GetWebSession would no
// longer return at now, and login states older than LoginStateRetention. It
// returns how many rows it removed in all.
func (s *SQL) DeleteExpiredWebSessions(ctx context.Context, now time.Time, idle time.Duration) (int64, error) {
	var enc rowEncoder
	at := enc.time("now", now)
	// With idle off, no last_seen is before the zero time.
	idleBefore := enc.time("idle cut-off", time.Time{})
	if idle > 0 {
		idleBefore = enc.time("idle cut-off", now.Add(-idle))
	}
	statesBefore := enc.time("login state cut-off", now.Add(-LoginStateRetention))
	if enc.err != nil {
		return 0, fmt.Errorf("store: delete expired web sessions: %w", enc.err)
	}

	res, err := s.db.ExecContext(ctx,
		`DELETE FROM web_sessions WHERE expires <= $1 OR last_seen < $2`, at, idleBefore)
	if err != nil {
		return 0, fmt.Errorf("store: delete expired web sessions: %w", err)
	}
	sessions, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("store: delete expired web sessions: %w", err)
	}
	res, err = s.db.ExecContext(ctx, `DELETE FROM login_states WHERE created < $1`, statesBefore)
	if err != nil {
		return sessions, fmt.Errorf("store: delete expired login states: %w", err)
	}
	states, err := res.RowsAffected()
	if err != nil {
		return sessions, fmt.Errorf("store: delete expired login states: %w", err)
	}
	return sessions + states, nil
}
