package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// GenesisHash is the PrevHash of the first audit row.
const GenesisHash = "0000000000000000000000000000000000000000000000000000000000000000"

// auditHashVersion names the canonical encoding, so a future change to it
// cannot be mistaken for this one.
const auditHashVersion = "chaperone-audit-v1"

// auditHash returns hex(SHA-256(prevHash + "\n" + canonical row)). The
// canonical row is a version tag followed by every field as a netstring
// (decimal byte length, ':', bytes, ','), so no field boundary can shift
// without changing the bytes hashed. timeText is the stored form of the time.
func auditHash(prevHash string, seq int64, timeText string, e AuditEntry) string {
	h := sha256.New()
	var b []byte
	b = append(b, prevHash...)
	b = append(b, '\n')
	b = append(b, auditHashVersion...)
	for _, f := range []string{
		strconv.FormatInt(seq, 10), timeText,
		e.ActorSub, e.ActorName, string(e.Action), e.Target, e.SessionID, e.Detail, e.RemoteIP,
	} {
		b = strconv.AppendInt(b, int64(len(f)), 10)
		b = append(b, ':')
		b = append(b, f...)
		b = append(b, ',')
	}
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil))
}

// AppendAudit appends e to the audit log, chaining its hash to the last row.
// A zero e.Time is set to the current time. Detail must be empty or JSON.
func (s *SQL) AppendAudit(ctx context.Context, e AuditEntry) (AuditRecord, error) {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	e.Time = normalise(e.Time)
	timeText, err := encodeTime(e.Time)
	if err != nil {
		return AuditRecord{}, fmt.Errorf("store: append audit: %w", err)
	}
	if e.Action == "" {
		return AuditRecord{}, errors.New("store: append audit: empty action")
	}
	if e.Detail != "" && !json.Valid([]byte(e.Detail)) {
		return AuditRecord{}, fmt.Errorf("store: append audit %s: detail is not valid JSON", e.Action)
	}

	s.auditMu.Lock()
	defer s.auditMu.Unlock()

	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return AuditRecord{}, fmt.Errorf("store: append audit: %w", err)
	}
	defer tx.Rollback()
	if s.d.lockAuditHead != "" {
		if _, err := tx.ExecContext(ctx, s.d.lockAuditHead); err != nil {
			return AuditRecord{}, fmt.Errorf("store: append audit: lock chain head: %w", err)
		}
	}

	var last int64
	prev := GenesisHash
	err = tx.QueryRowContext(ctx, `SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1`).Scan(&last, &prev)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return AuditRecord{}, fmt.Errorf("store: append audit: read chain head: %w", err)
	}

	r := AuditRecord{Seq: last + 1, PrevHash: prev, AuditEntry: e}
	r.Hash = auditHash(r.PrevHash, r.Seq, timeText, e)
	if _, err := tx.ExecContext(ctx, `
		INSERT INTO audit (seq, time, actor_sub, actor_name, action, target,
			session_id, detail, remote_ip, prev_hash, hash)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
		r.Seq, timeText, e.ActorSub, e.ActorName, e.Action, e.Target,
		e.SessionID, e.Detail, e.RemoteIP, r.PrevHash, r.Hash); err != nil {
		return AuditRecord{}, fmt.Errorf("store: append audit: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return AuditRecord{}, fmt.Errorf("store: append audit: %w", err)
	}
	return r, nil
}

const auditColumns = `seq, time, actor_sub, actor_name, action, target,
	session_id, detail, remote_ip, prev_hash, hash`

// scanAudit reads one row selected with auditColumns, returning the stored
// time text too so VerifyAudit can hash exactly what is stored.
func scanAudit(rows *sql.Rows) (AuditRecord, string, error) {
	var r AuditRecord
	var timeText string
	err := rows.Scan(&r.Seq, &timeText, &r.ActorSub, &r.ActorName, &r.Action, &r.Target,
		&r.SessionID, &r.Detail, &r.RemoteIP, &r.PrevHash, &r.Hash)
	return r, timeText, err
}

// ListAudit returns the rows matching f, newest first. Action matches exactly,
// or as a prefix when it ends in "."; Since is inclusive and Until exclusive.
func (s *SQL) ListAudit(ctx context.Context, f AuditFilter) ([]AuditRecord, error) {
	var where []string
	var args []any
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, strings.ReplaceAll(cond, "$?", "$"+strconv.Itoa(len(args))))
	}
	if f.Action != "" {
		if a := string(f.Action); strings.HasSuffix(a, ".") {
			// Every string starting with "x." sorts in ["x.", "x/"): '/' is
			// the byte after '.'. Binary comparison, unlike LIKE, is
			// case-sensitive and has no wildcards to escape.
			add("action >= $?", f.Action)
			add("action < $?", strings.TrimSuffix(a, ".")+"/")
		} else {
			add("action = $?", f.Action)
		}
	}
	if f.ActorSub != "" {
		add("actor_sub = $?", f.ActorSub)
	}
	if f.Target != "" {
		add("target = $?", f.Target)
	}
	if f.SessionID != "" {
		add("session_id = $?", f.SessionID)
	}
	if f.Before > 0 {
		add("seq < $?", f.Before)
	}
	var enc rowEncoder
	if !f.Since.IsZero() {
		add("time >= $?", enc.time("since", f.Since))
	}
	if !f.Until.IsZero() {
		add("time < $?", enc.time("until", f.Until))
	}
	if enc.err != nil {
		return nil, fmt.Errorf("store: list audit: %w", enc.err)
	}

	q := `SELECT ` + auditColumns + ` FROM audit`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	q += ` ORDER BY seq DESC`
	if f.Limit > 0 {
		args = append(args, f.Limit)
		q += ` LIMIT $` + strconv.Itoa(len(args))
	}

	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("store: list audit: %w", err)
	}
	defer rows.Close()
	var out []AuditRecord
	for rows.Next() {
		r, timeText, err := scanAudit(rows)
		if err != nil {
			return nil, fmt.Errorf("store: list audit: %w", err)
		}
		if r.Time, err = decodeTime(timeText); err != nil {
			return nil, fmt.Errorf("store: list audit: seq %d: %w", r.Seq, err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list audit: %w", err)
	}
	return out, nil
}

// VerifyAudit walks the log in seq order from the start, checking that seqs
// run 1, 2, 3, ... without gaps, that each row's PrevHash is the previous
// row's Hash, and that each Hash is right for the row's contents. It returns
// an error wrapping ErrAuditTampered naming the first row that fails.
//
// Removing rows from the end of the log leaves a valid chain; detecting that
// needs the head (seq and hash) recorded elsewhere.
func (s *SQL) VerifyAudit(ctx context.Context) error {
	rows, err := s.db.QueryContext(ctx, `SELECT `+auditColumns+` FROM audit ORDER BY seq`)
	if err != nil {
		return fmt.Errorf("store: verify audit: %w", err)
	}
	defer rows.Close()
	want := int64(1)
	prev := GenesisHash
	for rows.Next() {
		r, timeText, err := scanAudit(rows)
		if err != nil {
			return fmt.Errorf("store: verify audit: %w", err)
		}
		switch {
		case r.Seq != want:
			return fmt.Errorf("%w: seq %d: expected seq %d (rows missing)", ErrAuditTampered, r.Seq, want)
		case r.PrevHash != prev:
			return fmt.Errorf("%w: seq %d: prev_hash does not match the previous row's hash", ErrAuditTampered, r.Seq)
		case auditHash(r.PrevHash, r.Seq, timeText, r.AuditEntry) != r.Hash:
			return fmt.Errorf("%w: seq %d: hash does not match the row's contents", ErrAuditTampered, r.Seq)
		}
		want++
		prev = r.Hash
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("store: verify audit: %w", err)
	}
	return nil
}
