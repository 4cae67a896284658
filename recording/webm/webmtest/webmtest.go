// Package webmtest builds synthetic Opus and VP8 RTP streams and inspects
// WebM files with ffprobe, for tests of recording and its callers.
package webmtest

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
)

// RTP parameters of the synthetic streams.
const (
	OpusPayloadType = 111
	VP8PayloadType  = 96
	OpusSSRC        = 0x1111
	VP8SSRC         = 0x2222

	// OpusFrameTicks is one 20 ms Opus frame at the 48 kHz RTP clock.
	OpusFrameTicks = 960
	// VP8FrameTicks is one frame at 30 fps on the 90 kHz RTP clock.
	VP8FrameTicks = 3000

	// VP8Width and VP8Height are the size of the embedded keyframe.
	VP8Width, VP8Height = 160, 120

	mtu = 1200
)

// Embedded VP8 frames made with
// ffmpeg -f lavfi -i testsrc=s=160x120:r=30 -c:v libvpx -frames:v 2 -f ivf:
// a keyframe (about 3 kB, so several RTP packets) and the interframe after it.
var (
	//go:embed testdata/keyframe.vp8
	keyframe []byte
	//go:embed testdata/interframe.vp8
	interframe []byte
)

// silentOpus is a complete Opus packet: TOC 0xf8 (CELT fullband 20 ms,
// mono, one frame) followed by a silent frame.
var silentOpus = []byte{0xf8, 0xff, 0xfe}

// Keyframe returns a copy of the embedded VP8 keyframe.
func Keyframe() []byte { return bytes.Clone(keyframe) }

// OpusPacket returns a 20 ms silent Opus packet.
func OpusPacket(seq uint16, ts uint32) *rtp.Packet {
	return &rtp.Packet{
		Header: rtp.Header{
			Version:        2,
			PayloadType:    OpusPayloadType,
			SequenceNumber: seq,
			Timestamp:      ts,
			SSRC:           OpusSSRC,
		},
		Payload: bytes.Clone(silentOpus),
	}
}

// VP8Packets packetizes one VP8 frame (the embedded keyframe, or the
// interframe) with timestamp ts, numbering packets from *seq and advancing
// it. The last packet has the marker bit set.
func VP8Packets(seq *uint16, ts uint32, keyframe bool) []*rtp.Packet {
	frame := interframe
	if keyframe {
		frame = Keyframe()
	}
	payloads := (&codecs.VP8Payloader{}).Payload(mtu, frame)
	pkts := make([]*rtp.Packet, len(payloads))
	for i, p := range payloads {
		pkts[i] = &rtp.Packet{
			Header: rtp.Header{
				Version:        2,
				PayloadType:    VP8PayloadType,
				SequenceNumber: *seq,
				Timestamp:      ts,
				SSRC:           VP8SSRC,
				Marker:         i == len(payloads)-1,
			},
			Payload: p,
		}
		*seq++
	}
	return pkts
}

// Packet is one RTP packet of a synthetic session, with its kind ("audio"
// or "video") and the media time at which it would arrive.
type Packet struct {
	Kind string
	At   time.Duration
	*rtp.Packet
}

// Session returns d of interleaved Opus (every 20 ms) and VP8 (30 fps,
// a keyframe every keyEvery frames, starting with one) packets in arrival
// order. Video starts videoDelay after audio.
func Session(d, videoDelay time.Duration, keyEvery int) []Packet {
	var out []Packet
	var aseq uint16 = 1000
	ats := uint32(12345)
	for at := time.Duration(0); at < d; at += 20 * time.Millisecond {
		out = append(out, Packet{"audio", at, OpusPacket(aseq, ats)})
		aseq++
		ats += OpusFrameTicks
	}
	var vseq uint16 = 65530 // wraps, which the writer must handle
	vts := uint32(4294960000)
	for i := 0; ; i++ {
		at := videoDelay + time.Duration(i)*time.Second/30
		if at >= d {
			break
		}
		for _, p := range VP8Packets(&vseq, vts, i%keyEvery == 0) {
			out = append(out, Packet{"video", at, p})
		}
		vts += VP8FrameTicks
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].At < out[j].At })
	return out
}

// ProbeStream is one stream as ffprobe reports it.
type ProbeStream struct {
	CodecName string
	CodecType string
	Width     int
	Height    int
}

// ProbeResult is what ffprobe finds in a file.
type ProbeResult struct {
	Streams []ProbeStream
	// Duration is the container duration, or 0 if ffprobe reports none.
	Duration time.Duration
}

// Codecs returns the codec names of the streams, in file order.
func (r ProbeResult) Codecs() []string {
	var names []string
	for _, s := range r.Streams {
		names = append(names, s.CodecName)
	}
	return names
}

// Probe runs ffprobe on path. It skips the test if ffprobe is not
// installed, unless CHAPERONE_REQUIRE_FFPROBE=1, when it fails instead.
func Probe(t testing.TB, path string) ProbeResult {
	t.Helper()
	bin, err := exec.LookPath("ffprobe")
	if err != nil {
		if os.Getenv("CHAPERONE_REQUIRE_FFPROBE") == "1" {
			t.Fatalf("ffprobe not found and CHAPERONE_REQUIRE_FFPROBE=1: %v", err)
		}
		t.Skipf("ffprobe not found (install ffmpeg to run this test): %v", err)
	}
	var stderr bytes.Buffer
	cmd := exec.Command(bin, "-v", "error", "-show_streams", "-show_format", "-of", "json", path)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v: %s", path, err, stderr.String())
	}
	var raw struct {
		Streams []struct {
			CodecName string `json:"codec_name"`
			CodecType string `json:"codec_type"`
			Width     int    `json:"width"`
			Height    int    `json:"height"`
		} `json:"streams"`
		Format struct {
			Duration string `json:"duration"`
		} `json:"format"`
	}
	if err := json.Unmarshal(out, &raw); err != nil {
		t.Fatalf("ffprobe %s: bad JSON: %v", path, err)
	}
	var r ProbeResult
	for _, s := range raw.Streams {
		r.Streams = append(r.Streams, ProbeStream(s))
	}
	if raw.Format.Duration != "" {
		secs, err := strconv.ParseFloat(raw.Format.Duration, 64)
		if err != nil {
			t.Fatalf("ffprobe %s: duration %q: %v", path, raw.Format.Duration, err)
		}
		r.Duration = time.Duration(secs * float64(time.Second))
	}
	return r
}
