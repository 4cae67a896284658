package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// validStates are the states a session may be stored in.
var validStates = map[string]bool{
	StateRequested: true,
	StateApproved:  true,
	StateRejected:  true,
	StateLive:      true,
	StateEnded:     true,
	StateCancelled: true,
}

// optTime encodes a time that may be unset: the zero time is stored as NULL.
func (e *rowEncoder) optTime(name string, t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return e.time(name, t)
}

// optTime decodes a time that may be unset: NULL reads back as the zero time.
func (d *rowDecoder) optTime(name string, s sql.NullString) time.Time {
	if !s.Valid {
		return time.Time{}
	}
	return d.time(name, s.String)
}

// placeholders returns "$first, $first+1, ..." for n arguments.
func placeholders(first, n int) string {
	ps := make([]string, n)
	for i := range ps {
		ps[i] = "$" + strconv.Itoa(first+i)
	}
	return strings.Join(ps, ", ")
}

// rowScanner is what *sql.Row and *sql.Rows have in common.
type rowScanner interface {
	Scan(dest ...any) error
}

const sessionColumns = `id, series_id, title, kind, host_sub, host_name, host_email,
	co_staff, roster_group, roster_emails, starts_at, ends_at, state, created,
	updated, decided_by_sub, decided_by, decided_at, reason`

func scanSession(r rowScanner) (Session, error) {
	var ss Session
	var coStaff, rosterEmails, start, end, created, updated string
	var decidedAt sql.NullString
	if err := r.Scan(&ss.ID, &ss.SeriesID, &ss.Title, &ss.Kind, &ss.HostSub, &ss.HostName,
		&ss.HostEmail, &coStaff, &ss.RosterGroup, &rosterEmails, &start, &end, &ss.State,
		&created, &updated, &ss.DecidedBySub, &ss.DecidedBy, &decidedAt, &ss.Reason); err != nil {
		return Session{}, err
	}
	var dec rowDecoder
	ss.CoStaff = dec.list("co-staff", coStaff)
	ss.RosterEmails = dec.list("roster e-mails", rosterEmails)
	ss.Start = dec.time("start", start)
	ss.End = dec.time("end", end)
	ss.Created = dec.time("created", created)
	ss.Updated = dec.time("updated", updated)
	ss.DecidedAt = dec.optTime("decided at", decidedAt)
	if dec.err != nil {
		return Session{}, fmt.Errorf("session %s: %w", ss.ID, dec.err)
	}
	return ss, nil
}

// CreateSessions stores new sessions in one transaction: if any of them
// cannot be stored (a duplicate ID wraps ErrConflict), none is.
func (s *SQL) CreateSessions(ctx context.Context, ss []Session) error {
	if len(ss) == 0 {
		return nil
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: create sessions: %w", err)
	}
	defer tx.Rollback()
	for _, x := range ss {
		if x.ID == "" {
			return errors.New("store: create sessions: empty ID")
		}
		if !validStates[x.State] {
			return fmt.Errorf("store: create session %s: unknown state %q", x.ID, x.State)
		}
		var enc rowEncoder
		start := enc.time("start", x.Start)
		end := enc.time("end", x.End)
		created := enc.time("created", x.Created)
		updated := enc.time("updated", x.Updated)
		decidedAt := enc.optTime("decided at", x.DecidedAt)
		if enc.err != nil {
			return fmt.Errorf("store: create session %s: %w", x.ID, enc.err)
		}
		_, err := tx.ExecContext(ctx, `
			INSERT INTO sessions (`+sessionColumns+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)`,
			x.ID, x.SeriesID, x.Title, x.Kind, x.HostSub, x.HostName, x.HostEmail,
			encodeList(x.CoStaff), x.RosterGroup, encodeList(x.RosterEmails), start, end, x.State,
			created, updated, x.DecidedBySub, x.DecidedBy, decidedAt, x.Reason)
		if s.d.isDuplicateKey(err) {
			return fmt.Errorf("store: create session %s: ID already used: %w", x.ID, ErrConflict)
		}
		if err != nil {
			return fmt.Errorf("store: create session %s: %w", x.ID, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: create sessions: %w", err)
	}
	return nil
}

// GetSession returns a session by ID, or an error wrapping ErrNotFound.
func (s *SQL) GetSession(ctx context.Context, id string) (Session, error) {
	ss, err := scanSession(s.db.QueryRowContext(ctx,
		`SELECT `+sessionColumns+` FROM sessions WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Session{}, fmt.Errorf("store: session %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Session{}, fmt.Errorf("store: get session: %w", err)
	}
	return ss, nil
}

// ListSessions returns matching sessions ordered by start, then ID. States,
// series and end are filtered in SQL; the staff e-mail, which may be the host
// or any of the co-staff, is compared case-insensitively (Unicode case
// folding) in Go, after which the limit applies.
func (s *SQL) ListSessions(ctx context.Context, f SessionFilter) ([]Session, error) {
	var where []string
	var args []any
	if len(f.States) > 0 {
		where = append(where, "state IN ("+placeholders(len(args)+1, len(f.States))+")")
		for _, st := range f.States {
			args = append(args, st)
		}
	}
	if f.SeriesID != "" {
		args = append(args, f.SeriesID)
		where = append(where, "series_id = $"+strconv.Itoa(len(args)))
	}
	if !f.EndAfter.IsZero() {
		var enc rowEncoder
		endAfter := enc.time("end after", f.EndAfter)
		if enc.err != nil {
			return nil, fmt.Errorf("store: list sessions: %w", enc.err)
		}
		args = append(args, endAfter)
		where = append(where, "ends_at > $"+strconv.Itoa(len(args)))
	}
	q := `SELECT ` + sessionColumns + ` FROM sessions`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY starts_at, id"
	if f.Limit > 0 && f.StaffEmail == "" {
		args = append(args, f.Limit)
		q += " LIMIT $" + strconv.Itoa(len(args))
	}

	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("store: list sessions: %w", err)
	}
	defer rows.Close()
	var out []Session
	for rows.Next() {
		ss, err := scanSession(rows)
		if err != nil {
			return nil, fmt.Errorf("store: list sessions: %w", err)
		}
		if f.StaffEmail != "" && !isStaff(ss, f.StaffEmail) {
			continue
		}
		out = append(out, ss)
		if f.Limit > 0 && len(out) == f.Limit {
			break
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list sessions: %w", err)
	}
	return out, nil
}

// isStaff reports whether email is the session's host or one of its co-staff.
func isStaff(ss Session, email string) bool {
	if strings.EqualFold(ss.HostEmail, email) {
		return true
	}
	for _, c := range ss.CoStaff {
		if strings.EqualFold(c, email) {
			return true
		}
	}
	return false
}

// TransitionSession moves the session from one of the states in from to
// state to with one conditional UPDATE, so of concurrent callers only one
// sees a given from state. It sets Updated to c.At; DecidedBySub, DecidedBy
// and Reason are overwritten only by non-empty values of c, and DecidedAt is
// set to c.At only when c names who decided, so a later transition (approved
// to live, say) keeps who approved. When no row moved it returns an error
// wrapping ErrNotFound or ErrConflict.
func (s *SQL) TransitionSession(ctx context.Context, id string, from []string, to string, c SessionChange) (Session, error) {
	if len(from) == 0 {
		return Session{}, fmt.Errorf("store: transition session %s: no from states", id)
	}
	if !validStates[to] {
		return Session{}, fmt.Errorf("store: transition session %s: unknown state %q", id, to)
	}
	if c.At.IsZero() {
		return Session{}, fmt.Errorf("store: transition session %s: no change time", id)
	}
	var enc rowEncoder
	at := enc.time("at", c.At)
	if enc.err != nil {
		return Session{}, fmt.Errorf("store: transition session %s: %w", id, enc.err)
	}

	args := []any{id, to, at}
	set := []string{"state = $2", "updated = $3"}
	setArg := func(col string, v any) {
		args = append(args, v)
		set = append(set, col+" = $"+strconv.Itoa(len(args)))
	}
	if c.DecidedBySub != "" {
		setArg("decided_by_sub", c.DecidedBySub)
	}
	if c.DecidedBy != "" {
		setArg("decided_by", c.DecidedBy)
	}
	if c.DecidedBySub != "" || c.DecidedBy != "" {
		setArg("decided_at", at)
	}
	if c.Reason != "" {
		setArg("reason", c.Reason)
	}
	in := placeholders(len(args)+1, len(from))
	for _, st := range from {
		args = append(args, st)
	}

	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return Session{}, fmt.Errorf("store: transition session %s: %w", id, err)
	}
	defer tx.Rollback()

	ss, err := scanSession(tx.QueryRowContext(ctx, `
		UPDATE sessions SET `+strings.Join(set, ", ")+`
		WHERE id = $1 AND state IN (`+in+`)
		RETURNING `+sessionColumns, args...))
	if errors.Is(err, sql.ErrNoRows) {
		var current string
		err := tx.QueryRowContext(ctx, `SELECT state FROM sessions WHERE id = $1`, id).Scan(&current)
		if errors.Is(err, sql.ErrNoRows) {
			return Session{}, fmt.Errorf("store: session %s: %w", id, ErrNotFound)
		}
		if err != nil {
			return Session{}, fmt.Errorf("store: transition session %s: %w", id, err)
		}
		return Session{}, fmt.Errorf("store: session %s is %s, not %s: %w",
			id, current, strings.Join(from, " or "), ErrConflict)
	}
	if err != nil {
		return Session{}, fmt.Errorf("store: transition session %s: %w", id, err)
	}
	if err := tx.Commit(); err != nil {
		return Session{}, fmt.Errorf("store: transition session %s: %w", id, err)
	}
	return ss, nil
}

const delegationColumns = `id, head_sub, head_name, delegate_email, delegate_name,
	valid_until, created, revoked_at, revoked_by`

func scanDelegation(r rowScanner) (Delegation, error) {
	var d Delegation
	var until, created string
	var revokedAt sql.NullString
	if err := r.Scan(&d.ID, &d.HeadSub, &d.HeadName, &d.DelegateEmail, &d.DelegateName,
		&until, &created, &revokedAt, &d.RevokedBy); err != nil {
		return Delegation{}, err
	}
	var dec rowDecoder
	d.Until = dec.time("until", until)
	d.Created = dec.time("created", created)
	d.RevokedAt = dec.optTime("revoked at", revokedAt)
	if dec.err != nil {
		return Delegation{}, fmt.Errorf("delegation %s: %w", d.ID, dec.err)
	}
	return d, nil
}

// CreateDelegation stores a new delegation, with the delegate's e-mail
// address in lower case. A duplicate ID wraps ErrConflict.
func (s *SQL) CreateDelegation(ctx context.Context, d Delegation) error {
	if d.ID == "" {
		return errors.New("store: create delegation: empty ID")
	}
	if d.DelegateEmail == "" {
		return fmt.Errorf("store: create delegation %s: empty delegate e-mail", d.ID)
	}
	if d.Until.IsZero() {
		return fmt.Errorf("store: create delegation %s: no end date", d.ID)
	}
	var enc rowEncoder
	until := enc.time("until", d.Until)
	created := enc.time("created", d.Created)
	revokedAt := enc.optTime("revoked at", d.RevokedAt)
	if enc.err != nil {
		return fmt.Errorf("store: create delegation %s: %w", d.ID, enc.err)
	}
	_, err := s.db.ExecContext(ctx, `
		INSERT INTO delegations (`+delegationColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		d.ID, d.HeadSub, d.HeadName, strings.ToLower(d.DelegateEmail), d.DelegateName,
		until, created, revokedAt, d.RevokedBy)
	if s.d.isDuplicateKey(err) {
		return fmt.Errorf("store: create delegation %s: ID already used: %w", d.ID, ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("store: create delegation %s: %w", d.ID, err)
	}
	return nil
}

// GetDelegation returns a delegation by ID, or an error wrapping ErrNotFound.
func (s *SQL) GetDelegation(ctx context.Context, id string) (Delegation, error) {
	d, err := scanDelegation(s.db.QueryRowContext(ctx,
		`SELECT `+delegationColumns+` FROM delegations WHERE id = $1`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Delegation{}, fmt.Errorf("store: delegation %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Delegation{}, fmt.Errorf("store: get delegation: %w", err)
	}
	return d, nil
}

// ListDelegations returns delegations newest first (by Created, then ID
// descending). With activeAt set, it returns only those not revoked whose
// Until is after activeAt.
func (s *SQL) ListDelegations(ctx context.Context, activeAt time.Time) ([]Delegation, error) {
	q := `SELECT ` + delegationColumns + ` FROM delegations`
	var args []any
	if !activeAt.IsZero() {
		var enc rowEncoder
		at := enc.time("active at", activeAt)
		if enc.err != nil {
			return nil, fmt.Errorf("store: list delegations: %w", enc.err)
		}
		q += ` WHERE revoked_at IS NULL AND valid_until > $1`
		args = append(args, at)
	}
	q += ` ORDER BY created DESC, id DESC`

	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("store: list delegations: %w", err)
	}
	defer rows.Close()
	var out []Delegation
	for rows.Next() {
		d, err := scanDelegation(rows)
		if err != nil {
			return nil, fmt.Errorf("store: list delegations: %w", err)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list delegations: %w", err)
	}
	return out, nil
}

// RevokeDelegation marks the delegation revoked at at by by, and returns it.
// It returns an error wrapping ErrConflict if it was already revoked, or
// ErrNotFound if there is no such delegation.
func (s *SQL) RevokeDelegation(ctx context.Context, id string, at time.Time, by string) (Delegation, error) {
	if at.IsZero() {
		return Delegation{}, fmt.Errorf("store: revoke delegation %s: no revocation time", id)
	}
	var enc rowEncoder
	revokedAt := enc.time("at", at)
	if enc.err != nil {
		return Delegation{}, fmt.Errorf("store: revoke delegation %s: %w", id, enc.err)
	}

	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return Delegation{}, fmt.Errorf("store: revoke delegation %s: %w", id, err)
	}
	defer tx.Rollback()

	d, err := scanDelegation(tx.QueryRowContext(ctx, `
		UPDATE delegations SET revoked_at = $2, revoked_by = $3
		WHERE id = $1 AND revoked_at IS NULL
		RETURNING `+delegationColumns, id, revokedAt, by))
	if errors.Is(err, sql.ErrNoRows) {
		var prev sql.NullString
		err := tx.QueryRowContext(ctx, `SELECT revoked_at FROM delegations WHERE id = $1`, id).Scan(&prev)
		if errors.Is(err, sql.ErrNoRows) {
			return Delegation{}, fmt.Errorf("store: delegation %s: %w", id, ErrNotFound)
		}
		if err != nil {
			return Delegation{}, fmt.Errorf("store: revoke delegation %s: %w", id, err)
		}
		return Delegation{}, fmt.Errorf("store: delegation %s already revoked at %s: %w", id, prev.String, ErrConflict)
	}
	if err != nil {
		return Delegation{}, fmt.Errorf("store: revoke delegation %s: %w", id, err)
	}
	if err := tx.Commit(); err != nil {
		return Delegation{}, fmt.Errorf("store: revoke delegation %s: %w", id, err)
	}
	return d, nil
}

// CountUsersInGroup counts the known users whose groups, as of their last
// sign-in, include group exactly (case-sensitive).
func (s *SQL) CountUsersInGroup(ctx context.Context, group string) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `
		SELECT COUNT(*) FROM users
		WHERE `+s.d.groupsContain,
		group).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("store: count users in group: %w", err)
	}
	return n, nil
}
