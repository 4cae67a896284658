package lobby

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/chaperone-edu/chaperone/store"
)

// blockingChat is a chat store whose writes wait for release (a database
// that is slow, or locked) and then fail the first `fails` of them.
type blockingChat struct {
	mu      sync.Mutex
	release chan struct{}
	fails   int
	stored  []store.ChatMessage
	deleted []string
}

func (c *blockingChat) wait(ctx context.Context) error {
	select {
	case <-c.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fails > 0 {
		c.fails--
		return errors.New("database is locked")
	}
	return nil
}

func (c *blockingChat) AddChatMessage(ctx context.Context, m store.ChatMessage) error {
	if err := c.wait(ctx); err != nil {
		return err
	}
	c.mu.Lock()
	c.stored = append(c.stored, m)
	c.mu.Unlock()
	return nil
}

func (c *blockingChat) DeleteChatMessage(ctx context.Context, _, id, _ string, _ time.Time) error {
	if err := c.wait(ctx); err != nil {
		return err
	}
	c.mu.Lock()
	c.deleted = append(c.deleted, id)
	c.mu.Unlock()
	return nil
}

func chatRoom(t *testing.T, chat *blockingChat) (f *roomFixture, teacher, pupil string) {
	t.Helper()
	f = &roomFixture{audit: &fakeAudit{}, gate: &fakeGate{}, clock: &fakeClock{t: time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)}, clients: map[string]*fakeClient{}}
	f.room = NewRoom(RoomConfig{Session: store.Session{ID: "s1", Kind: "interactive"}, Gate: f.gate, Audit: f.audit, Chat: chat, Now: f.clock.Now})
	f.audit.room = f.room
	t.Cleanup(f.room.Stop)
	teacher = f.join(t, "teacher", true)
	pupil = f.join(t, "amelia", false)
	require.NoError(t, f.room.Do(teacher, Command{Type: "admit", Target: pupil}))
	return f, teacher, pupil
}

func chats(c *fakeClient) []ChatMsg {
	var out []ChatMsg
	for _, m := range c.all() {
		if cm, ok := m.(ChatMsg); ok {
			out = append(out, cm)
		}
	}
	return out
}

// The room goes on while the store holds a chat write: the message is seen
// by nobody until its text is stored, then by everyone, in order.
func TestChatWaitsForTheStoreNotTheRoom(t *testing.T) {
	t.Parallel()
	chat := &blockingChat{release: make(chan struct{})}
	f, teacher, pupil := chatRoom(t, chat)
	require.NoError(t, f.room.Do(pupil, Command{Type: "chat", Text: "first"}))
	require.NoError(t, f.room.Do(pupil, Command{Type: "chat", Text: "second"}))
	// The room answers other commands while the store is stuck.
	done := make(chan error, 1)
	go func() { done <- f.room.Do(teacher, Command{Type: "lock", Locked: true}) }()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("the room waited for the chat store")
	}
	require.Empty(t, chats(f.clients[teacher]), "not shown before it is stored")
	close(chat.release)
	require.Eventually(t, func() bool { return len(chats(f.clients[teacher])) == 2 }, 5*time.Second, 10*time.Millisecond)
	got := chats(f.clients[teacher])
	require.Equal(t, []string{"m1", "m2"}, []string{got[0].ID, got[1].ID})
	require.Equal(t, []string{"first", "second"}, []string{got[0].Text, got[1].Text})
	require.Len(t, chats(f.clients[pupil]), 2)
	require.Contains(t, f.audit.actions(), "chat.message")

	// A deletion likewise: shown once stored.
	require.NoError(t, f.room.Do(teacher, Command{Type: "chat_delete", Target: "m1"}))
	require.Eventually(t, func() bool {
		for _, m := range f.clients[pupil].all() {
			if d, ok := m.(ChatDeletedMsg); ok && d.ID == "m1" {
				return true
			}
		}
		return false
	}, 5*time.Second, 10*time.Millisecond)
	require.Equal(t, []string{"m1"}, chat.deleted)
}

// A write the store refuses is retried; one it keeps refusing is not sent,
// its sender is told, and the next message still gets a new number.
func TestChatRetriedThenRefused(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	close(release)
	chat := &blockingChat{release: release, fails: 1}
	f, teacher, pupil := chatRoom(t, chat)
	require.NoError(t, f.room.Do(pupil, Command{Type: "chat", Text: "kept after a retry"}))
	require.Eventually(t, func() bool { return len(chats(f.clients[teacher])) == 1 }, 5*time.Second, 10*time.Millisecond)

	chat.mu.Lock()
	chat.fails = len(chatRetries) + 1 // every attempt
	chat.mu.Unlock()
	require.NoError(t, f.room.Do(pupil, Command{Type: "chat", Text: "never kept"}))
	require.Eventually(t, func() bool {
		for _, m := range f.clients[pupil].all() {
			if e, ok := m.(ErrorMsg); ok && e == errChatNotSent {
				return true
			}
		}
		return false
	}, 10*time.Second, 20*time.Millisecond, "the sender is told")
	require.Len(t, chats(f.clients[teacher]), 1, "a message not kept is not sent")
	n := 0
	for _, a := range f.audit.actions() {
		if a == "chat.message" {
			n++
		}
	}
	require.Equal(t, 1, n, "no audit row for a message not kept")

	require.NoError(t, f.room.Do(pupil, Command{Type: "chat", Text: "kept again"}))
	require.Eventually(t, func() bool { return len(chats(f.clients[teacher])) == 2 }, 5*time.Second, 10*time.Millisecond)
	require.Equal(t, "m3", chats(f.clients[teacher])[1].ID, "numbers never repeat")
}
