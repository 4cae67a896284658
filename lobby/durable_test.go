package lobby

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/chaperone-edu/chaperone/store"
)

// fakeSaver keeps the records a room saves; while failing it refuses them.
type fakeSaver struct {
	mu      sync.Mutex
	saved   []store.RoomRecord
	failing bool
	refused int
}

func (s *fakeSaver) SaveRoom(_ context.Context, r store.RoomRecord) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failing {
		s.refused++
		return errors.New("disk full")
	}
	s.saved = append(s.saved, r)
	return nil
}

func (s *fakeSaver) last() (store.RoomRecord, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.saved) == 0 {
		return store.RoomRecord{}, false
	}
	return s.saved[len(s.saved)-1], true
}

func (s *fakeSaver) setFailing(on bool) { s.mu.Lock(); s.failing = on; s.mu.Unlock() }

func (s *fakeSaver) refusals() int { s.mu.Lock(); defer s.mu.Unlock(); return s.refused }

type durableFixture struct {
	roomFixture
	saver *fakeSaver
}

func newDurableRoom(t *testing.T, grace time.Duration, restore *store.RoomRecord, chat []store.ChatMessage, saver *fakeSaver, clock *fakeClock) *durableFixture {
	t.Helper()
	f := &durableFixture{roomFixture: roomFixture{audit: &fakeAudit{}, gate: &fakeGate{}, clock: clock, clients: map[string]*fakeClient{}}, saver: saver}
	f.room = NewRoom(RoomConfig{Session: store.Session{ID: "s1", Kind: "interactive"}, Gate: f.gate, Audit: f.audit, Now: clock.Now,
		Saver: saver, Restore: restore, RestoreChat: chat, RejoinGrace: grace})
	f.audit.room = f.room
	t.Cleanup(f.room.Stop)
	return f
}

func stateOf(t *testing.T, r *Room, id string) Participant {
	t.Helper()
	for _, p := range r.Snapshot().Participants {
		if p.ID == id {
			return p
		}
	}
	t.Fatalf("no participant %s", id)
	return Participant{}
}

// TestRejoinWithinGrace: an admitted pupil whose connection closes is
// reconnecting (absent for the media rules, shown to staff), comes back
// straight into the lesson within the grace, and after the grace has left
// and must be admitted again.
func TestRejoinWithinGrace(t *testing.T) {
	t.Parallel()
	clock := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	f := newDurableRoom(t, 300*time.Millisecond, nil, nil, &fakeSaver{}, clock)
	teacher := f.join(t, "teacher", true)
	pupil := f.join(t, "amelia", false)
	require.NoError(t, f.room.Do(teacher, Command{Type: "admit", Target: pupil}))

	f.room.Leave(pupil, f.clients[pupil])
	p := stateOf(t, f.room, pupil)
	require.Equal(t, Admitted, p.State)
	require.True(t, Reconnecting(p))
	require.Zero(t, Decide(f.room.Snapshot(), Policy{}).Pupils, "a reconnecting pupil counts as absent")
	roster := lastOf[RosterMsg](f.clients[teacher])
	require.Len(t, roster.Participants, 2)
	require.True(t, roster.Participants[1].Reconnecting, "staff see the pupil reconnecting")

	clock.Add(100 * time.Millisecond)
	pupil = f.join(t, "amelia", false)
	p = stateOf(t, f.room, pupil)
	require.Equal(t, Admitted, p.State, "back without admission")
	require.False(t, Reconnecting(p))
	require.Contains(t, f.audit.actions(), "room.rejoin")

	// Gone longer than the grace: left, and waits in the lobby again.
	f.room.Leave(pupil, f.clients[pupil])
	clock.Add(400 * time.Millisecond)
	require.Eventually(t, func() bool { return stateOf(t, f.room, pupil).State == Left }, 5*time.Second, 10*time.Millisecond)
	require.Len(t, lastOf[RosterMsg](f.clients[teacher]).Participants, 1, "gone from the staff's list")
	pupil = f.join(t, "amelia", false)
	require.Equal(t, Waiting, stateOf(t, f.room, pupil).State)
}

// TestRemovedWhileAwayStaysOut: staff remove a reconnecting pupil; the
// pupil cannot come back.
func TestRemovedWhileAwayStaysOut(t *testing.T) {
	t.Parallel()
	clock := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	f := newDurableRoom(t, time.Minute, nil, nil, &fakeSaver{}, clock)
	teacher := f.join(t, "teacher", true)
	pupil := f.join(t, "amelia", false)
	require.NoError(t, f.room.Do(teacher, Command{Type: "admit", Target: pupil}))
	f.room.Leave(pupil, f.clients[pupil])
	require.NoError(t, f.room.Do(teacher, Command{Type: "remove", Target: pupil, Reason: "Unkind in chat."}))
	_, err := f.room.Join(joiner("amelia", false), &fakeClient{})
	require.ErrorIs(t, err, ErrRemoved)
}

// TestRoomRestoredFromDurableState: a room created again from what the old
// one saved keeps removals, denials and the lock; admitted pupils come back
// without admission (their notice acknowledgement kept); a pupil who was
// waiting waits again; chat IDs go on from the highest given out.
func TestRoomRestoredFromDurableState(t *testing.T) {
	t.Parallel()
	clock := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	saver := &fakeSaver{}
	f := newDurableRoom(t, time.Minute, nil, nil, saver, clock)
	teacher := f.join(t, "teacher", true)
	amelia := f.join(t, "amelia", false)
	zoe := f.join(t, "zoe", false)
	oliver := f.join(t, "oliver", false)
	ryan := f.join(t, "ryan", false)
	require.NoError(t, f.room.Do(teacher, Command{Type: "admit", Target: amelia}))
	require.NoError(t, f.room.Do(teacher, Command{Type: "admit", Target: zoe}))
	require.NoError(t, f.room.Do(teacher, Command{Type: "remove", Target: zoe, Reason: "Shared an unkind picture."}))
	require.NoError(t, f.room.Do(teacher, Command{Type: "deny", Target: oliver, Reason: "Not in this class."}))
	require.NoError(t, f.room.Do(teacher, Command{Type: "chat", Text: "Welcome"}))
	require.NoError(t, f.room.Do(amelia, Command{Type: "chat", Text: "Hello"}))
	require.NoError(t, f.room.Do(teacher, Command{Type: "lock", Locked: true}))
	_ = ryan
	var rec store.RoomRecord
	require.Eventually(t, func() bool {
		var ok bool
		rec, ok = saver.last()
		return ok && rec.Locked && rec.ChatSeq == 2
	}, 5*time.Second, 10*time.Millisecond, "the room's state is saved")
	f.room.Stop() // the gateway goes away

	chat := []store.ChatMessage{{SessionID: "s1", ID: "m1", SenderSub: "teacher", SenderName: "teacher", Role: "staff", Text: "Welcome"},
		{SessionID: "s1", ID: "m2", SenderSub: "amelia", SenderName: "amelia", Role: "pupil", Text: "Hello"}}
	g := newDurableRoom(t, time.Minute, &rec, chat, &fakeSaver{}, clock)
	_, err := g.room.Join(joiner("zoe", false), &fakeClient{})
	require.ErrorIs(t, err, ErrRemoved, "removed stays removed")
	_, err = g.room.Join(joiner("ryan", false), &fakeClient{})
	require.ErrorIs(t, err, ErrLocked, "the lock holds")
	teacher = g.join(t, "teacher", true)
	amelia = g.join(t, "amelia", false)
	require.Equal(t, Admitted, stateOf(t, g.room, amelia).State, "admitted before the restart: straight back in")
	oliver = g.join(t, "oliver", false)
	require.Equal(t, Denied, stateOf(t, g.room, oliver).State)
	require.NoError(t, g.room.Do(teacher, Command{Type: "chat", Text: "We are back"}))
	last := lastOf[ChatMsg](g.clients[amelia])
	require.Equal(t, "m3", last.ID, "chat IDs never repeat")
	history := lastOf[ChatHistoryMsg](g.clients[amelia])
	require.Len(t, history.Messages, 2, "the chat so far is shown again")
}

// TestSaverRetries: while the store refuses, the room goes on (nothing
// blocks) and the newest state is written once the store is back.
func TestSaverRetries(t *testing.T) {
	t.Parallel()
	clock := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	saver := &fakeSaver{}
	saver.setFailing(true)
	f := newDurableRoom(t, time.Minute, nil, nil, saver, clock)
	teacher := f.join(t, "teacher", true)
	require.NoError(t, f.room.Do(teacher, Command{Type: "lock", Locked: true}))
	require.Eventually(t, func() bool { return saver.refusals() >= 2 }, 5*time.Second, 10*time.Millisecond)
	require.NoError(t, f.room.Do(teacher, Command{Type: "chat", Text: "Still here"}))
	saver.setFailing(false)
	require.Eventually(t, func() bool {
		rec, ok := saver.last()
		return ok && rec.Locked && rec.ChatSeq == 1
	}, 10*time.Second, 20*time.Millisecond, "the newest state is saved once the store is back")
}

// lastOf is the last message of type T a fake client received.
func lastOf[T any](c *fakeClient) T {
	var out T
	for _, m := range c.all() {
		if v, ok := m.(T); ok {
			out = v
		}
	}
	return out
}

// flakyAudit refuses rows while failing, then keeps them.
type flakyAudit struct {
	fakeAudit
	failing atomic.Bool
}

func (a *flakyAudit) AppendAudit(ctx context.Context, e store.AuditEntry) (store.AuditRecord, error) {
	if a.failing.Load() {
		return store.AuditRecord{}, errors.New("database or disk is full")
	}
	return a.fakeAudit.AppendAudit(ctx, e)
}

// TestAuditNeverBlocksTheRoom: while the store refuses audit rows the room
// goes on answering; once it is back every row is written, in order, with
// the time of its event.
func TestAuditNeverBlocksTheRoom(t *testing.T) {
	t.Parallel()
	clock := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	audit := &flakyAudit{}
	audit.failing.Store(true)
	room := NewRoom(RoomConfig{Session: store.Session{ID: "s1", Kind: "interactive", RosterEmails: []string{"amelia@oakfield.example"}}, Gate: &fakeGate{}, Audit: audit, Now: clock.Now})
	t.Cleanup(room.Stop)
	teacher, err := room.Join(joiner("teacher", true), &fakeClient{})
	require.NoError(t, err)
	clock.Add(time.Minute)
	pupil, err := room.Join(joiner("amelia", false), &fakeClient{})
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- room.Do(teacher, Command{Type: "admit", Target: pupil}) }()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(2 * time.Second):
		t.Fatal("the room waited for the failing store")
	}
	audit.failing.Store(false)
	audit.room = room
	require.Eventually(t, func() bool { return len(audit.actions()) >= 5 }, 20*time.Second, 20*time.Millisecond)
	require.Equal(t, []string{"room.join", "room.admit", "room.join", "room.admit", "recording.failed"}, audit.actions()[:5])
	audit.mu.Lock()
	defer audit.mu.Unlock()
	require.Equal(t, time.Unix(1_800_000_000, 0), audit.rows[0].Time, "a row keeps its event's time")
	require.Equal(t, time.Unix(1_800_000_060, 0), audit.rows[2].Time)
}

// TestRestoredRoomEndsWithoutStaff: after a restart the pupils come back but
// no member of staff does: the staff grace ends the session, as it would
// have in the old room.
func TestRestoredRoomEndsWithoutStaff(t *testing.T) {
	t.Parallel()
	clock := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	rec := &store.RoomRecord{SessionID: "s1", Saved: clock.Now(), Participants: []store.RoomParticipant{
		{ID: ParticipantID("s1", "teacher"), Subject: "teacher", Name: "teacher", Role: "staff", State: "admitted"},
		{ID: ParticipantID("s1", "amelia"), Subject: "amelia", Name: "amelia", Role: "pupil", State: "admitted"},
		{ID: ParticipantID("s1", "zoe"), Subject: "zoe", Name: "zoe", Role: "pupil", State: "admitted"}}}
	room := NewRoom(RoomConfig{Session: store.Session{ID: "s1", Kind: "interactive"}, Gate: &fakeGate{}, Now: clock.Now,
		Restore: rec, Grace: 100 * time.Millisecond})
	t.Cleanup(room.Stop)
	_, err := room.Join(joiner("amelia", false), &fakeClient{})
	require.NoError(t, err)
	_, err = room.Join(joiner("zoe", false), &fakeClient{})
	require.NoError(t, err)
	select {
	case <-room.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the restored room did not end without staff")
	}
	require.True(t, room.Snapshot().Ended)
}

// TestEndedRoomIsSavedEnded: a room that ended saves that it did, so a
// room is never built again from its record.
func TestEndedRoomIsSavedEnded(t *testing.T) {
	t.Parallel()
	clock := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	saver := &fakeSaver{}
	f := newDurableRoom(t, time.Minute, nil, nil, saver, clock)
	f.join(t, "teacher", true)
	f.room.End("The session's time is over.")
	<-f.room.Done()
	rec, ok := saver.last()
	require.True(t, ok)
	require.True(t, rec.Ended)
}

// TestStopRetriesTheLastSave: the store refuses while the gateway shuts
// down right after a removal; the saver keeps trying until the store takes
// it (within its deadline), so the removal is not lost.
func TestStopRetriesTheLastSave(t *testing.T) {
	t.Parallel()
	clock := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	saver := &fakeSaver{}
	f := newDurableRoom(t, time.Minute, nil, nil, saver, clock)
	teacher := f.join(t, "teacher", true)
	pupil := f.join(t, "amelia", false)
	require.NoError(t, f.room.Do(teacher, Command{Type: "admit", Target: pupil}))
	saver.setFailing(true)
	require.NoError(t, f.room.Do(teacher, Command{Type: "remove", Target: pupil, Reason: "Unkind in chat."}))
	go func() { time.Sleep(time.Second); saver.setFailing(false) }()
	f.room.Stop()
	<-f.room.Done()
	rec, ok := saver.last()
	require.True(t, ok)
	var state string
	for _, p := range rec.Participants {
		if p.ID == pupil {
			state = p.State
		}
	}
	require.Equal(t, string(Removed), state, "the removal was saved once the store came back")
}

// TestRejoinGraceAcrossRestart: the rejoin grace counts from when the old
// room was last alive, not from the restart: after a short outage admitted
// pupils come straight back; after a long one they wait to be admitted; a
// removal the state lost but the audit log kept still holds.
func TestRejoinGraceAcrossRestart(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		outage time.Duration
		want   PState
	}{{"short outage", 30 * time.Second, Admitted}, {"long outage", time.Hour, Waiting}} {
		t.Run(tc.name, func(t *testing.T) {
			clock := &fakeClock{t: time.Unix(1_800_000_000, 0)}
			rec := &store.RoomRecord{SessionID: "s1", Saved: clock.Now(), Participants: []store.RoomParticipant{
				{ID: ParticipantID("s1", "amelia"), Subject: "amelia", Name: "amelia", Role: "pupil", State: "admitted"}}}
			clock.Add(tc.outage)
			removed := ParticipantID("s1", "zoe")
			g := &durableFixture{roomFixture: roomFixture{audit: &fakeAudit{}, gate: &fakeGate{}, clock: clock, clients: map[string]*fakeClient{}}}
			g.room = NewRoom(RoomConfig{Session: store.Session{ID: "s1", Kind: "interactive"}, Gate: g.gate, Now: clock.Now,
				Restore: rec, Removed: []string{removed}, RejoinGrace: 2 * time.Minute})
			t.Cleanup(g.room.Stop)
			id := g.join(t, "amelia", false)
			require.Equal(t, tc.want, stateOf(t, g.room, id).State)
			_, err := g.room.Join(joiner("zoe", false), &fakeClient{})
			require.ErrorIs(t, err, ErrRemoved)
		})
	}
}

// TestWaitingPupilKeepsPlaceThroughLock: a pupil waiting in the lobby whose
// connection drops keeps their place within the grace, even after staff
// lock the lobby; a newcomer is still kept out.
func TestWaitingPupilKeepsPlaceThroughLock(t *testing.T) {
	t.Parallel()
	clock := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	f := newDurableRoom(t, time.Minute, nil, nil, &fakeSaver{}, clock)
	teacher := f.join(t, "teacher", true)
	pupil := f.join(t, "amelia", false)
	f.room.Leave(pupil, f.clients[pupil])
	require.NoError(t, f.room.Do(teacher, Command{Type: "lock", Locked: true}))
	clock.Add(10 * time.Second)
	pupil = f.join(t, "amelia", false)
	require.Equal(t, Waiting, stateOf(t, f.room, pupil).State)
	_, err := f.room.Join(joiner("zoe", false), &fakeClient{})
	require.ErrorIs(t, err, ErrLocked)
}
