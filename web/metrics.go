package web

import (
	"crypto/subtle"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// The gateway's metrics at /metrics: the live rooms' (Config.Rooms'
// Collector: rooms, participants, forwarding, the gate, recordings) and the
// Go runtime's and process's. No personal data is exported.

// metricsHandler serves /metrics: the gateway's own metrics and the Go
// runtime's, from a registry of this server's (not the global one). The
// runtime's include go_sched_latencies_seconds, how long goroutines waited
// to run: on a busy machine that is where media latency goes (the load
// generator reports it).
func (s *Server) metricsHandler() http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(collectors.WithGoCollectorRuntimeMetrics(collectors.MetricsScheduler)),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if s.cfg.Rooms != nil {
		reg.MustRegister(s.cfg.Rooms.Collector())
	}
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
