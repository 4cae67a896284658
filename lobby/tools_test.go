package lobby

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSourcesOfTable(t *testing.T) {
	t.Parallel()
	pupil := part("p", Pupil, Admitted)
	staff := part("t", Staff, Admitted)
	with := func(p Participant, f func(*Participant)) Participant { f(&p); return p }
	all := Sources{Audio: true, Video: true}
	cases := []struct {
		name string
		p    Participant
		s    RoomState
		want Sources
		mute Muted
		can  Muted
	}{
		{"pupil by default: mic and camera, no screen", pupil, RoomState{}, all, Muted{}, Muted{}},
		{"staff: everything, screen included", staff, RoomState{}, Sources{true, true, true}, Muted{}, Muted{}},
		{"pupil with a screen grant", with(pupil, func(p *Participant) { p.ScreenGranted = true }), RoomState{}, Sources{true, true, true}, Muted{}, Muted{}},
		{"pupil muted by staff, may unmute", with(pupil, func(p *Participant) { p.AudioMuted = true }), RoomState{},
			Sources{Video: true}, Muted{Audio: true}, Muted{Audio: true}},
		{"pupils may not unmute: mic off", pupil, RoomState{PupilAudioLocked: true}, Sources{Video: true}, Muted{Audio: true}, Muted{}},
		{"pupils may not unmute, this pupil allowed", with(pupil, func(p *Participant) { p.AudioAllowed = true }), RoomState{PupilAudioLocked: true}, all, Muted{}, Muted{}},
		{"allowed but muted again", with(pupil, func(p *Participant) { p.AudioMuted = true }), RoomState{PupilAudioLocked: true}, Sources{Video: true}, Muted{Audio: true}, Muted{}},
		{"cameras off for pupils", pupil, RoomState{PupilVideoLocked: true}, Sources{Audio: true}, Muted{Video: true}, Muted{}},
		{"cameras off, this pupil allowed", with(pupil, func(p *Participant) { p.VideoAllowed = true }), RoomState{PupilVideoLocked: true}, all, Muted{}, Muted{}},
		{"the lock does not apply to staff", staff, RoomState{PupilAudioLocked: true, PupilVideoLocked: true}, Sources{true, true, true}, Muted{}, Muted{}},
		{"staff muted by staff", with(staff, func(p *Participant) { p.AudioMuted = true }), RoomState{}, Sources{Video: true, Screen: true}, Muted{Audio: true}, Muted{Audio: true}},
		{"streamed: a pupil sends nothing, even with a grant", with(pupil, func(p *Participant) { p.ScreenGranted, p.AudioAllowed = true, true }), RoomState{Streamed: true}, Sources{}, Muted{}, Muted{}},
	}
	for _, tc := range cases {
		require.Equal(t, tc.want, SourcesOf(tc.p, tc.s), tc.name)
		require.Equal(t, tc.mute, MutedOf(tc.p, tc.s), tc.name)
		require.Equal(t, tc.can, CanUnmute(tc.p, tc.s), tc.name)
	}
}

func TestHandsInRaiseOrder(t *testing.T) {
	t.Parallel()
	a, b, c, d := part("a", Pupil, Admitted), part("b", Pupil, Admitted), part("c", Pupil, Admitted), part("d", Pupil, Admitted)
	a.Hand, b.Hand, c.Hand = 7, 3, 5
	gone := part("g", Pupil, Left)
	gone.Hand, gone.Connected = 1, false
	require.Equal(t, []string{"b", "c", "a"}, Hands(RoomState{Participants: []Participant{a, b, c, d, gone}}))
	require.Empty(t, Hands(RoomState{Participants: []Participant{d}}))
}

func TestAdmitAllTargets(t *testing.T) {
	t.Parallel()
	on := func(id string) Participant { p := part(id, Pupil, Waiting); p.OnRoster = true; return p }
	off := part("off", Pupil, Waiting) // not on the roster: stays
	denied := on("denied")
	denied.State = Denied
	gone := on("gone")
	gone.Connected = false
	staff := part("staff", Staff, Waiting)
	staff.OnRoster = true
	in := on("in")
	in.State = Admitted
	s := RoomState{Participants: []Participant{on("a"), off, denied, gone, staff, in, on("b")}}
	require.Equal(t, []string{"a", "b"}, AdmitAllTargets(s))
	require.Empty(t, AdmitAllTargets(RoomState{Participants: []Participant{off}}))
}

func TestSpotlightOf(t *testing.T) {
	t.Parallel()
	T, P := part("t", Staff, Admitted), part("p", Pupil, Admitted)
	left := part("l", Pupil, Left)
	cases := []struct {
		name string
		s    RoomState
		want Spotlight
	}{
		{"none", RoomState{Participants: []Participant{T, P}}, Spotlight{}},
		{"a pupil's camera", RoomState{Participants: []Participant{T, P}, Spotlight: Spotlight{ID: "p"}}, Spotlight{ID: "p"}},
		{"the teacher's screen", RoomState{Participants: []Participant{T, P}, Spotlight: Spotlight{ID: "t", Screen: true}}, Spotlight{ID: "t", Screen: true}},
		{"a pupil's screen without a grant", RoomState{Participants: []Participant{T, P}, Spotlight: Spotlight{ID: "p", Screen: true}}, Spotlight{}},
		{"someone who left", RoomState{Participants: []Participant{T, left}, Spotlight: Spotlight{ID: "l"}}, Spotlight{}},
		{"someone unknown", RoomState{Participants: []Participant{T}, Spotlight: Spotlight{ID: "x"}}, Spotlight{}},
	}
	for _, tc := range cases {
		require.Equal(t, tc.want, SpotlightOf(tc.s), tc.name)
	}
}
