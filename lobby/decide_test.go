package lobby

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

func part(id string, role Role, state PState) Participant {
	return Participant{ID: id, Name: id, Role: role, State: state, Connected: true, NoticeAcked: true}
}

func edgeSet(d Decision) map[Edge]bool {
	m := map[Edge]bool{}
	for _, e := range d.Edges {
		m[e] = true
	}
	return m
}

func TestDecideTable(t *testing.T) {
	t.Parallel()
	T, T2 := part("t", Staff, Admitted), part("t2", Staff, Admitted)
	P, P2 := part("p", Pupil, Admitted), part("p2", Pupil, Admitted)
	waiting := part("w", Pupil, Waiting)
	gone := part("g", Staff, Admitted)
	gone.Connected = false
	cases := []struct {
		name    string
		s       RoomState
		p       Policy
		edges   []Edge
		needRec bool
		hold    string
	}{
		{"pupil alone", RoomState{Participants: []Participant{P}, OneToOneLesson: true}, Policy{}, nil, true, HoldNoStaff},
		{"class: pupil alone", RoomState{Participants: []Participant{P}}, Policy{}, nil, false, HoldNoStaff},
		{"two pupils, no staff", RoomState{Participants: []Participant{P, P2}}, Policy{}, nil, false, HoldNoStaff},
		{"staff left (disconnected)", RoomState{Participants: []Participant{P, P2, gone}}, Policy{}, nil, false, HoldNoStaff},
		{"one-to-one, recording starting", RoomState{Participants: []Participant{T, P}, Recording: RecStarting, OneToOneLesson: true}, Policy{}, nil, true, HoldRecStarting},
		{"one-to-one, recording failed", RoomState{Participants: []Participant{T, P}, Recording: RecFailed, OneToOneLesson: true}, Policy{}, nil, true, HoldRecFailed},
		{"one-to-one, recording confirmed", RoomState{Participants: []Participant{T, P}, Recording: RecConfirmed, OneToOneLesson: true}, Policy{}, []Edge{{"t", "p"}, {"p", "t"}}, true, HoldNone},
		{"class: first pupil admitted waits, unrecorded", RoomState{Participants: []Participant{T, P}}, Policy{}, []Edge{}, false, HoldClassWaiting},
		{"class: a second pupil admitted", RoomState{Participants: []Participant{T, P, P2}}, Policy{}, []Edge{{"t", "p"}, {"t", "p2"}, {"p", "t"}, {"p", "p2"}, {"p2", "t"}, {"p2", "p"}}, false, HoldNone},
		{"class: dip to one pupil (the other reconnecting)", RoomState{Participants: []Participant{T, P, func() Participant { x := P2; x.Connected = false; return x }()}}, Policy{}, []Edge{}, false, HoldClassWaiting},
		{"class: staff chose to record", RoomState{Participants: []Participant{T, P}, RecordChosen: true, Recording: RecStarting}, Policy{}, nil, true, HoldRecStarting},
		{"class: staff chose to record, confirmed", RoomState{Participants: []Participant{T, P}, RecordChosen: true, Recording: RecConfirmed}, Policy{}, []Edge{{"t", "p"}, {"p", "t"}}, true, HoldNone},
		{"class: recorded one-to-one earlier, one again", RoomState{Participants: []Participant{T, P}, RecordingTriggered: true, Recording: RecConfirmed}, Policy{}, []Edge{{"t", "p"}, {"p", "t"}}, true, HoldNone},
		{"class under policy always", RoomState{Participants: []Participant{T, P}, Recording: RecStarting}, Policy{Record: "always"}, nil, true, HoldRecStarting},
		{"one pupil, two staff", RoomState{Participants: []Participant{T, T2, P}}, Policy{}, []Edge{{"t", "t2"}, {"t", "p"}, {"t2", "t"}, {"t2", "p"}, {"p", "t"}, {"p", "t2"}}, false, HoldNone},
		{"two pupils, one staff", RoomState{Participants: []Participant{T, P, P2}}, Policy{}, []Edge{{"t", "p"}, {"t", "p2"}, {"p", "t"}, {"p", "p2"}, {"p2", "t"}, {"p2", "p"}}, false, HoldNone},
		{"waiting pupil gets nothing", RoomState{Participants: []Participant{T, P, P2, waiting}}, Policy{}, []Edge{{"t", "p"}, {"t", "p2"}, {"p", "t"}, {"p", "p2"}, {"p2", "t"}, {"p2", "p"}}, false, HoldNone},
		{"staff only", RoomState{Participants: []Participant{T, T2}}, Policy{}, []Edge{{"t", "t2"}, {"t2", "t"}}, false, HoldNone},
		{"staff chose to record, two pupils", RoomState{Participants: []Participant{T, P, P2}, RecordChosen: true}, Policy{}, []Edge{{"t", "p"}, {"t", "p2"}, {"p", "t"}, {"p", "p2"}, {"p2", "t"}, {"p2", "p"}}, true, HoldNone},
		{"triggered earlier keeps recording", RoomState{Participants: []Participant{T, P, P2}, RecordingTriggered: true, Recording: RecFailed}, Policy{}, []Edge{{"t", "p"}, {"t", "p2"}, {"p", "t"}, {"p", "p2"}, {"p2", "t"}, {"p2", "p"}}, true, HoldNone},
		{"always: waits for recording", RoomState{Participants: []Participant{T, P, P2}, Recording: RecStarting}, Policy{Record: "always"}, nil, true, HoldRecStarting},
		{"streamed: pupils only receive", RoomState{Participants: []Participant{T, P, P2}, Streamed: true}, Policy{}, []Edge{{"t", "p"}, {"t", "p2"}}, false, HoldNone},
		{"recorded, pupil has not acknowledged the notice", RoomState{Participants: []Participant{T, P, func() Participant { x := P2; x.NoticeAcked = false; return x }()}, Recording: RecConfirmed},
			Policy{}, []Edge{{"t", "p"}, {"p", "t"}}, false, HoldNone},
		{"ended", RoomState{Participants: []Participant{T, P, P2}, Ended: true}, Policy{}, nil, false, HoldNone},
	}
	for _, tc := range cases {
		d := Decide(tc.s, tc.p)
		require.Equal(t, edgeSet(Decision{Edges: tc.edges}), edgeSet(d), tc.name)
		require.Equal(t, tc.needRec, d.NeedRecording, tc.name)
		require.Equal(t, tc.hold, d.Hold, tc.name)
		require.Equal(t, tc.hold == HoldNone && !tc.s.Ended, d.PupilMedia, tc.name)
	}
}

// checkInvariant asserts the safeguarding invariants on one decision.
func checkInvariant(t *testing.T, s RoomState, pol Policy, d Decision, ctx string) {
	t.Helper()
	var P, S int
	role := map[string]Role{}
	present := map[string]bool{}
	for _, p := range s.Participants {
		role[p.ID] = p.Role
		if p.State == Admitted && p.Connected {
			present[p.ID] = true
			if p.Role == Staff {
				S++
			} else {
				P++
			}
		}
	}
	require.Equal(t, P, d.Pupils, ctx)
	require.Equal(t, S, d.Staff, ctx)
	for _, e := range d.Edges {
		require.True(t, present[e.From] && present[e.To], "%s: edge %v involves someone not admitted and connected", ctx, e)
		require.NotEqual(t, e.From, e.To, ctx)
		pupilEdge := role[e.From] == Pupil || role[e.To] == Pupil
		if S == 0 {
			require.False(t, pupilEdge, "%s: S=0 but pupil edge %v", ctx, e)
		}
		if P == 1 && S < 2 && pupilEdge {
			require.Equal(t, RecConfirmed, s.Recording, "%s: one-to-one pupil edge %v without confirmed recording", ctx, e)
		}
		if s.Streamed {
			require.NotEqual(t, Pupil, role[e.From], "%s: streamed session forwards a pupil", ctx)
		}
		if s.Recording == RecStarting || s.Recording == RecConfirmed {
			for _, p := range s.Participants {
				if (p.ID == e.From || p.ID == e.To) && NeedsNotice(p) {
					t.Fatalf("%s: edge %v involves a pupil who has not acknowledged the recording notice", ctx, e)
				}
			}
		}
	}
	recordsLone := s.OneToOneLesson || s.RecordChosen || s.RecordingTriggered || pol.Record == "always"
	if P == 1 && S < 2 && !s.Ended {
		// No pupil alone with one adult unrecorded: either it is recorded
		// (and media waits for it, above), or the pupil's media is held.
		if recordsLone {
			require.True(t, d.NeedRecording, "%s: one-to-one must need recording", ctx)
		} else {
			require.False(t, d.PupilMedia, "%s: a lone pupil of a class unrecorded must be held", ctx)
		}
	}
	// No class recorded by accident (data minimisation): under one_to_one,
	// a class lesson is recorded only once staff chose to or it was
	// one-to-one in a lesson that records it.
	if pol.Record != "always" && !s.OneToOneLesson && !s.RecordChosen && !s.RecordingTriggered {
		require.False(t, d.NeedRecording, "%s: a class lesson nobody chose to record needs no recording", ctx)
		require.False(t, d.RecordingTriggered, ctx)
	}
	if s.Ended {
		require.Empty(t, d.Edges, ctx)
	}
}

// TestDecideProperty runs random sequences of joins, admits, leaves,
// removals and recording changes and checks the invariant after each.
func TestDecideProperty(t *testing.T) {
	t.Parallel()
	for seed := uint64(1); seed <= 300; seed++ {
		rng := rand.New(rand.NewPCG(seed, 42))
		s := RoomState{Recording: RecOff, Streamed: rng.IntN(5) == 0, OneToOneLesson: rng.IntN(3) == 0}
		pol := Policy{Record: []string{"one_to_one", "always"}[rng.IntN(2)]}
		var log []string
		for step := 0; step < 60; step++ {
			switch op := rng.IntN(8); {
			case op == 0 || len(s.Participants) == 0:
				role := Pupil
				if rng.IntN(3) == 0 {
					role = Staff
				}
				st := Waiting
				if role == Staff {
					st = Admitted
				}
				s.Participants = append(s.Participants, part(fmt.Sprintf("x%d", len(s.Participants)), role, st))
				log = append(log, "join "+string(role))
			case op == 1:
				i := rng.IntN(len(s.Participants))
				if s.Participants[i].State == Waiting {
					s.Participants[i].State = Admitted
				}
				log = append(log, "admit")
			case op == 2:
				i := rng.IntN(len(s.Participants))
				s.Participants[i].Connected = false
				s.Participants[i].State = Left
				log = append(log, "leave")
			case op == 3:
				i := rng.IntN(len(s.Participants))
				s.Participants[i].State = Removed
				log = append(log, "remove")
			case op == 4:
				i := rng.IntN(len(s.Participants))
				s.Participants[i].Connected, s.Participants[i].State = true, Waiting
				log = append(log, "rejoin")
			case op == 5:
				s.Recording = []RecState{RecOff, RecStarting, RecConfirmed, RecFailed}[rng.IntN(4)]
				log = append(log, "rec "+string(s.Recording))
			case op == 6 && rng.IntN(2) == 0:
				i := rng.IntN(len(s.Participants))
				s.Participants[i].NoticeAcked = !s.Participants[i].NoticeAcked
				log = append(log, "toggle ack")
			case op == 6 && rng.IntN(20) == 0:
				s.Ended = true
				log = append(log, "end")
			case op == 6 && rng.IntN(10) == 0:
				s.RecordChosen = true
				log = append(log, "staff choose to record")
			default:
				i := rng.IntN(len(s.Participants))
				s.Participants[i].State = Denied
				log = append(log, "deny")
			}
			d := Decide(s, pol)
			s.RecordingTriggered = d.RecordingTriggered
			checkInvariant(t, s, pol, d, fmt.Sprintf("seed %d after %v", seed, log))
		}
	}
}

func FuzzDecide(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5}, false, false, false)
	f.Fuzz(func(t *testing.T, ops []byte, streamed, oneToOne, chosen bool) {
		s := RoomState{Streamed: streamed, Recording: RecOff, OneToOneLesson: oneToOne, RecordChosen: chosen}
		for i, b := range ops {
			role := Pupil
			if b&1 == 1 {
				role = Staff
			}
			p := part(fmt.Sprintf("f%d", i), role, []PState{Waiting, Admitted, Denied, Removed, Left}[int(b>>1)%5])
			p.Connected = b&0x40 == 0
			p.NoticeAcked = b&0x20 == 0
			s.Participants = append(s.Participants, p)
			if b&0x80 != 0 {
				s.Recording = []RecState{RecOff, RecStarting, RecConfirmed, RecFailed}[int(b>>4)%4]
			}
		}
		checkInvariant(t, s, Policy{}, Decide(s, Policy{}), "fuzz")
	})
}
