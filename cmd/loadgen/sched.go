package main

import (
	"math"
	"runtime/metrics"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Scheduling delay: how long goroutines waited, runnable, for a CPU. On a
// shared machine it is where one-way latency goes, so the report shows it
// for the gateway (go_sched_latencies_seconds in its /metrics) and for the
// load generator itself (runtime/metrics).

// cumHist is a cumulative histogram: upper bounds and counts at or below each.
type cumHist struct {
	le  []float64
	cum []float64
}

// sub returns the histogram of what was added between a and b (same bounds).
func (b cumHist) sub(a cumHist) cumHist {
	out := cumHist{le: b.le, cum: make([]float64, len(b.cum))}
	for i := range b.cum {
		out.cum[i] = b.cum[i]
		if i < len(a.cum) {
			out.cum[i] -= a.cum[i]
		}
	}
	return out
}

// quantile returns the upper bound of the bucket holding quantile q (0 with
// no samples).
func (h cumHist) quantile(q float64) time.Duration {
	if len(h.cum) == 0 || h.cum[len(h.cum)-1] <= 0 {
		return 0
	}
	rank := q * h.cum[len(h.cum)-1]
	for i, c := range h.cum {
		if c >= rank {
			if math.IsInf(h.le[i], 1) {
				if i > 0 {
					return time.Duration(h.le[i-1] * float64(time.Second))
				}
				return 0
			}
			return time.Duration(h.le[i] * float64(time.Second))
		}
	}
	return 0
}

// parsePromHist reads the buckets of a histogram named name from
// Prometheus text exposition.
func parsePromHist(text, name string) cumHist {
	type bucket struct{ le, n float64 }
	var bs []bucket
	prefix := name + `_bucket{le="`
	for _, line := range strings.Split(text, "\n") {
		rest, ok := strings.CutPrefix(line, prefix)
		if !ok {
			continue
		}
		leStr, val, ok := strings.Cut(rest, `"} `)
		if !ok {
			continue
		}
		le, err1 := strconv.ParseFloat(leStr, 64)
		n, err2 := strconv.ParseFloat(strings.TrimSpace(val), 64)
		if err1 != nil || err2 != nil {
			continue
		}
		bs = append(bs, bucket{le, n})
	}
	sort.Slice(bs, func(i, j int) bool { return bs[i].le < bs[j].le })
	var h cumHist
	for _, b := range bs {
		h.le = append(h.le, b.le)
		h.cum = append(h.cum, b.n)
	}
	return h
}

// selfSched reads this process's scheduling latency histogram.
func selfSched() cumHist {
	s := []metrics.Sample{{Name: "/sched/latencies:seconds"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindFloat64Histogram {
		return cumHist{}
	}
	rh := s[0].Value.Float64Histogram()
	var h cumHist
	var c float64
	for i, n := range rh.Counts {
		c += float64(n)
		h.le = append(h.le, rh.Buckets[i+1])
		h.cum = append(h.cum, c)
	}
	return h
}
