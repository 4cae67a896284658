package web

import (
	"strconv"
	"time"

	"github.com/chaperone-edu/chaperone/audit"
	"github.com/chaperone-edu/chaperone/live"
	"github.com/chaperone-edu/chaperone/store"
)

// This file is the DSL's timeline of a recorded lesson: its events in plain
// words, each a button that moves every participant's video to that moment
// (player.js). Times count from the first recorded packet, the player's 0.

// timelineEvent is one line of the timeline.
type timelineEvent struct {
	When   string  // wall-clock time, school's zone
	At     string  // seconds into the recording, for the player ("" before it began)
	Offset float64 // the same, as a number
	Kind   string  // joined, admitted, removed, … (data-kind, for styling and tests)
	What   string  // plain words
}

// timelineKinds are the events the timeline shows and how it names them.
var timelineKinds = map[audit.Action]string{
	audit.RoomJoin: "joined", audit.RoomRejoin: "rejoined", audit.RoomAdmit: "admitted", audit.RoomDeny: "denied",
	audit.RoomRemove: "removed", audit.RoomLeave: "left", audit.RoomConnectionLost: "connection-lost",
	audit.RoomMute: "muted", audit.RoomUnmute: "unmuted", audit.RoomMuteAll: "muted-all", audit.RoomLock: "locked",
	audit.RoomSpotlight: "spotlight", audit.RoomScreenGrant: "screen", audit.RoomRecordChosen: "record-chosen",
	audit.RecordingStarting: "recording", audit.RecordingConfirmed: "recording", audit.RecordingFailed: "recording-failed",
	audit.RecordingStored: "part-stored", audit.GateHeld: "media-held", audit.GateOpen: "media-open",
	audit.ConcernRaised: "concern", audit.ConcernPending: "concern", audit.ConcernFiled: "concern", audit.ConcernWorry: "worry",
	audit.SessionEnded: "ended",
}

// timeline builds a lesson's timeline from its audit rows (newest first,
// as the store lists them) and chat, with offsets from first (zero: none
// can be jumped to). It returns the events oldest first and the last
// event's offset (the player's length when the files do not say).
func timeline(rows []store.AuditRecord, chat []live.TranscriptLine, first time.Time, loc *time.Location) ([]timelineEvent, float64) {
	var out []timelineEvent
	var last float64
	add := func(t time.Time, kind, what string) {
		e := timelineEvent{When: t.In(loc).Format("15:04:05"), Kind: kind, What: what}
		if !first.IsZero() && !t.Before(first) {
			e.Offset = t.Sub(first).Seconds()
			e.At = strconv.FormatFloat(e.Offset, 'f', 1, 64)
			last = max(last, e.Offset)
		}
		out = append(out, e)
	}
	ci := 0
	addChat := func(until time.Time, all bool) {
		for ; ci < len(chat) && (all || chat[ci].Time.Before(until)); ci++ {
			l := chat[ci]
			what := l.From + " wrote in the chat: “" + l.Text + "”"
			if l.Deleted {
				what += " (deleted by " + l.DeletedBy + " at " + l.DeletedAt.In(loc).Format("15:04:05") + ": hidden in the room)"
			}
			add(l.Time, "chat", what)
		}
	}
	for i := len(rows) - 1; i >= 0; i-- {
		r := rows[i]
		kind, ok := timelineKinds[r.Action]
		if !ok {
			continue
		}
		addChat(r.Time, false)
		d := audit.Read(r.Detail)
		add(r.Time, kind, describe(r, d))
	}
	addChat(time.Time{}, true)
	return out, last
}

// describe says what an audit row records, in plain words.
func describe(r store.AuditRecord, d audit.Fields) string {
	who, whom := r.ActorName, d.Whom
	if who == "" {
		who = "chaperone"
	}
	reason := ""
	if d.Reason != "" {
		reason = ": " + d.Reason
	}
	switch r.Action {
	case audit.RoomJoin:
		return who + " joined (" + d.Role + ")"
	case audit.RoomRejoin:
		return who + " came back after losing their connection"
	case audit.RoomAdmit:
		if whom == "" {
			return who + " came in (staff of the lesson)"
		}
		return who + " let " + whom + " in"
	case audit.RoomDeny:
		return who + " did not let " + whom + " in" + reason
	case audit.RoomRemove:
		return who + " removed " + whom + reason
	case audit.RoomLeave:
		return who + " left" + reason
	case audit.RoomConnectionLost:
		return who + " lost their connection"
	case audit.RoomMute, audit.RoomUnmute:
		verb := "muted"
		if r.Action == audit.RoomUnmute {
			verb = "unmuted"
		}
		return who + " " + verb + " " + whom
	case audit.RoomMuteAll:
		return who + " muted all pupils"
	case audit.RoomLock:
		return who + " locked or unlocked the lobby"
	case audit.RoomSpotlight:
		return who + " changed what everyone sees"
	case audit.RoomScreenGrant:
		return who + " changed " + whom + "'s screen sharing"
	case audit.RoomRecordChosen:
		return who + " chose to record, to teach one pupil"
	case audit.RecordingStarting:
		return "The recording is starting"
	case audit.RecordingConfirmed:
		return "The recording is running"
	case audit.RecordingFailed:
		return "The recording stopped or could not start" + reason
	case audit.RecordingStored:
		return "A recording part was stored"
	case audit.GateHeld:
		return "Pupils' video and sound were paused" + reason
	case audit.GateOpen:
		return "Pupils' video and sound went on"
	case audit.ConcernRaised, audit.ConcernPending:
		return who + " stopped the lesson to raise a safeguarding concern"
	case audit.ConcernFiled:
		return who + " filed a safeguarding concern"
	case audit.ConcernWorry:
		return who + " pressed “I'm worried”"
	case audit.SessionEnded:
		return "The lesson ended" + reason
	case audit.SessionRequested:
		return who + " asked for a session"
	case audit.SessionApproved:
		return who + " approved the session"
	case audit.SessionRejected:
		return who + " rejected the session" + reason
	case audit.SessionCancelled:
		return who + " cancelled the session" + reason
	case audit.SessionOpened:
		return who + " opened the room"
	case audit.LoginAccepted:
		return who + " signed in"
	case audit.LoginRefused:
		return "A sign-in was refused" + reason
	case audit.Logout:
		return who + " signed out"
	case audit.RecordingViewed:
		return who + " played a recording"
	case audit.RecordingDownloaded:
		return who + " downloaded a recording"
	case audit.RecordingSessionViewed:
		return who + " opened the session's recordings page"
	case audit.RecordingHoldPlaced:
		return who + " put the recordings on legal hold" + reason
	case audit.RecordingHoldReleased:
		return who + " released the legal hold" + reason
	case audit.RecordingDeleted:
		return "A recording was deleted after its retention"
	case audit.ChatMessage:
		return who + " wrote in the chat (the words are kept with the session)"
	case audit.ChatDeleted:
		return who + " deleted a chat message by " + whom
	case audit.ConcernNotified:
		return "People were told of a concern"
	case audit.ConcernViewed:
		return who + " read a concern"
	case audit.ConcernViewRefused:
		return who + " was refused a concern's page"
	case audit.AuditViewed:
		return who + " read the audit log"
	case audit.AuditExported:
		return who + " exported the audit log"
	}
	return string(r.Action)
}
