package lobby

// Banner is the sentence a participant sees about where they are and
// whether media flows. It is pure.
func Banner(p Participant, s RoomState, d Decision) string {
	if s.Ended {
		if p.Role == Pupil {
			return "The lesson has ended."
		}
		return "This session has ended."
	}
	switch p.State {
	case Waiting:
		if p.Role == Staff {
			return "Waiting for the session's staff to let you in."
		}
		return "Waiting for your teacher to let you in."
	case Denied:
		// The reason is in the state message's own field, shown once.
		if p.Role == Pupil {
			return "Your teacher has not let you in to this lesson."
		}
		return "You were not let in to this session."
	case Removed:
		if p.Role == Pupil {
			return "Your teacher has taken you out of this lesson."
		}
		return "A member of staff removed you from this session, so you cannot rejoin it."
	case Left:
		if p.Role == Pupil {
			return "You have left the lesson."
		}
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
		if p.Role == Pupil {
			return "Your teacher is not here at the moment, so the lesson is paused. Please wait: it starts again when they are back."
		}
		return "Media paused: no member of staff is here."
	case HoldRecStarting:
		if p.Role == Pupil {
			return "Getting the lesson ready… It starts in a moment."
		}
		return "Media paused: starting the recording, because this is a one-to-one lesson."
	case HoldRecFailed:
		if p.Role == Pupil { // the cause is for staff; a child is told to wait
			return "The lesson is paused for a moment. Please wait for your teacher."
		}
		if s.RecordingWhy != "" {
			return s.RecordingWhy + " Ask a second member of staff to join, or end the session."
		}
		return "Media paused: the recording could not start, so this one-to-one lesson cannot go ahead. Ask a second member of staff to join, or end the session."
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
