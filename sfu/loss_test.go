package sfu_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/chaperone-edu/chaperone/sfu/sfutest"
)

// TestNACKRecoversLoss: with 5% of the packets to a subscriber lost, the
// subscriber's NACKs are answered from the publisher track's ring and it
// ends up with (within 1%) every packet the SFU sent it.
func TestNACKRecoversLoss(t *testing.T) {
	t.Parallel()
	r := newRoom(t)
	// Three packets a frame, about 90 a second.
	connect(t, r, "alice", sfutest.Options{Video: true, VideoFrameBytes: 3000})
	bob, _ := connect(t, r, "bob", sfutest.Options{DropRTP: 0.05})
	r.SetEdge("alice", "bob", true)
	waitReceiving(t, bob, "alice", "video", 5*time.Second)

	time.Sleep(4 * time.Second)
	bob.SetDropRTP(0)
	time.Sleep(time.Second) // the last NACKs and their answers
	r.SetEdge("alice", "bob", false)
	time.Sleep(300 * time.Millisecond) // in flight

	ts, es := r.Stats()
	sent := edgeStat(es, "alice", "bob", "video")
	got := bob.Received("alice", "video").Packets
	dropped := bob.Dropped()
	t.Logf("sent %d, dropped %d, retransmitted %d, received %d", sent.Packets, dropped, sent.Retransmits, got)
	require.Greater(t, sent.Packets, uint64(300))
	require.GreaterOrEqual(t, float64(dropped), 0.01*float64(sent.Packets), "the link lost packets")
	require.NotZero(t, sent.Retransmits, "NACKs were answered")
	require.Len(t, ts, 1)
	require.Equal(t, sent.Retransmits, ts[0].Retransmits)
	require.InDelta(t, float64(sent.Packets), float64(got), 0.01*float64(sent.Packets), "received within 1%% of sent")
}

// TestReceiverReports: the SFU reports to a publisher, once a second, what
// it has received of each of its tracks.
func TestReceiverReports(t *testing.T) {
	t.Parallel()
	r := newRoom(t)
	a, _ := connect(t, r, "alice", sfutest.Options{Audio: true, Video: true})
	waitPublished(t, r, 2)
	require.Eventually(t, func() bool {
		ssrcs := map[uint32]bool{}
		for _, rep := range a.ReceiverReports() {
			if rep.LastSequenceNumber > 0 {
				ssrcs[rep.SSRC] = true
			}
		}
		return len(ssrcs) == 2
	}, 3*time.Second, 50*time.Millisecond, "a report for each track")
}
