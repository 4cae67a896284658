package web_test

import (
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/pion/ice/v2"
	"github.com/pion/webrtc/v3"
	"github.com/stretchr/testify/require"

	"github.com/chaperone-edu/chaperone/internal/testkit"
	"github.com/chaperone-edu/chaperone/lobby"
)

// checkPC is a page's connection check as a pion client makes it: one
// receive-only audio section (with media: one that sends too), every
// loopback candidate gathered into the offer.
func checkPC(t *testing.T, media bool) (*webrtc.PeerConnection, string) {
	t.Helper()
	se := webrtc.SettingEngine{}
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetIncludeLoopbackCandidate(true)
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	me := &webrtc.MediaEngine{}
	require.NoError(t, me.RegisterDefaultCodecs())
	pc, err := webrtc.NewAPI(webrtc.WithSettingEngine(se), webrtc.WithMediaEngine(me)).NewPeerConnection(webrtc.Configuration{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = pc.Close() })
	dir := webrtc.RTPTransceiverDirectionRecvonly
	if media {
		dir = webrtc.RTPTransceiverDirectionSendrecv
	}
	_, err = pc.AddTransceiverFromKind(webrtc.RTPCodecTypeAudio, webrtc.RTPTransceiverInit{Direction: dir})
	require.NoError(t, err)
	offer, err := pc.CreateOffer(nil)
	require.NoError(t, err)
	gathered := webrtc.GatheringCompletePromise(pc)
	require.NoError(t, pc.SetLocalDescription(offer))
	select {
	case <-gathered:
	case <-time.After(10 * time.Second):
		t.Fatal("candidates not gathered")
	}
	return pc, pc.LocalDescription().SDP
}

// TestConnectionCheckFromLobby: a pupil still waiting in the lobby checks
// the connection (R4: nothing of the lesson reaches them): the gateway
// answers, the check connects, and the pupil is still waiting with no
// media of theirs in the room. A check right after another is refused as
// busy, one with media as refused, one without SDP as bad; none changes
// the room.
func TestConnectionCheckFromLobby(t *testing.T) {
	t.Parallel()
	sc := newSchool(t, "teacher", "head", "pupil", "pupil2")
	id := liveSession(t, sc, nil)
	teacher, _, err := testkit.DialRoom(t, sc.people["teacher"], id, "")
	require.NoError(t, err)
	teacher.WaitState(map[string]any{"phase": "admitted"})
	pupil, _, err := testkit.DialRoom(t, sc.people["pupil"], id, "")
	require.NoError(t, err)
	pupil.WaitState(map[string]any{"phase": "waiting"})
	before := roomState(t, sc, id)

	pc, offer := checkPC(t, false)
	connected := make(chan struct{})
	pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		if st == webrtc.PeerConnectionStateConnected {
			close(connected)
		}
	})
	require.NoError(t, pupil.Send(map[string]any{"type": "probe", "sdp": offer}))
	answer := pupil.NextType("probe_answer")
	require.NoError(t, pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer["sdp"].(string)}))
	select {
	case <-connected:
	case <-time.After(10 * time.Second):
		t.Fatal("the waiting pupil's connection check did not connect")
	}

	require.NoError(t, pupil.Send(map[string]any{"type": "probe", "sdp": offer}))
	require.Equal(t, "probe_busy", pupil.NextType("error")["code"], "a second check at once")

	other, _, err := testkit.DialRoom(t, sc.people["pupil2"], id, "")
	require.NoError(t, err)
	other.WaitState(map[string]any{"phase": "waiting"})
	require.NoError(t, other.Send(map[string]any{"type": "probe"}))
	require.Equal(t, "bad_sdp", other.NextType("error")["code"], "a check without SDP")
	_, withMedia := checkPC(t, true)
	require.NoError(t, other.Send(map[string]any{"type": "probe", "sdp": withMedia}))
	require.Equal(t, "probe_refused", other.NextType("error")["code"], "a check with media")

	after := roomState(t, sc, id)
	for _, p := range after.Participants {
		if p.ID == pupil.Last("welcome")["you"].(map[string]any)["id"] {
			require.Equal(t, lobby.Waiting, p.State, "checking lets nobody in")
		}
	}
	require.Equal(t, len(before.Participants)+1, len(after.Participants), "only pupil2 arrived")
	ts, _, ok := sc.gw.Rooms.MediaStats(id)
	require.True(t, ok)
	require.Empty(t, ts, "no media of the waiting pupils in the room")
}

// TestNoVideoBrowserShownToStaff: a page without WebRTC says so; the
// teacher's lobby entry for that pupil shows it, and nothing else changes.
func TestNoVideoBrowserShownToStaff(t *testing.T) {
	t.Parallel()
	sc := newSchool(t, "teacher", "head", "pupil")
	id := liveSession(t, sc, nil)
	teacher, _, err := testkit.DialRoom(t, sc.people["teacher"], id, "")
	require.NoError(t, err)
	teacher.WaitState(map[string]any{"phase": "admitted"})
	pupil, _, err := testkit.DialRoom(t, sc.people["pupil"], id, "")
	require.NoError(t, err)
	pupil.WaitState(map[string]any{"phase": "waiting"})
	require.NoError(t, pupil.Send(map[string]any{"type": "no_video_browser"}))
	entry := teacher.Next(5*time.Second, func(m map[string]any) bool {
		if m["type"] != "lobby" {
			return false
		}
		for _, w := range m["waiting"].([]any) {
			if w.(map[string]any)["no_video_browser"] == true {
				return true
			}
		}
		return false
	})
	require.NotNil(t, entry, "the teacher's lobby shows the pupil's browser cannot join video")
}

// TestApprovalsClassSize: the head is told how many pupils a lesson is for
// only as far as it is known: one pupil by e-mail is "1 pupil on the class
// list" (and recorded, one-to-one); an IdP group counts only its pupils who
// have signed in, and says so (a class lesson: not recorded unless the
// teacher chooses).
func TestApprovalsClassSize(t *testing.T) {
	t.Parallel()
	sc := newSchool(t, "teacher", "head", "pupil")
	sc.request(t, "teacher", onePupil)
	sc.request(t, "teacher", nil) // Year 8, an IdP group
	status, page := get(t, sc.people["head"].HTTP, sc.gw.URL+"/approvals")
	require.Equal(t, http.StatusOK, status)
	require.Contains(t, page, "1 pupil on the class list")
	require.Contains(t, page, "Yes: a lesson for one pupil with one member of staff")
	require.Contains(t, page, "of its pupils have signed in before (the whole group is not counted here)")
	require.Contains(t, page, "No, unless the teacher chooses to")
	require.NotContains(t, page, "pupil(s)")
}
