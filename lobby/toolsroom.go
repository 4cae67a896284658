package lobby

import "github.com/chaperone-edu/chaperone/audit"

// The Room's side of the lesson tools (rules in tools.go): each command
// changes the state, audits, and leaves the rest to apply.

// applySources pushes p's source permissions (SourcesOf) to the gate.
func (r *Room) applySources(p Participant) {
	src := SourcesOf(p, r.state)
	r.cfg.Gate.SetSourceAllowed(p.ID, "audio", src.Audio)
	r.cfg.Gate.SetSourceAllowed(p.ID, "video", src.Video)
	r.cfg.Gate.SetSourceAllowed(p.ID, "screen", src.Screen)
}

// setMuted mutes (on) or unmutes p's audio or video by staff. Unmuting also
// allows it while pupils may not unmute themselves; muting takes that back.
func setMuted(p *Participant, kind string, on bool) {
	if kind == "audio" {
		p.AudioMuted, p.AudioAllowed = on, !on
	} else {
		p.VideoMuted, p.VideoAllowed = on, !on
	}
}

func badKind() error {
	return &Error{Kind: Invalid, Field: "kind", Message: "Say which: audio or video."}
}

// selfCommand runs a command a participant sends about themselves: hand
// (raise or lower) and unmute_self.
func (r *Room) selfCommand(by string, cmd Command) error {
	p := r.find(by)
	if p == nil || p.State != Admitted || !p.Connected {
		return &Error{Kind: Forbidden, Message: "Only people in the lesson can do that."}
	}
	switch cmd.Type {
	case "hand":
		if cmd.Allowed == (p.Hand > 0) {
			return nil // no change
		}
		now := r.cfg.Now()
		if !HandChangeAllowed(r.handAt[p.ID], now) {
			return &Error{Kind: Conflict, Message: "Please wait a moment before you raise or lower your hand again."}
		}
		r.handAt[p.ID] = now
		switch {
		case cmd.Allowed && p.Hand == 0:
			r.handSeq++
			p.Hand = r.handSeq
			r.audit(p.Subject, p.Name, audit.RoomHandRaised, p.ID, nil, "")
		case !cmd.Allowed && p.Hand > 0:
			p.Hand = 0
			r.audit(p.Subject, p.Name, audit.RoomHandLowered, p.ID, audit.Person{By: "themselves"}, "")
		default:
			return nil
		}
	case "unmute_self":
		if cmd.Kind != "audio" && cmd.Kind != "video" {
			return badKind()
		}
		can := CanUnmute(*p, r.state)
		muted := MutedOf(*p, r.state)
		if cmd.Kind == "audio" && !muted.Audio || cmd.Kind == "video" && !muted.Video {
			return nil
		}
		if cmd.Kind == "audio" && !can.Audio {
			return &Error{Kind: Forbidden, Message: "Your teacher has muted you. Raise your hand if you want to speak."}
		}
		if cmd.Kind == "video" && !can.Video {
			return &Error{Kind: Forbidden, Message: "Your teacher has turned off your camera."}
		}
		if cmd.Kind == "audio" {
			p.AudioMuted = false
		} else {
			p.VideoMuted = false
		}
		r.audit(p.Subject, p.Name, audit.RoomUnmuteSelf, p.ID, audit.Person{Kind: cmd.Kind}, "")
	}
	r.apply()
	return nil
}

// roomTool runs a staff tool that acts on the whole room: admit_all,
// mute_all, pupil_media, spotlight.
func (r *Room) roomTool(actor *Participant, cmd Command) error {
	switch cmd.Type {
	case "admit_all":
		ids := AdmitAllTargets(r.state)
		if len(ids) == 0 {
			return &Error{Kind: Conflict, Message: "Nobody on the class list is waiting."}
		}
		for _, id := range ids {
			t := r.find(id)
			t.State, t.Reason = Admitted, ""
			r.audit(actor.Subject, actor.Name, audit.RoomAdmit, t.ID, audit.Person{Whom: t.Name, OnRoster: &t.OnRoster, By: "admit all"}, "")
			if c := r.clients[t.ID]; c != nil {
				c.StartMedia()
			}
		}
	case "mute_all":
		if cmd.Kind != "audio" && cmd.Kind != "video" {
			return badKind()
		}
		n := 0
		for i := range r.state.Participants {
			if p := &r.state.Participants[i]; p.Role == Pupil {
				setMuted(p, cmd.Kind, true)
				n++
			}
		}
		r.audit(actor.Subject, actor.Name, audit.RoomMuteAll, "", audit.MuteAll{Kind: cmd.Kind, Pupils: n}, "")
	case "pupil_media":
		if cmd.Kind != "audio" && cmd.Kind != "video" {
			return badKind()
		}
		locked := !cmd.Allowed
		for i := range r.state.Participants {
			// Switching it off takes back every pupil's allowance: all are
			// muted until staff let each speak.
			if p := &r.state.Participants[i]; p.Role == Pupil && locked {
				if cmd.Kind == "audio" {
					p.AudioAllowed = false
				} else {
					p.VideoAllowed = false
				}
			}
		}
		if cmd.Kind == "audio" {
			r.state.PupilAudioLocked = locked
		} else {
			r.state.PupilVideoLocked = locked
		}
		r.audit(actor.Subject, actor.Name, audit.RoomPupilMedia, "", audit.PupilMedia{Kind: cmd.Kind, Allowed: cmd.Allowed}, "")
	case "spotlight":
		if cmd.Target == "" {
			r.state.Spotlight = Spotlight{}
			r.audit(actor.Subject, actor.Name, audit.RoomSpotlight, "", audit.Person{Cleared: true}, "")
			break
		}
		t := r.find(cmd.Target)
		if t == nil || !inRoom(*t) {
			return &Error{Kind: NotFound, Field: "id", Message: "There is no such participant in the lesson."}
		}
		if cmd.Screen && !SourcesOf(*t, r.state).Screen {
			return &Error{Kind: Conflict, Message: t.Name + " may not share a screen."}
		}
		r.state.Spotlight = Spotlight{ID: t.ID, Screen: cmd.Screen}
		r.audit(actor.Subject, actor.Name, audit.RoomSpotlight, t.ID, audit.Person{Whom: t.Name, Screen: cmd.Screen}, "")
	}
	r.apply()
	return nil
}

// personTool runs a staff tool on one participant t: lower_hand, let_speak
// (lower the hand and unmute), screen_grant (give or withdraw a pupil's
// permission to share a screen). The caller applies.
func (r *Room) personTool(actor, t *Participant, cmd Command) error {
	switch cmd.Type {
	case "lower_hand":
		if t.Hand == 0 {
			return &Error{Kind: Conflict, Message: t.Name + " does not have a hand raised."}
		}
		t.Hand = 0
		r.audit(actor.Subject, actor.Name, audit.RoomHandLowered, t.ID, audit.Person{Whom: t.Name, By: "staff"}, "")
	case "let_speak":
		if !inRoom(*t) {
			return &Error{Kind: Conflict, Message: t.Name + " is not in the lesson."}
		}
		t.Hand = 0
		setMuted(t, "audio", false)
		r.audit(actor.Subject, actor.Name, audit.RoomLetSpeak, t.ID, audit.Person{Whom: t.Name}, "")
	case "screen_grant":
		if t.Role != Pupil {
			return &Error{Kind: Invalid, Field: "id", Message: "Staff can always share their screen."}
		}
		t.ScreenGranted = cmd.Allowed
		r.audit(actor.Subject, actor.Name, audit.RoomScreenGrant, t.ID, audit.Person{Whom: t.Name, Allowed: &cmd.Allowed}, "")
	}
	return nil
}
