package spool

import (
	"context"
	"errors"
	"fmt"
	"os"
	"outpost/relay/logs/logstest"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"
)

// Most tests use 100-byte payloads (108-byte frames) and 432-byte
// segments, so each segment holds exactly four records.
const (
	recSize  = 100
	frameLen = frameHeader + recSize
	seg4     = 4 * frameLen
)

// opts are the test options; the lines let tests assert on recovery reports.
func opts(t *testing.T, segBytes int64) (Options, *logstest.Lines) {
	l, lines := logstest.Record(t)
	return Options{SegmentBytes: segBytes, Log: l}, lines
}

func mustOpen(t *testing.T, dir string, o Options) *Spool {
	t.Helper()
	s, err := Open(dir, o)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

// payload encodes i in the first 8 bytes so tests can identify records.
func payload(i, size int) []byte {
	b := make([]byte, size)
	for j := range b {
		b[j] = byte('a' + i%26)
	}
	copy(b, fmt.Sprintf("%08d", i))
	return b
}

func number(t *testing.T, p []byte) int {
	t.Helper()
	n, err := strconv.Atoi(string(p[:8]))
	if err != nil {
		t.Fatalf("bad payload %q", p[:8])
	}
	return n
}

func appendRange(t *testing.T, s *Spool, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		if err := s.Append(payload(i, recSize)); err != nil {
			t.Fatalf("Append(%d): %v", i, err)
		}
	}
}

func seq(from, to int) []int {
	var r []int
	for i := from; i < to; i++ {
		r = append(r, i)
	}
	return r
}

// drain returns the numbers of all unconsumed records without committing.
func drain(t *testing.T, s *Spool) ([]int, []Entry) {
	t.Helper()
	es, err := s.Peek(0, 0)
	if err != nil {
		t.Fatalf("Peek: %v", err)
	}
	var got []int
	for _, e := range es {
		got = append(got, number(t, e.Payload))
	}
	return got, es
}

func checkRecords(t *testing.T, s *Spool, want []int) []Entry {
	t.Helper()
	got, es := drain(t, s)
	if !slices.Equal(got, want) {
		t.Fatalf("records: got %v, want %v", got, want)
	}
	if st := s.Stats(); st.Pending != int64(len(want)) {
		t.Errorf("Stats.Pending: got %d, want %d", st.Pending, len(want))
	}
	return es
}

// abandon drops a Spool the way a crash would: descriptors are closed
// without fsync or cursor update, and the directory lock is released.
func abandon(s *Spool) {
	s.rmu.Lock()
	defer s.rmu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	s.active.Close()
	s.rd.close()
	s.lock.Close()
}

func segPath(dir string, seq uint64) string { return filepath.Join(dir, segName(seq)) }

func segFiles(t *testing.T, dir string) []uint64 {
	t.Helper()
	seqs, err := listSegments(dir)
	if err != nil {
		t.Fatal(err)
	}
	return seqs
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

func writeAt(t *testing.T, path string, off int64, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

func flipByte(t *testing.T, path string, off int64) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	writeAt(t, path, off, []byte{b[off] ^ 0xff})
}

func TestRoundTrip(t *testing.T) {
	tests := []struct {
		name     string
		segBytes int64
		size     int
		n, batch int
	}{
		{"one segment", 1 << 20, 100, 50, 1},
		{"rotation", 1024, 100, 100, 1},
		{"batches across segments", 1024, 100, 100, 7},
		{"records larger than a segment", 64, 200, 20, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			o, _ := opts(t, tc.segBytes)
			s := mustOpen(t, dir, o)
			for i := 0; i < tc.n; i += tc.batch {
				var b [][]byte
				for j := i; j < min(i+tc.batch, tc.n); j++ {
					b = append(b, payload(j, tc.size))
				}
				if err := s.Append(b...); err != nil {
					t.Fatalf("Append: %v", err)
				}
			}
			st := s.Stats()
			if want := int64(tc.n * (frameHeader + tc.size)); st.Bytes != want || st.Pending != int64(tc.n) {
				t.Fatalf("Stats: got %+v, want Bytes %d Pending %d", st, want, tc.n)
			}
			if tc.segBytes < int64(tc.n*tc.size) && st.Segments < 2 {
				t.Errorf("Segments: got %d, want rotation", st.Segments)
			}

			first, err := s.Peek(10, 0)
			if err != nil || len(first) != 10 {
				t.Fatalf("Peek(10, 0): got %d records, %v; want 10", len(first), err)
			}
			again, _ := s.Peek(10, 0)
			if !slices.EqualFunc(first, again, func(a, b Entry) bool { return a.Pos == b.Pos }) {
				t.Errorf("second Peek got other records; Peek must not consume")
			}
			if es, _ := s.Peek(0, 3*tc.size); len(es) != 3 {
				t.Errorf("Peek(0, 3 payloads): got %d records, want 3", len(es))
			}
			if es, _ := s.Peek(5, 1); len(es) != 1 {
				t.Errorf("Peek(5, 1 byte): got %d records, want 1 (first always fits)", len(es))
			}
			if err := s.Commit(first[9].Pos); err != nil {
				t.Fatalf("Commit: %v", err)
			}
			if err := s.Commit(first[4].Pos); err != nil {
				t.Errorf("Commit behind cursor: got %v, want nil", err)
			}
			if err := s.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}

			s = mustOpen(t, dir, o)
			defer s.Close()
			es := checkRecords(t, s, seq(10, tc.n))
			if err := s.Commit(es[len(es)-1].Pos); err != nil {
				t.Fatalf("Commit: %v", err)
			}
			st = s.Stats()
			if st.Bytes != 0 || st.Pending != 0 || st.Segments != 1 {
				t.Errorf("Stats after full commit: got %+v, want 0 bytes, 0 pending, 1 segment", st)
			}
			if got := segFiles(t, dir); len(got) != 1 {
				t.Errorf("segment files after full commit: got %v, want 1", got)
			}
			appendRange(t, s, tc.n, tc.n+3)
			checkRecords(t, s, seq(tc.n, tc.n+3))
		})
	}
}

func TestErrFull(t *testing.T) {
	dir := t.TempDir()
	o, _ := opts(t, seg4)
	o.MaxBytes = 10 * frameLen
	s := mustOpen(t, dir, o)
	defer s.Close()
	appendRange(t, s, 0, 10)
	before := s.Stats()
	steps := []struct {
		name  string
		batch int
		want  error
	}{
		{"one more record", 1, ErrFull},
		{"batch", 3, ErrFull},
		{"batch above MaxBytes", 11, ErrTooLarge},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			var b [][]byte
			for i := range st.batch {
				b = append(b, payload(50+i, recSize))
			}
			if err := s.Append(b...); !errors.Is(err, st.want) {
				t.Errorf("Append: got %v, want %v", err, st.want)
			}
			if got := s.Stats(); got != before {
				t.Errorf("Stats: got %+v, want unchanged %+v", got, before)
			}
		})
	}
	var onDisk int64
	for _, seq := range segFiles(t, dir) {
		onDisk += fileSize(t, segPath(dir, seq))
	}
	if onDisk != 10*frameLen {
		t.Errorf("bytes on disk: got %d, want %d (nothing written)", onDisk, 10*frameLen)
	}

	es, _ := s.Peek(3, 0)
	if err := s.Commit(es[2].Pos); err != nil {
		t.Fatal(err)
	}
	if err := s.Append(payload(10, recSize), payload(11, recSize), payload(12, recSize)); err != nil {
		t.Fatalf("Append after Commit: got %v, want nil", err)
	}
	if err := s.Append(payload(13, recSize)); !errors.Is(err, ErrFull) {
		t.Errorf("Append at cap again: got %v, want ErrFull", err)
	}
	checkRecords(t, s, seq(3, 13))
}

func TestWait(t *testing.T) {
	dir := t.TempDir()
	o, _ := opts(t, seg4)
	s := mustOpen(t, dir, o)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := s.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Wait on empty spool: got %v, want DeadlineExceeded", err)
	}

	woke := make(chan error, 1)
	go func() { woke <- s.Wait(context.Background()) }()
	time.Sleep(10 * time.Millisecond)
	appendRange(t, s, 0, 1)
	select {
	case err := <-woke:
		if err != nil {
			t.Errorf("Wait after Append: got %v, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Wait did not wake after Append")
	}

	es, _ := s.Peek(1, 0)
	if err := s.Commit(es[0].Pos); err != nil {
		t.Fatal(err)
	}
	go func() { woke <- s.Wait(context.Background()) }()
	time.Sleep(10 * time.Millisecond)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-woke:
		if !errors.Is(err, ErrClosed) {
			t.Errorf("Wait after Close: got %v, want ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Wait did not wake on Close")
	}
}

func TestErrors(t *testing.T) {
	dir := t.TempDir()
	o, _ := opts(t, seg4)
	s := mustOpen(t, dir, o)
	appendRange(t, s, 0, 2)

	if _, err := Open(dir, o); !errors.Is(err, ErrLocked) {
		t.Errorf("second Open: got %v, want ErrLocked", err)
	}
	tests := []struct {
		name string
		err  error
		want error
	}{
		{"empty record", s.Append(payload(9, recSize), nil), ErrEmptyRecord},
		{"commit beyond data", s.Commit(Position{seg: 1, off: 5 * frameLen}), ErrBadPosition},
		{"commit unknown segment", s.Commit(Position{seg: 99, off: 8}), ErrBadPosition},
		{"commit zero position", s.Commit(Position{}), nil},
		{"append nothing", s.Append(), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !errors.Is(tc.err, tc.want) {
				t.Errorf("got %v, want %v", tc.err, tc.want)
			}
		})
	}
	checkRecords(t, s, seq(0, 2))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Append(payload(3, recSize)); !errors.Is(err, ErrClosed) {
		t.Errorf("Append after Close: got %v, want ErrClosed", err)
	}
	if _, err := s.Peek(1, 0); !errors.Is(err, ErrClosed) {
		t.Errorf("Peek after Close: got %v, want ErrClosed", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: got %v, want nil", err)
	}
}
