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

// Fakes for Room-level tests: they record what the Room does.

type fakeAudit struct {
	mu   sync.Mutex
	rows []store.AuditEntry
	room *Room // when set, reading waits for the room's queued rows
}

// settle waits until the room has written every audit row queued so far.
func (a *fakeAudit) settle() {
	if a.room == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = a.room.AuditWritten(ctx)
}

func (a *fakeAudit) AppendAudit(_ context.Context, e store.AuditEntry) (store.AuditRecord, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.rows = append(a.rows, e)
	return store.AuditRecord{}, nil
}

func (a *fakeAudit) actions() []string {
	a.settle()
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]string, len(a.rows))
	for i, e := range a.rows {
		out[i] = string(e.Action)
	}
	return out
}

type fakeGate struct {
	mu    sync.Mutex
	calls int
}

func (g *fakeGate) SetEdge(string, string, bool)          { g.mu.Lock(); g.calls++; g.mu.Unlock() }
func (g *fakeGate) SetSourceAllowed(string, string, bool) { g.mu.Lock(); g.calls++; g.mu.Unlock() }
func (g *fakeGate) n() int                                { g.mu.Lock(); defer g.mu.Unlock(); return g.calls }
func (c *fakeClient) StartMedia()                         {}
func (c *fakeClient) Close(string)                        {}
func (c *fakeClient) Send(msg any)                        { c.mu.Lock(); c.msgs = append(c.msgs, msg); c.mu.Unlock() }
func (c *fakeClient) count() int                          { c.mu.Lock(); defer c.mu.Unlock(); return len(c.msgs) }
func (c *fakeClient) all() []any {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]any(nil), c.msgs...)
}
func (k *fakeClock) Now() time.Time      { k.mu.Lock(); defer k.mu.Unlock(); return k.t }
func (k *fakeClock) Add(d time.Duration) { k.mu.Lock(); k.t = k.t.Add(d); k.mu.Unlock() }
func joiner(sub string, staff bool) Joiner {
	return Joiner{Subject: sub, Name: sub, IsStaff: staff, SessionStaff: staff, OnRoster: true}
}
func (f *roomFixture) join(t *testing.T, sub string, staff bool) string {
	t.Helper()
	c := &fakeClient{}
	id, err := f.room.Join(joiner(sub, staff), c)
	require.NoError(t, err)
	f.clients[id] = c
	return id
}

type fakeClient struct {
	mu   sync.Mutex
	msgs []any
}

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

type roomFixture struct {
	room    *Room
	audit   *fakeAudit
	gate    *fakeGate
	clock   *fakeClock
	clients map[string]*fakeClient
}

// newRoomFixture starts a Room with a teacher and two pupils admitted, and
// a third pupil waiting in the lobby.
func newRoomFixture(t *testing.T) (f *roomFixture, teacher, pupil, other, waiting string) {
	t.Helper()
	f = &roomFixture{audit: &fakeAudit{}, gate: &fakeGate{}, clock: &fakeClock{t: time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)}, clients: map[string]*fakeClient{}}
	f.room = NewRoom(RoomConfig{Session: store.Session{ID: "s1", Kind: "interactive"}, Gate: f.gate, Audit: f.audit, Now: f.clock.Now})
	f.audit.room = f.room
	t.Cleanup(f.room.Stop)
	teacher = f.join(t, "teacher", true)
	pupil = f.join(t, "amelia", false)
	other = f.join(t, "zoe", false)
	waiting = f.join(t, "oliver", false)
	require.NoError(t, f.room.Do(teacher, Command{Type: "admit", Target: pupil}))
	require.NoError(t, f.room.Do(teacher, Command{Type: "admit", Target: other}))
	return f, teacher, pupil, other, waiting
}

func TestHandChangeAllowed(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	cases := []struct {
		name      string
		last, now time.Time
		want      bool
	}{
		{"first change", time.Time{}, t0, true},
		{"at once again", t0, t0, false},
		{"a second later", t0, t0.Add(time.Second), false},
		{"just under the interval", t0, t0.Add(HandInterval - time.Millisecond), false},
		{"after the interval", t0, t0.Add(HandInterval), true},
		{"much later", t0, t0.Add(time.Minute), true},
		{"the clock went back", t0, t0.Add(-time.Hour), true},
	}
	for _, tc := range cases {
		require.Equal(t, tc.want, HandChangeAllowed(tc.last, tc.now), tc.name)
	}
}

// TestHandTogglesLimited: a pupil who raises and lowers a hand faster than
// once per HandInterval gets an error for the excess, and nothing changes:
// no audit row, no message to anyone, the hand as it was.
func TestHandTogglesLimited(t *testing.T) {
	t.Parallel()
	f, teacher, pupil, _, _ := newRoomFixture(t)
	require.NoError(t, f.room.Do(pupil, Command{Type: "hand", Allowed: true}))
	require.Equal(t, []string{pupil}, Hands(f.room.Snapshot()))

	rows, sent := len(f.audit.actions()), f.clients[teacher].count()
	for range 5 {
		err := f.room.Do(pupil, Command{Type: "hand", Allowed: false})
		var le *Error
		require.ErrorAs(t, err, &le)
		require.Equal(t, Conflict, le.Kind)
		require.Contains(t, le.Message, "wait a moment")
		f.clock.Add(300 * time.Millisecond)
	}
	require.Equal(t, []string{pupil}, Hands(f.room.Snapshot()), "the hand stays up")
	require.Len(t, f.audit.actions(), rows, "no audit row for a refused change")
	require.Equal(t, sent, f.clients[teacher].count(), "no roster sent for a refused change")
	// Asking for what already is changes nothing and is no error.
	require.NoError(t, f.room.Do(pupil, Command{Type: "hand", Allowed: true}))

	f.clock.Add(HandInterval)
	require.NoError(t, f.room.Do(pupil, Command{Type: "hand", Allowed: false}))
	require.Empty(t, Hands(f.room.Snapshot()))
	require.Equal(t, "room.hand_lowered", f.audit.actions()[len(f.audit.actions())-1])

	// Staff lowering a hand does not use up the pupil's changes, and a
	// pupil's limit does not hold another pupil back.
	f.clock.Add(HandInterval)
	require.NoError(t, f.room.Do(pupil, Command{Type: "hand", Allowed: true}))
	require.NoError(t, f.room.Do(teacher, Command{Type: "lower_hand", Target: pupil}))
	f.clock.Add(HandInterval)
	require.NoError(t, f.room.Do(pupil, Command{Type: "hand", Allowed: true}))
}

// TestPupilRefusedStaffCommands: a pupil in the lesson is refused every
// staff-only command, with a Forbidden error, and nothing changes: the
// state, the audit log, the gate and the messages to everyone are as they
// were.
func TestPupilRefusedStaffCommands(t *testing.T) {
	t.Parallel()
	f, teacher, pupil, other, waiting := newRoomFixture(t)
	require.NoError(t, f.room.Do(other, Command{Type: "hand", Allowed: true}))
	require.NoError(t, f.room.Do(other, Command{Type: "chat", Text: "hello"}))
	msgID := ""
	for _, m := range f.clients[teacher].all() {
		if c, ok := m.(ChatMsg); ok {
			msgID = c.ID
		}
	}
	require.NotEmpty(t, msgID)
	cmds := []Command{
		{Type: "admit", Target: waiting},
		{Type: "admit_all"},
		{Type: "deny", Target: waiting, Reason: "no"},
		{Type: "remove", Target: other, Reason: "no"},
		{Type: "mute", Target: other, Kind: "audio"},
		{Type: "mute_all", Kind: "audio"},
		{Type: "unmute", Target: other, Kind: "video"},
		{Type: "pupil_media", Kind: "audio", Allowed: false},
		{Type: "lower_hand", Target: other},
		{Type: "let_speak", Target: other},
		{Type: "screen_grant", Target: pupil, Allowed: true},
		{Type: "screen_grant", Target: other, Allowed: true},
		{Type: "spotlight", Target: pupil},
		{Type: "chat_delete", Target: msgID},
		{Type: "chat_pupils", Allowed: false},
		{Type: "lock", Locked: true},
		{Type: "end"},
		{Type: "concern"},
	}
	covered := map[string]bool{}
	before := f.room.Snapshot()
	rows, gate := len(f.audit.actions()), f.gate.n()
	sent := map[string]int{}
	for id, c := range f.clients {
		sent[id] = c.count()
	}
	for _, cmd := range cmds {
		covered[cmd.Type] = true
		err := f.room.Do(pupil, cmd)
		var le *Error
		require.True(t, errors.As(err, &le), "%s: %v", cmd.Type, err)
		require.Equal(t, Forbidden, le.Kind, cmd.Type)
		require.Equal(t, before, f.room.Snapshot(), "%s: the room's state is unchanged", cmd.Type)
		require.Len(t, f.audit.actions(), rows, "%s: no audit row", cmd.Type)
		require.Equal(t, gate, f.gate.n(), "%s: the gate is not touched", cmd.Type)
		for id, c := range f.clients {
			require.Equal(t, sent[id], c.count(), "%s: no message to %s", cmd.Type, id)
		}
	}
	for _, typ := range []string{"admit", "admit_all", "deny", "remove", "mute", "mute_all", "unmute", "pupil_media", "lower_hand",
		"let_speak", "screen_grant", "spotlight", "chat_delete", "chat_pupils", "lock", "end", "concern"} {
		require.True(t, covered[typ], "command %s is tested", typ)
	}
	// The teacher may: the fixture is not refusing everyone.
	require.NoError(t, f.room.Do(teacher, Command{Type: "lower_hand", Target: other}))
	require.Empty(t, Hands(f.room.Snapshot()))
}
