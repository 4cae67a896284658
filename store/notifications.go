package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

const notificationColumns = `id, concern_id, recipient_email, recipient_name, reason, created, opened, email_status, email_error, email_at`

// CreateNotification stores a notification; a second one for the same
// concern and recipient is ErrConflict.
func (s *SQL) CreateNotification(ctx context.Context, n Notification) error {
	if n.ID == "" || n.ConcernID == "" || n.RecipientEmail == "" {
		return errors.New("store: create notification: ID, concern and recipient required")
	}
	var enc rowEncoder
	created := enc.time("created", n.Created)
	opened := enc.optTime("opened", n.Opened)
	emailAt := enc.optTime("email at", n.EmailAt)
	if enc.err != nil {
		return fmt.Errorf("store: create notification: %w", enc.err)
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO concern_notifications (`+notificationColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
		n.ID, n.ConcernID, strings.ToLower(n.RecipientEmail), n.RecipientName, n.Reason, created, opened, n.EmailStatus, n.EmailError, emailAt)
	if s.d.isDuplicateKey(err) {
		return fmt.Errorf("store: create notification of %s for %s: %w", n.ConcernID, n.RecipientEmail, ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("store: create notification: %w", err)
	}
	return nil
}

// ListNotifications returns matching notifications, newest first.
func (s *SQL) ListNotifications(ctx context.Context, f NotificationFilter) ([]Notification, error) {
	var conds []string
	var args []any
	if f.ConcernID != "" {
		args = append(args, f.ConcernID)
		conds = append(conds, fmt.Sprintf("concern_id = $%d", len(args)))
	}
	if f.Email != "" {
		args = append(args, strings.ToLower(f.Email))
		conds = append(conds, fmt.Sprintf("recipient_email = $%d", len(args)))
	}
	q := `SELECT ` + notificationColumns + ` FROM concern_notifications`
	if len(conds) > 0 {
		q += ` WHERE ` + strings.Join(conds, " AND ")
	}
	q += ` ORDER BY created DESC, id`
	if f.Limit > 0 {
		q += fmt.Sprintf(" LIMIT %d", f.Limit)
	}
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("store: list notifications: %w", err)
	}
	defer rows.Close()
	var out []Notification
	for rows.Next() {
		var n Notification
		var created string
		var opened, emailAt sql.NullString
		if err := rows.Scan(&n.ID, &n.ConcernID, &n.RecipientEmail, &n.RecipientName, &n.Reason, &created, &opened,
			&n.EmailStatus, &n.EmailError, &emailAt); err != nil {
			return nil, fmt.Errorf("store: list notifications: %w", err)
		}
		var dec rowDecoder
		n.Created = dec.time("created", created)
		n.Opened = dec.optTime("opened", opened)
		n.EmailAt = dec.optTime("email at", emailAt)
		if dec.err != nil {
			return nil, fmt.Errorf("store: notification %s: %w", n.ID, dec.err)
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

// MarkNotificationOpened sets the opened time of the recipient's
// notification of a concern if it is not set yet (and their name, when it
// was not known), and reports whether the recipient has a notification of
// that concern.
func (s *SQL) MarkNotificationOpened(ctx context.Context, concernID, email, name string, at time.Time) (bool, error) {
	var enc rowEncoder
	t := enc.time("opened", at)
	if enc.err != nil {
		return false, fmt.Errorf("store: mark opened: %w", enc.err)
	}
	email = strings.ToLower(email)
	if _, err := s.db.ExecContext(ctx, `UPDATE concern_notifications SET opened = COALESCE(opened, $1),
		recipient_name = CASE WHEN recipient_name = '' THEN $2 ELSE recipient_name END
		WHERE concern_id = $3 AND recipient_email = $4`, t, name, concernID, email); err != nil {
		return false, fmt.Errorf("store: mark opened: %w", err)
	}
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM concern_notifications WHERE concern_id = $1 AND recipient_email = $2`,
		concernID, email).Scan(&n); err != nil {
		return false, fmt.Errorf("store: mark opened: %w", err)
	}
	return n > 0, nil
}

// SetNotificationEmail records the e-mail state of a notification.
func (s *SQL) SetNotificationEmail(ctx context.Context, id, status, errText string, at time.Time) error {
	var enc rowEncoder
	t := enc.time("email at", at)
	if enc.err != nil {
		return fmt.Errorf("store: set notification e-mail: %w", enc.err)
	}
	res, err := s.db.ExecContext(ctx, `UPDATE concern_notifications SET email_status = $1, email_error = $2, email_at = $3 WHERE id = $4`,
		status, errText, t, id)
	if err != nil {
		return fmt.Errorf("store: set notification e-mail %s: %w", id, err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return fmt.Errorf("store: set notification e-mail: notification %s: %w", id, ErrNotFound)
	}
	return nil
}
