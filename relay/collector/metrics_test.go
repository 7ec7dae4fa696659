package collector

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"outpost/relay/logs/logstest"
	"outpost/relay/wire"
)

// TestMetricsStandalone: a standalone collector's /metrics (behind
// RequireTokens, as outpost center serves it) has the process and Go
// runtime series and its own counts, parsed by Prometheus's text parser.
func TestMetricsStandalone(t *testing.T) {
	c, err := New(t.TempDir(), logstest.New(t))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	srv := httptest.NewServer(RequireTokens(c.Handler(), "it_ingest", "st_stats"))
	defer srv.Close()
	for _, batch := range [][]wire.Record{records("a1", 1, 2), records("a1", 2, 3), records("a2", 1)} {
		body, err := json.Marshal(wire.IngestBatch{Relay: "r", Records: batch})
		if err != nil {
			t.Fatal(err)
		}
		if code, resp := post(t, srv.URL+wire.PathIngest, body, map[string]string{"Authorization": "Bearer it_ingest"}); code != http.StatusOK {
			t.Fatalf("ingest: got %d %s, want 200", code, resp)
		}
	}

	for _, tc := range []struct {
		name, auth string
		want       int
	}{
		{"without a token", "", http.StatusUnauthorized},
		{"with a wrong token", "Bearer st_wrong", http.StatusUnauthorized},
		{"with the stats token", "Bearer st_stats", http.StatusOK},
		{"with the ingest token", "Bearer it_ingest", http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, srv.URL+wire.PathMetrics, nil)
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if got := resp.StatusCode; got != tc.want {
				t.Fatalf("status: got %d, want %d", got, tc.want)
			}
			if tc.want != http.StatusOK {
				return
			}
			p := expfmt.NewTextParser(model.UTF8Validation)
			fams, err := p.TextToMetricFamilies(resp.Body)
			if err != nil {
				t.Fatalf("parse /metrics: %v", err)
			}
			for _, w := range []struct {
				name string
				ok   func(float64) bool
				want string
			}{
				{"process_resident_memory_bytes", func(v float64) bool { return v > 0 }, "> 0"},
				{"process_open_fds", func(v float64) bool { return v > 0 }, "> 0"},
				{"go_goroutines", func(v float64) bool { return v > 0 }, "> 0"},
				{"outpost_collector_records_total", func(v float64) bool { return v == 4 }, "4 distinct"},
				{"outpost_collector_duplicates_total", func(v float64) bool { return v == 1 }, "1"},
				{"outpost_collector_agents", func(v float64) bool { return v == 2 }, "2"},
				{"outpost_recovery_dropped_records_total", func(v float64) bool { return v == 0 }, "0"},
			} {
				got, ok := first(fams[w.name])
				switch {
				case !ok:
					t.Errorf("%s: missing, want %s", w.name, w.want)
				case !w.ok(got):
					t.Errorf("%s: got %g, want %s", w.name, got, w.want)
				}
			}
		})
	}
}

// first is the value of a family's first gauge or counter sample.
func first(f *dto.MetricFamily) (float64, bool) {
	for _, m := range f.GetMetric() {
		switch {
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		}
	}
	return 0, false
}
