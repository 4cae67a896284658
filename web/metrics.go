package web

import (
	"crypto/subtle"
	"net/http"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/chaperone-edu/chaperone/lobby"
)

// metrics exposes the gateway's counters to Prometheus at /metrics. Values
// are read from the live rooms at scrape time; counters of rooms that have
// ended are kept so totals only grow. No personal data is exported.
type metrics struct {
	s *Server

	mu    sync.Mutex
	ended roomCounters // of the rooms that have ended

	roomsDesc, partDesc, fwdPkts, fwdBytes, inPkts, nacks, plis, heldSecs, heldNow, recDesc, viaPion, turnRefused *prometheus.Desc
}

// roomCounters are the counters a room adds to the totals.
type roomCounters struct {
	packets, bytes, in, retransmits, keyframeRequests uint64
	heldSeconds                                       float64
}

func (c *roomCounters) add(o roomCounters) {
	c.packets += o.packets
	c.bytes += o.bytes
	c.in += o.in
	c.retransmits += o.retransmits
	c.keyframeRequests += o.keyframeRequests
	c.heldSeconds += o.heldSeconds
}

func newMetrics(s *Server) *metrics {
	return &metrics{s: s,
		roomsDesc: prometheus.NewDesc("chaperone_rooms_live", "Live rooms on this gateway.", nil, nil),
		partDesc:  prometheus.NewDesc("chaperone_participants", "Participants in live rooms, by state: admitted or waiting (connected), or reconnecting (in the lesson, their connection lost, within the rejoin grace).", []string{"state"}, nil),
		fwdPkts:   prometheus.NewDesc("chaperone_forwarded_packets_total", "RTP packets forwarded to subscribers.", nil, nil),
		fwdBytes:  prometheus.NewDesc("chaperone_forwarded_bytes_total", "RTP bytes forwarded to subscribers.", nil, nil),
		inPkts:    prometheus.NewDesc("chaperone_published_packets_total", "RTP packets received from publishers.", nil, nil),
		nacks:     prometheus.NewDesc("chaperone_nack_retransmits_total", "RTP packets resent from the ring in answer to subscribers' NACKs.", nil, nil),
		plis:      prometheus.NewDesc("chaperone_keyframe_requests_total", "PLIs sent to publishers (rate-limited per track).", nil, nil),
		heldSecs:  prometheus.NewDesc("chaperone_gate_held_seconds_total", "Time pupils' media was held by the safeguarding rules, summed over rooms.", nil, nil),
		heldNow:   prometheus.NewDesc("chaperone_rooms_media_held", "Live rooms whose pupils' media is held now.", nil, nil),
		recDesc:   prometheus.NewDesc("chaperone_recordings_active", "Live rooms being recorded.", nil, nil),
		turnRefused: prometheus.NewDesc("chaperone_turn_refused_total",
			"Permissions and datagrams the embedded TURN relay refused because their peer was not the gateway's media address (it is no open relay).", nil, nil),
		viaPion: prometheus.NewDesc("chaperone_forwarded_via_pion_total",
			"Forwarded RTP packets sent through pion's SRTP writer instead of the SFU's own: those of a connection with an SRTP profile the SFU does not encrypt itself, or whose ICE pair it could not place.", nil, nil),
	}
}

func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{m.roomsDesc, m.partDesc, m.fwdPkts, m.fwdBytes, m.inPkts, m.nacks, m.plis, m.heldSecs, m.heldNow, m.recDesc, m.viaPion, m.turnRefused} {
		ch <- d
	}
}

// roomTotals reads one room's counters and whether its media is held now.
func roomTotals(lr *liveRoom) (roomCounters, bool) {
	var c roomCounters
	ts, es := lr.media.Stats()
	for _, e := range es {
		c.packets += e.Packets
		c.bytes += e.Bytes
		c.retransmits += e.Retransmits
	}
	for _, t := range ts {
		c.in += t.PacketsIn
		c.keyframeRequests += t.KeyframeRequests
	}
	d, now := lr.room.Held()
	c.heldSeconds = d.Seconds()
	return c, now
}

// roomEnded adds an ending room's counters to the totals.
func (m *metrics) roomEnded(lr *liveRoom) {
	c, _ := roomTotals(lr)
	m.mu.Lock()
	m.ended.add(c)
	m.mu.Unlock()
}

func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	m.s.rooms.mu.Lock()
	live := make([]*liveRoom, 0, len(m.s.rooms.m))
	for _, lr := range m.s.rooms.m {
		live = append(live, lr)
	}
	m.s.rooms.mu.Unlock()
	m.mu.Lock()
	total := m.ended
	m.mu.Unlock()
	states := map[string]float64{"admitted": 0, "waiting": 0, "reconnecting": 0}
	var holdingRooms, recording float64
	for _, lr := range live {
		c, holding := roomTotals(lr)
		total.add(c)
		if holding {
			holdingRooms++
		}
		st := lr.room.Snapshot()
		if st.Recording == lobby.RecConfirmed {
			recording++
		}
		for _, x := range st.Participants {
			switch {
			case x.Connected && (x.State == lobby.Admitted || x.State == lobby.Waiting):
				states[string(x.State)]++
			case lobby.Reconnecting(x):
				states["reconnecting"]++
			}
		}
	}
	ch <- prometheus.MustNewConstMetric(m.roomsDesc, prometheus.GaugeValue, float64(len(live)))
	for st, n := range states {
		ch <- prometheus.MustNewConstMetric(m.partDesc, prometheus.GaugeValue, n, st)
	}
	ch <- prometheus.MustNewConstMetric(m.fwdPkts, prometheus.CounterValue, float64(total.packets))
	if m.s.cfg.SFU != nil {
		ch <- prometheus.MustNewConstMetric(m.viaPion, prometheus.CounterValue, float64(m.s.cfg.SFU.ViaPion()))
		ch <- prometheus.MustNewConstMetric(m.turnRefused, prometheus.CounterValue, float64(m.s.cfg.SFU.TURNRefused()))
	}
	ch <- prometheus.MustNewConstMetric(m.fwdBytes, prometheus.CounterValue, float64(total.bytes))
	ch <- prometheus.MustNewConstMetric(m.inPkts, prometheus.CounterValue, float64(total.in))
	ch <- prometheus.MustNewConstMetric(m.nacks, prometheus.CounterValue, float64(total.retransmits))
	ch <- prometheus.MustNewConstMetric(m.plis, prometheus.CounterValue, float64(total.keyframeRequests))
	ch <- prometheus.MustNewConstMetric(m.heldSecs, prometheus.CounterValue, total.heldSeconds)
	ch <- prometheus.MustNewConstMetric(m.heldNow, prometheus.GaugeValue, holdingRooms)
	ch <- prometheus.MustNewConstMetric(m.recDesc, prometheus.GaugeValue, recording)
}

// metricsHandler serves /metrics: the gateway's own metrics and the Go
// runtime's, from a registry of this server's (not the global one). The
// runtime's include go_sched_latencies_seconds, how long goroutines waited
// to run: on a busy machine that is where media latency goes (the load
// generator reports it).
func (s *Server) metricsHandler() http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(s.metrics, collectors.NewGoCollector(collectors.WithGoCollectorRuntimeMetrics(collectors.MetricsScheduler)),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}

// MetricsHandler serves /metrics, for the caller to put on an address of
// its own; with Config.MetricsToken set it asks for that bearer token.
func (s *Server) MetricsHandler() http.Handler {
	h := s.metricsHandler()
	if s.cfg.MetricsToken == "" {
		return h
	}
	want := []byte("Bearer " + s.cfg.MetricsToken)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="metrics"`)
			http.Error(w, "metrics need the bearer token (metrics_token_file)", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}
