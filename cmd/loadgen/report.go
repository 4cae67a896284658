package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"
)

func (r *result) print(w io.Writer) {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "publishers → subscribers\t%d → %d (each publisher: Opus 50 packets/s, VP8 30 packets/s)\n", r.Publishers, r.Subscribers)
	fmt.Fprintf(tw, "subscribers receiving\t%d of %d, %s after the first sign-in; %d joins tried again after a failure\n",
		r.Receiving, r.Subscribers, r.Connect.Round(100*time.Millisecond), r.Rejoins)
	fmt.Fprintf(tw, "measured for\t%s\n", r.Window.Round(time.Millisecond))
	fmt.Fprintf(tw, "forwarded packets/s (gateway)\t%.0f\n", r.ForwardedPerSecond())
	fmt.Fprintf(tw, "gateway CPU s per million forwarded\t%.2f (%.2f CPU s in the window = %.0f%% of one core)\n", r.CPUPerMillion(), r.GatewayCPU,
		100*r.GatewayCPU/r.Window.Seconds())
	fmt.Fprintf(tw, "load generator CPU\t%.2f CPU s (%.0f%% of one core)\n", r.LoadgenCPU.Seconds(), 100*r.LoadgenCPU.Seconds()/r.Window.Seconds())
	fmt.Fprintf(tw, "packets sent in the window\t%d (all publisher tracks)\n", r.Sent)
	fmt.Fprintf(tw, "packet loss\t%.3f%% (%d of %d expected; worst subscriber %.3f%%; %d duplicates); video %.3f%%\n",
		100*r.Loss(), r.Lost, r.Expected, 100*r.WorstLoss, r.Duplicates, 100*r.VideoLoss())
	fmt.Fprintf(tw, "resent after NACKs (gateway)\t%.0f\n", r.Retransmits)
	fmt.Fprintf(tw, "forwarded through pion's SRTP writer\t%.0f (the rest by the SFU's own)\n", r.ViaPion)
	fmt.Fprintf(tw, "RTP sequence gaps\t%d (missing between the first and last packet each subscriber received)\n", r.SeqGaps)
	fmt.Fprintf(tw, "one-way latency, publisher → gateway → subscriber\tp50 %s, p99 %s, max %s (%d samples, 10 µs buckets)\n",
		r.P50, r.P99, r.Max.Round(10*time.Microsecond), r.Samples)
	fmt.Fprintf(tw, "goroutine scheduling delay\tgateway p50 %s, p99 %s; load generator p50 %s, p99 %s\n",
		r.GatewaySchedP50, r.GatewaySchedP99, r.LoadgenSchedP50, r.LoadgenSchedP99)
	fmt.Fprintf(tw, "load average\t%s\n", r.Load)
	tw.Flush()
}

func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
