package spool

import (
	"context"
	"fmt"
	"outpost/relay/logs/logstest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestConcurrentAppenders(t *testing.T) {
	tests := []struct {
		name     string
		interval time.Duration
	}{
		{"fsync per append", 0},
		{"group commit 2ms", 2 * time.Millisecond},
	}
	const writers, perWriter = 8, 100
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			o, _ := opts(t, 4096)
			o.SyncInterval = tc.interval
			s := mustOpen(t, dir, o)
			defer s.Close()

			got := make([][]int, writers)
			done := make(chan struct{})
			go func() { // the single reader
				defer close(done)
				for total := 0; total < writers*perWriter; {
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					err := s.Wait(ctx)
					cancel()
					if err != nil {
						t.Errorf("Wait: %v", err)
						return
					}
					es, err := s.Peek(37, 0)
					if err != nil {
						t.Errorf("Peek: %v", err)
						return
					}
					for _, e := range es {
						var w, i int
						fmt.Sscanf(string(e.Payload), "%d-%d", &w, &i)
						got[w] = append(got[w], i)
					}
					total += len(es)
					if len(es) > 0 {
						if err := s.Commit(es[len(es)-1].Pos); err != nil {
							t.Errorf("Commit: %v", err)
							return
						}
					}
				}
			}()

			var wg sync.WaitGroup
			for w := range writers {
				wg.Go(func() {
					for i := 0; i < perWriter; {
						var b [][]byte
						for range 1 + i%3 {
							if i < perWriter {
								b = append(b, fmt.Appendf(nil, "%02d-%06d-%s", w, i, strings.Repeat("x", 50)))
								i++
							}
						}
						if err := s.Append(b...); err != nil {
							t.Errorf("Append: %v", err)
							return
						}
					}
				})
			}
			wg.Wait()
			<-done
			for w := range writers {
				if !slices.Equal(got[w], seq(0, perWriter)) {
					t.Errorf("writer %d: got %v, want 0..%d in order", w, got[w], perWriter-1)
				}
			}
			if st := s.Stats(); st.Pending != 0 || st.Bytes != 0 || st.Segments != 1 {
				t.Errorf("Stats: got %+v, want drained", st)
			}
		})
	}
}

func TestGroupCommit(t *testing.T) {
	dir := t.TempDir()
	o, _ := opts(t, 1<<20)
	o.SyncInterval = 50 * time.Millisecond
	s := mustOpen(t, dir, o)
	defer s.Close()
	const n = 32
	var wg sync.WaitGroup
	startGate := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-startGate
			if err := s.Append(payload(i, recSize)); err != nil {
				t.Errorf("Append: %v", err)
			}
		})
	}
	close(startGate)
	wg.Wait()
	s.mu.Lock()
	syncs := s.syncs
	s.mu.Unlock()
	if syncs >= n/2 {
		t.Errorf("fsyncs for %d concurrent Appends: got %d, want far fewer", n, syncs)
	}
	t.Logf("%d Appends, %d fsyncs", n, syncs)

	// SyncInterval spaces fsyncs: the second of two back-to-back Appends
	// waits for the interval.
	start := time.Now()
	appendRange(t, s, 100, 102)
	if got := time.Since(start); got < o.SyncInterval {
		t.Errorf("two sequential Appends took %v, want >= SyncInterval %v", got, o.SyncInterval)
	}
}

// BenchmarkAppend measures parallel single-record Appends of 200 bytes.
func BenchmarkAppend(b *testing.B) {
	for _, interval := range []time.Duration{0, 2 * time.Millisecond} {
		b.Run("SyncInterval="+interval.String(), func(b *testing.B) {
			s, err := Open(b.TempDir(), Options{MaxBytes: 1 << 40, SyncInterval: interval, Log: logstest.New(b)})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			p := payload(1, 200)
			b.SetBytes(int64(len(p)))
			b.SetParallelism(32)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := s.Append(p); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
		})
	}
	// As the relay appends: batches of 500 from 8 connections, 5ms group
	// commit (its default SpoolSync).
	b.Run("batch500/SyncInterval=5ms", func(b *testing.B) {
		s, err := Open(b.TempDir(), Options{MaxBytes: 1 << 40, SyncInterval: 5 * time.Millisecond, Log: logstest.New(b)})
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		batch := make([][]byte, 500)
		for i := range batch {
			batch[i] = payload(i, 200)
		}
		b.SetBytes(500 * 200)
		b.SetParallelism(4) // 8 appenders on 2 CPUs
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := s.Append(batch...); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N*500)/b.Elapsed().Seconds(), "records/s")
	})
}
