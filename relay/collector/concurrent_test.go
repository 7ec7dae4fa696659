package collector

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"outpost/relay/wire"
)

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
// through a real listener and reports records/s and MB/s of batches: JSON
// batches (what nginx -> center carries in make perf) and record frames
// (what relays send).
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
	// framesFor is batchFor as record frames (the template's records as
	// the collector stores them, the agent number patched, CRCs computed).
	var tl wire.Lines
	if !wire.ScanIngest(&tl, tmpl) {
		b.Fatal("bench batch not scanned")
	}
	recs := make([][]byte, tl.Len())
	for i := range recs {
		recs[i] = slices.Clone(tl.Line(i))
	}
	agentAt := len(`{"agent":"bench-`)
	framesFor := func(agent int) []byte {
		d := fmt.Sprintf("%08d", agent)
		out := make([]byte, 0, len(tl.Buf)+per*8)
		var rec []byte
		for _, r := range recs {
			rec = append(rec[:0], r...)
			copy(rec[agentAt:], d)
			out = wire.AppendRecordFrame(out, rec)
		}
		return out
	}
	run := func(b *testing.B, parallel, framed bool) {
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
			body, ct := batchFor(a), "application/json"
			if framed {
				body, ct = framesFor(a), wire.ContentTypeRecords
			}
			resp, err := http.Post(srv.URL+wire.PathIngest, ct, bytes.NewReader(body))
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
	b.Run("serial", func(b *testing.B) { run(b, false, false) })
	b.Run("parallel", func(b *testing.B) { run(b, true, false) })
	b.Run("frames/serial", func(b *testing.B) { run(b, false, true) })
	b.Run("frames/parallel", func(b *testing.B) { run(b, true, true) })
}
