package lobby

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestMediaReconnecting: while a pupil's page restarts ICE, staff see the
// pupil reconnecting; the media rules are unchanged (the pupil is still
// present); the flag goes when the page says it is back, and with the
// connection. A waiting pupil's report is ignored.
func TestMediaReconnecting(t *testing.T) {
	t.Parallel()
	f, teacher, pupil, _, waiting := newRoomFixture(t)
	rosterOf := func(id string) Person {
		t.Helper()
		for _, p := range lastOf[RosterMsg](f.clients[teacher]).Participants {
			if p.ID == id {
				return p
			}
		}
		t.Fatalf("%s not in the teacher's roster", id)
		return Person{}
	}
	before := Decide(f.room.Snapshot(), Policy{})

	f.room.MediaReconnecting(pupil, true)
	require.True(t, rosterOf(pupil).Reconnecting, "staff see the pupil reconnecting")
	require.False(t, Reconnecting(stateOf(t, f.room, pupil)), "still connected")
	require.Equal(t, before.Pupils, Decide(f.room.Snapshot(), Policy{}).Pupils, "the pupil still counts as present")

	f.room.MediaReconnecting(pupil, false)
	require.False(t, rosterOf(pupil).Reconnecting)

	f.room.MediaReconnecting(waiting, true)
	require.False(t, stateOf(t, f.room, waiting).MediaReconnecting, "only an admitted participant's flag is kept")

	f.room.MediaReconnecting(pupil, true)
	f.room.Leave(pupil, f.clients[pupil])
	require.False(t, stateOf(t, f.room, pupil).MediaReconnecting, "the flag goes with the connection")
}

// TestNoVideoBrowser: a page without WebRTC says so; staff see it on the
// waiting pupil's lobby entry and on an admitted pupil's roster entry, the
// media rules are unchanged, and an unknown participant's report changes
// nothing. (A new connection starts without the mark: the next page says
// so again if it must.)
func TestNoVideoBrowser(t *testing.T) {
	t.Parallel()
	f, teacher, pupil, _, waiting := newRoomFixture(t)
	before := Decide(f.room.Snapshot(), Policy{})
	f.room.NoVideoBrowser(waiting)
	var entry WaitingPerson
	for _, w := range lastOf[LobbyMsg](f.clients[teacher]).Waiting {
		if w.ID == waiting {
			entry = w
		}
	}
	require.True(t, entry.NoVideoBrowser, "staff see it in the lobby")
	f.room.NoVideoBrowser(pupil)
	var person Person
	for _, p := range lastOf[RosterMsg](f.clients[teacher]).Participants {
		if p.ID == pupil {
			person = p
		}
	}
	require.True(t, person.NoVideoBrowser, "and on the roster")
	require.Equal(t, before.Pupils, Decide(f.room.Snapshot(), Policy{}).Pupils, "no rule changes")
	f.room.NoVideoBrowser("nobody") // unknown: nothing happens
	f.room.Leave(waiting, f.clients[waiting])
	require.False(t, stateOf(t, f.room, waiting).Connected)
	require.True(t, stateOf(t, f.room, waiting).NoVideoBrowser, "kept while away (the lobby no longer lists them)")
}
