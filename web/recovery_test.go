package web_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/stretchr/testify/require"

	"github.com/chaperone-edu/chaperone/internal/testkit"
	"github.com/chaperone-edu/chaperone/lobby"
	"github.com/chaperone-edu/chaperone/recording"
	"github.com/chaperone-edu/chaperone/store"
)

// flakyStore fails what it is told to until cleared, as a full disk
// under the database would.
type flakyStore struct {
	store.Store
	failEnd   atomic.Bool // PutRecordingObject and the transition to ended
	failParts atomic.Bool // NextRecordingPart
}

var errInjected = errors.New("injected: database or disk is full")

func (f *flakyStore) PutRecordingObject(ctx context.Context, o store.RecordingObject) error {
	if f.failEnd.Load() {
		return errInjected
	}
	return f.Store.PutRecordingObject(ctx, o)
}

func (f *flakyStore) TransitionSession(ctx context.Context, id string, from []string, to string, c store.SessionChange) (store.Session, error) {
	if f.failEnd.Load() && to == store.StateEnded {
		return store.Session{}, errInjected
	}
	return f.Store.TransitionSession(ctx, id, from, to, c)
}

func (f *flakyStore) NextRecordingPart(ctx context.Context, sessionID, fileID string) (int, error) {
	if f.failParts.Load() {
		return 0, errInjected
	}
	return f.Store.NextRecordingPart(ctx, sessionID, fileID)
}

func newRecordingSchoolWith(t *testing.T, o testkit.GatewayOptions, users ...string) *school {
	clock := testkit.NewClock(schoolDay)
	o.Now = clock.Now
	gw := testkit.StartGateway(t, o)
	sc := &school{gw: gw, clock: clock, people: map[string]*testkit.APIClient{}}
	for _, u := range users {
		sc.people[u] = testkit.APILogin(t, gw, u)
	}
	return sc
}

// recordedLesson runs a one-to-one lesson until media flows.
func recordedLesson(t *testing.T, sc *school) (id string, tm member, pm member) {
	t.Helper()
	id = liveSession(t, sc, nil)
	tm, pupils := teacherAndPupils(t, sc, id, "pupil")
	ackNotice(t, pupils[0].rc)
	watchGate(t, sc, id, 30*time.Second)
	pupilID := participantID(pupils[0].rc)
	require.Eventually(t, func() bool { return received(tm.media, pupilID) > 0 }, 10*time.Second, 50*time.Millisecond)
	return id, tm, pupils[0]
}

func indexedParts(t *testing.T, sc *school, id string) []store.RecordingObject {
	t.Helper()
	objs, err := sc.gw.Store.ListRecordingObjects(context.Background(), store.RecordingFilter{SessionID: id})
	require.NoError(t, err)
	var out []store.RecordingObject
	for _, o := range objs {
		if o.ParticipantID != "" {
			out = append(out, o)
		}
	}
	return out
}

// TestStoreFailureAtLessonEnd: the database cannot be written when a
// recorded lesson ends: the recording is uploaded but cannot be indexed and
// the session cannot be marked ended. Once the store takes writes again the
// reconciler, with no restart, ends the session (audited) and indexes every
// part (manifest, row, one recording.stored each).
func TestStoreFailureAtLessonEnd(t *testing.T) {
	t.Parallel()
	s3 := testkit.StartS3(t)
	fs := &flakyStore{}
	spool := t.TempDir()
	sc := newRecordingSchoolWith(t, testkit.GatewayOptions{S3: s3, SpoolDir: spool, ReconcileEvery: 200 * time.Millisecond,
		WrapStore: func(st store.Store) store.Store { fs.Store = st; return fs }}, "teacher", "head", "pupil")
	id, tm, pm := recordedLesson(t, sc)
	time.Sleep(time.Second) // some lesson

	fs.failEnd.Store(true)
	require.NoError(t, tm.rc.Send(map[string]any{"type": "end"}))
	pm.rc.WaitState(map[string]any{"phase": "ended"})
	ctx := context.Background()
	// The parts are uploaded (S3 works) but not indexed while the store fails.
	require.Eventually(t, func() bool {
		objs, err := sc.gw.Bucket.List(ctx, recording.SessionPrefix(id))
		n := 0
		for _, o := range objs {
			if filepath.Ext(o.Key) == ".webm" {
				n++
			}
		}
		return err == nil && n == 2
	}, 60*time.Second, 100*time.Millisecond, "both parts uploaded")
	time.Sleep(time.Second) // several reconciler passes meet the failure
	ss, err := sc.gw.Store.GetSession(ctx, id)
	require.NoError(t, err)
	require.Equal(t, store.StateLive, ss.State, "the end could not be saved")
	require.Empty(t, indexedParts(t, sc, id))
	left, _ := filepath.Glob(filepath.Join(spool, id, "*.webm"))
	require.Len(t, left, 2, "the parts stay in the spool until indexed")

	fs.failEnd.Store(false)
	require.Eventually(t, func() bool {
		ss, err := sc.gw.Store.GetSession(ctx, id)
		return err == nil && ss.State == store.StateEnded && len(indexedParts(t, sc, id)) == 2
	}, 30*time.Second, 100*time.Millisecond, "ended and indexed without a restart")
	for _, o := range indexedParts(t, sc, id) {
		require.Equal(t, 1, o.Part)
		st, err := sc.gw.Bucket.Stat(ctx, o.Key)
		require.NoError(t, err)
		require.Equal(t, st.Size, o.Size)
		_, err = sc.gw.Bucket.Stat(ctx, recording.PartManifestKey(id, o.ParticipantID, 1))
		require.NoError(t, err, "manifest of %s", o.Key)
	}
	rows, err := sc.gw.Store.ListAudit(ctx, store.AuditFilter{SessionID: id, Action: "recording.stored"})
	require.NoError(t, err)
	require.Len(t, rows, 2)
	ended, err := sc.gw.Store.ListAudit(ctx, store.AuditFilter{SessionID: id, Action: "session.ended"})
	require.NoError(t, err)
	require.Len(t, ended, 2, "the room's end and the reconciler's")
	require.Contains(t, ended[0].Detail, "reconciler")
	require.Eventually(t, func() bool {
		left, _ := filepath.Glob(filepath.Join(spool, id, "*"))
		return len(left) == 0
	}, 10*time.Second, 50*time.Millisecond, "the spool emptied")
	require.NoError(t, sc.gw.Store.VerifyAudit(ctx))
}

// TestStartsWithoutS3: S3 is unreachable when the gateway starts: it
// serves, /readyz says recording storage is degraded (and stays ready), a
// one-to-one lesson is held with a banner saying why; when S3 comes back
// the bucket is checked, the lesson records and media flows; each stored
// object's retention runs from its upload's completion.
func TestStartsWithoutS3(t *testing.T) {
	t.Parallel()
	s3 := testkit.StartS3(t)
	sc := newRecordingSchoolWith(t, testkit.GatewayOptions{S3: s3, S3Down: true}, "teacher", "head", "pupil")
	ready := func() (int, map[string]any) {
		resp, err := http.Get(sc.gw.URL + "/readyz")
		require.NoError(t, err)
		defer resp.Body.Close()
		var out map[string]any
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
		return resp.StatusCode, out
	}
	status, out := ready()
	require.Equal(t, http.StatusOK, status, "%v", out)
	require.Equal(t, true, out["ready"])
	require.Contains(t, out["degraded"], "recording_storage")

	id := liveSession(t, sc, nil)
	tm, pupils := teacherAndPupils(t, sc, id, "pupil")
	held := tm.rc.WaitState(map[string]any{"recording": "failed", "gate": "held"})
	require.Contains(t, held["banner"], "Recording could not start: the recording storage is unreachable. Media is paused until it is back.")
	time.Sleep(500 * time.Millisecond)
	_, edges, _ := sc.gw.Rooms.MediaStats(id)
	require.Zero(t, sumEdges(edges), "no media without a recording")

	s3.Start()
	ackNotice(t, pupils[0].rc)
	watchGate(t, sc, id, 30*time.Second)
	require.Equal(t, lobby.RecConfirmed, roomState(t, sc, id).Recording)
	_, out = ready()
	require.Empty(t, out["degraded"])
	time.Sleep(time.Second)
	require.NoError(t, tm.rc.Send(map[string]any{"type": "end"}))
	pupils[0].rc.WaitState(map[string]any{"phase": "ended"})
	require.Eventually(t, func() bool { return len(indexedParts(t, sc, id)) == 2 }, 60*time.Second, 100*time.Millisecond, "recorded and indexed")
	objs, err := sc.gw.Bucket.List(context.Background(), recording.SessionPrefix(id))
	require.NoError(t, err)
	for _, o := range objs {
		require.False(t, o.RetainUntil.Before(o.LastModified.AddDate(0, 0, 28)), "%s: retain until %v, last modified %v", o.Key, o.RetainUntil, o.LastModified)
	}
}

// TestRecordingRestartsAsNewPart: a recording that fails mid-lesson (here:
// no part number for a new file, the database being full) holds the
// one-to-one lesson's media with a banner saying why, and when the cause
// clears it restarts as new parts, with new keys, and media flows again.
// The DSL's page lists each participant's parts in order.
func TestRecordingRestartsAsNewPart(t *testing.T) {
	t.Parallel()
	s3 := testkit.StartS3(t)
	fs := &flakyStore{}
	sc := newRecordingSchoolWith(t, testkit.GatewayOptions{S3: s3, WrapStore: func(st store.Store) store.Store { fs.Store = st; return fs }},
		"teacher", "head", "pupil", "dsl")
	id, tm, pm := recordedLesson(t, sc)

	// The teacher starts sharing a screen: a new file, and no number for it.
	fs.failParts.Store(true)
	require.NoError(t, tm.media.PublishScreen("slides"))
	failed := tm.rc.WaitState(map[string]any{"recording": "failed", "gate": "held"})
	require.Contains(t, failed["banner"], "Recording stopped: the database cannot be written. Media is paused.")
	rows, err := sc.gw.Store.ListAudit(context.Background(), store.AuditFilter{SessionID: id, Action: "recording.failed"})
	require.NoError(t, err)
	require.NotEmpty(t, rows)
	require.Contains(t, rows[0].Detail, "Recording stopped: the database cannot be written. Media is paused.")

	// Held means held: nothing is forwarded while the recording is down.
	_, edges, _ := sc.gw.Rooms.MediaStats(id)
	heldAt := sumEdges(edges)
	time.Sleep(time.Second)
	_, edges, _ = sc.gw.Rooms.MediaStats(id)
	if roomState(t, sc, id).Recording != lobby.RecConfirmed { // restarting takes 5 s
		require.Equal(t, heldAt, sumEdges(edges), "no media forwarded while the failed recording holds it")
	}

	fs.failParts.Store(false)
	tm.rc.Next(30*time.Second, func(m map[string]any) bool {
		return m["type"] == "state" && m["recording"] == "confirmed" && m["gate"] == "open"
	})
	before := received(tm.media, participantID(pm.rc))
	require.Eventually(t, func() bool { return received(tm.media, participantID(pm.rc)) > before }, 10*time.Second, 50*time.Millisecond, "media flows again")
	require.NoError(t, tm.rc.Send(map[string]any{"type": "end"}))
	pm.rc.WaitState(map[string]any{"phase": "ended"})
	pupilID := participantID(pm.rc)
	require.Eventually(t, func() bool {
		n := 0
		for _, o := range indexedParts(t, sc, id) {
			if o.ParticipantID == pupilID {
				n++
			}
		}
		return n == 2
	}, 60*time.Second, 100*time.Millisecond, "the pupil's two parts indexed")
	keys := map[string]bool{}
	for _, o := range indexedParts(t, sc, id) {
		require.False(t, keys[o.Key])
		keys[o.Key] = true
	}
	require.True(t, keys[recording.PartKey(id, pupilID, 1)])
	require.True(t, keys[recording.PartKey(id, pupilID, 2)])
	for o := range s3.Client.ListObjects(context.Background(), sc.gw.BucketName, minio.ListObjectsOptions{Prefix: recording.SessionPrefix(id), Recursive: true, WithVersions: true}) {
		require.NoError(t, o.Err)
		require.True(t, o.IsLatest, "%s has one version only", o.Key)
	}

	// The DSL's page lists the pupil's parts in order, labelled, and
	// plays each.
	dsl := sc.people["dsl"].HTTP
	status, body := get(t, dsl, sc.gw.URL+"/recordings/"+id)
	require.Equal(t, http.StatusOK, status)
	p1, p2 := pupilID+".part1.webm", pupilID+".part2.webm"
	require.Contains(t, body, "part 1")
	require.Contains(t, body, "part 2")
	require.Less(t, strings.Index(body, p1), strings.Index(body, p2), "part 1 before part 2")
	for _, f := range []string{p1, p2} {
		status, _ = get(t, dsl, sc.gw.URL+"/recordings/"+id+"/media/"+f)
		require.Equal(t, http.StatusOK, status, f)
	}
	status, body = get(t, dsl, sc.gw.URL+"/recordings")
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, 1, strings.Count(body, "Amelia Jones"), "the recordings list names a pupil once, however many parts")
	status, _ = get(t, dsl, sc.gw.URL+"/recordings/"+id+"/media/"+pupilID+".part1.json")
	require.Equal(t, http.StatusNotFound, status, "a manifest is not media")
}
