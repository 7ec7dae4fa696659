//go:build linux

package main

import (
	"encoding/json"
	"math"
	"testing"

	"outpost/relay/wire"
)

// TestPerfBatchShape checks the harness's load against its own claims:
// records of 200 B in batches of 500 that a relay and a collector decode,
// with fresh sequence numbers on every batch (the collector drops
// duplicates without writing them, so reused numbers would flatter it).
func TestPerfBatchShape(t *testing.T) {
	for _, tc := range []struct {
		name string
		conn blastConn
	}{
		{"relay events", blastConn{seq: new(uint64)}},
		{"collector ingest", blastConn{agent: "perf-nginx-3", relay: true, seq: new(uint64)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			*tc.conn.seq = 99_990 // seq grows a digit within the batch
			var first, second []wire.Record
			for i, out := range []*[]wire.Record{&first, &second} {
				var b wire.IngestBatch
				if err := json.Unmarshal(tc.conn.body(nil), &b); err != nil {
					t.Fatalf("batch %d does not decode: %v", i, err)
				}
				*out = b.Records
			}
			if got, want := len(first), perfBatch; got != want {
				t.Fatalf("records in a batch: got %d, want %d", got, want)
			}
			if got, want := second[0].Seq, first[len(first)-1].Seq+1; got != want {
				t.Errorf("next batch's first seq: got %d, want %d", got, want)
			}
			for _, r := range append(first, second...) {
				if r.Agent != tc.conn.agent {
					t.Fatalf("agent: got %q, want %q", r.Agent, tc.conn.agent)
				}
				b := appendRecord(nil, "", r.Seq)
				if len(b) != perfEventBytes || !json.Valid(b) {
					t.Fatalf("record %d: %d bytes (want %d), valid JSON %v: %s", r.Seq, len(b), perfEventBytes, json.Valid(b), b)
				}
			}
		})
	}
}

func TestPerfMedian(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want float64
	}{{[]float64{3, 1, 2}, 2}, {[]float64{4, 1, 3, 2}, 2.5}, {[]float64{7}, 7}} {
		if got := perfMedian(tc.in); got != tc.want {
			t.Errorf("perfMedian(%v): got %v, want %v", tc.in, got, tc.want)
		}
	}
	if got := perfMedian(nil); !math.IsNaN(got) {
		t.Errorf("perfMedian(nil): got %v, want NaN", got)
	}
}
