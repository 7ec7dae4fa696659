package collector

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"testing"

	"outpost/relay/wire"
)

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
