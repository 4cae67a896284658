package store

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestRoomRecordRoundTrip: a saved room record comes back as saved, a later
// save replaces it, and an unknown session is ErrNotFound.
func TestRoomRecordRoundTrip(t *testing.T) {
	t.Parallel()
	forEachBackend(t, func(t *testing.T, s *SQL) {
		ctx := context.Background()
		_, err := s.LoadRoom(ctx, "s1")
		require.ErrorIs(t, err, ErrNotFound)

		r := RoomRecord{SessionID: "s1", Locked: true, ChatSeq: 7, RecordingTriggered: true, PupilAudioLocked: true, ChatOff: true, Saved: t0,
			Participants: []RoomParticipant{
				{ID: "p1", Subject: "sub-1", Name: "Amelia Jones", Role: "pupil", State: "removed", Reason: "Rude in chat."},
				{ID: "p2", Subject: "sub-2", Name: "Zoë Lefèvre", Role: "pupil", State: "admitted", NoticeAcked: true, AudioMuted: true, AwaySince: t0.Add(-time.Minute)},
			}}
		require.NoError(t, s.SaveRoom(ctx, r))
		got, err := s.LoadRoom(ctx, "s1")
		require.NoError(t, err)
		require.Equal(t, r, got)

		r.Locked, r.ChatSeq, r.Saved = false, 8, t0.Add(time.Second)
		r.Participants = r.Participants[:1]
		require.NoError(t, s.SaveRoom(ctx, r))
		got, err = s.LoadRoom(ctx, "s1")
		require.NoError(t, err)
		require.Equal(t, r, got)

		require.Error(t, s.SaveRoom(ctx, RoomRecord{}), "a record needs its session")
	})
}
