package spool

import (
	"context"
	"slices"
	"testing"
	"time"
)

// TestPeekAfter: a reader that keeps batches in flight peeks each batch
// after the previous one (across segments), commits them in order, and a
// crash before a commit re-delivers from the last committed batch only.
func TestPeekAfter(t *testing.T) {
	dir := t.TempDir()
	o, _ := opts(t, 4*(frameHeader+recSize)) // 4 records a segment
	s := mustOpen(t, dir, o)
	appendRange(t, s, 0, 10)
	var (
		batches [][]Entry
		after   Position
	)
	for {
		es, err := s.PeekAfter(after, 3, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(es) == 0 {
			break
		}
		batches = append(batches, es)
		after = es[len(es)-1].Pos
	}
	var got []int
	for _, b := range batches {
		for _, e := range b {
			got = append(got, number(t, e.Payload))
		}
	}
	if want := seq(0, 10); !slices.Equal(got, want) {
		t.Fatalf("batches: got %v, want %v", got, want)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := s.WaitAfter(ctx, after); err != context.DeadlineExceeded {
		t.Fatalf("WaitAfter past the last record: got %v, want a timeout", err)
	}
	if err := s.Wait(context.Background()); err != nil {
		t.Fatalf("Wait with records past the cursor: %v", err)
	}
	// The first two batches acknowledged, in order; the rest in flight.
	for _, b := range batches[:2] {
		if err := s.Commit(b[len(b)-1].Pos); err != nil {
			t.Fatal(err)
		}
	}
	if es, _ := s.PeekAfter(batches[0][2].Pos, 1, 0); number(t, es[0].Payload) != 6 {
		t.Fatalf("PeekAfter a position behind the cursor: got %d, want 6 (the cursor)", number(t, es[0].Payload))
	}
	abandon(s) // crash
	s2 := mustOpen(t, dir, Options{SegmentBytes: o.SegmentBytes, Log: o.Log})
	defer s2.Close()
	checkRecords(t, s2, seq(6, 10))
}
