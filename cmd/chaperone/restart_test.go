package main

import (
	"context"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/stretchr/testify/require"

	"github.com/chaperone-edu/chaperone/internal/testkit"
	"github.com/chaperone-edu/chaperone/internal/testkit/pgtest"
	"github.com/chaperone-edu/chaperone/recording/webm/webmtest"
	"github.com/chaperone-edu/chaperone/store"
)

// liveNow books a lesson that starts within the minute on the gateway's
// real clock (a binary has no test clock), has the head approve it and the
// teacher open it, and returns its ID. The lesson is for Year 8, or, with
// onePupil, for Amelia alone (then it records from the start).
func liveNow(t *testing.T, teacher, head *testkit.APIClient, onePupil bool) string {
	t.Helper()
	start := time.Now().Truncate(time.Minute).Add(time.Minute)
	body := map[string]any{"title": "Year 8 maths", "start": start.Format(time.RFC3339),
		"end": start.Add(time.Hour).Format(time.RFC3339), "roster_group": "year-8"}
	if onePupil {
		body["roster_group"], body["roster_emails"] = "", []string{"amelia.jones@oakfield.example"}
	}
	status, out := teacher.Call(http.MethodPost, "/api/sessions", body)
	require.Equal(t, http.StatusCreated, status, "%v", out)
	id := out["sessions"].([]any)[0].(map[string]any)["id"].(string)
	status, out = head.Call(http.MethodPost, "/api/sessions/"+id+"/approve", nil)
	require.Equal(t, http.StatusOK, status, "%v", out)
	status, out = teacher.Call(http.MethodPost, "/api/sessions/"+id+"/open", nil)
	require.Equal(t, http.StatusOK, status, "%v", out)
	return id
}

func youOf(t *testing.T, rc *testkit.RoomConn) string {
	t.Helper()
	w := rc.NextType("welcome")
	return w["you"].(map[string]any)["id"].(string)
}

// TestRoomSurvivesRestart (R16): the gateway binary is killed (-9) and then
// stopped with SIGTERM during a lesson; each time it starts again on the same
// database, everyone reconnects: the removed pupil is still refused, the
// denied pupil is still denied, the admitted pupils are back in without being
// admitted again, the chat goes on with new message IDs, and the audit chain
// verifies.
//
// It runs on SQLite and, when there is a Postgres server (pgtest.DSN), on
// Postgres.
func TestRoomSurvivesRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the gateway binary")
	}
	s3 := testkit.StartS3(t)
	t.Run("sqlite", func(t *testing.T) { testRoomSurvivesRestart(t, s3, "") })
	t.Run("postgres", func(t *testing.T) { testRoomSurvivesRestart(t, s3, pgtest.DSN(t)) })
}

func testRoomSurvivesRestart(t *testing.T, s3 *testkit.S3, database string) {
	gw := testkit.StartGatewayProcess(t, testkit.GatewayProcessOptions{S3: s3, Database: database})
	people := map[string]*testkit.APIClient{}
	for _, u := range []string{"teacher", "head", "pupil", "pupil2", "pupil3", "pupil4"} {
		people[u] = gw.Login(t, u)
	}
	id := liveNow(t, people["teacher"], people["head"], false)

	dial := func(u string) *testkit.RoomConn {
		t.Helper()
		var rc *testkit.RoomConn
		require.Eventually(t, func() bool { // the gateway may still be starting its rooms
			var err error
			rc, _, err = testkit.DialRoom(t, people[u], id, "")
			return err == nil
		}, 20*time.Second, 200*time.Millisecond, "%s connects", u)
		return rc
	}
	teacher := dial("teacher")
	teacher.WaitState(map[string]any{"phase": "admitted"})
	ids := map[string]string{}
	conns := map[string]*testkit.RoomConn{}
	for _, u := range []string{"pupil", "pupil2", "pupil3", "pupil4"} {
		conns[u] = dial(u)
		ids[u] = youOf(t, conns[u])
		conns[u].WaitState(map[string]any{"phase": "waiting"})
	}
	for _, u := range []string{"pupil", "pupil2", "pupil3"} {
		require.NoError(t, teacher.Send(map[string]any{"type": "admit", "id": ids[u]}))
		conns[u].WaitState(map[string]any{"phase": "admitted"})
	}
	require.NoError(t, teacher.Send(map[string]any{"type": "remove", "id": ids["pupil3"], "reason": "Shared something unkind."}))
	conns["pupil3"].WaitState(map[string]any{"phase": "removed"})
	require.NoError(t, teacher.Send(map[string]any{"type": "deny", "id": ids["pupil4"], "reason": "This lesson is for Year 8."}))
	conns["pupil4"].WaitState(map[string]any{"phase": "denied"})
	require.NoError(t, teacher.Send(map[string]any{"type": "chat", "text": "Page 12, please."}))
	require.Equal(t, "m1", conns["pupil"].NextType("chat")["id"])
	time.Sleep(500 * time.Millisecond) // the room's state is saved off its goroutine, within milliseconds

	chatN := 1
	for _, restart := range []struct {
		name string
		stop func()
	}{{"kill -9", gw.Kill}, {"SIGTERM", gw.Term}} {
		t.Log("restart: " + restart.name)
		restart.stop()
		gw.Start()

		// The removed pupil, signing in again even, stays out.
		people["pupil3"] = gw.Login(t, "pupil3")
		removed, resp, err := testkit.DialRoom(t, people["pupil3"], id, "")
		if err == nil {
			removed.WaitState(map[string]any{"phase": "removed"})
		} else {
			require.Equal(t, http.StatusForbidden, resp.StatusCode)
		}
		teacher = dial("teacher")
		teacher.WaitState(map[string]any{"phase": "admitted"})
		for _, u := range []string{"pupil", "pupil2"} {
			conns[u] = dial(u)
			conns[u].WaitState(map[string]any{"phase": "admitted"}) // no admission again
		}
		conns["pupil4"] = dial("pupil4")
		conns["pupil4"].WaitState(map[string]any{"phase": "denied"})
		lobby := teacher.Next(5*time.Second, func(m map[string]any) bool { return m["type"] == "lobby" && len(m["waiting"].([]any)) > 0 })
		require.Len(t, lobby["waiting"], 1, "only the denied pupil is on the waiting list: %v", lobby)
		require.Equal(t, ids["pupil4"], lobby["waiting"].([]any)[0].(map[string]any)["id"])

		chatN++
		require.NoError(t, conns["pupil"].Send(map[string]any{"type": "chat", "text": "We are back after " + restart.name}))
		msg := conns["pupil2"].Next(5*time.Second, func(m map[string]any) bool {
			return m["type"] == "chat" && m["from"].(map[string]any)["id"] == ids["pupil"]
		})
		require.Equal(t, "m"+strconv.Itoa(chatN), msg["id"], "chat IDs never repeat")
	}
	// The lesson ends: its transcript is stored once, with every message
	// (a gateway's shutdown stores none: the room goes on after it).
	require.NoError(t, teacher.Send(map[string]any{"type": "end"}))
	conns["pupil"].WaitState(map[string]any{"phase": "ended"})
	ctx := context.Background()
	transcripts := func() int {
		n := 0
		for o := range s3.Client.ListObjects(ctx, gw.Bucket, minio.ListObjectsOptions{Prefix: "sessions/" + id + "/chat", Recursive: true, WithVersions: true}) {
			require.NoError(t, o.Err)
			n++
		}
		return n
	}
	require.Eventually(t, func() bool { return transcripts() > 0 }, 20*time.Second, 200*time.Millisecond, "the transcript is stored when the lesson ends")
	time.Sleep(time.Second) // a second write would come straight after the first
	require.Equal(t, 1, transcripts(), "the transcript key is written once, restarts or not")
	gw.Term()

	st, err := store.Open(context.Background(), gw.Database)
	require.NoError(t, err)
	defer st.Close()
	require.NoError(t, st.VerifyAudit(context.Background()))
	admits, err := st.ListAudit(context.Background(), store.AuditFilter{Action: "room.admit", SessionID: id})
	require.NoError(t, err)
	require.Len(t, admits, 1+3, "the teacher and three pupils were admitted once, never again after a restart")
	rejoins, err := st.ListAudit(context.Background(), store.AuditFilter{Action: "room.rejoin", SessionID: id})
	require.NoError(t, err)
	require.Len(t, rejoins, 2*3, "the teacher and the two pupils came back after each restart")
	msgs, err := st.ListChatMessages(context.Background(), id)
	require.NoError(t, err)
	seen := map[string]bool{}
	for _, m := range msgs {
		require.False(t, seen[m.ID], "message ID %s used twice", m.ID)
		seen[m.ID] = true
	}
	require.Len(t, msgs, chatN)
}

// spoolSizes are the sizes of the WebM files in the gateway's spool.
func spoolSizes(t *testing.T, dir string) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	require.NoError(t, filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".webm") {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		out[filepath.Base(path)] = info.Size()
		return nil
	}))
	return out
}

// TestRecordingSurvivesCrash (R6, R16): the gateway is killed (-9) during a
// recorded one-to-one lesson and started again. The pupil comes back
// without admission and without acknowledging the notice again; no pupil
// media flows after the restart before the new part is confirmed; when the
// lesson ends the DSL's index holds a pre-crash and a post-crash part of
// each person, each uploaded byte for byte from its spool file, playable
// (Opus and VP8), with one version per key, a manifest and a
// recording.stored audit row; the audit chain verifies.
func TestRecordingSurvivesCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the gateway binary")
	}
	t.Run("kill -9", func(t *testing.T) { recordedRestart(t, true) })
	t.Run("SIGTERM", func(t *testing.T) { recordedRestart(t, false) })
}

// recordedRestart is TestRecordingSurvivesCrash with a crash (kill) or a
// clean restart (SIGTERM: the gateway finishes and indexes the first parts
// itself before it exits).
func recordedRestart(t *testing.T, kill bool) {
	s3 := testkit.StartS3(t)
	gw := testkit.StartGatewayProcess(t, testkit.GatewayProcessOptions{S3: s3})
	teacherAPI, head, pupilAPI := gw.Login(t, "teacher"), gw.Login(t, "head"), gw.Login(t, "pupil")
	id := liveNow(t, teacherAPI, head, true)

	join := func(a *testkit.APIClient) (*testkit.RoomConn, string) {
		t.Helper()
		var rc *testkit.RoomConn
		require.Eventually(t, func() bool {
			var err error
			rc, _, err = testkit.DialRoom(t, a, id, "")
			return err == nil
		}, 20*time.Second, 200*time.Millisecond)
		return rc, youOf(t, rc)
	}
	teacher, teacherID := join(teacherAPI)
	teacher.WaitState(map[string]any{"phase": "admitted"})
	tMedia := teacher.Media(true, true)
	require.NoError(t, tMedia.Start())
	pupil, pupilID := join(pupilAPI)
	pupil.WaitState(map[string]any{"phase": "waiting"})
	require.NoError(t, teacher.Send(map[string]any{"type": "admit", "id": pupilID}))
	pupil.WaitState(map[string]any{"phase": "admitted"})
	pMedia := pupil.Media(true, true)
	require.NoError(t, pMedia.Start())
	pupil.Next(20*time.Second, func(m map[string]any) bool { return m["type"] == "state" && m["notice"] == true })
	require.NoError(t, pupil.Send(map[string]any{"type": "ack_recording_notice"}))
	pupil.Next(20*time.Second, func(m map[string]any) bool {
		return m["type"] == "state" && m["gate"] == "open" && m["recording"] == "confirmed"
	})
	require.Eventually(t, func() bool {
		return pMedia.Received(teacherID, "video").Packets > 50 && tMedia.Received(pupilID, "video").Packets > 50
	},
		30*time.Second, 100*time.Millisecond, "media flows while recorded")

	if kill {
		gw.Kill()
	} else {
		gw.Term()
	}
	before := spoolSizes(t, gw.SpoolDir)
	if kill {
		require.Len(t, before, 2, "a spool file per person: %v", before)
	}
	tMedia.Close()
	pMedia.Close()
	gw.Start()

	teacher, _ = join(teacherAPI)
	teacher.WaitState(map[string]any{"phase": "admitted"})
	tMedia = teacher.Media(true, true)
	require.NoError(t, tMedia.Start())
	pupil, _ = join(pupilAPI)
	back := pupil.Next(20*time.Second, func(m map[string]any) bool { return m["type"] == "state" && m["phase"] == "admitted" })
	require.NotEqual(t, true, back["notice"], "the notice was acknowledged for this lesson's recording already")
	pMedia = pupil.Media(true, true)
	require.NoError(t, pMedia.Start())
	pupil.Next(30*time.Second, func(m map[string]any) bool {
		return m["type"] == "state" && m["gate"] == "open" && m["recording"] == "confirmed"
	})
	require.Eventually(t, func() bool {
		return pMedia.Received(teacherID, "video").Packets > 50 && tMedia.Received(pupilID, "video").Packets > 50
	},
		45*time.Second, 100*time.Millisecond, "media flows again once the new part is confirmed (pupil connected %v, teacher %v)",
		pMedia.Connected(), tMedia.Connected())
	require.NoError(t, teacher.Send(map[string]any{"type": "end"}))
	teacher.WaitState(map[string]any{"phase": "ended"})

	st, err := store.Open(context.Background(), gw.Database)
	require.NoError(t, err)
	defer st.Close()
	dsl := gw.Login(t, "dsl")
	var parts []store.RecordingObject
	require.Eventually(t, func() bool {
		objs, err := st.ListRecordingObjects(context.Background(), store.RecordingFilter{SessionID: id})
		if err != nil {
			return false
		}
		parts = parts[:0]
		for _, o := range objs {
			if o.Part > 0 && strings.HasSuffix(o.Key, ".webm") {
				parts = append(parts, o)
			}
		}
		return len(parts) >= 4
	}, 60*time.Second, 250*time.Millisecond, "two parts of each person indexed")
	// The DSL's session page lists both parts of each person, in order.
	status, page := dsl.Raw(http.MethodGet, "/recordings/"+id, nil, "")
	require.Equal(t, http.StatusOK, status)
	require.Contains(t, string(page), "part 1")
	require.Contains(t, string(page), "part 2")
	require.Less(t, strings.Index(string(page), "part 1"), strings.Index(string(page), "part 2"))
	gw.Term()

	ctx := context.Background()
	versions := map[string]int{}
	for o := range s3.Client.ListObjects(ctx, gw.Bucket, minio.ListObjectsOptions{Prefix: "sessions/" + id + "/", Recursive: true, WithVersions: true}) {
		require.NoError(t, o.Err)
		versions[o.Key]++
	}
	for k, n := range versions {
		require.Equal(t, 1, n, "%s was written %d times", k, n)
	}
	stored, err := st.ListAudit(ctx, store.AuditFilter{Action: "recording.stored", SessionID: id})
	require.NoError(t, err)
	storedKeys := map[string]bool{}
	for _, r := range stored {
		storedKeys[r.Target] = true
	}
	byPerson := map[string][]int{}
	matched := 0
	for _, p := range parts {
		byPerson[p.ParticipantID] = append(byPerson[p.ParticipantID], p.Part)
		require.True(t, storedKeys[p.Key], "recording.stored for %s", p.Key)
		require.Equal(t, 1, versions[strings.TrimSuffix(p.Key, ".webm")+".json"], "%s has its manifest", p.Key)
		obj, err := s3.Client.GetObject(ctx, gw.Bucket, p.Key, minio.GetObjectOptions{})
		require.NoError(t, err)
		path := filepath.Join(t.TempDir(), filepath.Base(p.Key))
		f, err := os.Create(path)
		require.NoError(t, err)
		n, err := io.Copy(f, obj)
		require.NoError(t, err)
		require.NoError(t, f.Close())
		require.Equal(t, p.Size, n)
		if size, ok := before[filepath.Base(path)]; ok {
			require.Equal(t, size, n, "%s: the crash's part is its spool file, byte for byte", p.Key)
			matched++
		}
		require.ElementsMatch(t, []string{"opus", "vp8"}, webmtest.Probe(t, path).Codecs(), "%s plays", p.Key)
	}
	if kill {
		require.Equal(t, 2, matched, "both pre-crash parts were uploaded from the spool: %v, parts %v", before, parts)
	}
	for who, ps := range byPerson {
		require.GreaterOrEqual(t, len(ps), 2, "%s has a part from before and after the crash", who)
	}
	require.NoError(t, st.VerifyAudit(ctx))

	// After the restart no pupil media flowed before the new part was
	// confirmed: the gate opened only after recording.confirmed.
	rows, err := st.ListAudit(ctx, store.AuditFilter{SessionID: id})
	require.NoError(t, err)
	var confirmed, opened []time.Time
	for _, r := range rows {
		switch r.Action {
		case "recording.confirmed":
			confirmed = append(confirmed, r.Time)
		case "gate.open":
			opened = append(opened, r.Time)
		}
	}
	require.Len(t, confirmed, 2, "a confirmed part before and after the crash")
	require.Len(t, opened, 2)
	slices.SortFunc(confirmed, time.Time.Compare)
	slices.SortFunc(opened, time.Time.Compare)
	for i := range opened {
		require.False(t, opened[i].Before(confirmed[i]), "the gate opened only once part %d was confirmed", i+1)
	}
}
