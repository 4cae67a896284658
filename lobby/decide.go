package lobby

import (
	"time"

	"github.com/chaperone-edu/chaperone/audit"
	"github.com/chaperone-edu/chaperone/store"
)

// Role is a participant's role in a room.
type Role string

// Participant roles.
const (
	Pupil Role = "pupil"
	Staff Role = "staff"
)

// PState is where a participant is in the room.
type PState string

// Participant states.
const (
	Waiting  PState = "waiting"  // in the lobby
	Admitted PState = "admitted" // in the room
	Denied   PState = "denied"   // turned away by staff, with a reason
	Removed  PState = "removed"  // removed by staff: never admitted again this session
	Left     PState = "left"     // gone (closed the page or lost connection)
)

// RecState is the state of the session's recording.
type RecState string

// Recording states.
const (
	RecOff       RecState = "off"
	RecStarting  RecState = "starting"
	RecConfirmed RecState = "confirmed"
	RecFailed    RecState = "failed"
)

// Participant is one person in a live room.
type Participant struct {
	ID           string
	Subject      string
	Name         string // verified full name
	Email        string
	Role         Role
	SessionStaff bool // staff of this session (host or co-staff)
	OnRoster     bool // pupil on the class roster
	// LooksLike names another pupil on the class list whose name looks
	// like this one's ("Amelia Jones, amelia.j@…"), for staff to check
	// before admitting; empty when none does.
	LooksLike string
	State     PState
	Connected bool
	// MediaReconnecting: connected, but restarting their media connection
	// (ICE restart after a network change); staff see them reconnecting.
	// It changes no media rule.
	MediaReconnecting bool
	// NoVideoBrowser: their page says its browser cannot make video calls
	// (no WebRTC); they were told which browsers work, and staff see it.
	// It changes no rule and lasts until their next connection.
	NoVideoBrowser bool
	Reason         string // deny or removal reason
	AudioMuted     bool   // by staff: the SFU forwards none of its audio
	VideoMuted     bool   // by staff: the SFU forwards none of its video
	// AudioAllowed and VideoAllowed: staff let this pupil speak (or show
	// their camera) while the session does not let pupils unmute themselves.
	AudioAllowed bool
	VideoAllowed bool
	// ScreenGranted: staff let this pupil share a screen in this session.
	ScreenGranted bool
	// Hand is when the participant raised their hand, as a position in
	// the room's sequence of raises (0: hand down); see Hands.
	Hand int
	// NoticeAcked: the pupil has acknowledged the recording notice. While
	// the session is recorded, a pupil's media flows only after that.
	NoticeAcked bool
	// AwaySince is when an admitted participant's connection closed: until
	// the rejoin grace has passed they are reconnecting and come back
	// without admission (zero while connected).
	AwaySince time.Time
}

// RoomState is everything Decide looks at.
type RoomState struct {
	Participants []Participant
	Recording    RecState
	// RecordingWhy is the reason given with the last recording state, for
	// people ("Recording stopped: the server's disk is full. Media is
	// paused."): the banner shows it while a failed recording holds media.
	RecordingWhy string
	// RecordingTriggered is set once the one-to-one rule has applied in
	// this session; with policy one_to_one recording then runs to the end.
	RecordingTriggered bool
	// OneToOneLesson: the lesson was requested for one pupil (IsOneToOne),
	// so a lone pupil is its purpose and it records from the start. In a
	// lesson for a class a lone pupil waits, media held, until a second is
	// admitted or staff choose to record (RecordChosen).
	OneToOneLesson bool
	RecordChosen   bool
	Streamed       bool // a streamed session: pupils watch only
	// PupilAudioLocked: pupils may not unmute themselves; a pupil's
	// microphone is off until staff allow that pupil. PupilVideoLocked: the
	// same for cameras. Both off by default (see SourcesOf).
	PupilAudioLocked bool
	PupilVideoLocked bool
	Spotlight        Spotlight // what staff pinned as everyone's main view
	Locked           bool
	Ended            bool
}

// Policy is the school's recording policy.
type Policy struct {
	Record string // "one_to_one" (default) or "always"
}

// Edge is a direction media may flow in: from a publisher to a subscriber.
type Edge struct{ From, To string }

// Hold reasons: why pupils' media is held.
const (
	HoldNone        = ""
	HoldNoStaff     = "no_staff"
	HoldRecStarting = "recording_starting"
	HoldRecFailed   = "recording_failed"
	// HoldClassWaiting: in a lesson for a class, one pupil is with fewer
	// than two staff and nobody chose to record: the pupil waits for the
	// rest of the class (no class is recorded by accident).
	HoldClassWaiting = "class_waiting"
)

// Decision is what the room must do now.
type Decision struct {
	Edges         []Edge // the edges that may carry media; every other edge is closed
	NeedRecording bool   // recording must run (start it if it is not running)
	// RecordingTriggered is the new value of RoomState.RecordingTriggered.
	RecordingTriggered bool
	// PupilMedia says whether pupils' media may flow at all; Hold says why not.
	PupilMedia bool
	Hold       string
	Staff      int // admitted, connected staff
	Pupils     int // admitted, connected pupils
}

// IsOneToOne reports whether a session was requested for one pupil (its
// class list is one pupil's account, not a group): a lone pupil is then
// the lesson, and it is recorded from the start.
func IsOneToOne(ss store.Session) bool {
	return ss.RosterGroup == "" && len(ss.RosterEmails) == 1
}

// NeedsNotice reports whether p is a pupil who has not yet acknowledged the
// recording notice (it matters only while the session is recorded).
func NeedsNotice(p Participant) bool { return p.Role == Pupil && !p.NoticeAcked }

// Reconnecting reports whether p was in the lesson and lost their
// connection, and may still come back without admission. Media rules count
// them as absent.
func Reconnecting(p Participant) bool {
	return p.State == Admitted && !p.Connected && !p.AwaySince.IsZero()
}

// inRoom reports whether p counts as present for the media rules.
func inRoom(p Participant) bool { return p.State == Admitted && p.Connected }

// Decide applies the safeguarding rules to a room's state. It is pure.
//
// With P admitted pupils and S admitted staff connected (a pupil who is
// reconnecting counts as absent):
//   - S = 0: no edge to or from a pupil carries media;
//   - P = 1 and S < 2 is one-to-one. It is recorded when the lesson was
//     requested for one pupil, when staff chose to record, under policy
//     "always", or once it has been recorded in this session: then
//     recording is required, and no edge to or from a pupil carries media
//     unless the recording is confirmed. Otherwise (a lesson for a class
//     with one pupil there so far, or a dip to one while another
//     reconnects) the pupil's media is held and nothing is recorded: no
//     class is recorded by accident, and no pupil is alone with one adult
//     unrecorded;
//   - policy "always" requires (and waits for) recording whenever a pupil
//     is present; "one_to_one" keeps recording, once triggered, to the end;
//   - in a streamed session no pupil's media is forwarded at all.
func Decide(s RoomState, p Policy) Decision {
	var d Decision
	for _, x := range s.Participants {
		if !inRoom(x) {
			continue
		}
		if x.Role == Staff {
			d.Staff++
		} else {
			d.Pupils++
		}
	}
	if s.Ended {
		return d
	}
	lone := d.Pupils == 1 && d.Staff < 2
	recordLone := s.OneToOneLesson || s.RecordChosen || p.Record == "always" || s.RecordingTriggered
	oneToOne := lone && recordLone
	required := oneToOne || (p.Record == "always" && d.Pupils > 0)
	d.RecordingTriggered = s.RecordingTriggered || oneToOne
	d.NeedRecording = required || (p.Record == "always" && d.Staff > 0) || d.RecordingTriggered || s.RecordChosen
	switch {
	case d.Staff == 0:
		d.Hold = HoldNoStaff
	case lone && !recordLone:
		d.Hold = HoldClassWaiting
	case required && s.Recording == RecFailed:
		d.Hold = HoldRecFailed
	case required && s.Recording != RecConfirmed:
		d.Hold = HoldRecStarting
	default:
		d.PupilMedia = true
	}
	recording := s.Recording == RecStarting || s.Recording == RecConfirmed
	for _, from := range s.Participants {
		if !inRoom(from) || (recording && NeedsNotice(from)) {
			continue
		}
		for _, to := range s.Participants {
			if to.ID == from.ID || !inRoom(to) || (recording && NeedsNotice(to)) {
				continue
			}
			if from.Role == Pupil && (s.Streamed || !d.PupilMedia) {
				continue
			}
			if to.Role == Pupil && !d.PupilMedia {
				continue
			}
			d.Edges = append(d.Edges, Edge{From: from.ID, To: to.ID})
		}
	}
	return d
}

// action is the audit action of the recording entering state s.
func (s RecState) action() audit.Action {
	switch s {
	case RecStarting:
		return audit.RecordingStarting
	case RecConfirmed:
		return audit.RecordingConfirmed
	case RecFailed:
		return audit.RecordingFailed
	}
	return audit.RecordingOff
}
