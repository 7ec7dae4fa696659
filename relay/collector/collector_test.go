package collector

import (
	"bufio"
	"bytes"
	"compress/gzip"
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
	"strings"
	"sync"
	"testing"
	"time"

	"outpost/relay/wire"
)

// start runs a collector on dir behind a real listener.
func start(t *testing.T, dir string) (*Collector, *httptest.Server) {
	t.Helper()
	c, err := New(dir, t.Logf)
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

func TestRestart(t *testing.T) {
	tests := []struct {
		name     string
		segBytes int64
		torn     bool
	}{
		{"one segment", SegmentBytes, false},
		{"many segments", 4 << 10, false},
		{"torn last line", 4 << 10, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			c, err := New(dir, t.Logf)
			if err != nil {
				t.Fatal(err)
			}
			c.segBytes = tt.segBytes
			srv := httptest.NewServer(c.Handler())
			var batches [][]wire.Record
			for i := range 10 {
				b := append(records("a", seqRange(uint64(i*10+1), uint64(i*10+10))...),
					records("b", uint64(100-i))...) // b arrives out of order, with a gap
				batches = append(batches, b)
				ingest(t, srv, b)
			}
			before := c.Stats()
			srv.Close()
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
			files, _ := filepath.Glob(filepath.Join(dir, "ingest-*.ndjson"))
			slices.Sort(files)
			if tt.segBytes < SegmentBytes && len(files) < 3 {
				t.Fatalf("got %d segment files, want several", len(files))
			}
			if tt.torn {
				f, err := os.OpenFile(files[len(files)-1], os.O_WRONLY|os.O_APPEND, 0)
				if err != nil {
					t.Fatal(err)
				}
				f.WriteString(`{"agent":"a","seq":101,"ty`)
				f.Close()
			}

			c2, srv2 := start(t, dir)
			after := c2.Stats()
			before.Duplicates = 0 // not persisted
			if !statsEqual(after, before) {
				t.Fatalf("after restart: got %+v, want %+v", after, before)
			}
			for i, b := range batches {
				if got, want := ingest(t, srv2, b), (wire.IngestAck{Duplicates: len(b)}); got != want {
					t.Fatalf("replayed batch %d: got %+v, want %+v", i, got, want)
				}
			}
			if got, want := ingest(t, srv2, records("a", 101, 102)), (wire.IngestAck{Accepted: 2}); got != want {
				t.Fatalf("new batch: got %+v, want %+v", got, want)
			}
			counts := checkStoredOnce(t, dir)
			if got, want := counts["a"], uint64(102); got != want {
				t.Fatalf("stored for a: got %d, want %d", got, want)
			}
			if got, want := c2.Received("b"), uint64(10); got != want {
				t.Fatalf("Received(b): got %d, want %d", got, want)
			}
		})
	}
}

func gz(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestGzip(t *testing.T) {
	batch, _ := json.Marshal(wire.IngestBatch{Records: records("a", 1, 2, 3)})
	good := gz(t, batch)
	corrupt := slices.Clone(good)
	corrupt[len(corrupt)-5] ^= 0xff // CRC
	tests := []struct {
		name     string
		body     []byte
		encoding string
		wantCode int
	}{
		{"gzip", good, "gzip", http.StatusOK},
		{"x-gzip", good, "x-gzip", http.StatusOK},
		{"bad checksum", corrupt, "gzip", http.StatusBadRequest},
		{"truncated", good[:len(good)/2], "gzip", http.StatusBadRequest},
		{"not gzip at all", batch, "gzip", http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, srv := start(t, t.TempDir())
			code, resp := post(t, srv.URL+wire.PathIngest, tt.body, map[string]string{"Content-Encoding": tt.encoding})
			if code != tt.wantCode {
				t.Fatalf("status: got %d, want %d (%s)", code, tt.wantCode, resp)
			}
			want := uint64(0)
			if tt.wantCode == http.StatusOK {
				want = 3
			}
			if got := c.Received("a"); got != want {
				t.Fatalf("Received: got %d, want %d", got, want)
			}
		})
	}
}

func TestErrors(t *testing.T) {
	valid, _ := json.Marshal(wire.IngestBatch{Records: records("a", 1)})
	// padded puts n bytes of whitespace before a valid batch.
	padded := func(n int) []byte { return append(bytes.Repeat([]byte(" "), n-len(valid)), valid...) }
	tests := []struct {
		name     string
		method   string
		path     string
		hdr      map[string]string
		body     []byte
		wantCode int
	}{
		{"GET ingest", http.MethodGet, wire.PathIngest, nil, nil, http.StatusMethodNotAllowed},
		{"PUT ingest", http.MethodPut, wire.PathIngest, nil, valid, http.StatusMethodNotAllowed},
		{"POST stats", http.MethodPost, wire.PathCollStats, nil, valid, http.StatusMethodNotAllowed},
		{"DELETE healthz", http.MethodDelete, wire.PathHealth, nil, nil, http.StatusMethodNotAllowed},
		{"malformed JSON", http.MethodPost, wire.PathIngest, nil, []byte(`{"records":[{"agent":`), http.StatusBadRequest},
		{"empty body", http.MethodPost, wire.PathIngest, nil, nil, http.StatusBadRequest},
		{"array instead of batch", http.MethodPost, wire.PathIngest, nil, []byte(`[1,2]`), http.StatusBadRequest},
		{"trailing data", http.MethodPost, wire.PathIngest, nil, append(slices.Clone(valid), valid...), http.StatusBadRequest},
		{"seq not a number", http.MethodPost, wire.PathIngest, nil, []byte(`{"records":[{"agent":"a","seq":"x"}]}`), http.StatusBadRequest},
		{"empty agent", http.MethodPost, wire.PathIngest, nil, []byte(`{"records":[{"agent":"a","seq":1},{"seq":2}]}`), http.StatusBadRequest},
		{"seq zero", http.MethodPost, wire.PathIngest, nil, []byte(`{"records":[{"agent":"a","seq":1},{"agent":"a","seq":0}]}`), http.StatusBadRequest},
		{"body of exactly MaxBody", http.MethodPost, wire.PathIngest, nil, padded(MaxBody), http.StatusOK},
		{"body over MaxBody", http.MethodPost, wire.PathIngest, nil, padded(MaxBody + 1), http.StatusRequestEntityTooLarge},
		{"gzip expanding over MaxBody", http.MethodPost, wire.PathIngest, map[string]string{"Content-Encoding": "gzip"}, gz(t, padded(MaxBody+1)), http.StatusRequestEntityTooLarge},
		{"unknown encoding", http.MethodPost, wire.PathIngest, map[string]string{"Content-Encoding": "br"}, valid, http.StatusUnsupportedMediaType},
		{"unknown path", http.MethodGet, "/v1/nothing", nil, nil, http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, srv := start(t, t.TempDir())
			req, err := http.NewRequest(tt.method, srv.URL+tt.path, bytes.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tt.hdr {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if got, want := resp.StatusCode, tt.wantCode; got != want {
				b, _ := io.ReadAll(resp.Body)
				t.Fatalf("status: got %d, want %d (%s)", got, want, b)
			}
			if got, want := resp.Header.Get("Content-Type"), "application/json"; got != want {
				t.Fatalf("Content-Type: got %q, want %q", got, want)
			}
			if tt.wantCode == http.StatusOK {
				return
			}
			var e wire.Error
			if err := json.NewDecoder(resp.Body).Decode(&e); err != nil || e.Code == "" || e.Message == "" {
				t.Fatalf("error body: got %+v (%v), want a wire.Error", e, err)
			}
			if got := c.Stats().Total; got != 0 {
				t.Fatalf("records stored after a rejected request: %d", got)
			}
		})
	}
}

func TestClosed(t *testing.T) {
	c, srv := start(t, t.TempDir())
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(wire.IngestBatch{Records: records("a", 1)})
	tests := []struct {
		name, method, path string
		body               []byte
	}{
		{"ingest", http.MethodPost, wire.PathIngest, body},
		{"healthz", http.MethodGet, wire.PathHealth, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, srv.URL+tt.path, bytes.NewReader(tt.body))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if got, want := resp.StatusCode, http.StatusServiceUnavailable; got != want {
				t.Fatalf("status: got %d, want %d", got, want)
			}
		})
	}
}

func TestConcurrentIngest(t *testing.T) {
	dir := t.TempDir()
	c, srv := start(t, dir)
	c.segBytes = 32 << 10 // rotate while batches race
	const clients, batches, per = 8, 15, 20
	var (
		wg            sync.WaitGroup
		mu            sync.Mutex
		accepted, dup int
	)
	for cl := range clients {
		wg.Go(func() {
			own := fmt.Sprintf("agent-%d", cl)
			for b := range batches {
				lo := uint64(b*per + 1)
				// Own records, plus a window of a shared agent that
				// overlaps the other clients' windows.
				recs := append(records(own, seqRange(lo, lo+per-1)...),
					records("shared", seqRange(lo+uint64(cl), lo+uint64(cl)+per-1)...)...)
				body, _ := json.Marshal(wire.IngestBatch{Records: recs})
				resp, err := http.Post(srv.URL+wire.PathIngest, "application/json", bytes.NewReader(body))
				if err != nil {
					t.Error(err)
					return
				}
				var ack wire.IngestAck
				err = json.NewDecoder(resp.Body).Decode(&ack)
				resp.Body.Close()
				if err != nil || resp.StatusCode != http.StatusOK {
					t.Errorf("status %d, %v", resp.StatusCode, err)
					return
				}
				mu.Lock()
				accepted += ack.Accepted
				dup += ack.Duplicates
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	sharedWant := uint64(batches*per + clients - 1)
	want := wire.CollectorStats{Received: map[string]uint64{"shared": sharedWant}}
	for cl := range clients {
		want.Received[fmt.Sprintf("agent-%d", cl)] = batches * per
	}
	want.Total = clients*batches*per + sharedWant
	want.Duplicates = uint64(2*clients*batches*per) - want.Total
	if got := getStats(t, srv); !statsEqual(got, want) {
		t.Fatalf("stats: got %+v, want %+v", got, want)
	}
	if got, want := uint64(accepted), want.Total; got != want {
		t.Fatalf("acked accepted: got %d, want %d", got, want)
	}
	if got, want := uint64(dup), want.Duplicates; got != want {
		t.Fatalf("acked duplicates: got %d, want %d", got, want)
	}
	if got := checkStoredOnce(t, dir); !mapsEqual(got, want.Received) {
		t.Fatalf("stored: got %v, want %v", got, want.Received)
	}
	if files, _ := filepath.Glob(filepath.Join(dir, "ingest-*.ndjson")); len(files) < 2 {
		t.Fatalf("got %d segments, want rotation", len(files))
	}
}

// BenchmarkIngest posts batches of 500 records of about 200 bytes each
// through a real listener and reports records/s and MB/s of batches.
func BenchmarkIngest(b *testing.B) {
	const per = 500
	pad := strings.Repeat("x", 60)
	// body builds a batch for a new agent; its records are ~200 bytes.
	body := func(agent int) []byte {
		var buf bytes.Buffer
		buf.WriteString(`{"relay":"bench","records":[`)
		for s := 1; s <= per; s++ {
			if s > 1 {
				buf.WriteByte(',')
			}
			fmt.Fprintf(&buf, `{"agent":"bench-%08d","seq":%d,"time":"2024-05-01T12:00:00Z","type":"process","data":{"pid":%d,"cmd":"/usr/sbin/sshd -D","user":"root","pad":"%s"}}`, agent, s, s, pad)
		}
		buf.WriteString(`]}`)
		return buf.Bytes()
	}
	tmpl := body(0)
	var at []int // where the agent number sits in tmpl
	for i := 0; ; {
		j := bytes.Index(tmpl[i:], []byte("bench-00000000"))
		if j < 0 {
			break
		}
		at = append(at, i+j+len("bench-"))
		i += j + 1
	}
	b.Logf("record size ~%d bytes", len(tmpl)/per)
	batchFor := func(agent int) []byte {
		out := slices.Clone(tmpl)
		d := fmt.Sprintf("%08d", agent)
		for _, i := range at {
			copy(out[i:], d)
		}
		return out
	}
	run := func(b *testing.B, parallel bool) {
		c, err := New(b.TempDir(), nil)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		srv := httptest.NewServer(c.Handler())
		defer srv.Close()
		b.SetBytes(int64(len(tmpl)))
		var (
			mu   sync.Mutex
			next int
		)
		one := func() {
			mu.Lock()
			next++
			a := next
			mu.Unlock()
			resp, err := http.Post(srv.URL+wire.PathIngest, "application/json", bytes.NewReader(batchFor(a)))
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Errorf("status %d", resp.StatusCode)
			}
		}
		b.ResetTimer()
		if parallel {
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					one()
				}
			})
		} else {
			for b.Loop() {
				one()
			}
		}
		b.ReportMetric(float64(next*per)/b.Elapsed().Seconds(), "records/s")
		if got, want := c.Stats().Total, uint64(next*per); got != want {
			b.Fatalf("stored %d records, want %d", got, want)
		}
	}
	b.Run("serial", func(b *testing.B) { run(b, false) })
	b.Run("parallel", func(b *testing.B) { run(b, true) })
}

func TestFailedIsSticky(t *testing.T) {
	c, srv := start(t, t.TempDir())
	ingest(t, srv, records("a", 1))
	c.mu.Lock()
	c.fail(fmt.Errorf("collector: fsync: %w", os.ErrInvalid))
	c.mu.Unlock()
	body, _ := json.Marshal(wire.IngestBatch{Records: records("a", 1, 2)})
	for i := range 2 {
		if code, resp := post(t, srv.URL+wire.PathIngest, body, nil); code != http.StatusServiceUnavailable {
			t.Fatalf("ingest %d after failure: status %d (%s), want 503", i, code, resp)
		}
	}
	resp, err := http.Get(srv.URL + wire.PathHealth)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got, want := resp.StatusCode, http.StatusServiceUnavailable; got != want {
		t.Fatalf("healthz: got %d, want %d", got, want)
	}
}
