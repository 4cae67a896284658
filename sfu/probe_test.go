package sfu_test

import (
	"net"
	"testing"
	"time"

	"github.com/pion/ice/v2"
	"github.com/pion/webrtc/v3"
	"github.com/stretchr/testify/require"

	"github.com/chaperone-edu/chaperone/sfu"
)

// probeClient is a page's connection check: one peer connection with a
// receive-only audio section, its offer sent with every candidate
// gathered. relay: only relayed candidates, through ice.
func probeClient(t *testing.T, ice []webrtc.ICEServer, relay bool) *webrtc.PeerConnection {
	t.Helper()
	se := webrtc.SettingEngine{}
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetICEMulticastDNSMode(iceMDNSOff)
	se.SetIncludeLoopbackCandidate(true)
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	cfg := webrtc.Configuration{ICEServers: ice}
	if relay {
		cfg.ICETransportPolicy = webrtc.ICETransportPolicyRelay
	}
	me := &webrtc.MediaEngine{}
	require.NoError(t, me.RegisterDefaultCodecs())
	pc, err := webrtc.NewAPI(webrtc.WithSettingEngine(se), webrtc.WithMediaEngine(me)).NewPeerConnection(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = pc.Close() })
	_, err = pc.AddTransceiverFromKind(webrtc.RTPCodecTypeAudio, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly})
	require.NoError(t, err)
	return pc
}

const iceMDNSOff = ice.MulticastDNSModeDisabled

// offerAll makes pc's offer and waits until its candidates are gathered.
func offerAll(t *testing.T, pc *webrtc.PeerConnection) string {
	t.Helper()
	offer, err := pc.CreateOffer(nil)
	require.NoError(t, err)
	gathered := webrtc.GatheringCompletePromise(pc)
	require.NoError(t, pc.SetLocalDescription(offer))
	select {
	case <-gathered:
	case <-time.After(10 * time.Second):
		t.Fatal("the check's candidates were not gathered")
	}
	return pc.LocalDescription().SDP
}

// runProbe checks pc's connection through s and returns the type of the
// local candidate of the pair it connected on.
func runProbe(t *testing.T, s *sfu.SFU, pc *webrtc.PeerConnection) webrtc.ICECandidateType {
	t.Helper()
	connected := make(chan struct{})
	pc.OnTrack(func(*webrtc.TrackRemote, *webrtc.RTPReceiver) { t.Error("the SFU sent a track on a connection check") })
	pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		if st == webrtc.PeerConnectionStateConnected {
			close(connected)
		}
	})
	answer, err := s.Probe(offerAll(t, pc))
	require.NoError(t, err)
	require.NoError(t, pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}))
	select {
	case <-connected:
	case <-time.After(10 * time.Second):
		t.Fatal("the connection check did not connect")
	}
	pair, err := pc.GetTransceivers()[0].Receiver().Transport().ICETransport().GetSelectedCandidatePair()
	require.NoError(t, err)
	require.NotNil(t, pair)
	return pair.Local.Typ
}

// TestProbe: a page's connection check connects to the SFU directly, or
// through the relay when only relayed candidates are allowed, the SFU
// sends nothing on it and closes it by itself soon
// after; checks that would send media, have other sections or a data
// channel, bad SDPs and checks beyond the limit are refused and leave
// nothing open.
func TestProbe(t *testing.T) {
	t.Parallel()
	s, _ := newTURNSFU(t)
	require.Equal(t, webrtc.ICECandidateTypeHost, runProbe(t, s, probeClient(t, nil, false)), "direct over UDP")

	var servers []webrtc.ICEServer
	for _, srv := range s.ICEServers("pupil-1") {
		servers = append(servers, webrtc.ICEServer{URLs: srv.URLs, Username: srv.Username, Credential: srv.Credential})
	}
	require.Equal(t, webrtc.ICECandidateTypeRelay, runProbe(t, s, probeClient(t, servers, true)), "through the relay")
	require.Equal(t, 2, s.ProbesOpen())
	require.Eventually(t, func() bool { return s.ProbesOpen() == 0 }, 15*time.Second, 100*time.Millisecond,
		"the SFU closes connected checks by itself")

	refused := map[string]string{"garbage": "v=0\r\nnot an sdp", "empty": ""}
	for name, add := range map[string]func(pc *webrtc.PeerConnection) error{
		"sends audio": func(pc *webrtc.PeerConnection) error {
			_, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeAudio)
			return err
		},
		"video": func(pc *webrtc.PeerConnection) error {
			_, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly})
			return err
		},
		"data channel": func(pc *webrtc.PeerConnection) error {
			_, err := pc.CreateDataChannel("check", nil)
			return err
		},
		"two sections": func(pc *webrtc.PeerConnection) error {
			_, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeAudio, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly})
			if err == nil {
				_, err = pc.AddTransceiverFromKind(webrtc.RTPCodecTypeAudio, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly})
			}
			return err
		},
	} {
		pc, err := webrtc.NewPeerConnection(webrtc.Configuration{})
		require.NoError(t, err)
		t.Cleanup(func() { _ = pc.Close() })
		require.NoError(t, add(pc), name)
		offer, err := pc.CreateOffer(nil)
		require.NoError(t, err)
		refused[name] = offer.SDP
	}
	for name, sdp := range refused {
		_, err := s.Probe(sdp)
		require.ErrorIs(t, err, sfu.ErrBadSDP, name)
	}
	require.Zero(t, s.ProbesOpen(), "refused checks leave nothing open")

	restore := sfu.SetMaxProbes(1)
	t.Cleanup(restore)
	held := probeClient(t, nil, false)
	_, err := s.Probe(offerAll(t, held))
	require.NoError(t, err)
	_, err = s.Probe(offerAll(t, probeClient(t, nil, false)))
	require.ErrorIs(t, err, sfu.ErrBusy)
	require.NoError(t, s.Close())
	require.Zero(t, s.ProbesOpen(), "Close closes open checks")
	_, err = s.Probe(offerAll(t, probeClient(t, nil, false)))
	require.ErrorIs(t, err, sfu.ErrClosed)
}
