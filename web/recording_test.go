package web_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/stretchr/testify/require"

	"github.com/chaperone-edu/chaperone/audit"
	"github.com/chaperone-edu/chaperone/internal/testkit"
	"github.com/chaperone-edu/chaperone/lobby"
	"github.com/chaperone-edu/chaperone/recording"
	"github.com/chaperone-edu/chaperone/store"
)

func newRecordingSchool(t *testing.T, s3 *testkit.S3, users ...string) *school {
	clock := testkit.NewClock(schoolDay)
	gw := testkit.StartGateway(t, testkit.GatewayOptions{Now: clock.Now, S3: s3})
	sc := &school{gw: gw, clock: clock, people: map[string]*testkit.APIClient{}}
	for _, u := range users {
		sc.people[u] = testkit.APILogin(t, gw, u)
	}
	return sc
}

// ackNotices answers the recording notice whenever a state asks for it.
func ackNotice(t *testing.T, rc *testkit.RoomConn) {
	t.Helper()
	rc.Next(15*time.Second, func(m map[string]any) bool { return m["type"] == "state" && m["notice"] == true })
	require.NoError(t, rc.Send(map[string]any{"type": "ack_recording_notice"}))
}

// watchGate samples the SFU's counters and the room until media flows,
// asserting that no packet was forwarded while the recording was not
// confirmed (counters are read before the room state, and the room
// confirms before it opens any gate, so this cannot race).
func watchGate(t *testing.T, sc *school, id string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		_, edges, _ := sc.gw.Rooms.MediaStats(id)
		forwarded := sumEdges(edges)
		st := roomState(t, sc, id)
		if forwarded > 0 {
			require.Equal(t, lobby.RecConfirmed, st.Recording, "media forwarded before the recording was confirmed")
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("media never flowed")
}

// TestOneToOneRecorded: a teacher and one pupil: no media until the
// recording is confirmed (and the pupil has acknowledged the notice), then
// it flows; a second member of staff joining does not stop the recording;
// at the end the objects are in S3 with retention of at least 28 days and
// a delete of a locked version is refused.
func TestOneToOneRecorded(t *testing.T) {
	t.Parallel()
	s3 := testkit.StartS3(t)
	sc := newRecordingSchool(t, s3, "teacher", "teacher2", "head", "pupil")
	id := liveSession(t, sc, map[string]any{"co_staff": []string{"j.patel@oakfield.example"}})
	tm, pupils := teacherAndPupils(t, sc, id, "pupil")
	teacher, tMedia, pupil, pMedia := tm.rc, tm.media, pupils[0].rc, pupils[0].media
	require.Zero(t, totalReceived(pMedia))
	require.Zero(t, totalReceived(tMedia))
	st := teacher.Next(10*time.Second, func(m map[string]any) bool { return m["type"] == "state" && m["recording"] != "off" })
	require.Contains(t, []any{"starting", "confirmed"}, st["recording"])
	ackNotice(t, pupil)
	watchGate(t, sc, id, 20*time.Second)
	teacherID, pupilID := participantID(teacher), participantID(pupil)
	require.Eventually(t, func() bool { return received(pMedia, teacherID) > 0 && received(tMedia, pupilID) > 0 }, 10*time.Second, 50*time.Millisecond)
	pupil.WaitState(map[string]any{"recording": "confirmed", "gate": "open"})

	// A second member of staff joins: no longer one-to-one, but recording goes on.
	second, sMedia := joinRoom(t, sc, "teacher2", id)
	second.WaitState(map[string]any{"phase": "admitted"})
	require.NoError(t, sMedia.Start())
	time.Sleep(500 * time.Millisecond)
	require.Equal(t, lobby.RecConfirmed, roomState(t, sc, id).Recording)

	// End: recordings uploaded with retention, manifest written.
	require.NoError(t, teacher.Send(map[string]any{"type": "end"}))
	pupil.WaitState(map[string]any{"phase": "ended"})
	var objs []recording.Object
	require.Eventually(t, func() bool {
		var err error
		objs, err = sc.gw.Bucket.List(context.Background(), recording.SessionPrefix(id))
		if err != nil {
			return false
		}
		for _, o := range objs {
			if o.Key == recording.PartManifestKey(id, pupilID, 1) {
				return true
			}
		}
		return false
	}, 60*time.Second, 200*time.Millisecond, "the pupil's part's manifest written")
	webms := 0
	for _, o := range objs {
		require.GreaterOrEqual(t, time.Until(o.RetainUntil), 27*24*time.Hour, "%s retention", o.Key)
		if strings.HasSuffix(o.Key, ".webm") {
			webms++
		}
	}
	require.GreaterOrEqual(t, webms, 2, "teacher and pupil recorded: %+v", objs)
	err := s3.Client.RemoveObject(context.Background(), sc.gw.BucketName, recording.PartKey(id, pupilID, 1), minio.RemoveObjectOptions{VersionID: objs[0].VersionID})
	require.Error(t, err, "a locked recording cannot be deleted")
	rows, err := sc.gw.Store.ListAudit(context.Background(), store.AuditFilter{SessionID: id, Action: "recording."})
	require.NoError(t, err)
	actions := map[audit.Action]bool{}
	for _, r := range rows {
		actions[r.Action] = true
	}
	for _, a := range []audit.Action{"recording.starting", "recording.confirmed", "recording.notice_acknowledged", "recording.stored"} {
		require.True(t, actions[a], "audit %s: %v", string(a), actions)
	}
}

// TestRecordingStorageDown: S3 unreachable when a one-to-one lesson starts:
// media is held, staff see why, the failure is audited; when S3 is back
// the recording starts and media flows.
func TestRecordingStorageDown(t *testing.T) {
	t.Parallel()
	s3 := testkit.StartS3(t)
	sc := newRecordingSchool(t, s3, "teacher", "head", "pupil")
	id := liveSession(t, sc, nil)
	s3.Stop()
	tm, pupils := teacherAndPupils(t, sc, id, "pupil")
	teacher, pupil, pMedia := tm.rc, pupils[0].rc, pupils[0].media
	held := teacher.WaitState(map[string]any{"recording": "failed", "gate": "held"})
	require.Contains(t, held["banner"], "Recording could not start: the recording storage is unreachable. Media is paused until it is back.")
	pupil.WaitState(map[string]any{"recording": "failed", "gate": "held"})
	time.Sleep(time.Second)
	_, edges, _ := sc.gw.Rooms.MediaStats(id)
	require.Zero(t, sumEdges(edges), "no media without a recording")
	require.Zero(t, totalReceived(pMedia))
	rows, err := sc.gw.Store.ListAudit(context.Background(), store.AuditFilter{SessionID: id, Action: "recording.failed"})
	require.NoError(t, err)
	require.NotEmpty(t, rows)
	require.Contains(t, rows[0].Detail, "unreachable")

	s3.Start()
	pupil.Next(20*time.Second, func(m map[string]any) bool { return m["type"] == "state" && m["notice"] == true })
	require.NoError(t, pupil.Send(map[string]any{"type": "ack_recording_notice"}))
	watchGate(t, sc, id, 30*time.Second)
	status, _ := sc.people["teacher"].Call(http.MethodGet, "/api/sessions/"+id, nil)
	require.Equal(t, http.StatusOK, status)
}

// TestSpoolNotWritable: when the spool cannot be written, a one-to-one
// lesson's media stays held.
func TestSpoolNotWritable(t *testing.T) {
	t.Parallel()
	s3 := testkit.StartS3(t)
	spool := filepath.Join(t.TempDir(), "spool")
	clock := testkit.NewClock(schoolDay)
	gw := testkit.StartGateway(t, testkit.GatewayOptions{Now: clock.Now, S3: s3, SpoolDir: spool})
	sc := &school{gw: gw, clock: clock, people: map[string]*testkit.APIClient{}}
	for _, u := range []string{"teacher", "head", "pupil"} {
		sc.people[u] = testkit.APILogin(t, gw, u)
	}
	id := liveSession(t, sc, nil)
	require.NoError(t, os.RemoveAll(spool))
	require.NoError(t, os.WriteFile(spool, []byte("not a directory"), 0o600)) // root ignores permissions, so break the path instead
	tm, _ := teacherAndPupils(t, sc, id, "pupil")
	teacher := tm.rc
	teacher.WaitState(map[string]any{"recording": "failed", "gate": "held"})
	time.Sleep(time.Second)
	_, edges, _ := sc.gw.Rooms.MediaStats(id)
	require.Zero(t, sumEdges(edges), "no media while recording cannot be guaranteed")
	rows, err := sc.gw.Store.ListAudit(context.Background(), store.AuditFilter{SessionID: id, Action: "recording.failed"})
	require.NoError(t, err)
	require.NotEmpty(t, rows)
	require.Contains(t, rows[0].Detail, "spool")
}

// TestRetentionSweep, with an injected clock: expired, unheld recordings are
// deleted and each deletion audited; held or unexpired ones are kept.
func TestRetentionSweep(t *testing.T) {
	t.Parallel()
	s3 := testkit.StartS3(t)
	sc := newRecordingSchool(t, s3)
	ctx := context.Background()
	b := sc.gw.Bucket
	now := time.Now()
	for _, key := range []string{"sessions/old/p1.webm", "sessions/held/p1.webm", "sessions/new/p1.webm"} {
		start := now
		if key == "sessions/new/p1.webm" {
			start = now.Add(5 * 24 * time.Hour) // retention ends later than the others'
		}
		require.NoError(t, b.PutJSON(ctx, key, map[string]string{"k": key}, b.RetainUntil(start)))
	}
	n, err := b.SetLegalHold(ctx, "sessions/held/", true)
	require.NoError(t, err)
	require.Equal(t, 1, n)

	deleted, err := sc.gw.Recordings.Sweep(ctx, now.Add(29*24*time.Hour))
	require.NoError(t, err)
	require.Equal(t, 1, deleted)
	objs, err := b.List(ctx, "sessions/")
	require.NoError(t, err)
	left := map[string]bool{}
	for _, o := range objs {
		left[o.Key] = true
	}
	require.Equal(t, map[string]bool{"sessions/held/p1.webm": true, "sessions/new/p1.webm": true}, left)
	rows, err := sc.gw.Store.ListAudit(ctx, store.AuditFilter{Action: "recording.deleted"})
	require.NoError(t, err)
	require.Len(t, rows, 1)
	require.Equal(t, "sessions/old/p1.webm", rows[0].Target)
	require.Equal(t, "old", rows[0].SessionID)
}
