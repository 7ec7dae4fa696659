package relay_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"outpost/relay"
	"outpost/relay/wire"
)

// scrape GETs base's /metrics (with token as Bearer when set) and parses
// it with Prometheus's own text parser, which rejects malformed output.
func scrape(t *testing.T, hc *http.Client, base, token string) map[string]*dto.MetricFamily {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+wire.PathMetrics, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: got %d, want 200: %s", resp.StatusCode, drainBody(resp))
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

// value is the value of family name's sample whose labels include want
// (name=value pairs); ok false when there is none.
func value(fams map[string]*dto.MetricFamily, name string, want ...string) (v float64, ok bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.GetMetric() {
		for i := 0; i+1 < len(want); i += 2 {
			found := false
			for _, l := range m.GetLabel() {
				found = found || (l.GetName() == want[i] && l.GetValue() == want[i+1])
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		case m.Summary != nil:
			return float64(m.Summary.GetSampleCount()), true
		case m.Untyped != nil:
			return m.Untyped.GetValue(), true
		}
	}
	return 0, false
}

// TestMetricsRuntimeAndOwn: /metrics carries the standard process and Go
// runtime series next to the relay's own and its built-in collector's,
// each relay from its own registry (two in one process: one with agents
// held and events stored, behind its metrics token, and one idle).
func TestMetricsRuntimeAndOwn(t *testing.T) {
	busy := startManager(t, func(c *relay.Config) { c.MetricsToken = "mt_busy" })
	idle := startManager(t)
	hc := httpClient(busy)
	t.Cleanup(hc.CloseIdleConnections)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	const agents, events = 3, 5
	f := newFleet(t, busy, "acme", 0)
	done := make(chan error, agents)
	for i := range agents {
		c := newClient(busy, busy.TLSURL)
		enrolLinux(t, c, f.Key, i)
		h, _ := linuxHost(i)
		if i == 0 {
			if _, err := c.SendEvents(ctx, records(1, events)); err != nil {
				t.Fatal(err)
			}
		}
		go func() {
			_, err := c.Checkin(ctx, wire.CheckinRequest{Fingerprint: h.Fingerprint, Wait: wire.Duration(30 * time.Second)})
			done <- err
		}()
	}
	// The collector counts records before its fsync and the relay counts
	// them forwarded after the answer: wait for both.
	waitFor(t, 10*time.Second, "the check-ins held and the events in the collector", func() bool {
		fams := scrape(t, hc, busy.PlainURL, "mt_busy")
		held, _ := value(fams, "outpost_checkins_held")
		stored, _ := value(fams, "outpost_collector_records_total")
		fwd, _ := value(fams, "outpost_forwarded_records_total")
		spooled, _ := value(fams, "outpost_spool_records")
		return held == agents && stored == events && fwd == events && spooled == 0
	})

	type check struct {
		name   string
		labels []string
		ok     func(float64) bool
		want   string
	}
	positive := func(v float64) bool { return v > 0 }
	is := func(n float64) func(float64) bool { return func(v float64) bool { return v == n } }
	standard := []check{
		{"process_resident_memory_bytes", nil, positive, "> 0"},
		{"process_open_fds", nil, positive, "> 0"},
		{"process_max_fds", nil, positive, "> 0"},
		{"process_start_time_seconds", nil, positive, "> 0"},
		{"go_goroutines", nil, func(v float64) bool { return v >= agents }, ">= the held check-ins"},
		{"go_threads", nil, positive, "> 0"},
		{"go_memstats_heap_inuse_bytes", nil, positive, "> 0"},
		{"go_gc_duration_seconds", nil, func(float64) bool { return true }, "present"},
	}
	for _, tc := range []struct {
		name   string
		base   string
		token  string
		checks []check
	}{
		{"relay holding agents", busy.PlainURL, "mt_busy", append(standard,
			check{"outpost_checkins_held", nil, is(agents), "the check-ins held"},
			check{"outpost_enrolments_total", nil, is(agents), "the enrolments"},
			check{"outpost_request_seconds", []string{"path", "enrol"}, is(agents), "a sample per enrolment"},
			check{"outpost_request_seconds", []string{"path", "events"}, is(1), "one events request"},
			check{"outpost_events_acked_total", nil, is(events), "the events sent"},
			check{"outpost_forwarded_records_total", nil, is(events), "the events sent"},
			check{"outpost_collector_records_total", nil, is(events), "the events sent"},
			check{"outpost_collector_agents", nil, is(1), "the one agent that sent"},
			check{"outpost_collector_duplicates_total", nil, is(0), "0"},
			check{"outpost_recovery_dropped_records_total", []string{"store", "spool"}, is(0), "0"},
			check{"outpost_spool_records", nil, is(0), "0"},
		)},
		{"idle relay in the same process", idle.PlainURL, "", append(standard,
			check{"outpost_checkins_held", nil, is(0), "0 (its own registry)"},
			check{"outpost_enrolments_total", nil, is(0), "0 (its own registry)"},
			check{"outpost_collector_records_total", nil, is(0), "0 (its own collector)"},
		)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fams := scrape(t, hc, tc.base, tc.token)
			for _, c := range tc.checks {
				got, ok := value(fams, c.name, c.labels...)
				switch {
				case !ok:
					t.Errorf("%s%v: missing, want %s", c.name, c.labels, c.want)
				case !c.ok(got):
					t.Errorf("%s%v: got %g, want %s", c.name, c.labels, got, c.want)
				}
			}
			if got, want := fams["outpost_checkins_held"].GetType(), dto.MetricType_GAUGE; got != want {
				t.Errorf("outpost_checkins_held type: got %v, want %v", got, want)
			}
			if got, want := fams["outpost_request_seconds"].GetType(), dto.MetricType_HISTOGRAM; got != want {
				t.Errorf("outpost_request_seconds type: got %v, want %v", got, want)
			}
		})
	}
	cancel()
	for range agents {
		<-done
	}
}
