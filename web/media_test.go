package web_test

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/chaperone-edu/chaperone/audit"
	"github.com/chaperone-edu/chaperone/auth/demoidp"
	"github.com/chaperone-edu/chaperone/internal/testkit"
	"github.com/chaperone-edu/chaperone/sfu"
	"github.com/chaperone-edu/chaperone/sfu/sfutest"
	"github.com/chaperone-edu/chaperone/store"
)

// joinRoom connects a person's signalling and a pion media client.
func joinRoom(t *testing.T, sc *school, user, id string) (*testkit.RoomConn, *sfutest.Client) {
	t.Helper()
	rc, _, err := testkit.DialRoom(t, sc.people[user], id, "")
	require.NoError(t, err)
	return rc, rc.Media(true, true)
}

// member is a participant's signalling connection and pion media client.
type member struct {
	rc    *testkit.RoomConn
	media *sfutest.Client
}

// teacherAndPupils joins the teacher (publishing), then each pupil user,
// whom the teacher admits; every pupil publishes once admitted.
func teacherAndPupils(t *testing.T, sc *school, id string, pupils ...string) (member, []member) {
	t.Helper()
	teacher, tMedia := joinRoom(t, sc, "teacher", id)
	teacher.WaitState(map[string]any{"phase": "admitted"})
	require.NoError(t, tMedia.Start())
	var out []member
	for _, u := range pupils {
		rc, m := joinRoom(t, sc, u, id)
		rc.WaitState(map[string]any{"phase": "waiting"})
		require.NoError(t, teacher.Send(map[string]any{"type": "admit", "id": participantID(rc)}))
		rc.WaitState(map[string]any{"phase": "admitted"})
		require.NoError(t, m.Start())
		out = append(out, member{rc, m})
	}
	return member{teacher, tMedia}, out
}

func received(c *sfutest.Client, from string) uint64 {
	return c.Received(from, "video").Packets + c.Received(from, "audio").Packets
}

func totalReceived(c *sfutest.Client) uint64 {
	var n uint64
	for _, tr := range c.Tracks() {
		n += tr.Counts.Packets
	}
	return n
}

// TestMediaGate, with real pion clients over loopback and real signalling:
// a pupil with no staff present sends and receives nothing (counted at the
// SFU and at the clients); a pupil never receives media before admission;
// media starts within 2 s of the teacher joining.
func TestMediaGate(t *testing.T) {
	t.Parallel()
	sc := newSchool(t, "teacher", "head", "pupil", "pupil2")
	id := liveSession(t, sc, nil)

	// The teacher opens the room, admits two pupils and leaves for a moment.
	teacher, tMedia := joinRoom(t, sc, "teacher", id)
	teacher.WaitState(map[string]any{"phase": "admitted"})
	require.NoError(t, tMedia.Start())
	amelia, aMedia := joinRoom(t, sc, "pupil", id)
	amelia.WaitState(map[string]any{"phase": "waiting"})
	zoe, zMedia := joinRoom(t, sc, "pupil2", id)
	zoe.WaitState(map[string]any{"phase": "waiting"})

	// Waiting pupils have no media connection at all, so receive nothing.
	time.Sleep(500 * time.Millisecond)
	require.Zero(t, totalReceived(aMedia), "a waiting pupil receives nothing")

	teacherID, ameliaID, zoeID := participantID(teacher), participantID(amelia), participantID(zoe)
	require.NoError(t, teacher.Send(map[string]any{"type": "admit", "id": ameliaID}))
	require.NoError(t, teacher.Send(map[string]any{"type": "admit", "id": zoeID}))
	amelia.WaitState(map[string]any{"phase": "admitted", "gate": "open"})
	zoe.WaitState(map[string]any{"phase": "admitted", "gate": "open"})
	require.NoError(t, aMedia.Start())
	require.NoError(t, zMedia.Start())
	eventually(t, 20*time.Second, func() bool {
		return received(aMedia, teacherID) > 0 && received(aMedia, zoeID) > 0 && received(tMedia, ameliaID) > 0 && received(zMedia, ameliaID) > 0
	}, func() string {
		return "media flows between teacher and pupils: " + debugMedia(sc, id, tMedia, aMedia, zMedia)
	})

	// The teacher leaves: the pupils' media is held.
	teacher.WS.Close()
	amelia.WaitState(map[string]any{"gate": "held"})
	zoe.WaitState(map[string]any{"gate": "held"})
	time.Sleep(300 * time.Millisecond) // packets already in flight
	a0, z0 := received(aMedia, zoeID), received(zMedia, ameliaID)
	_, edges0, _ := sc.gw.Rooms.MediaStats(id)
	time.Sleep(time.Second)
	require.Equal(t, a0, received(aMedia, zoeID), "pupil receives nothing with no staff present")
	require.Equal(t, z0, received(zMedia, ameliaID))
	_, edges1, _ := sc.gw.Rooms.MediaStats(id)
	require.Equal(t, sumEdges(edges0), sumEdges(edges1), "the SFU forwards no packet with no staff present")

	// The teacher comes back: the gate opens and the pupils' media flows
	// again within 2 s of the teacher being admitted (over the connections
	// that already exist); the teacher's own new connections follow.
	teacher2, t2Media := joinRoom(t, sc, "teacher", id)
	teacher2.WaitState(map[string]any{"phase": "admitted"})
	start := time.Now()
	require.NoError(t, t2Media.Start())
	require.Eventually(t, func() bool {
		return received(aMedia, zoeID) > a0+10 && received(zMedia, ameliaID) > z0+10
	}, 2*time.Second, 20*time.Millisecond, "pupils' media within 2 s of the teacher being admitted")
	t.Logf("media resumed %s after the teacher was admitted", time.Since(start).Round(time.Millisecond))
	eventually(t, 20*time.Second, func() bool {
		return received(t2Media, ameliaID) > 10 && received(aMedia, teacherID) > 0
	}, func() string {
		return "the returning teacher's media flows both ways: " + debugMedia(sc, id, t2Media, aMedia, zMedia)
	})

	// The metrics show the room, its participants, forwarded packets and held time.
	status, body := get(t, testkit.CookieClient(t), sc.gw.MetricsURL)
	require.Equal(t, 200, status)
	require.Contains(t, body, "chaperone_rooms_live 1")
	require.Contains(t, body, `chaperone_participants{state="admitted"} 3`)
	require.Regexp(t, `chaperone_forwarded_packets_total [1-9]`, body)
	require.Regexp(t, `chaperone_forwarded_via_pion_total [0-9]`, body)
	require.Regexp(t, `chaperone_gate_held_seconds_total [0-9]`, body) // the test clock stands still
}

func sumEdges(es []sfu.EdgeStats) uint64 {
	var n uint64
	for _, e := range es {
		n += e.Packets
	}
	return n
}

// TestJoinStorm: 60 pion participants join one room, are admitted, receive
// the teacher's media and leave; the room and the audit log stay
// consistent and no goroutine leaks.
func TestJoinStorm(t *testing.T) {
	if testing.Short() {
		t.Skip("join storm skipped in -short mode")
	}
	const n = 60
	var extra []demoidp.User
	for i := 0; i < n; i++ {
		extra = append(extra, demoidp.User{Username: fmt.Sprintf("storm%02d", i), Sub: fmt.Sprintf("storm-%02d", i), GivenName: "Storm",
			FamilyName: "Pupil" + string(rune('A'+i/26)) + string(rune('a'+i%26)), Email: fmt.Sprintf("storm%02d@oakfield.example", i),
			EmailVerified: true, Groups: []string{"pupils", "year-8"}})
	}
	clock := testkit.NewClock(schoolDay)
	gw := testkit.StartGateway(t, testkit.GatewayOptions{Now: clock.Now, ExtraUsers: extra})
	sc := &school{gw: gw, clock: clock, people: map[string]*testkit.APIClient{}}
	for _, u := range []string{"teacher", "head"} {
		sc.people[u] = testkit.APILogin(t, gw, u)
	}
	id := liveSession(t, sc, nil)
	teacher, tMedia := joinRoom(t, sc, "teacher", id)
	teacher.WaitState(map[string]any{"phase": "admitted"})
	require.NoError(t, tMedia.Start())
	teacherID := participantID(teacher)
	time.Sleep(200 * time.Millisecond)
	baseline := runtime.NumGoroutine()

	type stormMember struct {
		api   *testkit.APIClient
		rc    *testkit.RoomConn
		media *sfutest.Client
	}
	members := make([]stormMember, n)
	var wg sync.WaitGroup
	for i := range members {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			a := testkit.APILogin(t, gw, fmt.Sprintf("storm%02d", i))
			rc, _, err := testkit.DialRoom(t, a, id, "")
			if err != nil {
				t.Errorf("dial %d: %v", i, err)
				return
			}
			members[i] = stormMember{api: a, rc: rc, media: rc.Media(false, false)}
			rc.WaitState(map[string]any{"phase": "waiting"})
		}(i)
	}
	wg.Wait()
	require.False(t, t.Failed())
	for _, m := range members { // as fast as a teacher could click: under the 50 a second limit
		require.NoError(t, teacher.Send(map[string]any{"type": "admit", "id": participantID(m.rc)}))
		time.Sleep(25 * time.Millisecond)
	}
	for _, m := range members {
		m.rc.WaitState(map[string]any{"phase": "admitted"})
		require.NoError(t, m.media.Start())
	}
	require.Eventually(t, func() bool {
		for _, m := range members {
			if received(m.media, teacherID) == 0 {
				return false
			}
		}
		return true
	}, 30*time.Second, 100*time.Millisecond, "every participant receives the teacher")
	st := roomState(t, sc, id)
	require.Len(t, st.Participants, n+1)

	for _, m := range members {
		m.rc.WS.Close()
		m.media.Close()
		m.api.HTTP.CloseIdleConnections()
	}
	require.Eventually(t, func() bool {
		st := roomState(t, sc, id)
		connected := 0
		for _, p := range st.Participants {
			if p.Connected {
				connected++
			}
		}
		return connected == 1
	}, 10*time.Second, 50*time.Millisecond, "only the teacher is left")
	for _, u := range sc.people {
		u.HTTP.CloseIdleConnections()
	}
	// 60 leaked participants would leave thousands of goroutines (each pion
	// connection runs dozens); a little slack absorbs runtime housekeeping.
	deadline := time.Now().Add(30 * time.Second)
	now := runtime.NumGoroutine()
	for now > baseline+20 && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
		now = runtime.NumGoroutine()
	}
	require.LessOrEqual(t, now, baseline+20, "goroutines back to baseline %d", baseline)
	t.Logf("goroutines: %d before the storm, %d after", baseline, now)

	count := func(action audit.Action) int {
		rows, err := gw.Store.ListAudit(context.Background(), store.AuditFilter{Action: action, SessionID: id})
		require.NoError(t, err)
		return len(rows)
	}
	require.Equal(t, n+1, count("room.join"))
	require.Equal(t, n+1, count("room.admit"))
	require.Equal(t, n, count("room.connection_lost"), "each pupil's connection closed")
	require.Zero(t, count("room.leave"), "within the rejoin grace nobody has left yet")
	require.NoError(t, gw.Store.VerifyAudit(context.Background()))
}

func debugMedia(sc *school, id string, cs ...*sfutest.Client) string {
	out := ""
	for i, c := range cs {
		out += fmt.Sprintf("\nclient %d connected=%v err=%v tracks=%+v", i, c.Connected(), c.Err(), c.Tracks())
	}
	ts, es, _ := sc.gw.Rooms.MediaStats(id)
	out += fmt.Sprintf("\ntracks %+v\nedges %+v\nroom %+v", ts, es, roomStateNoT(sc, id))
	return out
}

func roomStateNoT(sc *school, id string) any {
	st, _ := sc.gw.Rooms.Snapshot(id)
	return st
}

// eventually waits for cond and, if it never holds, fails with msg
// evaluated at the time of failure (the state then, not at the start).
func eventually(t *testing.T, timeout time.Duration, cond func() bool, msg func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", timeout, msg())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
