package collector

import (
	"net/http"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Counts are the collector's totals, cheap to read (no per-agent copy,
// unlike Stats): for /metrics.
type Counts struct {
	Records    uint64 // distinct records stored since the store was created
	Duplicates uint64 // since this process started
	Agents     int    // agents with at least one record
}

// Counts reads the totals under the ingest lock, for a moment.
func (c *Collector) Counts() Counts {
	c.mu.Lock()
	defer c.mu.Unlock()
	return Counts{Records: c.total, Duplicates: c.dups, Agents: len(c.agents)}
}

// Counts lets a relay serving Handler export the collector's totals.
func (h handler) Counts() Counts { return h.c.Counts() }

var (
	recordsDesc   = prometheus.NewDesc("outpost_collector_records_total", "Distinct records stored by the collector (rebuilt from its segments at start).", nil, nil)
	dupsDesc      = prometheus.NewDesc("outpost_collector_duplicates_total", "Records received again and not stored, since the collector started.", nil, nil)
	agentsDesc    = prometheus.NewDesc("outpost_collector_agents", "Agents the collector holds records of.", nil, nil)
	lostRecsDesc  = prometheus.NewDesc("outpost_recovery_dropped_records_total", "Records lost to damaged or torn files, found by recovery.", []string{"store"}, nil)
	lostBytesDesc = prometheus.NewDesc("outpost_recovery_dropped_bytes_total", "Bytes skipped or cut by recovery.", []string{"store"}, nil)
)

// CountsMetrics turns Counts into the outpost_collector_* series; the
// relay's /metrics and the standalone collector's share it.
func CountsMetrics(n Counts) []prometheus.Metric {
	return []prometheus.Metric{
		prometheus.MustNewConstMetric(recordsDesc, prometheus.CounterValue, float64(n.Records)),
		prometheus.MustNewConstMetric(dupsDesc, prometheus.CounterValue, float64(n.Duplicates)),
		prometheus.MustNewConstMetric(agentsDesc, prometheus.GaugeValue, float64(n.Agents)),
	}
}

// CountsDescs describes CountsMetrics.
func CountsDescs() []*prometheus.Desc { return []*prometheus.Desc{recordsDesc, dupsDesc, agentsDesc} }

// promCollector is a standalone collector's (outpost center) own series.
type promCollector struct{ c *Collector }

func (p promCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range append(CountsDescs(), lostRecsDesc, lostBytesDesc) {
		ch <- d
	}
}

func (p promCollector) Collect(ch chan<- prometheus.Metric) {
	for _, m := range CountsMetrics(p.c.Counts()) {
		ch <- m
	}
	recs, b := p.c.RecoveryDropped()
	ch <- prometheus.MustNewConstMetric(lostRecsDesc, prometheus.CounterValue, float64(recs), "collector")
	ch <- prometheus.MustNewConstMetric(lostBytesDesc, prometheus.CounterValue, float64(b), "collector")
}

// metricsHandler serves the standalone collector's /metrics: process and
// Go runtime collectors and promCollector, on a registry of this
// Handler's own, built at the first scrape. A relay mounting Handler
// routes only ingest and stats to it and exports Counts itself.
func (c *Collector) metricsHandler() http.HandlerFunc {
	var once sync.Once
	var h http.Handler
	return func(w http.ResponseWriter, r *http.Request) {
		once.Do(func() {
			reg := prometheus.NewRegistry()
			reg.MustRegister(
				collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
				collectors.NewGoCollector(),
				promCollector{c},
			)
			h = promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
		})
		h.ServeHTTP(w, r)
	}
}
