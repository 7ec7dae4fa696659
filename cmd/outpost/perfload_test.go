//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The event load of the performance harness: a few HTTP/1.1 connections,
// each posting batches of fixed-size records as fast as they are
// acknowledged. Bodies are built by appending into one buffer per
// connection (no JSON encoding), so the generator's own CPU stays small
// beside the processes it measures.

const (
	perfEventBytes = 200 // one record as the agent sends it
	perfBatch      = 500
	perfConns      = 8
)

// blastConn is one connection's target: where to post, with which
// credentials, and how its records are written.
type blastConn struct {
	url   string
	auth  string // Authorization header
	agent string // stamped into each record when posting to a collector ("" for a relay)
	relay bool   // the body is an ingest batch ({"relay":...,"records":...})
	seq   *uint64
	acked *int64 // events acknowledged on this connection, over all runs (may be nil)
}

type blastResult struct {
	events    int64 // acknowledged durable
	elapsed   time.Duration
	throttled int64 // 429 answers
	errors    int64
	firstErr  string
}

func (r blastResult) evPerSec() float64 { return float64(r.events) / r.elapsed.Seconds() }
func (r blastResult) mbPerSec() float64 { return r.evPerSec() * perfEventBytes / 1e6 }

// appendRecord writes one record of exactly perfEventBytes (without the
// agent field a collector batch adds).
func appendRecord(b []byte, agent string, seq uint64) []byte {
	b = append(b, '{')
	if agent != "" {
		b = append(b, `"agent":"`...)
		b = append(b, agent...)
		b = append(b, `",`...)
	}
	mark := len(b)
	b = append(b, `"seq":`...)
	b = strconv.AppendUint(b, seq, 10)
	b = append(b, `,"time":"2026-12-02T00:00:00Z","type":"perf","data":{"pad":"`...)
	pad := perfEventBytes - (len(b) - mark + 1) - len(`"}}`)
	for range max(pad, 0) {
		b = append(b, 'x')
	}
	return append(b, `"}}`...)
}

func (c blastConn) body(buf []byte) []byte {
	buf = buf[:0]
	if c.relay {
		buf = append(buf, `{"relay":"perf","records":[`...)
	} else {
		buf = append(buf, `{"records":[`...)
	}
	for i := range perfBatch {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = appendRecord(buf, c.agent, atomic.AddUint64(c.seq, 1))
	}
	return append(buf, "]}"...)
}

// blast posts batches on every connection for d and counts what was
// acknowledged: a relay's "acked" list, a collector's accepted and
// duplicate counts.
func blast(t *testing.T, conns []blastConn, d time.Duration) blastResult {
	t.Helper()
	var res blastResult
	var mu sync.Mutex
	start := time.Now()
	deadline := start.Add(d)
	var last atomic.Int64
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tr := &http.Transport{MaxIdleConnsPerHost: 1, DisableCompression: true,
				DialContext: (&net.Dialer{Timeout: 3 * time.Second}).DialContext}
			defer tr.CloseIdleConnections()
			hc := &http.Client{Transport: tr, Timeout: 60 * time.Second}
			var buf []byte
			for time.Now().Before(deadline) {
				buf = c.body(buf)
				n, status, err := postBatch(hc, c, buf)
				mu.Lock()
				switch {
				case err != nil:
					res.errors++
					if res.firstErr == "" {
						res.firstErr = err.Error()
					}
				case status == http.StatusTooManyRequests:
					res.throttled++
				default:
					res.events += n
					if c.acked != nil {
						*c.acked += n
					}
				}
				mu.Unlock()
				if err != nil || status != http.StatusOK {
					time.Sleep(100 * time.Millisecond)
				}
				last.Store(int64(time.Since(start)))
			}
		}()
	}
	wg.Wait()
	res.elapsed = time.Duration(last.Load())
	if res.errors > 0 {
		t.Logf("  %d failed posts (first: %s)", res.errors, res.firstErr)
	}
	return res
}

func postBatch(hc *http.Client, c blastConn, body []byte) (int64, int, error) {
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return 0, 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", c.auth)
	resp, err := hc.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return 0, 0, err
	}
	if resp.StatusCode == http.StatusTooManyRequests {
		return 0, resp.StatusCode, nil
	}
	if resp.StatusCode != http.StatusOK {
		return 0, resp.StatusCode, fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(b))
	}
	var ack struct {
		Acked      []uint64 `json:"acked"`
		Accepted   int64    `json:"accepted"`
		Duplicates int64    `json:"duplicates"`
	}
	if err := json.Unmarshal(b, &ack); err != nil {
		return 0, resp.StatusCode, fmt.Errorf("answer %q: %v", b, err)
	}
	return int64(len(ack.Acked)) + ack.Accepted + ack.Duplicates, resp.StatusCode, nil
}

// diskLimit is what the disk takes when written in appends of one batch
// (500 records of 200 B) and fsynced every 5 ms (the relay's spool spaces
// its fsyncs 5 ms apart): bytes made durable per second.
func diskLimit(t *testing.T, dir string, d time.Duration) float64 {
	t.Helper()
	path := filepath.Join(dir, "disk-limit.bin")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer os.Remove(path)
	defer f.Close()
	chunk := bytes.Repeat([]byte("x"), perfBatch*perfEventBytes)
	written := int64(0)
	start := time.Now()
	lastSync := start
	for time.Since(start) < d {
		if _, err := f.Write(chunk); err != nil {
			t.Fatal(err)
		}
		written += int64(len(chunk))
		if time.Since(lastSync) >= 5*time.Millisecond {
			if err := f.Sync(); err != nil {
				t.Fatal(err)
			}
			lastSync = time.Now()
		}
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	return float64(written) / time.Since(start).Seconds() / 1e6
}
