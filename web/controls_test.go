package web_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/chaperone-edu/chaperone/internal/testkit"
	"github.com/chaperone-edu/chaperone/lobby"
	"github.com/chaperone-edu/chaperone/recording"
	"github.com/chaperone-edu/chaperone/sfu"
	"github.com/chaperone-edu/chaperone/store"
)

func edgeFrom(es []sfu.EdgeStats, from, kind string) uint64 {
	var n uint64
	for _, e := range es {
		if e.From == from && e.Kind == kind {
			n += e.Packets
		}
	}
	return n
}

// TestRemoveAndMute: a muted pupil's audio stops at the SFU (counted) while
// their video goes on; a removed pupil's media stops reaching the others
// within 1 s, they see why, and they cannot come back, even with a new
// sign-in.
func TestRemoveAndMute(t *testing.T) {
	t.Parallel()
	sc := newSchool(t, "teacher", "head", "pupil", "pupil2")
	id := liveSession(t, sc, nil)
	teacher, tMedia := joinRoom(t, sc, "teacher", id)
	teacher.WaitState(map[string]any{"phase": "admitted"})
	require.NoError(t, tMedia.Start())
	amelia, aMedia := joinRoom(t, sc, "pupil", id)
	zoe, zMedia := joinRoom(t, sc, "pupil2", id)
	amelia.WaitState(map[string]any{"phase": "waiting"})
	zoe.WaitState(map[string]any{"phase": "waiting"})
	ameliaID, zoeID := participantID(amelia), participantID(zoe)
	require.NoError(t, teacher.Send(map[string]any{"type": "admit", "id": ameliaID}))
	require.NoError(t, teacher.Send(map[string]any{"type": "admit", "id": zoeID}))
	amelia.WaitState(map[string]any{"phase": "admitted"})
	zoe.WaitState(map[string]any{"phase": "admitted"})
	require.NoError(t, aMedia.Start())
	require.NoError(t, zMedia.Start())
	require.Eventually(t, func() bool { return received(tMedia, ameliaID) > 0 && received(tMedia, zoeID) > 0 }, 10*time.Second, 50*time.Millisecond)

	// Mute Amelia's microphone: the SFU forwards none of her audio, but her video.
	require.NoError(t, teacher.Send(map[string]any{"type": "mute", "id": ameliaID, "kind": "audio"}))
	st := amelia.Next(5*time.Second, func(m map[string]any) bool {
		mu, _ := m["muted"].(map[string]any)
		return m["type"] == "state" && mu["audio"] == true
	})
	require.Equal(t, "state", st["type"])
	time.Sleep(300 * time.Millisecond)
	_, e0, _ := sc.gw.Rooms.MediaStats(id)
	time.Sleep(time.Second)
	_, e1, _ := sc.gw.Rooms.MediaStats(id)
	require.Equal(t, edgeFrom(e0, ameliaID, "audio"), edgeFrom(e1, ameliaID, "audio"), "muted audio stops at the SFU")
	require.Greater(t, edgeFrom(e1, ameliaID, "video"), edgeFrom(e0, ameliaID, "video"), "video goes on")
	require.NoError(t, teacher.Send(map[string]any{"type": "unmute", "id": ameliaID, "kind": "audio"}))
	require.Eventually(t, func() bool {
		_, e2, _ := sc.gw.Rooms.MediaStats(id)
		return edgeFrom(e2, ameliaID, "audio") > edgeFrom(e1, ameliaID, "audio")
	}, 3*time.Second, 50*time.Millisecond, "unmuted audio flows again")

	// Remove Zoë.
	before := received(aMedia, zoeID)
	removedAt := time.Now()
	require.NoError(t, teacher.Send(map[string]any{"type": "remove", "id": zoeID, "reason": "Unkind comments in the chat."}))
	gone := zoe.WaitState(map[string]any{"phase": "removed"})
	require.Contains(t, gone["reason"], "Unkind comments")
	select {
	case <-zoe.Closed():
	case <-time.After(2 * time.Second):
		t.Fatal("the removed pupil's connection stays open")
	}
	// Her lessons no longer offer to join this one, and say why.
	require.Eventually(t, func() bool {
		_, list := sc.people["pupil2"].Call(http.MethodGet, "/api/sessions", nil)
		for _, x := range list["sessions"].([]any) {
			if v := x.(map[string]any); v["id"] == id {
				msg, _ := v["open_message"].(string)
				return v["can_open"] == false && strings.Contains(msg, "took you out of this lesson")
			}
		}
		return false
	}, 5*time.Second, 100*time.Millisecond, "the removed pupil is not offered to join again")
	var stopped uint64
	require.Eventually(t, func() bool {
		n := received(aMedia, zoeID)
		if n == stopped && n > 0 {
			return true
		}
		stopped = n
		return false
	}, time.Second+500*time.Millisecond, 250*time.Millisecond, "the removed pupil's media stops")
	t.Logf("removed pupil's media stopped within %s (%d packets before, %d after)", time.Since(removedAt).Round(time.Millisecond), before, stopped)
	time.Sleep(500 * time.Millisecond)
	require.Equal(t, stopped, received(aMedia, zoeID))

	// Reconnecting, and signing in again, are refused.
	again, _, err := testkit.DialRoom(t, sc.people["pupil2"], id, "")
	require.NoError(t, err)
	again.WaitState(map[string]any{"phase": "removed"})
	fresh := testkit.APILogin(t, sc.gw, "pupil2")
	third, _, err := testkit.DialRoom(t, fresh, id, "")
	require.NoError(t, err)
	third.WaitState(map[string]any{"phase": "removed"})
	for _, p := range roomState(t, sc, id).Participants {
		if p.ID == zoeID {
			require.Equal(t, lobby.Removed, p.State)
		}
	}
	rows, err := sc.gw.Store.ListAudit(context.Background(), store.AuditFilter{SessionID: id, Action: "room.remove"})
	require.NoError(t, err)
	require.Len(t, rows, 1)
	require.Equal(t, "Sarah Whitfield", rows[0].ActorName)
	require.Contains(t, rows[0].Detail, "Unkind comments")
	require.Contains(t, rows[0].Detail, "Zoë Lefèvre")
}

// TestStopAndRaiseConcern: a recorded one-to-one lesson; the teacher stops
// it to raise a concern: everyone is disconnected (the pupil is not told
// why), the concern reaches the DSL, every recording object is on legal
// hold, and the sweeper past retention keeps them until the hold is released.
func TestStopAndRaiseConcern(t *testing.T) {
	t.Parallel()
	s3 := testkit.StartS3(t)
	sc := newRecordingSchool(t, s3, "teacher", "head", "pupil", "dsl")
	id := liveSession(t, sc, onePupil)
	tm, pupils := teacherAndPupils(t, sc, id, "pupil")
	teacher, pupil := tm.rc, pupils[0].rc
	ackNotice(t, pupil)
	watchGate(t, sc, id, 20*time.Second)
	time.Sleep(time.Second)

	require.NoError(t, pupil.Send(map[string]any{"type": "concern"}))
	require.Equal(t, "forbidden", pupil.NextType("error")["code"], "a pupil cannot raise a staff concern")
	require.NoError(t, teacher.Send(map[string]any{"type": "concern"}))
	form := teacher.NextType("concern_form")
	require.Equal(t, "/sessions/"+id+"/concern", form["url"])
	ended := pupil.WaitState(map[string]any{"phase": "ended"})
	require.NotContains(t, ended["banner"], "concern")
	require.NotContains(t, ended["reason"], "concern")

	// The teacher files the concern.
	status, body := get(t, sc.people["teacher"].HTTP, sc.gw.URL+"/sessions/"+id)
	require.Equal(t, http.StatusOK, status)
	require.Contains(t, body, "This session was recorded")
	status, _ = get(t, sc.people["teacher"].HTTP, sc.gw.URL+"/recordings/"+id)
	require.Equal(t, http.StatusForbidden, status, "the teacher cannot play it")
	status, _ = get(t, sc.people["pupil"].HTTP, sc.gw.URL+form["url"].(string))
	require.Equal(t, http.StatusForbidden, status, "a pupil cannot open the concern form")
	status, body = get(t, sc.people["teacher"].HTTP, sc.gw.URL+form["url"].(string))
	require.Equal(t, http.StatusOK, status, body)
	require.Contains(t, body, "This session was recorded")
	resp, err := sc.people["teacher"].HTTP.PostForm(sc.gw.URL+form["url"].(string), url.Values{"csrf_token": {sc.people["teacher"].CSRF},
		"about": {"Amelia Jones"}, "details": {"Amelia said something that worries me about home."}})
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	cs, err := sc.gw.Store.ListConcerns(context.Background(), id)
	require.NoError(t, err)
	require.Len(t, cs, 1)
	require.True(t, cs[0].Recorded)
	require.Equal(t, "Sarah Whitfield", cs[0].RaisedBy)
	_, home := get(t, sc.people["dsl"].HTTP, sc.gw.URL+"/")
	require.Contains(t, home, "Safeguarding concerns")
	require.Contains(t, home, "raised by Sarah Whitfield about Amelia Jones")
	_, home = get(t, sc.people["teacher"].HTTP, sc.gw.URL+"/")
	require.NotContains(t, home, "Safeguarding concerns", "only the DSL sees concerns")

	// Every object of the session is on hold (after the uploads finished).
	var objs []recording.Object
	require.Eventually(t, func() bool {
		objs, err = sc.gw.Bucket.List(context.Background(), recording.SessionPrefix(id))
		if err != nil || len(objs) < 3 {
			return false
		}
		for _, o := range objs {
			if !o.LegalHold {
				return false
			}
		}
		return true
	}, 60*time.Second, 250*time.Millisecond, "all objects held: %+v", objs)

	// Past retention, the sweeper keeps held recordings...
	later := schoolDay.Add(30 * 24 * time.Hour) // the recording started on the test clock's day
	n, err := sc.gw.Recordings.Sweep(context.Background(), later)
	require.NoError(t, err)
	require.Zero(t, n)
	// ...until the hold is released.
	dsl := sc.people["dsl"]
	resp, err = dsl.HTTP.PostForm(sc.gw.URL+"/recordings/"+id+"/release", url.Values{"csrf_token": {dsl.CSRF}, "reason": {"Reviewed: no further action needed."}})
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "the DSL releases the hold")
	n, err = sc.gw.Recordings.Sweep(context.Background(), later)
	require.NoError(t, err)
	require.Equal(t, len(objs), n)
}
