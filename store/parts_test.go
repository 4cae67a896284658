package store

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestRecordingParts: part numbers count per session and file, survive a
// reopen of the database, and the index keeps each part's number and start.
func TestRecordingParts(t *testing.T) {
	t.Parallel()
	forEachDSN(t, func(t *testing.T, dsn string) { testRecordingParts(t, dsn) })
}

func testRecordingParts(t *testing.T, dsn string) {
	ctx := context.Background()
	s, err := Open(ctx, dsn)
	require.NoError(t, err)
	for want := 1; want <= 3; want++ {
		n, err := s.NextRecordingPart(ctx, "s1", "pA")
		require.NoError(t, err)
		require.Equal(t, want, n)
	}
	n, err := s.NextRecordingPart(ctx, "s1", "pB")
	require.NoError(t, err)
	require.Equal(t, 1, n, "each file counts on its own")
	_, err = s.NextRecordingPart(ctx, "", "pA")
	require.Error(t, err)
	started := time.Now().UTC().Truncate(time.Millisecond)
	require.NoError(t, s.PutRecordingObject(ctx, RecordingObject{Key: "sessions/s1/pA.part2.webm", SessionID: "s1", ParticipantID: "pA",
		Part: 2, Started: started, RetainUntil: started.AddDate(0, 0, 28), Created: started}))
	require.NoError(t, s.Close())

	s, err = Open(ctx, dsn)
	require.NoError(t, err)
	defer s.Close()
	n, err = s.NextRecordingPart(ctx, "s1", "pA")
	require.NoError(t, err)
	require.Equal(t, 4, n, "never the same number twice, across a reopen")
	objs, err := s.ListRecordingObjects(ctx, RecordingFilter{SessionID: "s1"})
	require.NoError(t, err)
	require.Len(t, objs, 1)
	require.Equal(t, 2, objs[0].Part)
	require.True(t, started.Equal(objs[0].Started), "%v != %v", started, objs[0].Started)
}
