package relay

import (
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// metrics are plain atomic counters, incremented on the hot paths without
// locks or allocation; /metrics reads them through a prometheus.Collector
// (metricsexport.go) at scrape time.
type metrics struct {
	enrols, enrolFail, checkins, events, throttled atomic.Int64
	forwarded, forwardedBytes, upstreamErr         atomic.Int64
	authFail, refused, tlsFail                     atomic.Int64
	held                                           atomic.Int64 // check-ins held open now
	lagWaits                                       atomic.Int64 // event batches that waited for forwarding

	// Time the relay itself spends on a request (check-ins only when not
	// held), so an operator sees the relay apart from the network.
	enrolTime, checkinTime, eventsTime histogram

	// The /metrics handler, built at the first scrape on this Server's own
	// registry (never the global one: several servers share a test binary).
	promOnce sync.Once
	prom     http.Handler
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
