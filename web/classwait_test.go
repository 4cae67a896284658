package web_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/chaperone-edu/chaperone/audit"
	"github.com/chaperone-edu/chaperone/internal/testkit"
	"github.com/chaperone-edu/chaperone/lobby"
	"github.com/chaperone-edu/chaperone/store"
)

// TestClassLessonAdmittedOneByOne: in a lesson for a class (Year 8) the
// teacher admits pupils one at a time. The first pupil's media is held and
// nothing is recorded (the SFU forwards no packet of theirs, no recording
// row is written) until the second is admitted; then media flows, still
// unrecorded. When the teacher, alone again with one pupil, chooses to
// record, the recording starts, the pupil is shown the notice, and media
// flows only once it is confirmed.
func TestClassLessonAdmittedOneByOne(t *testing.T) {
	t.Parallel()
	s3 := testkit.StartS3(t)
	sc := newRecordingSchool(t, s3, "teacher", "head", "pupil", "pupil2")
	id := liveSession(t, sc, nil)
	tm, pupils := teacherAndPupils(t, sc, id, "pupil")
	amelia := pupils[0]
	st := tm.rc.WaitState(map[string]any{"gate": "held", "offer_record": true})
	require.Contains(t, st["banner"], "Admit one more pupil, or start recording to teach one-to-one")
	last := amelia.rc.Last("state") // the state she was admitted with
	require.Equal(t, "held", last["gate"])
	require.Contains(t, last["banner"], "More of your class are joining")
	time.Sleep(time.Second) // media is published: none of it may be forwarded
	_, edges, _ := sc.gw.Rooms.MediaStats(id)
	require.Zero(t, sumEdges(edges), "the lone pupil's media is held")
	require.Equal(t, lobby.RecOff, roomState(t, sc, id).Recording)

	zoe, zoeMedia := joinRoom(t, sc, "pupil2", id)
	zoe.WaitState(map[string]any{"phase": "waiting"})
	require.NoError(t, tm.rc.Send(map[string]any{"type": "admit", "id": participantID(zoe)}))
	zoe.WaitState(map[string]any{"phase": "admitted"})
	require.NoError(t, zoeMedia.Start())
	ameliaID := participantID(amelia.rc)
	require.Eventually(t, func() bool { return received(tm.media, ameliaID) > 0 }, 15*time.Second, 50*time.Millisecond, "media flows with two pupils")
	require.Equal(t, lobby.RecOff, roomState(t, sc, id).Recording, "a class is not recorded")

	// Zoë leaves: Amelia is alone with the teacher again, and held.
	zoe.WS.Close() // a dip: she is reconnecting, counted absent
	tm.rc.WaitState(map[string]any{"offer_record": true})
	time.Sleep(500 * time.Millisecond) // packets already on their way arrive
	before := received(tm.media, ameliaID)
	time.Sleep(time.Second)
	require.Equal(t, before, received(tm.media, ameliaID), "held again while she is the only pupil")
	require.NoError(t, tm.rc.Send(map[string]any{"type": "record"}))
	ackNotice(t, amelia.rc)
	deadline := time.Now().Add(30 * time.Second)
	for received(tm.media, ameliaID) == before {
		require.True(t, time.Now().Before(deadline), "media never flowed after the teacher chose to record")
		require.NotEqual(t, lobby.RecOff, roomState(t, sc, id).Recording)
		time.Sleep(20 * time.Millisecond)
	}
	require.Equal(t, lobby.RecConfirmed, roomState(t, sc, id).Recording, "media flows again only once the recording is confirmed")

	ctx := context.Background()
	require.NoError(t, sc.gw.Web.AuditWritten(ctx))
	chosen, err := sc.gw.Store.ListAudit(ctx, store.AuditFilter{SessionID: id, Action: audit.RoomRecordChosen})
	require.NoError(t, err)
	require.Len(t, chosen, 1)
	require.Equal(t, "Sarah Whitfield", chosen[0].ActorName)
	starts, err := sc.gw.Store.ListAudit(ctx, store.AuditFilter{SessionID: id, Action: audit.RecordingStarting})
	require.NoError(t, err)
	require.Len(t, starts, 1, "recorded once, when the teacher chose it")
	require.True(t, chosen[0].Seq < starts[0].Seq, "the recording started after the choice")
}

// TestOnePupilLessonRecordsFromStart: a lesson requested for one pupil is
// recorded as soon as that pupil is admitted; the teacher is offered no
// choice.
func TestOnePupilLessonRecordsFromStart(t *testing.T) {
	t.Parallel()
	s3 := testkit.StartS3(t)
	sc := newRecordingSchool(t, s3, "teacher", "head", "pupil")
	_, tm, _ := recordedLesson(t, sc) // a lesson for one pupil: no media until the recording is confirmed
	st := tm.rc.WaitState(map[string]any{"recording": "confirmed"})
	require.Nil(t, st["offer_record"])
}
