package lobby

import (
	"slices"
	"time"
)

// The lesson tools' rules: who may send which source (microphone, camera,
// screen), the raised hands, "Admit all" and the spotlight. All pure: they
// look at a RoomState and return a value; the Room applies them.

// Sources says which of a participant's sources the SFU forwards (and the
// recorder records).
type Sources struct {
	Audio, Video, Screen bool
}

// Spotlight is the participant (or their screen share) staff have pinned as
// the main view for everyone. The zero value means none.
type Spotlight struct {
	ID     string `json:"id"`
	Screen bool   `json:"screen"`
}

// PupilMedia says whether pupils may switch their microphone and camera on
// themselves (the session's settings; both true by default).
type PupilMedia struct {
	Audio bool `json:"audio"`
	Video bool `json:"video"`
}

// PupilMediaOf returns the session's pupil media settings.
func PupilMediaOf(s RoomState) PupilMedia {
	return PupilMedia{Audio: !s.PupilAudioLocked, Video: !s.PupilVideoLocked}
}

// SourcesOf decides which of p's sources may flow:
//   - in a streamed session a pupil sends nothing;
//   - a source staff muted stays off until staff (or, if the session lets
//     pupils unmute themselves, the pupil) switch it back on;
//   - while pupils may not unmute themselves (PupilAudioLocked), a pupil's
//     microphone is off until staff allow that pupil; the same for cameras
//     (PupilVideoLocked);
//   - staff may always share a screen, a pupil only with a grant.
func SourcesOf(p Participant, s RoomState) Sources {
	if p.Role != Pupil {
		return Sources{Audio: !p.AudioMuted, Video: !p.VideoMuted, Screen: true}
	}
	if s.Streamed {
		return Sources{}
	}
	return Sources{
		Audio:  !p.AudioMuted && (!s.PupilAudioLocked || p.AudioAllowed),
		Video:  !p.VideoMuted && (!s.PupilVideoLocked || p.VideoAllowed),
		Screen: p.ScreenGranted,
	}
}

// MutedOf is what p is told staff have switched off (a streamed session's
// pupils are told about that separately, by the banner).
func MutedOf(p Participant, s RoomState) Muted {
	if p.Role == Pupil && s.Streamed {
		return Muted{}
	}
	src := SourcesOf(p, s)
	return Muted{Audio: !src.Audio, Video: !src.Video}
}

// CanUnmute says which of p's muted sources p may switch back on
// themselves: a pupil muted by staff may, while the session lets pupils
// unmute themselves; staff may always.
func CanUnmute(p Participant, s RoomState) Muted {
	m := MutedOf(p, s)
	if p.Role != Pupil {
		return m
	}
	return Muted{Audio: m.Audio && !s.PupilAudioLocked, Video: m.Video && !s.PupilVideoLocked}
}

// Hands returns the IDs of the participants in the room with a raised hand,
// in the order they raised them.
func Hands(s RoomState) []string {
	var up []Participant
	for _, p := range s.Participants {
		if p.Hand > 0 && inRoom(p) {
			up = append(up, p)
		}
	}
	slices.SortFunc(up, func(a, b Participant) int { return a.Hand - b.Hand })
	ids := make([]string, len(up))
	for i, p := range up {
		ids[i] = p.ID
	}
	return ids
}

// AdmitAllTargets returns who "Admit all" lets in: the pupils waiting in
// the lobby (connected, not turned away) who are on the class roster.
// Pupils not on the roster, and staff, stay for staff to decide one by one.
func AdmitAllTargets(s RoomState) []string {
	var ids []string
	for _, p := range s.Participants {
		if p.State == Waiting && p.Connected && p.Role == Pupil && p.OnRoster {
			ids = append(ids, p.ID)
		}
	}
	return ids
}

// SpotlightOf returns the spotlight in force: the one staff set, while its
// participant is in the room (and, for a screen, may share one); else none.
func SpotlightOf(s RoomState) Spotlight {
	if s.Spotlight.ID == "" {
		return Spotlight{}
	}
	for _, p := range s.Participants {
		if p.ID == s.Spotlight.ID {
			if !inRoom(p) || s.Spotlight.Screen && !SourcesOf(p, s).Screen {
				return Spotlight{}
			}
			return s.Spotlight
		}
	}
	return Spotlight{}
}

// HandInterval is how often a participant may raise or lower their own
// hand: at most one change per interval. Each change is audited and sent to
// everyone, so a pupil tapping the button fast must not flood the room.
const HandInterval = 2 * time.Second

// HandChangeAllowed says whether a participant whose hand last changed at
// last (zero: never) may change it at now. A clock that went backwards
// does not lock them out.
func HandChangeAllowed(last, now time.Time) bool {
	return last.IsZero() || now.Before(last) || now.Sub(last) >= HandInterval
}
