package main

import (
	"bytes"
	"context"
	"math"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/chaperone-edu/chaperone/auth"
	"github.com/chaperone-edu/chaperone/auth/demoidp"
	"github.com/chaperone-edu/chaperone/internal/signin"
	"github.com/chaperone-edu/chaperone/internal/testkit"
)

func TestStampRoundTrip(t *testing.T) {
	t.Parallel()
	frame := make([]byte, 100)
	putStamp(frame, 3, 123456, 987654321)
	for _, descriptor := range [][]byte{nil, {0x10}, {0x90, 0x80, 0x05}} { // Opus; VP8 with and without a picture ID
		hdr := []byte{0x80, 96, 0x12, 0x34, 0, 0, 0, 1, 0xde, 0xad, 0xbe, 0xef}
		pkt := append(append(hdr, descriptor...), frame...)
		in, err := parseRTP(pkt)
		require.NoError(t, err)
		require.Equal(t, rtpInfo{SSRC: 0xdeadbeef, Seq: 0x1234, Track: 3, Index: 123456, SentNs: 987654321}, in)
	}
	// A header extension (one-byte profile, one word) comes before the payload.
	ext := []byte{0x90, 96, 0, 7, 0, 0, 0, 1, 0, 0, 0, 9, 0xbe, 0xde, 0, 1, 0x10, 0xff, 0, 0}
	in, err := parseRTP(append(ext, frame...))
	require.NoError(t, err)
	require.Equal(t, uint32(123456), in.Index)
	_, err = parseRTP(append([]byte{0x80, 96, 0, 7, 0, 0, 0, 1, 0, 0, 0, 9}, make([]byte, 50)...))
	require.ErrorIs(t, err, errNoStamp)
	_, err = parseRTP([]byte{0x80, 96})
	require.Error(t, err)
}

// TestTrackTally: loss and sequence gaps come from the packets that arrive.
func TestTrackTally(t *testing.T) {
	t.Parallel()
	tt := newTrackTally()
	const start = 1000
	seq := uint16(65530) // wraps
	for i := uint32(0); i < 20; i++ {
		if i == 5 || i == 6 || i == 19 { // lost; 19 is after the last received, so no sequence gap shows it
			continue
		}
		require.True(t, tt.add(rtpInfo{SSRC: 1, Seq: seq + uint16(i), Index: start + i}, start))
	}
	require.False(t, tt.add(rtpInfo{SSRC: 1, Seq: seq + 3, Index: start + 3}, start), "a retransmission is a duplicate")
	unique, dups, gaps := tt.result()
	require.Equal(t, uint64(17), unique)
	require.Equal(t, uint64(1), dups)
	require.Equal(t, uint64(2), gaps)
}

func TestHistogram(t *testing.T) {
	t.Parallel()
	var h histogram
	for i := 1; i <= 100; i++ {
		h.add(time.Duration(i) * time.Millisecond)
	}
	p50, n := h.quantile(0.5)
	require.Equal(t, uint64(100), n)
	require.InDelta(t, 50*time.Millisecond, p50, float64(20*time.Microsecond))
	p99, _ := h.quantile(0.99)
	require.InDelta(t, 99*time.Millisecond, p99, float64(20*time.Microsecond))
	require.Equal(t, 100*time.Millisecond, time.Duration(h.max.Load()))
}

func TestGeneratedUsersPassThePolicy(t *testing.T) {
	t.Parallel()
	users := loadUsers(maxPublishers, 1200)
	policy := testkit.DemoPolicy()
	names := map[string]bool{}
	for _, u := range users {
		name := demoidp.DisplayName(u)
		verified := true
		id, refusal := policy.Check(auth.Claims{Issuer: "demo", Subject: u.Sub, Email: u.Email, EmailVerified: &verified,
			GivenName: u.GivenName, FamilyName: u.FamilyName, Groups: u.Groups})
		require.Nil(t, refusal, "%s: %q", u.Username, name)
		require.Equal(t, name, id.Name)
		require.False(t, names[name], "duplicate name %q", name)
		names[name] = true
	}
	path := filepath.Join(t.TempDir(), "users.json")
	require.NoError(t, writeUsers(path, 2, 3))
	loaded, err := demoidp.LoadUsers(path)
	require.NoError(t, err)
	seed, err := demoidp.SeedUsers()
	require.NoError(t, err)
	require.Len(t, loaded, len(seed)+5)
}

func TestBadFlags(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"-publishers", "0"}, {"-subscribers", "0"}, {"-video_bytes", "5000"}, {"-drop", "1"}, {"-duration", "0s"}, {"extra"}} {
		var out, errOut bytes.Buffer
		err := cli(context.Background(), args, &out, &errOut)
		require.Error(t, err, "%v", args)
		require.Empty(t, out.String())
	}
}

// TestLoadgen runs the load generator against a real gateway (demo IdP,
// signalling, SFU, loopback pion clients): 1 publisher → 5 subscribers for
// 3 s. The figures must come from what was sent and received: a clean run
// loses (almost) nothing and matches the gateway's own forwarded count; a run
// whose subscribers drop 10% of arriving packets with NACKs turned off
// reports about that loss, also in the RTP sequence numbers; with NACKs on,
// the gateway resends the video that 5% loss took and the subscribers get
// (nearly) all of it.
func TestLoadgen(t *testing.T) {
	if testing.Short() {
		t.Skip("load run skipped in -short mode")
	}
	const subs = 5
	// The load generator is a client of its own that books its session on the
	// real clock, as it does against a real gateway: the gateway keeps it too.
	gw := testkit.StartGateway(t, testkit.GatewayOptions{ExtraUsers: loadUsers(1, subs), Now: time.Now})
	cfg := defaultConfig()
	cfg.URL, cfg.MetricsURL, cfg.Subscribers, cfg.Duration, cfg.Warmup, cfg.ConnectTimeout = gw.URL, gw.MetricsURL, subs, 3*time.Second, 500*time.Millisecond, time.Minute
	cfg.Logf = t.Logf

	res, err := run(context.Background(), cfg)
	require.NoError(t, err)
	var out bytes.Buffer
	res.print(&out)
	t.Logf("clean run:\n%s", out.String())
	require.Equal(t, subs, res.Receiving)
	// 3 s of Opus (50/s) and VP8 (30/s), with slack for a loaded machine.
	require.Greater(t, res.Sent, uint64(150))
	require.Less(t, res.Sent, uint64(300))
	require.Equal(t, res.Sent*subs, res.Expected)
	require.Equal(t, res.Expected, res.Received+res.Lost)
	require.Less(t, res.Loss(), 0.02)
	// The gateway's counter covers (nearly) the same packets as the window.
	require.InEpsilon(t, float64(res.Received), res.Forwarded, 0.3) // the scrapes bracket the window; slack for a slow scrape on a busy machine
	require.Greater(t, res.GatewayCPU, 0.0)
	require.Greater(t, res.Samples, res.Received/2)
	require.Positive(t, res.P50)
	require.GreaterOrEqual(t, res.P99, res.P50)
	require.GreaterOrEqual(t, res.Max, res.P99-bucketWidth)
	require.Contains(t, out.String(), "forwarded packets/s")

	status, body, err := signin.Do(context.Background(), http.DefaultClient, gw.MetricsURL, http.MethodGet, "", nil, "")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, status)
	// Keyframe requests are counted (opening an edge asks for one, unless
	// the track's first keyframe is still to come: then there may be none).
	require.Regexp(t, `chaperone_keyframe_requests_total [0-9]`, string(body))
	require.Regexp(t, `go_sched_latencies_seconds_bucket`, string(body))

	// 5% dropped at each subscriber, NACKs on: the ring recovers the video
	// (Opus is not resent, as with browsers: about 5% of audio stays lost).
	cfg.DropRTP = 0.05
	res, err = run(context.Background(), cfg)
	require.NoError(t, err)
	out.Reset()
	res.print(&out)
	t.Logf("lossy run (5%% dropped at each subscriber, NACKs on):\n%s", out.String())
	require.Less(t, res.VideoLoss(), 0.01)
	require.Greater(t, res.Retransmits, float64(res.VideoExpected)/50, "the gateway resent the dropped video packets")
	require.InDelta(t, 0.05, 1-float64(res.Received-res.VideoReceived)/float64(res.Expected-res.VideoExpected), 0.035, "audio loss")

	cfg.DropRTP, cfg.NoNACK = 0.10, true
	res, err = run(context.Background(), cfg)
	require.NoError(t, err)
	out.Reset()
	res.print(&out)
	t.Logf("lossy run (10%% dropped at each subscriber, no NACKs):\n%s", out.String())
	require.InDelta(t, 0.10, res.Loss(), 0.05)
	require.Greater(t, res.SeqGaps, res.Lost/2, "the sequence numbers show the same loss")
	require.LessOrEqual(t, res.SeqGaps, res.Lost)
	require.True(t, strings.Contains(out.String(), "packet loss"))
}

func TestPromHistQuantile(t *testing.T) {
	t.Parallel()
	text := `# TYPE go_sched_latencies_seconds histogram
go_sched_latencies_seconds_bucket{le="1e-06"} 10
go_sched_latencies_seconds_bucket{le="0.001"} 20
go_sched_latencies_seconds_bucket{le="1e-05"} 15
go_sched_latencies_seconds_bucket{le="+Inf"} 20
go_sched_latencies_seconds_sum 0.01
go_other_bucket{le="1"} 99
`
	h := parsePromHist(text, "go_sched_latencies_seconds")
	require.Equal(t, []float64{1e-6, 1e-5, 1e-3, math.Inf(1)}, h.le)
	later := cumHist{le: h.le, cum: []float64{10, 25, 120, 120}}
	d := later.sub(h) // 0, 10, 100 new samples per bound: 0 ≤ 1 µs, 10 ≤ 10 µs, 90 ≤ 1 ms
	require.Equal(t, 10*time.Microsecond, d.quantile(0.05))
	require.Equal(t, time.Millisecond, d.quantile(0.5))
	require.Equal(t, time.Duration(0), cumHist{}.quantile(0.5))
}
