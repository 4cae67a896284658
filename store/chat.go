package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

const chatColumns = `session_id, msg_id, time, sender_sub, sender_name, role, text, deleted_at, deleted_by`

// AddChatMessage stores a message.
func (s *SQL) AddChatMessage(ctx context.Context, m ChatMessage) error {
	if m.SessionID == "" || m.ID == "" {
		return errors.New("store: add chat message: session and message ID required")
	}
	var enc rowEncoder
	t := enc.time("time", m.Time)
	deleted := enc.optTime("deleted at", m.DeletedAt)
	if enc.err != nil {
		return fmt.Errorf("store: add chat message: %w", enc.err)
	}
	if _, err := s.db.ExecContext(ctx, `INSERT INTO chat_messages (`+chatColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		m.SessionID, m.ID, t, m.SenderSub, m.SenderName, m.Role, m.Text, deleted, m.DeletedBy); err != nil {
		return fmt.Errorf("store: add chat message %s of %s: %w", m.ID, m.SessionID, err)
	}
	return nil
}

// DeleteChatMessage marks the latest undeleted message of a session with
// that ID deleted; the text stays for the DSL.
func (s *SQL) DeleteChatMessage(ctx context.Context, sessionID, id, by string, at time.Time) error {
	var enc rowEncoder
	t := enc.time("deleted at", at)
	if enc.err != nil {
		return fmt.Errorf("store: delete chat message: %w", enc.err)
	}
	res, err := s.db.ExecContext(ctx, `UPDATE chat_messages SET deleted_at = $1, deleted_by = $2 WHERE seq = (
		SELECT MAX(seq) FROM chat_messages WHERE session_id = $3 AND msg_id = $4 AND deleted_at IS NULL)`, t, by, sessionID, id)
	if err != nil {
		return fmt.Errorf("store: delete chat message %s of %s: %w", id, sessionID, err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return fmt.Errorf("store: delete chat message %s of %s: %w", id, sessionID, ErrNotFound)
	}
	return nil
}

// ListChatMessages returns a session's messages, oldest first.
func (s *SQL) ListChatMessages(ctx context.Context, sessionID string) ([]ChatMessage, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+chatColumns+` FROM chat_messages WHERE session_id = $1 ORDER BY seq`, sessionID)
	if err != nil {
		return nil, fmt.Errorf("store: list chat of %s: %w", sessionID, err)
	}
	defer rows.Close()
	var out []ChatMessage
	for rows.Next() {
		var m ChatMessage
		var t string
		var deleted sql.NullString
		if err := rows.Scan(&m.SessionID, &m.ID, &t, &m.SenderSub, &m.SenderName, &m.Role, &m.Text, &deleted, &m.DeletedBy); err != nil {
			return nil, fmt.Errorf("store: list chat of %s: %w", sessionID, err)
		}
		var dec rowDecoder
		m.Time = dec.time("time", t)
		m.DeletedAt = dec.optTime("deleted at", deleted)
		if dec.err != nil {
			return nil, fmt.Errorf("store: chat message %s of %s: %w", m.ID, sessionID, dec.err)
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// PurgeChat deletes a session's messages and returns how many.
func (s *SQL) PurgeChat(ctx context.Context, sessionID string) (int, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM chat_messages WHERE session_id = $1`, sessionID)
	if err != nil {
		return 0, fmt.Errorf("store: purge chat of %s: %w", sessionID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("store: purge chat of %s: %w", sessionID, err)
	}
	return int(n), nil
}
