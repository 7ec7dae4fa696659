package relay

import (
	"fmt"
	"io"
	"net/http"
	"runtime"
	"sort"
	"sync/atomic"
	"time"
)

// metrics are plain atomic counters rendered in the Prometheus text format,
// so the relay needs no metrics dependency.
type metrics struct {
	enrols, enrolFail, checkins, events, throttled atomic.Int64
	forwarded, forwardedBytes, upstreamErr         atomic.Int64
	authFail, refused, tlsFail                     atomic.Int64
	held                                           atomic.Int64 // check-ins held open now

	// Time the relay itself spends on a request (check-ins only when not
	// held), so an operator sees the relay apart from the network.
	enrolTime, checkinTime, eventsTime histogram
}

// latencyBuckets are the upper bounds, in seconds, of the histograms.
var latencyBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// histogram is a Prometheus-style cumulative histogram with atomic counts.
type histogram struct {
	counts [14]atomic.Int64 // one per bucket plus +Inf
	sumUS  atomic.Int64
}

func (h *histogram) observe(d time.Duration) {
	sec := d.Seconds()
	i := sort.SearchFloat64s(latencyBuckets, sec)
	h.counts[i].Add(1)
	h.sumUS.Add(d.Microseconds())
}

func (h *histogram) write(w io.Writer, name, path string) {
	var cum int64
	for i, le := range latencyBuckets {
		cum += h.counts[i].Load()
		fmt.Fprintf(w, "%s_bucket{path=%q,le=\"%g\"} %d\n", name, path, le, cum)
	}
	cum += h.counts[len(latencyBuckets)].Load()
	fmt.Fprintf(w, "%s_bucket{path=%q,le=\"+Inf\"} %d\n", name, path, cum)
	fmt.Fprintf(w, "%s_sum{path=%q} %g\n%s_count{path=%q} %d\n", name, path, float64(h.sumUS.Load())/1e6, name, path, cum)
}

func (s *Server) handleMetrics(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	spoolBytes, pending, cacheBytes := s.sink.stats()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	rows := []struct {
		name, kind, help string
		v                int64
	}{
		{"outpost_enrolments_total", "counter", "Enrolment requests.", s.m.enrols.Load()},
		{"outpost_enrolment_failures_total", "counter", "Refused enrolments.", s.m.enrolFail.Load()},
		{"outpost_checkins_total", "counter", "Agent check-ins.", s.m.checkins.Load()},
		{"outpost_checkins_held", "gauge", "Check-ins held open now (connected agents).", s.m.held.Load()},
		{"outpost_events_acked_total", "counter", "Event records made durable and acknowledged.", s.m.events.Load()},
		{"outpost_throttled_total", "counter", "Requests answered 429.", s.m.throttled.Load()},
		{"outpost_forwarded_records_total", "counter", "Records acknowledged by the upstream.", s.m.forwarded.Load()},
		{"outpost_forwarded_bytes_total", "counter", "Bytes sent upstream and acknowledged.", s.m.forwardedBytes.Load()},
		{"outpost_upstream_errors_total", "counter", "Failed upstream calls.", s.m.upstreamErr.Load()},
		{"outpost_auth_failures_total", "counter", "Refused credentials.", s.m.authFail.Load()},
		{"outpost_proxy_refused_total", "counter", "CONNECT or absolute-form requests refused.", s.m.refused.Load()},
		{"outpost_tls_handshake_errors_total", "counter", "Failed TLS handshakes.", s.m.tlsFail.Load()},
		{"outpost_spool_bytes", "gauge", "Unforwarded bytes in the spool.", spoolBytes},
		{"outpost_spool_records", "gauge", "Unforwarded records in the spool.", pending},
		{"outpost_cache_bytes", "gauge", "Bytes in the cache-mode ring.", cacheBytes},
		{"outpost_go_heap_bytes", "gauge", "Go heap in use.", int64(ms.HeapInuse)},
		{"outpost_goroutines", "gauge", "Goroutines.", int64(runtime.NumGoroutine())},
	}
	for _, m := range rows {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n%s %d\n", m.name, m.help, m.name, m.kind, m.name, m.v)
	}
	// What recovery dropped (damaged or torn files), per store; a store the
	// relay does not have is left out.
	ds := s.damageAll()
	for _, c := range []struct {
		name, help string
		v          func(Damage) int64
	}{
		{"outpost_recovery_dropped_records_total", "Records lost to damaged or torn files, found by recovery.", func(d Damage) int64 { return d.Records }},
		{"outpost_recovery_dropped_bytes_total", "Bytes skipped or cut by recovery.", func(d Damage) int64 { return d.Bytes }},
	} {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s counter\n", c.name, c.help, c.name)
		for _, d := range ds {
			fmt.Fprintf(w, "%s{store=%q} %d\n", c.name, d.Store, c.v(d))
		}
	}
	const h = "outpost_request_seconds"
	fmt.Fprintf(w, "# HELP %s Time the relay spent on a request (check-ins: not held).\n# TYPE %s histogram\n", h, h)
	s.m.enrolTime.write(w, h, "enrol")
	s.m.checkinTime.write(w, h, "checkin")
	s.m.eventsTime.write(w, h, "events")
}
