package lobby

// Banner is the sentence a participant sees about where they are and
// whether media flows. It is pure.
func Banner(p Participant, s RoomState, d Decision) string {
	if s.Ended {
		return "This session has ended."
	}
	switch p.State {
	case Waiting:
		if p.Role == Staff {
			return "Waiting for the session's staff to let you in."
		}
		return "Waiting for your teacher to let you in."
	case Denied:
		if p.Reason != "" {
			return "You were not let in: " + p.Reason
		}
		return "You were not let in to this session."
	case Removed:
		msg := "A member of staff removed you from this session, so you cannot rejoin it."
		if p.Reason != "" {
			msg += " Reason: " + p.Reason
		}
		return msg
	case Left:
		return "You have left the session."
	}
	if p.Role == Pupil && !p.NoticeAcked && (s.Recording == RecStarting || s.Recording == RecConfirmed) {
		return "This lesson is being recorded. Read the notice and press “I understand” to join in."
	}
	switch d.Hold {
	case HoldClassWaiting:
		if p.Role == Staff {
			return "Only one pupil is here, so their video and sound are paused. Admit one more pupil, or start recording to teach one-to-one."
		}
		return "More of your class are joining. Your lesson will start soon."
	case HoldNoStaff:
		return "Media paused: no member of staff is here. Please wait for your teacher."
	case HoldRecStarting:
		return "Media paused: starting the recording, because this is a one-to-one lesson."
	case HoldRecFailed:
		if s.RecordingWhy != "" {
			if p.Role == Staff {
				return s.RecordingWhy + " Ask a second member of staff to join, or end the session."
			}
			return s.RecordingWhy + " Please wait for your teacher."
		}
		if p.Role == Staff {
			return "Media paused: the recording could not start, so this one-to-one lesson cannot go ahead. Ask a second member of staff to join, or end the session."
		}
		return "Media paused: the recording could not start. Please wait for your teacher."
	}
	msg := "You are in the lesson."
	if s.Streamed && p.Role == Pupil {
		msg = "This lesson is streamed. You can watch and listen. Others can't see or hear you."
	}
	if s.Recording == RecConfirmed {
		msg += " This lesson is being recorded."
	}
	return msg
}
