package collector

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"outpost/relay/internal/httpbody"
	"outpost/relay/wire"
)

// Handler serves the ingest, stats and health endpoints; every error is a
// JSON wire.Error.
func (c *Collector) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc(wire.PathIngest, c.serveIngest)
	mux.HandleFunc(wire.PathCollStats, c.serveStats)
	mux.HandleFunc(wire.PathHealth, c.serveHealth)
	mux.HandleFunc("GET "+wire.PathMetrics, c.metricsHandler())
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, wire.CodeNotFound, "no such endpoint")
	})
	return handler{mux, c}
}

func (c *Collector) serveIngest(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, http.StatusMethodNotAllowed, wire.CodeMethodNotAllowed, "use POST")
		return
	}
	raw, err := httpbody.Read(w, r, MaxBody)
	if err != nil {
		bodyError(w, err)
		return
	}
	l := linesPool.Get().(*wire.Lines)
	defer putLines(l)
	if wire.IsRecordFrames(r.Header.Get("Content-Type")) {
		if err := wire.ScanRecordFrames(l, raw); err != nil {
			writeError(w, http.StatusBadRequest, wire.CodeBadRecord, err.Error())
			return
		}
	} else if !wire.ScanIngest(l, raw) || hasSeqZero(l) {
		if !decodeIngest(w, l, raw) {
			return
		}
	}
	ack, err := c.ingestLines(l)
	if err != nil {
		c.log.Warn("collector: ingest failed", "relay", l.Relay, "err", err)
		writeError(w, http.StatusServiceUnavailable, wire.CodeUnavailable, err.Error())
		return
	}
	httpbody.WriteJSON(w, http.StatusOK, ack)
}

// decodeIngest is the encoding/json path for what wire.ScanIngest leaves
// aside: it gives every malformed batch its answer (false: answered) and
// encodes a good one into l.
func decodeIngest(w http.ResponseWriter, l *wire.Lines, raw []byte) bool {
	var batch wire.IngestBatch
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&batch); err != nil {
		bodyError(w, err)
		return false
	}
	// Read to the end: rejects trailing data.
	if _, err := dec.Token(); err != io.EOF {
		if err == nil {
			err = errors.New("trailing data after the batch")
		}
		bodyError(w, err)
		return false
	}
	for i, rec := range batch.Records {
		switch {
		case rec.Agent == "":
			writeError(w, http.StatusBadRequest, wire.CodeBadRecord, fmt.Sprintf("record %d: empty agent", i))
			return false
		case rec.Seq == 0:
			writeError(w, http.StatusBadRequest, wire.CodeBadRecord, fmt.Sprintf("record %d: seq 0", i))
			return false
		}
	}
	if err := encodeRecords(l, batch.Records); err != nil {
		writeError(w, http.StatusBadRequest, wire.CodeBadRecord, err.Error())
		return false
	}
	l.Relay = batch.Relay
	return true
}

// bodyError answers 413 for an oversized body, 415 for an unsupported
// encoding and 400 for anything else.
func bodyError(w http.ResponseWriter, err error) {
	switch code, kind := httpbody.Status(err); code {
	case http.StatusRequestEntityTooLarge:
		writeError(w, code, kind, fmt.Sprintf("body above %d bytes", MaxBody))
	case http.StatusUnsupportedMediaType:
		writeError(w, code, kind, err.Error())
	default:
		writeError(w, http.StatusBadRequest, wire.CodeBadRequest, "malformed batch: "+err.Error())
	}
}

func (c *Collector) serveStats(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, http.StatusMethodNotAllowed, wire.CodeMethodNotAllowed, "use GET")
		return
	}
	httpbody.WriteJSON(w, http.StatusOK, c.Stats())
}

func (c *Collector) serveHealth(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, http.StatusMethodNotAllowed, wire.CodeMethodNotAllowed, "use GET")
		return
	}
	c.mu.Lock()
	err := c.failed
	if c.closed {
		err = ErrClosed
	}
	c.mu.Unlock()
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, wire.CodeUnavailable, err.Error())
		return
	}
	httpbody.WriteJSON(w, http.StatusOK, map[string]string{"status": wire.HealthOK})
}

// writeError answers a wire.Error (httpbody.WriteError, shared with the relay).
func writeError(w http.ResponseWriter, code int, kind, msg string) {
	httpbody.WriteError(w, code, kind, msg)
}
