package live

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/chaperone-edu/chaperone/lobby"
)

// roomMetrics is the live rooms' part of /metrics: gauges and counters read
// from the rooms at scrape time; counters of rooms that have ended are kept
// in totals so that they never go down.
type roomMetrics struct {
	rooms *Rooms

	mu    sync.Mutex
	total roomCounters // of the rooms that have ended
}

type roomCounters struct {
	packets, bytes, retransmits, in, keyframeRequests uint64
	heldSeconds                                       float64
}

func (c *roomCounters) add(o roomCounters) {
	c.packets += o.packets
	c.bytes += o.bytes
	c.retransmits += o.retransmits
	c.in += o.in
	c.keyframeRequests += o.keyframeRequests
	c.heldSeconds += o.heldSeconds
}

var (
	roomsDesc   = prometheus.NewDesc("chaperone_rooms_live", "Live rooms on this gateway.", nil, nil)
	partDesc    = prometheus.NewDesc("chaperone_participants", "Participants in live rooms, by state: admitted or waiting (connected), or reconnecting (in the lesson, their connection lost, within the rejoin grace).", []string{"state"}, nil)
	fwdPkts     = prometheus.NewDesc("chaperone_forwarded_packets_total", "RTP packets forwarded to subscribers.", nil, nil)
	fwdBytes    = prometheus.NewDesc("chaperone_forwarded_bytes_total", "RTP bytes forwarded to subscribers.", nil, nil)
	inPkts      = prometheus.NewDesc("chaperone_published_packets_total", "RTP packets received from publishers.", nil, nil)
	nacks       = prometheus.NewDesc("chaperone_nack_retransmits_total", "RTP packets resent from the ring in answer to subscribers' NACKs.", nil, nil)
	plis        = prometheus.NewDesc("chaperone_keyframe_requests_total", "PLIs sent to publishers (rate-limited per track).", nil, nil)
	heldSecs    = prometheus.NewDesc("chaperone_gate_held_seconds_total", "Time pupils' media was held by the safeguarding rules, summed over rooms.", nil, nil)
	heldNow     = prometheus.NewDesc("chaperone_rooms_media_held", "Live rooms whose pupils' media is held now.", nil, nil)
	recDesc     = prometheus.NewDesc("chaperone_recordings_active", "Live rooms being recorded.", nil, nil)
	turnRefused = prometheus.NewDesc("chaperone_turn_refused_total",
		"Permissions and datagrams the embedded TURN relay refused because their peer was not the gateway's media address (it is no open relay).", nil, nil)
	viaPion = prometheus.NewDesc("chaperone_forwarded_via_pion_total",
		"Forwarded RTP packets sent through pion's SRTP writer instead of the SFU's own: those of a connection with an SRTP profile the SFU does not encrypt itself, or whose ICE pair it could not place.", nil, nil)
)

// Collector is the live rooms' metrics, for the gateway's registry.
func (rs *Rooms) Collector() prometheus.Collector { return &rs.metrics }

// Describe implements prometheus.Collector.
func (m *roomMetrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{roomsDesc, partDesc, fwdPkts, fwdBytes, inPkts, nacks, plis, heldSecs, heldNow, recDesc, viaPion, turnRefused} {
		ch <- d
	}
}

// totals reads one room's counters and whether its media is held now.
func (r *Room) totals() (roomCounters, bool) {
	var c roomCounters
	ts, es := r.media.Stats()
	for _, e := range es {
		c.packets += e.Packets
		c.bytes += e.Bytes
		c.retransmits += e.Retransmits
	}
	for _, t := range ts {
		c.in += t.PacketsIn
		c.keyframeRequests += t.KeyframeRequests
	}
	d, now := r.room.Held()
	c.heldSeconds = d.Seconds()
	return c, now
}

// ended adds an ending room's counters to the totals.
func (m *roomMetrics) ended(r *Room) {
	c, _ := r.totals()
	m.mu.Lock()
	m.total.add(c)
	m.mu.Unlock()
}

// Collect implements prometheus.Collector.
func (m *roomMetrics) Collect(ch chan<- prometheus.Metric) {
	live := m.rooms.all()
	m.mu.Lock()
	total := m.total
	m.mu.Unlock()
	states := map[string]float64{string(lobby.Admitted): 0, string(lobby.Waiting): 0, "reconnecting": 0}
	var holdingRooms, recording float64
	for _, r := range live {
		c, holding := r.totals()
		total.add(c)
		if holding {
			holdingRooms++
		}
		st := r.room.Snapshot()
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
	ch <- prometheus.MustNewConstMetric(roomsDesc, prometheus.GaugeValue, float64(len(live)))
	for st, n := range states {
		ch <- prometheus.MustNewConstMetric(partDesc, prometheus.GaugeValue, n, st)
	}
	ch <- prometheus.MustNewConstMetric(fwdPkts, prometheus.CounterValue, float64(total.packets))
	if m.rooms.cfg.SFU != nil {
		ch <- prometheus.MustNewConstMetric(viaPion, prometheus.CounterValue, float64(m.rooms.cfg.SFU.ViaPion()))
		ch <- prometheus.MustNewConstMetric(turnRefused, prometheus.CounterValue, float64(m.rooms.cfg.SFU.TURNRefused()))
	}
	ch <- prometheus.MustNewConstMetric(fwdBytes, prometheus.CounterValue, float64(total.bytes))
	ch <- prometheus.MustNewConstMetric(inPkts, prometheus.CounterValue, float64(total.in))
	ch <- prometheus.MustNewConstMetric(nacks, prometheus.CounterValue, float64(total.retransmits))
	ch <- prometheus.MustNewConstMetric(plis, prometheus.CounterValue, float64(total.keyframeRequests))
	ch <- prometheus.MustNewConstMetric(heldSecs, prometheus.CounterValue, total.heldSeconds)
	ch <- prometheus.MustNewConstMetric(heldNow, prometheus.GaugeValue, holdingRooms)
	ch <- prometheus.MustNewConstMetric(recDesc, prometheus.GaugeValue, recording)
}
