package collector

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"outpost/relay/logs/logstest"
	"outpost/relay/wire"
)

// start runs a collector on dir behind a real listener.
func start(t *testing.T, dir string) (*Collector, *httptest.Server) {
	t.Helper()
	c, err := New(dir, logstest.New(t))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(c.Handler())
	t.Cleanup(func() {
		srv.Close()
		c.Close()
	})
	return c, srv
}

func records(agent string, seqs ...uint64) []wire.Record {
	out := make([]wire.Record, len(seqs))
	for i, s := range seqs {
		out[i] = wire.Record{
			Agent: agent,
			Seq:   s,
			Time:  time.Unix(1700000000, 0).UTC(),
			Type:  "process",
			Data:  json.RawMessage(fmt.Sprintf(`{"pid":%d,"cmd":"/usr/bin/true <x&y>"}`, s)),
		}
	}
	return out
}

func seqRange(lo, hi uint64) []uint64 {
	var s []uint64
	for i := lo; i <= hi; i++ {
		s = append(s, i)
	}
	return s
}

// post sends body to path and returns the status and response body.
func post(t *testing.T, url string, body []byte, hdr map[string]string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

// ingest posts a batch and decodes the ack, failing on anything but 200.
func ingest(t *testing.T, srv *httptest.Server, recs []wire.Record) wire.IngestAck {
	t.Helper()
	body, err := json.Marshal(wire.IngestBatch{Relay: "test-relay", Records: recs})
	if err != nil {
		t.Fatal(err)
	}
	code, resp := post(t, srv.URL+wire.PathIngest, body, nil)
	if code != http.StatusOK {
		t.Fatalf("ingest: status %d: %s", code, resp)
	}
	var ack wire.IngestAck
	if err := json.Unmarshal(resp, &ack); err != nil {
		t.Fatalf("ingest: bad ack %q: %v", resp, err)
	}
	return ack
}

func getStats(t *testing.T, srv *httptest.Server) wire.CollectorStats {
	t.Helper()
	resp, err := http.Get(srv.URL + wire.PathCollStats)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("stats: status %d", resp.StatusCode)
	}
	var st wire.CollectorStats
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	return st
}

// stored reads every segment in order and checks each line is a Record.
func stored(t *testing.T, dir string) []wire.Record {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "ingest-*.ndjson"))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(files)
	var out []wire.Record
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) > 0 && b[len(b)-1] != '\n' {
			t.Fatalf("%s does not end with a newline", filepath.Base(f))
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		sc.Buffer(nil, MaxBody)
		for sc.Scan() {
			var r wire.Record
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				t.Fatalf("%s: bad line %q: %v", filepath.Base(f), sc.Text(), err)
			}
			out = append(out, r)
		}
	}
	return out
}

// checkStoredOnce verifies no (agent, seq) is stored twice and returns the
// per-agent counts on disk.
func checkStoredOnce(t *testing.T, dir string) map[string]uint64 {
	t.Helper()
	type key struct {
		a string
		s uint64
	}
	seen := map[key]bool{}
	counts := map[string]uint64{}
	for _, r := range stored(t, dir) {
		k := key{r.Agent, r.Seq}
		if seen[k] {
			t.Fatalf("record %s/%d stored twice", r.Agent, r.Seq)
		}
		seen[k] = true
		counts[r.Agent]++
	}
	return counts
}

func TestIngest(t *testing.T) {
	dir := t.TempDir()
	c, srv := start(t, dir)
	recs := append(records("agent-a", 1, 2, 3, 4, 5), records("agent-b", 1, 2, 3)...)
	if got, want := ingest(t, srv, recs), (wire.IngestAck{Accepted: 8}); got != want {
		t.Fatalf("ack: got %+v, want %+v", got, want)
	}
	want := wire.CollectorStats{Received: map[string]uint64{"agent-a": 5, "agent-b": 3}, Total: 8}
	for name, got := range map[string]wire.CollectorStats{"Stats": c.Stats(), "GET stats": getStats(t, srv)} {
		if !statsEqual(got, want) {
			t.Fatalf("%s: got %+v, want %+v", name, got, want)
		}
	}
	if got, want := c.Received("agent-a"), uint64(5); got != want {
		t.Fatalf("Received: got %d, want %d", got, want)
	}
	if got, want := c.Received("nobody"), uint64(0); got != want {
		t.Fatalf("Received unknown: got %d, want %d", got, want)
	}
	got := stored(t, dir)
	if len(got) != len(recs) {
		t.Fatalf("stored %d records, want %d", len(got), len(recs))
	}
	for i := range got {
		if got[i].Agent != recs[i].Agent || got[i].Seq != recs[i].Seq || !got[i].Time.Equal(recs[i].Time) ||
			got[i].Type != recs[i].Type || !sameJSON(got[i].Data, recs[i].Data) {
			t.Fatalf("stored record %d: got %+v, want %+v", i, got[i], recs[i])
		}
	}
	resp, err := http.Get(srv.URL + wire.PathHealth)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got, want := resp.StatusCode, http.StatusOK; got != want {
		t.Fatalf("healthz: got %d, want %d", got, want)
	}
}

func sameJSON(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}

func statsEqual(a, b wire.CollectorStats) bool {
	if a.Total != b.Total || a.Duplicates != b.Duplicates || len(a.Received) != len(b.Received) {
		return false
	}
	for k, v := range a.Received {
		if b.Received[k] != v {
			return false
		}
	}
	return true
}

func TestDuplicates(t *testing.T) {
	tests := []struct {
		name     string
		batches  [][]wire.Record
		wantAcks []wire.IngestAck
		want     wire.CollectorStats
	}{
		{
			name:     "same batch twice",
			batches:  [][]wire.Record{records("a", seqRange(1, 10)...), records("a", seqRange(1, 10)...)},
			wantAcks: []wire.IngestAck{{Accepted: 10}, {Duplicates: 10}},
			want:     wire.CollectorStats{Received: map[string]uint64{"a": 10}, Duplicates: 10, Total: 10},
		},
		{
			name:     "duplicates inside one batch",
			batches:  [][]wire.Record{records("a", 1, 2, 2, 3, 1)},
			wantAcks: []wire.IngestAck{{Accepted: 3, Duplicates: 2}},
			want:     wire.CollectorStats{Received: map[string]uint64{"a": 3}, Duplicates: 2, Total: 3},
		},
		{
			name:     "overlapping retry",
			batches:  [][]wire.Record{records("a", seqRange(1, 5)...), records("a", seqRange(4, 8)...)},
			wantAcks: []wire.IngestAck{{Accepted: 5}, {Accepted: 3, Duplicates: 2}},
			want:     wire.CollectorStats{Received: map[string]uint64{"a": 8}, Duplicates: 2, Total: 8},
		},
		{
			name:     "same seq of different agents is not a duplicate",
			batches:  [][]wire.Record{append(records("a", 1), records("b", 1)...)},
			wantAcks: []wire.IngestAck{{Accepted: 2}},
			want:     wire.CollectorStats{Received: map[string]uint64{"a": 1, "b": 1}, Total: 2},
		},
		{
			name:     "empty batch",
			batches:  [][]wire.Record{nil},
			wantAcks: []wire.IngestAck{{}},
			want:     wire.CollectorStats{Received: map[string]uint64{}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			c, srv := start(t, dir)
			for i, b := range tt.batches {
				if got, want := ingest(t, srv, b), tt.wantAcks[i]; got != want {
					t.Fatalf("batch %d ack: got %+v, want %+v", i, got, want)
				}
			}
			if got := c.Stats(); !statsEqual(got, tt.want) {
				t.Fatalf("stats: got %+v, want %+v", got, tt.want)
			}
			if got, want := checkStoredOnce(t, dir), tt.want.Received; !mapsEqual(got, want) {
				t.Fatalf("stored: got %v, want %v", got, want)
			}
		})
	}
}

func mapsEqual(a, b map[string]uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestOutOfOrder(t *testing.T) {
	perm := rand.New(rand.NewPCG(1, 2)).Perm(300)
	shuffled := make([]uint64, 0, 400)
	for _, p := range perm {
		shuffled = append(shuffled, uint64(p)+1)
	}
	shuffled = append(shuffled, shuffled[:100]...) // and 100 repeats
	tests := []struct {
		name     string
		seqs     []uint64
		perBatch int
		wantN    uint64
		wantHi   uint64
		wantRuns []run
	}{
		{"reverse", []uint64{10, 9, 8, 7, 6, 5, 4, 3, 2, 1}, 1, 10, 10, nil},
		{"evens then odds", []uint64{2, 4, 6, 8, 10, 1, 3, 5, 7, 9}, 3, 10, 10, nil},
		{"gap stays open", []uint64{1, 2, 5, 6, 3, 9}, 2, 6, 3, []run{{5, 6}, {9, 9}}},
		{"starts far above 1", []uint64{1000000, 1000001, 999999}, 1, 3, 0, []run{{999999, 1000001}}},
		{"shuffled with repeats", shuffled, 50, 300, 300, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			c, srv := start(t, dir)
			var accepted, dups int
			for seqs := range slices.Chunk(tt.seqs, tt.perBatch) {
				ack := ingest(t, srv, records("a", seqs...))
				accepted += ack.Accepted
				dups += ack.Duplicates
			}
			if got, want := uint64(accepted), tt.wantN; got != want {
				t.Fatalf("accepted: got %d, want %d", got, want)
			}
			if got, want := dups, len(tt.seqs)-int(tt.wantN); got != want {
				t.Fatalf("duplicates: got %d, want %d", got, want)
			}
			if got, want := c.Received("a"), tt.wantN; got != want {
				t.Fatalf("Received: got %d, want %d", got, want)
			}
			s := c.agents["a"]
			if got, want := s.hi, tt.wantHi; got != want {
				t.Fatalf("contiguous high: got %d, want %d", got, want)
			}
			if got, want := s.runs, tt.wantRuns; !slices.Equal(got, want) {
				t.Fatalf("out-of-order runs: got %v, want %v", got, want)
			}
			if got, want := checkStoredOnce(t, dir)["a"], tt.wantN; got != want {
				t.Fatalf("stored: got %d, want %d", got, want)
			}
		})
	}
}

func TestSeqSet(t *testing.T) {
	tests := []struct {
		name     string
		adds     []uint64
		wantNew  []bool
		wantHi   uint64
		wantRuns []run
	}{
		{"in order", []uint64{1, 2, 3}, []bool{true, true, true}, 3, nil},
		{"repeat", []uint64{1, 1, 2, 2}, []bool{true, false, true, false}, 2, nil},
		{"new run", []uint64{5}, []bool{true}, 0, []run{{5, 5}}},
		{"extend run down and up", []uint64{5, 4, 6}, []bool{true, true, true}, 0, []run{{4, 6}}},
		{"merge two runs", []uint64{3, 5, 4}, []bool{true, true, true}, 0, []run{{3, 5}}},
		{"repeat inside run", []uint64{3, 4, 5, 4}, []bool{true, true, true, false}, 0, []run{{3, 5}}},
		{"fold into high", []uint64{3, 4, 1, 2}, []bool{true, true, true, true}, 4, nil},
		{"fold first run only", []uint64{3, 7, 1, 2}, []bool{true, true, true, true}, 3, []run{{7, 7}}},
		{"insert between runs", []uint64{10, 2, 6}, []bool{true, true, true}, 0, []run{{2, 2}, {6, 6}, {10, 10}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s seqSet
			for i, seq := range tt.adds {
				if got, want := s.add(seq), tt.wantNew[i]; got != want {
					t.Fatalf("add(%d): got %v, want %v", seq, got, want)
				}
				if !s.has(seq) {
					t.Fatalf("has(%d) after add: false", seq)
				}
			}
			if got, want := s.hi, tt.wantHi; got != want {
				t.Fatalf("hi: got %d, want %d", got, want)
			}
			if got, want := s.runs, tt.wantRuns; !slices.Equal(got, want) {
				t.Fatalf("runs: got %v, want %v", got, want)
			}
			distinct := map[uint64]bool{}
			for _, a := range tt.adds {
				distinct[a] = true
			}
			if got, want := s.n, uint64(len(distinct)); got != want {
				t.Fatalf("n: got %d, want %d", got, want)
			}
		})
	}
}
