package store

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestMigrationCopiesOldChat: chat written to the audit log by an older
// binary (0001–0005) is copied to the chat table by 0006, deletions
// included, so the DSL still sees it.
func TestMigrationCopiesOldChat(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "chaperone.db")
	db := oldDatabase(t, path, 5)
	row := func(seq int, at time.Time, action, target, detail string) {
		_, err := db.ExecContext(ctx, `INSERT INTO audit (seq, time, actor_sub, actor_name, action, target, session_id, detail, remote_ip, prev_hash, hash)
			VALUES ($1, $2, 'sub-a', 'Amelia Jones', $3, $4, 's1', $5, '', '', '')`, seq, mustEncodeTime(at), action, target, detail)
		require.NoError(t, err)
	}
	row(1, t0, "chat.message", "m1", `{"role":"pupil","text":"first"}`)
	row(2, t0.Add(time.Second), "chat.message", "m2", `{"role":"pupil","text":"second"}`)
	row(3, t0.Add(time.Minute), "chat.deleted", "m1", `{"whom":"Amelia Jones","text":"first"}`)
	require.NoError(t, db.Close())

	s, err := OpenSQLite(ctx, path)
	require.NoError(t, err)
	defer s.Close()
	got, err := s.ListChatMessages(ctx, "s1")
	require.NoError(t, err)
	require.Len(t, got, 2)
	require.Equal(t, ChatMessage{SessionID: "s1", ID: "m1", Time: t0, SenderSub: "sub-a", SenderName: "Amelia Jones", Role: "pupil", Text: "first",
		DeletedAt: t0.Add(time.Minute), DeletedBy: "Amelia Jones"}, got[0])
	require.Equal(t, "second", got[1].Text)
	require.True(t, got[1].DeletedAt.IsZero())
}
