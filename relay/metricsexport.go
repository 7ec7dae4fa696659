package relay

import (
	"fmt"
	"log/slog"
	"net/http"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"outpost/relay/collector"
)

// handleMetrics serves this Server's registry: the process collector
// (process_resident_memory_bytes, process_open_fds, ...), the Go collector
// (go_goroutines, go_gc_duration_seconds, go_memstats_*) and the relay's
// own outpost_* series.
func (s *Server) handleMetrics(w http.ResponseWriter, r *http.Request) {
	s.m.promOnce.Do(func() { s.m.prom = s.metricsHandler() })
	s.m.prom.ServeHTTP(w, r)
}

func (s *Server) metricsHandler() http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewGoCollector(),
		relayCollector{s},
	)
	// A collector that fails (say /proc unreadable) costs its own series,
	// not the scrape; the error goes to the relay log.
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorHandling: promhttp.ContinueOnError,
		ErrorLog:      metricsLog{s.log},
	})
}

// metricsLog takes promhttp's errors into the relay's log.
type metricsLog struct{ log *slog.Logger }

func (l metricsLog) Println(v ...any) { l.log.Warn("relay: metrics", "err", fmt.Sprint(v...)) }

// counterRow is one unlabelled outpost_* series read from an atomic of
// metrics; the hot paths keep their plain Add(1).
type counterRow struct {
	desc *prometheus.Desc
	kind prometheus.ValueType
	v    func(*metrics) *atomic.Int64
}

func newDesc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, labels, nil)
}

var counterRows = []counterRow{
	{newDesc("outpost_enrolments_total", "Enrolment requests."), prometheus.CounterValue, func(m *metrics) *atomic.Int64 { return &m.enrols }},
	{newDesc("outpost_enrolment_failures_total", "Refused enrolments."), prometheus.CounterValue, func(m *metrics) *atomic.Int64 { return &m.enrolFail }},
	{newDesc("outpost_checkins_total", "Agent check-ins."), prometheus.CounterValue, func(m *metrics) *atomic.Int64 { return &m.checkins }},
	{newDesc("outpost_checkins_held", "Check-ins held open now (connected agents); process_resident_memory_bytes / this is the relay's memory per held agent."), prometheus.GaugeValue, func(m *metrics) *atomic.Int64 { return &m.held }},
	{newDesc("outpost_events_acked_total", "Event records made durable and acknowledged."), prometheus.CounterValue, func(m *metrics) *atomic.Int64 { return &m.events }},
	{newDesc("outpost_throttled_total", "Requests answered 429."), prometheus.CounterValue, func(m *metrics) *atomic.Int64 { return &m.throttled }},
	{newDesc("outpost_forwarded_records_total", "Records acknowledged by the upstream."), prometheus.CounterValue, func(m *metrics) *atomic.Int64 { return &m.forwarded }},
	{newDesc("outpost_forwarded_bytes_total", "Bytes sent upstream and acknowledged."), prometheus.CounterValue, func(m *metrics) *atomic.Int64 { return &m.forwardedBytes }},
	{newDesc("outpost_forward_lag_waits_total", "Event batches that waited for forwarding to catch up (spool backlog above the forward lag)."), prometheus.CounterValue, func(m *metrics) *atomic.Int64 { return &m.lagWaits }},
	{newDesc("outpost_upstream_errors_total", "Failed upstream calls."), prometheus.CounterValue, func(m *metrics) *atomic.Int64 { return &m.upstreamErr }},
	{newDesc("outpost_auth_failures_total", "Refused credentials."), prometheus.CounterValue, func(m *metrics) *atomic.Int64 { return &m.authFail }},
	{newDesc("outpost_proxy_refused_total", "CONNECT or absolute-form requests refused."), prometheus.CounterValue, func(m *metrics) *atomic.Int64 { return &m.refused }},
	{newDesc("outpost_tls_handshake_errors_total", "Failed TLS handshakes."), prometheus.CounterValue, func(m *metrics) *atomic.Int64 { return &m.tlsFail }},
}

var (
	spoolBytesDesc   = newDesc("outpost_spool_bytes", "Unforwarded bytes in the spool.")
	spoolRecordsDesc = newDesc("outpost_spool_records", "Unforwarded records in the spool.")
	cacheBytesDesc   = newDesc("outpost_cache_bytes", "Bytes in the cache-mode ring.")
	droppedRecsDesc  = newDesc("outpost_recovery_dropped_records_total", "Records lost to damaged or torn files, found by recovery.", "store")
	droppedBytesDesc = newDesc("outpost_recovery_dropped_bytes_total", "Bytes skipped or cut by recovery.", "store")
	requestDesc      = newDesc("outpost_request_seconds", "Time the relay spent on a request (check-ins: not held).", "path")
)

// relayCollector reads a Server's counters, sink and recovery figures at
// scrape time.
type relayCollector struct{ s *Server }

func (c relayCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, r := range counterRows {
		ch <- r.desc
	}
	for _, d := range []*prometheus.Desc{spoolBytesDesc, spoolRecordsDesc, cacheBytesDesc, droppedRecsDesc, droppedBytesDesc, requestDesc} {
		ch <- d
	}
	if _, ok := c.s.cfg.Collector.(collectorCounts); ok {
		for _, d := range collector.CountsDescs() {
			ch <- d
		}
	}
}

// collectorCounts is the built-in collector's Handler (Config.Collector).
type collectorCounts interface{ Counts() collector.Counts }

func (c relayCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.s
	for _, r := range counterRows {
		ch <- prometheus.MustNewConstMetric(r.desc, r.kind, float64(r.v(&s.m).Load()))
	}
	if s.sink != nil {
		spoolBytes, pending, cacheBytes := s.sink.stats()
		ch <- prometheus.MustNewConstMetric(spoolBytesDesc, prometheus.GaugeValue, float64(spoolBytes))
		ch <- prometheus.MustNewConstMetric(spoolRecordsDesc, prometheus.GaugeValue, float64(pending))
		ch <- prometheus.MustNewConstMetric(cacheBytesDesc, prometheus.GaugeValue, float64(cacheBytes))
	}
	// What recovery dropped, per store; a store the relay lacks is left out.
	for _, d := range s.damageAll() {
		ch <- prometheus.MustNewConstMetric(droppedRecsDesc, prometheus.CounterValue, float64(d.Records), d.Store)
		ch <- prometheus.MustNewConstMetric(droppedBytesDesc, prometheus.CounterValue, float64(d.Bytes), d.Store)
	}
	for _, h := range []struct {
		path string
		h    *histogram
	}{{"enrol", &s.m.enrolTime}, {"checkin", &s.m.checkinTime}, {"events", &s.m.eventsTime}} {
		ch <- h.h.constHistogram(h.path)
	}
	if cc, ok := s.cfg.Collector.(collectorCounts); ok {
		for _, m := range collector.CountsMetrics(cc.Counts()) {
			ch <- m
		}
	}
}

// constHistogram snapshots h as a Prometheus histogram labelled path.
// Buckets are read one by one while requests go on, so a scrape may be a
// few observations out of step with the sum; the counts stay cumulative.
func (h *histogram) constHistogram(path string) prometheus.Metric {
	buckets := make(map[float64]uint64, len(latencyBuckets))
	var cum uint64
	for i, le := range latencyBuckets {
		cum += uint64(h.counts[i].Load())
		buckets[le] = cum
	}
	cum += uint64(h.counts[len(latencyBuckets)].Load())
	return prometheus.MustNewConstHistogram(requestDesc, cum, float64(h.sumUS.Load())/1e6, buckets, path)
}
