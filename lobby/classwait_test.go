package lobby

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/chaperone-edu/chaperone/store"
)

func lastState(c *fakeClient) StateMsg {
	var st StateMsg
	for _, m := range c.all() {
		if s, ok := m.(StateMsg); ok {
			st = s
		}
	}
	return st
}

// A class lesson with pupils admitted one at a time is not recorded: the
// first pupil waits with media held while the teacher is offered the
// choice; the second admission opens media; nothing ever started a
// recording. Choosing to record records (and is kept in the room's state).
func TestClassLessonNotRecordedByAccident(t *testing.T) {
	t.Parallel()
	var starts atomic.Int32
	f := &roomFixture{audit: &fakeAudit{}, gate: &fakeGate{}, clock: &fakeClock{t: time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)}, clients: map[string]*fakeClient{}}
	f.room = NewRoom(RoomConfig{Session: store.Session{ID: "s1", Kind: "interactive", RosterGroup: "year-8"}, Gate: f.gate, Audit: f.audit,
		Now: f.clock.Now, StartRecording: func() { starts.Add(1) }})
	f.audit.room = f.room
	t.Cleanup(f.room.Stop)
	teacher := f.join(t, "teacher", true)
	amelia := f.join(t, "amelia", false)
	zoe := f.join(t, "zoe", false)

	require.NoError(t, f.room.Do(teacher, Command{Type: "admit", Target: amelia}))
	require.Equal(t, "held", lastState(f.clients[amelia]).Gate)
	require.Contains(t, lastState(f.clients[amelia]).Banner, "More of your class are joining")
	require.True(t, lastState(f.clients[teacher]).OfferRecord, "the teacher is offered the choice")
	require.Contains(t, lastState(f.clients[teacher]).Banner, "Admit one more pupil, or start recording")
	require.Equal(t, RecOff, f.room.Snapshot().Recording)

	require.NoError(t, f.room.Do(teacher, Command{Type: "admit", Target: zoe}))
	require.Equal(t, "open", lastState(f.clients[amelia]).Gate)
	require.False(t, lastState(f.clients[teacher]).OfferRecord)
	require.Zero(t, starts.Load(), "no recording for a class")

	// Zoe leaves: Amelia is alone again, and held; still nothing recorded.
	f.room.Leave(zoe, f.clients[zoe])
	require.Eventually(t, func() bool { return lastState(f.clients[amelia]).Gate == "held" }, 2*time.Second, 10*time.Millisecond)
	require.Zero(t, starts.Load())

	// A pupil cannot choose; the teacher can, once.
	require.Error(t, f.room.Do(amelia, Command{Type: "record"}))
	require.NoError(t, f.room.Do(teacher, Command{Type: "record"}))
	require.NoError(t, f.room.Do(teacher, Command{Type: "record"}))
	require.Equal(t, int32(1), starts.Load(), "recording starts when the teacher chooses it")
	st := f.room.Snapshot()
	require.Equal(t, RecStarting, st.Recording)
	require.True(t, st.RecordChosen)
	require.True(t, f.room.record().RecordChosen, "the choice survives a restart")
	require.Equal(t, "held", lastState(f.clients[amelia]).Gate, "media waits for the recording")
	f.room.SetRecording(RecConfirmed, "")
	require.Eventually(t, func() bool { return lastState(f.clients[amelia]).Notice }, 2*time.Second, 10*time.Millisecond, "the pupil is shown the notice")
	n := 0
	for _, a := range f.audit.actions() {
		if a == "room.record_chosen" {
			n++
		}
	}
	require.Equal(t, 1, n)
}

// A lesson requested for one pupil records from the start.
func TestOnePupilLessonRecordsFromTheStart(t *testing.T) {
	t.Parallel()
	var starts atomic.Int32
	f := &roomFixture{audit: &fakeAudit{}, gate: &fakeGate{}, clock: &fakeClock{t: time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)}, clients: map[string]*fakeClient{}}
	f.room = NewRoom(RoomConfig{Session: store.Session{ID: "s1", Kind: "interactive", RosterEmails: []string{"amelia@oakfield.example"}},
		Gate: f.gate, Audit: f.audit, Now: f.clock.Now, StartRecording: func() { starts.Add(1) }})
	t.Cleanup(f.room.Stop)
	teacher := f.join(t, "teacher", true)
	amelia := f.join(t, "amelia", false)
	require.NoError(t, f.room.Do(teacher, Command{Type: "admit", Target: amelia}))
	require.Equal(t, int32(1), starts.Load())
	require.False(t, lastState(f.clients[teacher]).OfferRecord)
	require.Contains(t, lastState(f.clients[amelia]).Banner, "This lesson is being recorded")
}

// A streamed lesson for a class with one pupil there: the pupil waits, and
// staff may choose to record so that they can watch (one-to-one).
func TestStreamedLonePupilMayBeRecorded(t *testing.T) {
	t.Parallel()
	var starts atomic.Int32
	f := &roomFixture{audit: &fakeAudit{}, gate: &fakeGate{}, clock: &fakeClock{t: time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)}, clients: map[string]*fakeClient{}}
	f.room = NewRoom(RoomConfig{Session: store.Session{ID: "s1", Kind: KindStreamed, RosterGroup: "year-8"}, Gate: f.gate, Audit: f.audit,
		Now: f.clock.Now, StartRecording: func() { starts.Add(1) }})
	t.Cleanup(f.room.Stop)
	teacher := f.join(t, "teacher", true)
	amelia := f.join(t, "amelia", false)
	require.NoError(t, f.room.Do(teacher, Command{Type: "admit", Target: amelia}))
	require.True(t, lastState(f.clients[teacher]).OfferRecord)
	require.NoError(t, f.room.Do(teacher, Command{Type: "record"}))
	require.Equal(t, int32(1), starts.Load())
}
