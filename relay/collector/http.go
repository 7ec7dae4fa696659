package collector

import (
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"outpost/relay/wire"
)

// errTooLarge marks a body that decompresses past MaxBody.
var errTooLarge = errors.New("body too large")

// Handler serves the ingest, stats and health endpoints; every error is a
// JSON wire.Error.
func (c *Collector) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc(wire.PathIngest, c.serveIngest)
	mux.HandleFunc(wire.PathCollStats, c.serveStats)
	mux.HandleFunc(wire.PathHealth, c.serveHealth)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", "no such endpoint")
	})
	return mux
}

func (c *Collector) serveIngest(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "use POST")
		return
	}
	body := io.Reader(http.MaxBytesReader(w, r.Body, MaxBody))
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(body)
		if err != nil {
			bodyError(w, fmt.Errorf("gzip: %w", err))
			return
		}
		defer zr.Close()
		body = &capReader{r: zr, left: MaxBody}
	default:
		writeError(w, http.StatusUnsupportedMediaType, "unsupported_encoding",
			fmt.Sprintf("Content-Encoding %q not supported (use gzip)", enc))
		return
	}

	var batch wire.IngestBatch
	dec := json.NewDecoder(body)
	if err := dec.Decode(&batch); err != nil {
		bodyError(w, err)
		return
	}
	// Read to the end: rejects trailing data and checks the gzip checksum.
	if _, err := dec.Token(); err != io.EOF {
		if err == nil {
			err = errors.New("trailing data after the batch")
		}
		bodyError(w, err)
		return
	}
	for i, rec := range batch.Records {
		switch {
		case rec.Agent == "":
			writeError(w, http.StatusBadRequest, "bad_record", fmt.Sprintf("record %d: empty agent", i))
			return
		case rec.Seq == 0:
			writeError(w, http.StatusBadRequest, "bad_record", fmt.Sprintf("record %d: seq 0", i))
			return
		}
	}

	ack, err := c.ingest(batch.Records)
	if err != nil {
		c.logf("collector: ingest from relay %q: %v", batch.Relay, err)
		writeError(w, http.StatusServiceUnavailable, "unavailable", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, ack)
}

// bodyError answers 413 for an oversized body and 400 for anything else.
func bodyError(w http.ResponseWriter, err error) {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) || errors.Is(err, errTooLarge) {
		writeError(w, http.StatusRequestEntityTooLarge, "too_large",
			fmt.Sprintf("body above %d bytes", MaxBody))
		return
	}
	writeError(w, http.StatusBadRequest, "bad_request", "malformed batch: "+err.Error())
}

func (c *Collector) serveStats(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "use GET")
		return
	}
	writeJSON(w, http.StatusOK, c.Stats())
}

func (c *Collector) serveHealth(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "use GET")
		return
	}
	c.mu.Lock()
	err := c.failed
	if c.closed {
		err = ErrClosed
	}
	c.mu.Unlock()
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "unavailable", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, kind, msg string) {
	writeJSON(w, code, wire.Error{Code: kind, Message: msg})
}

// capReader fails with errTooLarge once more than left bytes come out of
// r, bounding what a small gzip body may expand to.
type capReader struct {
	r    io.Reader
	left int64
}

func (c *capReader) Read(p []byte) (int, error) {
	if c.left <= 0 {
		var one [1]byte
		n, err := c.r.Read(one[:])
		if n > 0 {
			return 0, errTooLarge
		}
		return 0, err
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	return n, err
}
