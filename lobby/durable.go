package lobby

import (
	"context"
	"log/slog"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/chaperone-edu/chaperone/audit"
	"github.com/chaperone-edu/chaperone/store"
)

// RoomSaver keeps a room's durable state (package store implements it).
type RoomSaver interface {
	SaveRoom(ctx context.Context, r store.RoomRecord) error
}

// DefaultRejoinGrace is how long an admitted participant whose connection
// closed may come back without being admitted again.
const DefaultRejoinGrace = 2 * time.Minute

// RoomKeepAlive is how often a running room saves its record even when
// nothing changed, so that after a crash the next room knows how long it has
// been gone.
const RoomKeepAlive = 20 * time.Second

// record is the room's durable state now (R16).
func (r *Room) record() store.RoomRecord {
	rec := store.RoomRecord{SessionID: r.cfg.Session.ID, Locked: r.state.Locked, ChatSeq: r.chatSeq,
		RecordingTriggered: r.state.RecordingTriggered, PupilAudioLocked: r.state.PupilAudioLocked,
		PupilVideoLocked: r.state.PupilVideoLocked, ChatOff: r.chatOff, Ended: r.state.Ended,
		Participants: make([]store.RoomParticipant, 0, len(r.state.Participants))}
	for _, p := range r.state.Participants {
		rec.Participants = append(rec.Participants, store.RoomParticipant{ID: p.ID, Subject: p.Subject, Name: p.Name, Email: p.Email,
			Role: string(p.Role), State: string(p.State), Reason: p.Reason, NoticeAcked: p.NoticeAcked, AudioMuted: p.AudioMuted,
			VideoMuted: p.VideoMuted, ScreenGranted: p.ScreenGranted, AwaySince: p.AwaySince})
	}
	return rec
}

// restore starts the room from its durable state: removed and denied stay
// so; everyone who was admitted is away (their connections died with the
// old room) since the old room was last known alive, and may come back
// within the rejoin grace counted from then (after a longer outage they wait
// to be admitted again); staff were there, so the staff grace applies if
// none comes back; chat IDs go on from the highest ever given out.
func (r *Room) restore(rec *store.RoomRecord, chat []store.ChatMessage) {
	now := r.cfg.Now()
	if rec != nil {
		gone := rec.Saved
		if gone.IsZero() || gone.After(now) {
			gone = now
		}
		r.state.Locked, r.state.RecordingTriggered = rec.Locked, rec.RecordingTriggered
		r.state.PupilAudioLocked, r.state.PupilVideoLocked, r.chatOff = rec.PupilAudioLocked, rec.PupilVideoLocked, rec.ChatOff
		r.chatSeq = rec.ChatSeq
		for _, q := range rec.Participants {
			p := Participant{ID: q.ID, Subject: q.Subject, Name: q.Name, Email: q.Email, Role: Role(q.Role), State: PState(q.State),
				Reason: q.Reason, NoticeAcked: q.NoticeAcked, AudioMuted: q.AudioMuted, VideoMuted: q.VideoMuted, ScreenGranted: q.ScreenGranted}
			switch p.State {
			case Admitted:
				p.AwaySince = gone
				if !q.AwaySince.IsZero() && q.AwaySince.Before(gone) {
					p.AwaySince = q.AwaySince
				}
				if now.Sub(p.AwaySince) > r.cfg.RejoinGrace {
					p.State, p.AwaySince = Left, time.Time{}
				}
				if p.Role == Staff {
					r.hadStaff = true
				}
			case Waiting:
				p.State = Left
			}
			r.state.Participants = append(r.state.Participants, p)
			if p.State == Admitted {
				r.awayTimer(p.ID, p.AwaySince)
			}
		}
	}
	for _, m := range chat {
		r.chatLog = append(r.chatLog, ChatMsg{Type: "chat", ID: m.ID, From: Person{ID: ParticipantID(r.cfg.Session.ID, m.SenderSub), Name: m.SenderName, Role: m.Role},
			Text: m.Text, Time: m.Time, Deleted: !m.DeletedAt.IsZero()})
		if n, err := strconv.Atoi(strings.TrimPrefix(m.ID, "m")); err == nil && n > r.chatSeq {
			r.chatSeq = n
		}
	}
	r.saved = r.record()
}

// restoreRemoved marks the participants in ids removed.
func (r *Room) restoreRemoved(ids []string) {
	for _, id := range ids {
		if p := r.find(id); p != nil {
			if p.State != Removed {
				p.State, p.AwaySince, p.Reason = Removed, time.Time{}, "removed by staff"
			}
			continue
		}
		r.state.Participants = append(r.state.Participants, Participant{ID: id, State: Removed, Reason: "removed by staff"})
	}
}

// awayTimer lets participant id, away since since, go once the rejoin
// grace has passed without them coming back.
func (r *Room) awayTimer(id string, since time.Time) {
	if t := r.away[id]; t != nil {
		t.Stop()
	}
	wait := r.cfg.RejoinGrace - r.cfg.Now().Sub(since)
	r.away[id] = time.AfterFunc(max(wait, 0), func() {
		_ = r.do(func() {
			p := r.find(id)
			if p == nil || p.Connected || (p.State != Admitted && p.State != Waiting) || !p.AwaySince.Equal(since) {
				return
			}
			delete(r.away, id)
			p.State, p.AwaySince = Left, time.Time{}
			r.audit(p.Subject, p.Name, audit.RoomLeave, id, audit.Left{AwaySince: since, Reason: "did not come back within the rejoin grace"}, "")
			r.apply()
		})
	})
}

// stopAwayTimers stops every rejoin-grace timer (the room is over).
func (r *Room) stopAwayTimers() {
	for id, t := range r.away {
		t.Stop()
		delete(r.away, id)
	}
}

// persist hands the durable state to the saver when it changed. It never
// blocks: the saver writes on its own goroutine and keeps only the newest
// record.
func (r *Room) persist() {
	if r.saver == nil {
		return
	}
	rec := r.record()
	if reflect.DeepEqual(rec, r.saved) && r.cfg.Now().Sub(r.savedAt) < RoomKeepAlive {
		return
	}
	r.savedAt = r.cfg.Now()
	r.saved = rec
	rec.Saved = r.cfg.Now()
	r.saver.put(rec)
}

// saver writes a room's records off the room's goroutine, newest first,
// retrying with a growing wait while the store refuses; once stopping, it
// goes on trying until the deadline close gave it.
type saver struct {
	to       RoomSaver
	log      *slog.Logger
	next     chan store.RoomRecord // holds at most the newest unsaved record
	stop     chan struct{}         // closed: save what is pending, then exit
	done     chan struct{}         // closed when the loop has exited
	deadline time.Time             // set before stop is closed
	ok       bool                  // the last record was saved (read after done)
}

func newSaver(to RoomSaver, log *slog.Logger) *saver {
	s := &saver{to: to, log: log, next: make(chan store.RoomRecord, 1), stop: make(chan struct{}), done: make(chan struct{}), ok: true}
	go s.loop()
	return s
}

// put replaces any pending record with rec; it never blocks.
func (s *saver) put(rec store.RoomRecord) {
	for {
		select {
		case s.next <- rec:
			return
		default:
		}
		select {
		case <-s.next:
		default:
		}
	}
}

func (s *saver) loop() {
	defer close(s.done)
	for {
		var rec store.RoomRecord
		select {
		case rec = <-s.next:
		case <-s.stop:
			select {
			case rec = <-s.next:
			default:
				return
			}
		}
		s.save(rec)
	}
}

// save writes rec, retrying until it is written, a newer record replaces
// it, or the saver is stopping and its deadline has passed.
func (s *saver) save(rec store.RoomRecord) {
	wait := 200 * time.Millisecond
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := s.to.SaveRoom(ctx, rec)
		cancel()
		if err == nil {
			s.ok = true
			return
		}
		s.ok = false
		s.log.Error("room state not saved: retrying", slog.Any("err", err), slog.Duration("wait", wait))
		select {
		case newer := <-s.next:
			rec = newer
		case <-time.After(wait):
		case <-s.stop:
			if !time.Now().Before(s.deadline) {
				s.log.Error("room state not saved before the room closed: it keeps its last saved state", slog.Any("err", err))
				return
			}
			select {
			case newer := <-s.next:
				rec = newer
			case <-time.After(min(wait, time.Until(s.deadline))):
			}
		}
		wait = min(2*wait, 2*time.Second)
	}
}

// close saves what is pending, trying for at most wait, and reports
// whether the room's last state is saved.
func (s *saver) close(wait time.Duration) bool {
	s.deadline = time.Now().Add(wait)
	close(s.stop)
	select {
	case <-s.done:
		return s.ok
	case <-time.After(wait + 5*time.Second): // a save in flight has its own 5 s
		s.log.Error("room state: gave up waiting for the last save")
		return false
	}
}
