package store

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestConcernRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	forEachBackend(t, func(t *testing.T, s *SQL) {
		older := Concern{ID: "c1", SessionID: "s1", RaisedBySub: "sub-t", RaisedBy: "Sarah Whitfield", About: "Amelia Jones",
			Details: "Said something worrying.\nSecond line.", Created: time.Now().In(time.FixedZone("X", 3600)), Recorded: true, HeldObjects: 3}
		newer := Concern{ID: "c2", SessionID: "s2", RaisedBy: "Tom Baker", Created: older.Created.Add(time.Minute)}
		newest := Concern{ID: "c3", SessionID: "s1", RaisedBy: "Tom Baker", Created: older.Created.Add(2 * time.Minute)}
		for _, c := range []Concern{older, newer, newest} {
			require.NoError(t, s.CreateConcern(ctx, c))
		}

		got, err := s.GetConcern(ctx, "c1")
		require.NoError(t, err)
		want := older
		want.Created = normalise(older.Created)
		want.State, want.Kind = ConcernFiled, ConcernKindConcern
		require.Equal(t, want, got)

		_, err = s.GetConcern(ctx, "nope")
		require.ErrorIs(t, err, ErrNotFound)
		require.ErrorIs(t, s.CreateConcern(ctx, older), ErrConflict)
		require.Error(t, s.CreateConcern(ctx, Concern{ID: "c9", Created: t0}), "a concern needs a session")
		require.Error(t, s.CreateConcern(ctx, Concern{ID: "c9", Created: t0, Kind: "gossip"}), "an unknown kind")
		// A pupil's worry may name no lesson.
		worry := Concern{ID: "w1", RaisedBySub: "sub-p", RaisedBy: "Amelia Jones", Details: "Someone online keeps messaging me.", Created: t0, Kind: ConcernKindWorry}
		require.NoError(t, s.CreateConcern(ctx, worry))
		gotW, err := s.GetConcern(ctx, "w1")
		require.NoError(t, err)
		require.Equal(t, ConcernKindWorry, gotW.Kind)
		require.Equal(t, worry.Details, gotW.Details)

		all, err := s.ListConcerns(ctx, "")
		require.NoError(t, err)
		require.Equal(t, []string{"c3", "c2", "c1", "w1"}, concernIDs(all), "newest first")
		of1, err := s.ListConcerns(ctx, "s1")
		require.NoError(t, err)
		require.Equal(t, []string{"c3", "c1"}, concernIDs(of1))
		none, err := s.ListConcerns(ctx, "s-none")
		require.NoError(t, err)
		require.Empty(t, none)
	})
}

// TestConcernPendingThenCompleted: a concern raised in the room is stored
// pending at once; the form completes it (once) with the pupils ticked.
func TestConcernPendingThenCompleted(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	forEachBackend(t, func(t *testing.T, s *SQL) {
		c := Concern{ID: "c1", SessionID: "s1", RaisedBySub: "sub-t", RaisedBy: "Sarah Whitfield", Created: t0, State: ConcernPending}
		require.NoError(t, s.CreateConcern(ctx, c))
		got, err := s.GetConcern(ctx, "c1")
		require.NoError(t, err)
		require.Equal(t, ConcernPending, got.State)
		require.Empty(t, got.Pupils)
		require.Error(t, s.CreateConcern(ctx, Concern{ID: "c2", SessionID: "s1", Created: t0, State: "maybe"}), "an unknown state is refused")

		c.About, c.Details, c.Pupils, c.Recorded, c.HeldObjects = "Amelia Jones", "What happened.", []string{"sub-amelia"}, true, 4
		require.NoError(t, s.CompleteConcern(ctx, c))
		got, err = s.GetConcern(ctx, "c1")
		require.NoError(t, err)
		require.Equal(t, ConcernFiled, got.State)
		require.Equal(t, []string{"sub-amelia"}, got.Pupils)
		require.Equal(t, "What happened.", got.Details)
		require.True(t, got.Recorded)
		require.Equal(t, 4, got.HeldObjects)
		require.Equal(t, t0, got.Created)

		c.Details = "Overwritten?"
		require.ErrorIs(t, s.CompleteConcern(ctx, c), ErrConflict, "a filed concern is not completed twice")
		require.ErrorIs(t, s.CompleteConcern(ctx, Concern{ID: "nope"}), ErrNotFound)
		got, err = s.GetConcern(ctx, "c1")
		require.NoError(t, err)
		require.Equal(t, "What happened.", got.Details)
	})
}

// TestChatMessages: messages are listed oldest first per session; a
// deletion marks the latest undeleted message with the ID and keeps its
// text; purging removes one session's chat only.
func TestChatMessages(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	forEachBackend(t, func(t *testing.T, s *SQL) {
		add := func(sess, id, text string, at time.Time) {
			require.NoError(t, s.AddChatMessage(ctx, ChatMessage{SessionID: sess, ID: id, Time: at, SenderSub: "sub-" + id, SenderName: "Amelia Jones",
				Role: "pupil", Text: text}))
		}
		add("s1", "m1", "hello <b>all</b>", t0)
		add("s1", "m2", "second", t0.Add(time.Second))
		add("s2", "m1", "other session", t0)
		add("s1", "m1", "a later room reused m1", t0.Add(time.Minute))
		require.Error(t, s.AddChatMessage(ctx, ChatMessage{SessionID: "s1", Time: t0}), "a message needs an ID")

		require.NoError(t, s.DeleteChatMessage(ctx, "s1", "m1", "Sarah Whitfield", t0.Add(2*time.Minute)))
		require.ErrorIs(t, s.DeleteChatMessage(ctx, "s1", "m9", "Sarah Whitfield", t0), ErrNotFound)
		ms, err := s.ListChatMessages(ctx, "s1")
		require.NoError(t, err)
		require.Len(t, ms, 3)
		require.Equal(t, []string{"hello <b>all</b>", "second", "a later room reused m1"}, []string{ms[0].Text, ms[1].Text, ms[2].Text})
		require.True(t, ms[0].DeletedAt.IsZero(), "the earlier m1 stays")
		require.Equal(t, t0.Add(2*time.Minute), ms[2].DeletedAt)
		require.Equal(t, "Sarah Whitfield", ms[2].DeletedBy)
		require.Equal(t, "Amelia Jones", ms[0].SenderName)
		require.Equal(t, t0, ms[0].Time)

		n, err := s.PurgeChat(ctx, "s1")
		require.NoError(t, err)
		require.Equal(t, 3, n)
		ms, err = s.ListChatMessages(ctx, "s1")
		require.NoError(t, err)
		require.Empty(t, ms)
		ms, err = s.ListChatMessages(ctx, "s2")
		require.NoError(t, err)
		require.Len(t, ms, 1)
	})
}

func concernIDs(cs []Concern) []string {
	out := []string{}
	for _, c := range cs {
		out = append(out, c.ID)
	}
	return out
}

func recordingKeys(os []RecordingObject) []string {
	out := []string{}
	for _, o := range os {
		out = append(out, o.Key)
	}
	return out
}

func TestRecordingObjectRoundTripAndReplace(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	forEachBackend(t, func(t *testing.T, s *SQL) {
		o := RecordingObject{Key: "sessions/s1/p1.webm", SessionID: "s1", ParticipantID: "p1", ParticipantName: "Amelia Jones",
			Role: "pupil", Size: 12345, VersionID: "v1", RetainUntil: t0.Add(28 * 24 * time.Hour), Created: time.Now()}
		require.NoError(t, s.PutRecordingObject(ctx, o))
		got, err := s.ListRecordingObjects(ctx, RecordingFilter{})
		require.NoError(t, err)
		want := o
		want.Created = normalise(o.Created)
		require.Equal(t, []RecordingObject{want}, got)
		require.True(t, got[0].Deleted.IsZero())

		// Putting the same key again replaces the row (a finished upload
		// updates the size and version).
		o.Size, o.VersionID, o.Held = 99999, "v2", true
		require.NoError(t, s.PutRecordingObject(ctx, o))
		got, err = s.ListRecordingObjects(ctx, RecordingFilter{})
		require.NoError(t, err)
		require.Len(t, got, 1)
		require.Equal(t, int64(99999), got[0].Size)
		require.Equal(t, "v2", got[0].VersionID)
		require.True(t, got[0].Held)

		require.Error(t, s.PutRecordingObject(ctx, RecordingObject{Key: "k"}), "an object needs a session")
	})
}

func TestListRecordingObjectsFilters(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	forEachBackend(t, func(t *testing.T, s *SQL) {
		put := func(key, sid, name string, created time.Time, held bool) {
			t.Helper()
			require.NoError(t, s.PutRecordingObject(ctx, RecordingObject{Key: key, SessionID: sid, ParticipantID: key,
				ParticipantName: name, Role: "pupil", RetainUntil: created.Add(28 * 24 * time.Hour), Created: created, Held: held}))
		}
		// Inserted out of order: the listing orders by created, then key.
		put("b", "s1", "Amelia Jones", t0.Add(time.Hour), false)
		put("a", "s1", "Zoë Ångström", t0.Add(time.Hour), false)
		put("c", "s2", "Oliver Smith", t0, true)
		put("d", "s2", "", t0.Add(2*time.Hour), true) // a manifest has no name
		put("e", "s3", "amelia ROSE", t0.Add(3*time.Hour), false)

		yes, no := true, false
		for _, tc := range []struct {
			name string
			f    RecordingFilter
			want []string
		}{
			{"all", RecordingFilter{}, []string{"c", "a", "b", "d", "e"}},
			{"session", RecordingFilter{SessionID: "s2"}, []string{"c", "d"}},
			{"name, any case", RecordingFilter{Name: "AMELIA"}, []string{"b", "e"}},
			{"name, not ASCII", RecordingFilter{Name: "zoë å"}, []string{"a"}},
			{"name matches nothing", RecordingFilter{Name: "nobody"}, []string{}},
			{"held", RecordingFilter{Held: &yes}, []string{"c", "d"}},
			{"not held", RecordingFilter{Held: &no}, []string{"a", "b", "e"}},
			{"since, inclusive", RecordingFilter{Since: t0.Add(time.Hour)}, []string{"a", "b", "d", "e"}},
			{"until, exclusive", RecordingFilter{Until: t0.Add(time.Hour)}, []string{"c"}},
			{"window", RecordingFilter{Since: t0.Add(time.Hour), Until: t0.Add(3 * time.Hour)}, []string{"a", "b", "d"}},
			{"combined", RecordingFilter{SessionID: "s1", Name: "jones"}, []string{"b"}},
		} {
			got, err := s.ListRecordingObjects(ctx, tc.f)
			require.NoError(t, err, tc.name)
			require.Equal(t, tc.want, recordingKeys(got), tc.name)
		}
	})
}

func TestSetRecordingHeldAndMarkDeleted(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	forEachBackend(t, func(t *testing.T, s *SQL) {
		for _, k := range []string{"s1/a", "s1/b", "s1/m", "s2/a"} {
			sid := k[:2]
			require.NoError(t, s.PutRecordingObject(ctx, RecordingObject{Key: k, SessionID: sid, RetainUntil: t0, Created: t0}))
		}
		require.NoError(t, s.MarkRecordingDeleted(ctx, "s1/m", t0.Add(time.Hour)))

		n, err := s.SetRecordingHeld(ctx, "s1", true)
		require.NoError(t, err)
		require.Equal(t, 2, n, "deleted objects are not held")
		yes := true
		held, err := s.ListRecordingObjects(ctx, RecordingFilter{Held: &yes})
		require.NoError(t, err)
		require.Equal(t, []string{"s1/a", "s1/b"}, recordingKeys(held))

		n, err = s.SetRecordingHeld(ctx, "s1", false)
		require.NoError(t, err)
		require.Equal(t, 2, n)
		held, err = s.ListRecordingObjects(ctx, RecordingFilter{Held: &yes})
		require.NoError(t, err)
		require.Empty(t, held)
		n, err = s.SetRecordingHeld(ctx, "s-none", true)
		require.NoError(t, err)
		require.Zero(t, n)

		// A deleted object is left out unless asked for, and then says when.
		live, err := s.ListRecordingObjects(ctx, RecordingFilter{SessionID: "s1"})
		require.NoError(t, err)
		require.Equal(t, []string{"s1/a", "s1/b"}, recordingKeys(live))
		withDeleted, err := s.ListRecordingObjects(ctx, RecordingFilter{SessionID: "s1", Deleted: true})
		require.NoError(t, err)
		require.Equal(t, []string{"s1/a", "s1/b", "s1/m"}, recordingKeys(withDeleted))
		require.Equal(t, t0.Add(time.Hour), withDeleted[2].Deleted)
		require.True(t, withDeleted[0].Deleted.IsZero())
		require.ErrorIs(t, s.MarkRecordingDeleted(ctx, "s9/unindexed", t0), ErrNotFound)
	})
}
