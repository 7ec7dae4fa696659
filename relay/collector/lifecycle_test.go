package collector

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"outpost/relay/logs/logstest"
	"outpost/relay/wire"
)

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
			c, err := New(dir, logstest.New(t))
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
