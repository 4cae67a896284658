package web_test

import (
	"context"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/stretchr/testify/require"

	"github.com/chaperone-edu/chaperone/internal/testkit"
	"github.com/chaperone-edu/chaperone/recording"
	"github.com/chaperone-edu/chaperone/sfu"
	"github.com/chaperone-edu/chaperone/store"
)

// trackIn sums the packets the SFU received from publisher's tracks of kind.
func trackIn(ts []sfu.TrackStats, publisher, kind string) uint64 {
	var n uint64
	for _, s := range ts {
		if s.Publisher == publisher && s.Kind == kind {
			n += s.PacketsIn
		}
	}
	return n
}

// mediaCounts returns what the SFU received from publisher (kind) and what
// it forwarded from them (kind, all subscribers).
func mediaCounts(t *testing.T, sc *school, id, publisher, kind string) (in, out uint64) {
	t.Helper()
	ts, es, ok := sc.gw.Rooms.MediaStats(id)
	require.True(t, ok)
	return trackIn(ts, publisher, kind), edgeFrom(es, publisher, kind)
}

// requireDropped checks over one second that the SFU keeps receiving
// publisher's kind (the client keeps sending) and forwards none of it.
func requireDropped(t *testing.T, sc *school, id, publisher, kind string) {
	t.Helper()
	time.Sleep(300 * time.Millisecond) // packets already in flight
	in0, out0 := mediaCounts(t, sc, id, publisher, kind)
	time.Sleep(time.Second)
	in1, out1 := mediaCounts(t, sc, id, publisher, kind)
	require.Greater(t, in1, in0, "%s %s: the client keeps sending", publisher, kind)
	require.Equal(t, out0, out1, "%s %s: the SFU forwards none of it (%d packets received meanwhile)", publisher, kind, in1-in0)
	t.Logf("%s %s: %d packets received and dropped in 1 s", publisher, kind, in1-in0)
}

// rosterScreen says whether roster message m lists participant id as
// allowed to share a screen.
func rosterScreen(m map[string]any, id string) bool {
	list, _ := m["participants"].([]any)
	for _, x := range list {
		if p, _ := x.(map[string]any); p["id"] == id {
			return p["screen"] == true
		}
	}
	return false
}

func stateWith(rc *testkit.RoomConn, f func(map[string]any) bool) map[string]any {
	return rc.Next(5*time.Second, func(m map[string]any) bool { return m["type"] == "state" && f(m) })
}

func mutedIn(m map[string]any, key, kind string) bool {
	mu, _ := m[key].(map[string]any)
	return mu[kind] == true
}

// TestPupilScreenNeedsGrant, with pion clients over the real signalling: a
// pupil's screen share is forwarded to nobody (zero packets, counted at the
// SFU and at the teacher's client) until a member of staff grants it; it
// then reaches the teacher within 1 s; withdrawing the grant stops it at
// once. A second video track sent without declaring it a screen is a
// screen too, and is held the same way.
func TestPupilScreenNeedsGrant(t *testing.T) {
	t.Parallel()
	sc := newSchool(t, "teacher", "head", "pupil", "pupil2")
	id := liveSession(t, sc, nil)
	tm, pupils := teacherAndPupils(t, sc, id, "pupil", "pupil2")
	amelia, zoe := pupils[0], pupils[1]
	ameliaID, zoeID := participantID(amelia.rc), participantID(zoe.rc)
	require.Eventually(t, func() bool { return received(tm.media, ameliaID) > 0 && received(tm.media, zoeID) > 0 }, 10*time.Second, 50*time.Millisecond)

	require.NoError(t, amelia.media.PublishScreen("slides"))
	require.NoError(t, zoe.media.PublishVideo("not-declared"))
	require.Eventually(t, func() bool {
		a, _ := mediaCounts(t, sc, id, ameliaID, "screen")
		z, _ := mediaCounts(t, sc, id, zoeID, "screen")
		return a > 0 && z > 0
	}, 10*time.Second, 50*time.Millisecond, "the SFU receives both screens")
	requireDropped(t, sc, id, ameliaID, "screen")
	requireDropped(t, sc, id, zoeID, "screen")
	require.Zero(t, tm.media.Received(sfu.ScreenStreamID(ameliaID), "video").Packets, "the teacher receives no pupil screen")
	require.Zero(t, zoe.media.Received(sfu.ScreenStreamID(ameliaID), "video").Packets)
	require.Positive(t, tm.media.Received(ameliaID, "video").Packets, "the camera is unaffected")

	// A pupil cannot grant themselves.
	require.NoError(t, amelia.rc.Send(map[string]any{"type": "screen_grant", "id": ameliaID, "allowed": true}))
	require.Equal(t, "forbidden", amelia.rc.NextType("error")["code"])

	// The teacher grants Amelia: within 1 s of the grant being applied (the
	// roster that says so reaches the teacher; the audit write before it is
	// not media's business) the SFU forwards her screen, counted at the SFU;
	// and the teacher's client receives it.
	_, fwd0 := mediaCounts(t, sc, id, ameliaID, "screen")
	before := tm.media.Received(sfu.ScreenStreamID(ameliaID), "video").Packets
	sent := time.Now()
	require.NoError(t, tm.rc.Send(map[string]any{"type": "screen_grant", "id": ameliaID, "allowed": true}))
	tm.rc.Next(5*time.Second, func(m map[string]any) bool { return m["type"] == "roster" && rosterScreen(m, ameliaID) })
	acked := time.Now()
	require.Eventually(t, func() bool {
		_, es, _ := sc.gw.Rooms.MediaStats(id)
		return edgeFrom(es, ameliaID, "screen") > fwd0
	}, time.Second, 10*time.Millisecond, "the SFU forwards the granted screen within 1 s of the grant")
	t.Logf("grant applied %s after it was sent; the SFU forwarded the screen %s after that",
		acked.Sub(sent).Round(time.Millisecond), time.Since(acked).Round(time.Millisecond))
	require.Eventually(t, func() bool {
		return tm.media.Received(sfu.ScreenStreamID(ameliaID), "video").Packets > before
	}, 5*time.Second, 10*time.Millisecond, "the granted screen reaches the teacher's client")
	t.Logf("the teacher's client received it %s after the grant was applied", time.Since(acked).Round(time.Millisecond))
	stateWith(amelia.rc, func(m map[string]any) bool { return m["screen"] == true })
	require.Zero(t, tm.media.Received(sfu.ScreenStreamID(zoeID), "video").Packets, "Zoë has no grant")
	requireDropped(t, sc, id, zoeID, "screen")

	// Withdrawn: it stops within a second.
	require.NoError(t, tm.rc.Send(map[string]any{"type": "screen_grant", "id": ameliaID, "allowed": false}))
	stateWith(amelia.rc, func(m map[string]any) bool { return m["screen"] == false })
	requireDropped(t, sc, id, ameliaID, "screen")

	rows, err := sc.gw.Store.ListAudit(context.Background(), store.AuditFilter{SessionID: id, Action: "room.screen_grant"})
	require.NoError(t, err)
	require.Len(t, rows, 2)
}

// TestPupilsMayNotUnmute: with "pupils may unmute themselves" switched off,
// every pupil's audio stops at the SFU (counted) although their clients keep
// sending; a pupil cannot unmute themselves and is told "Your teacher has
// muted you"; a staff "unmute" lets that pupil through and no one else. A
// raised hand is shown to staff in raise order, and "let speak" unmutes.
// Cameras follow the same rule; "mute all" mutes every pupil.
func TestPupilsMayNotUnmute(t *testing.T) {
	t.Parallel()
	sc := newSchool(t, "teacher", "head", "pupil", "pupil2")
	id := liveSession(t, sc, nil)
	tm, pupils := teacherAndPupils(t, sc, id, "pupil", "pupil2")
	amelia, zoe := pupils[0], pupils[1]
	ameliaID, zoeID := participantID(amelia.rc), participantID(zoe.rc)
	require.Eventually(t, func() bool {
		return tm.media.Received(ameliaID, "audio").Packets > 0 && tm.media.Received(zoeID, "audio").Packets > 0
	}, 10*time.Second, 50*time.Millisecond, "pupils are heard by default")

	// A pupil cannot change the setting.
	require.NoError(t, amelia.rc.Send(map[string]any{"type": "pupil_media", "kind": "audio", "allowed": true}))
	require.Equal(t, "forbidden", amelia.rc.NextType("error")["code"])

	require.NoError(t, tm.rc.Send(map[string]any{"type": "pupil_media", "kind": "audio", "allowed": false}))
	st := stateWith(amelia.rc, func(m map[string]any) bool { return mutedIn(m, "muted", "audio") })
	require.False(t, mutedIn(st, "can_unmute", "audio"), "the pupil cannot unmute themselves")
	requireDropped(t, sc, id, ameliaID, "audio")
	requireDropped(t, sc, id, zoeID, "audio")
	_, v0 := mediaCounts(t, sc, id, ameliaID, "video")
	time.Sleep(500 * time.Millisecond)
	_, v1 := mediaCounts(t, sc, id, ameliaID, "video")
	require.Greater(t, v1, v0, "cameras are allowed by default")

	require.NoError(t, amelia.rc.Send(map[string]any{"type": "unmute_self", "kind": "audio"}))
	e := amelia.rc.NextType("error")
	require.Equal(t, "forbidden", e["code"])
	require.Contains(t, e["message"], "Your teacher has muted you")
	requireDropped(t, sc, id, ameliaID, "audio")

	// Staff unmute Amelia: her audio flows again; Zoë's does not.
	took := waitForwardedAfter(t, sc, id, ameliaID, "audio", func() {
		require.NoError(t, tm.rc.Send(map[string]any{"type": "unmute", "id": ameliaID, "kind": "audio"}))
	})
	t.Logf("Amelia's audio forwarded again %s after the unmute", took.Round(time.Millisecond))
	stateWith(amelia.rc, func(m map[string]any) bool { return !mutedIn(m, "muted", "audio") })
	requireDropped(t, sc, id, zoeID, "audio")

	// Zoë raises her hand, then Amelia: staff see them in that order.
	require.NoError(t, zoe.rc.Send(map[string]any{"type": "hand", "raised": true}))
	tm.rc.Next(5*time.Second, func(m map[string]any) bool { return m["type"] == "roster" && len(hands(m)) == 1 })
	require.NoError(t, amelia.rc.Send(map[string]any{"type": "hand", "raised": true}))
	r := tm.rc.Next(5*time.Second, func(m map[string]any) bool { return m["type"] == "roster" && len(hands(m)) == 2 })
	require.Equal(t, []string{zoeID, ameliaID}, hands(r))
	require.NoError(t, tm.rc.Send(map[string]any{"type": "lower_hand", "id": ameliaID}))
	tm.rc.Next(5*time.Second, func(m map[string]any) bool { return m["type"] == "roster" && len(hands(m)) == 1 })
	took = waitForwardedAfter(t, sc, id, zoeID, "audio", func() {
		require.NoError(t, tm.rc.Send(map[string]any{"type": "let_speak", "id": zoeID}))
	})
	t.Logf("Zoë's audio forwarded %s after 'let speak'", took.Round(time.Millisecond))
	tm.rc.Next(5*time.Second, func(m map[string]any) bool { return m["type"] == "roster" && len(hands(m)) == 0 })

	// Cameras: off for pupils until allowed.
	require.NoError(t, tm.rc.Send(map[string]any{"type": "pupil_media", "kind": "video", "allowed": false}))
	stateWith(zoe.rc, func(m map[string]any) bool { return mutedIn(m, "muted", "video") })
	requireDropped(t, sc, id, zoeID, "video")
	requireDropped(t, sc, id, ameliaID, "video")
	waitForwardedAfter(t, sc, id, zoeID, "video", func() {
		require.NoError(t, tm.rc.Send(map[string]any{"type": "unmute", "id": zoeID, "kind": "video"}))
	})

	// Pupils may unmute themselves again; "mute all" mutes both, and a
	// pupil may then switch their own microphone back on.
	require.NoError(t, tm.rc.Send(map[string]any{"type": "pupil_media", "kind": "audio", "allowed": true}))
	require.NoError(t, tm.rc.Send(map[string]any{"type": "mute_all", "kind": "audio"}))
	stateWith(amelia.rc, func(m map[string]any) bool { return mutedIn(m, "muted", "audio") && mutedIn(m, "can_unmute", "audio") })
	requireDropped(t, sc, id, ameliaID, "audio")
	requireDropped(t, sc, id, zoeID, "audio")
	_, teacherOut0 := mediaCounts(t, sc, id, participantID(tm.rc), "audio")
	waitForwardedAfter(t, sc, id, ameliaID, "audio", func() {
		require.NoError(t, amelia.rc.Send(map[string]any{"type": "unmute_self", "kind": "audio"}))
	})
	require.Eventually(t, func() bool {
		_, out := mediaCounts(t, sc, id, participantID(tm.rc), "audio")
		return out > teacherOut0
	}, 3*time.Second, 20*time.Millisecond, "mute all leaves staff alone")

	rows, err := sc.gw.Store.ListAudit(context.Background(), store.AuditFilter{SessionID: id, Action: "room.pupil_media"})
	require.NoError(t, err)
	require.Len(t, rows, 3)
}

// waitForwardedAfter runs act and returns how long until the SFU forwards
// more of publisher's kind (at most 3 s).
func waitForwardedAfter(t *testing.T, sc *school, id, publisher, kind string, act func()) time.Duration {
	t.Helper()
	_, out0 := mediaCounts(t, sc, id, publisher, kind)
	start := time.Now()
	act()
	require.Eventually(t, func() bool {
		_, out := mediaCounts(t, sc, id, publisher, kind)
		return out > out0
	}, 3*time.Second, 10*time.Millisecond, "%s %s is forwarded", publisher, kind)
	return time.Since(start)
}

func hands(m map[string]any) []string {
	var out []string
	list, _ := m["hands"].([]any)
	for _, h := range list {
		out = append(out, h.(string))
	}
	return out
}

// TestAdmitAllAndSpotlight: "Admit all" lets in the waiting pupils on the
// class list; a pupil not on it stays, marked; the spotlight reaches
// everyone and is refused for a screen the pupil may not share.
func TestAdmitAllAndSpotlight(t *testing.T) {
	t.Parallel()
	sc := newSchool(t, "teacher", "head", "pupil", "pupil2", "pupil3")
	id := liveSession(t, sc, nil)
	teacher, _, err := testkit.DialRoom(t, sc.people["teacher"], id, "")
	require.NoError(t, err)
	teacher.WaitState(map[string]any{"phase": "admitted"})
	var rcs []*testkit.RoomConn
	for _, u := range []string{"pupil", "pupil2", "pupil3"} {
		rc, _, err := testkit.DialRoom(t, sc.people[u], id, "")
		require.NoError(t, err)
		rc.WaitState(map[string]any{"phase": "waiting"})
		rcs = append(rcs, rc)
	}
	teacher.Next(5*time.Second, func(m map[string]any) bool { return m["type"] == "lobby" && len(m["waiting"].([]any)) == 3 })
	require.NoError(t, rcs[0].Send(map[string]any{"type": "admit_all"}))
	require.Equal(t, "forbidden", rcs[0].NextType("error")["code"])

	require.NoError(t, teacher.Send(map[string]any{"type": "admit_all"}))
	rcs[0].WaitState(map[string]any{"phase": "admitted"})
	rcs[1].WaitState(map[string]any{"phase": "admitted"})
	l := teacher.Next(5*time.Second, func(m map[string]any) bool { return m["type"] == "lobby" && len(m["waiting"].([]any)) == 1 })
	w := l["waiting"].([]any)[0].(map[string]any)
	require.Equal(t, "Oliver Smith-Baker", w["name"])
	require.Equal(t, false, w["on_roster"], "marked as not on the class list")
	require.Equal(t, "waiting", rcs[2].Last("state")["phase"])
	rows, err := sc.gw.Store.ListAudit(context.Background(), store.AuditFilter{SessionID: id, Action: "room.admit"})
	require.NoError(t, err)
	n := 0
	for _, r := range rows {
		if hasDetail([]store.AuditRecord{r}, "by", "admit all") {
			n++
		}
	}
	require.Equal(t, 2, n)
	// Nobody else on the list: a clear refusal.
	require.NoError(t, teacher.Send(map[string]any{"type": "admit_all"}))
	require.Equal(t, "conflict", teacher.NextType("error")["code"])

	// Spotlight.
	ameliaID, teacherID := participantID(rcs[0]), participantID(teacher)
	require.NoError(t, teacher.Send(map[string]any{"type": "spotlight", "id": ameliaID, "screen": true}))
	require.Equal(t, "conflict", teacher.NextType("error")["code"], "no screen grant")
	require.NoError(t, teacher.Send(map[string]any{"type": "spotlight", "id": teacherID, "screen": true}))
	for _, rc := range rcs[:2] {
		r := rc.Next(5*time.Second, func(m map[string]any) bool { return m["type"] == "roster" && m["spotlight"] != nil })
		require.Equal(t, map[string]any{"id": teacherID, "screen": true}, r["spotlight"])
	}
	require.NoError(t, rcs[1].Send(map[string]any{"type": "spotlight", "id": ameliaID}))
	require.Equal(t, "forbidden", rcs[1].NextType("error")["code"])
	require.NoError(t, teacher.Send(map[string]any{"type": "spotlight", "id": ""}))
	rcs[0].Next(5*time.Second, func(m map[string]any) bool { return m["type"] == "roster" && m["spotlight"] == nil })

	// Bad messages for the new tools change nothing.
	before := roomState(t, sc, id)
	for _, msg := range []map[string]any{
		{"type": "mute_all"}, {"type": "mute_all", "kind": "smell"}, {"type": "pupil_media", "kind": "audio"},
		{"type": "hand"}, {"type": "screen_grant", "id": ameliaID}, {"type": "let_speak"},
		{"type": "candidate", "pc": "up", "candidate": map[string]any{"candidate": ""}, "screen_tracks": []string{"x"}},
	} {
		require.NoError(t, teacher.Send(msg))
		require.Equal(t, "bad_message", teacher.NextType("error")["code"], "%v", msg)
	}
	require.NoError(t, teacher.Send(map[string]any{"type": "lower_hand", "id": ameliaID}))
	require.Equal(t, "conflict", teacher.NextType("error")["code"])
	require.NoError(t, teacher.Send(map[string]any{"type": "screen_grant", "id": teacherID, "allowed": true}))
	require.Equal(t, "not_found", teacher.NextType("error")["code"], "not on oneself")
	require.Equal(t, before, roomState(t, sc, id))
}

// TestScreenRecorded: in a recorded one-to-one lesson the teacher's screen
// share is recorded like a camera: a file of its own, indexed for the DSL
// under the teacher's name with "— screen", playable WebM in S3.
func TestScreenRecorded(t *testing.T) {
	t.Parallel()
	s3 := testkit.StartS3(t)
	sc := newRecordingSchool(t, s3, "teacher", "head", "pupil")
	id := liveSession(t, sc, nil)
	tm, pupils := teacherAndPupils(t, sc, id, "pupil")
	ackNotice(t, pupils[0].rc)
	watchGate(t, sc, id, 20*time.Second)
	teacherID := participantID(tm.rc)
	require.NoError(t, tm.media.PublishScreen("slides"))
	require.Eventually(t, func() bool {
		return pupils[0].media.Received(sfu.ScreenStreamID(teacherID), "video").Packets > 30
	}, 10*time.Second, 50*time.Millisecond, "the pupil receives the teacher's screen")

	require.NoError(t, tm.rc.Send(map[string]any{"type": "end"}))
	pupils[0].rc.WaitState(map[string]any{"phase": "ended"})
	var objs []store.RecordingObject
	require.Eventually(t, func() bool {
		var err error
		objs, err = sc.gw.Store.ListRecordingObjects(context.Background(), store.RecordingFilter{SessionID: id})
		return err == nil && len(objs) >= 6 // teacher, teacher's screen, pupil, and a manifest for each
	}, 60*time.Second, 200*time.Millisecond, "recordings indexed")
	var screen *store.RecordingObject
	for i, o := range objs {
		if o.ParticipantID == recording.ScreenFileID(teacherID) {
			screen = &objs[i]
		}
	}
	require.NotNil(t, screen, "the screen has its own file: %+v", objs)
	require.Equal(t, "Sarah Whitfield — screen", screen.ParticipantName)
	require.Equal(t, recording.PartKey(id, recording.ScreenFileID(teacherID), 1), screen.Key)
	require.Positive(t, screen.Size)
	o, err := s3.Client.StatObject(context.Background(), sc.gw.BucketName, screen.Key, minio.StatObjectOptions{})
	require.NoError(t, err)
	require.Equal(t, screen.Size, o.Size)
}
