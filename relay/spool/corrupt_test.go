package spool

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestTornTail(t *testing.T) {
	const n = 10
	tests := []struct {
		name  string
		tear  func(t *testing.T, path string)
		valid int // records that survive
	}{
		{"garbage appended", func(t *testing.T, p string) {
			writeAt(t, p, fileSize(t, p), []byte("this is not a frame at all"))
		}, n},
		{"half header", func(t *testing.T, p string) {
			writeAt(t, p, fileSize(t, p), []byte{0x10, 0, 0})
		}, n},
		{"last frame cut in half", func(t *testing.T, p string) {
			if err := os.Truncate(p, fileSize(t, p)-frameLen/2); err != nil {
				t.Fatal(err)
			}
		}, n - 1},
		{"zero-filled tail", func(t *testing.T, p string) {
			writeAt(t, p, fileSize(t, p), make([]byte, 4096))
		}, n},
		{"checksum mismatch in last frame", func(t *testing.T, p string) {
			flipByte(t, p, fileSize(t, p)-1)
		}, n - 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			o, logs := opts(t, 1<<20)
			s := mustOpen(t, dir, o)
			appendRange(t, s, 0, n)
			abandon(s)
			tc.tear(t, segPath(dir, 1))

			s = mustOpen(t, dir, o)
			defer s.Close()
			if !logs.Has("torn tail") {
				t.Errorf("no torn tail log line")
			}
			if got, want := fileSize(t, segPath(dir, 1)), int64(tc.valid*frameLen); got != want {
				t.Errorf("segment size after recovery: got %d, want %d", got, want)
			}
			if st := s.Stats(); st.Corrupt != 0 || st.Segments != 1 || st.DroppedBytes == 0 {
				t.Errorf("Stats: got %+v, want Corrupt 0, 1 segment, the cut bytes counted", st)
			}
			checkRecords(t, s, seq(0, tc.valid))
			appendRange(t, s, 100, 102)
			checkRecords(t, s, append(seq(0, tc.valid), 100, 101))
		})
	}
}

func TestMidSegmentCorruption(t *testing.T) {
	// 12 records in three segments of four: 0-3, 4-7, 8-11.
	tests := []struct {
		name    string
		seg     uint64
		damage  func(t *testing.T, path string)
		want    []int
		newSegs int // segment files after reopen and one more Append
	}{
		{"checksum in sealed segment", 2, func(t *testing.T, p string) {
			flipByte(t, p, frameLen+frameHeader+20) // payload of record 5
		}, []int{0, 1, 2, 3, 4, 6, 7, 8, 9, 10, 11}, 4},
		{"length field in sealed segment", 2, func(t *testing.T, p string) {
			writeAt(t, p, frameLen+4, []byte{0, 0, 0, 0x7f}) // length of record 5
		}, []int{0, 1, 2, 3, 4, 6, 7, 8, 9, 10, 11}, 4},
		{"zero length in sealed segment", 2, func(t *testing.T, p string) {
			writeAt(t, p, 4, []byte{0, 0, 0, 0}) // length of record 4
		}, []int{0, 1, 2, 3, 5, 6, 7, 8, 9, 10, 11}, 4},
		{"magic in sealed segment", 2, func(t *testing.T, p string) {
			writeAt(t, p, 2*frameLen, []byte{0, 0, 0, 0}) // marker of record 6
		}, []int{0, 1, 2, 3, 4, 5, 7, 8, 9, 10, 11}, 4},
		{"checksum in last segment", 3, func(t *testing.T, p string) {
			flipByte(t, p, frameLen+frameHeader) // payload of record 9
		}, []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 11}, 4},
		{"two records in last segment", 3, func(t *testing.T, p string) {
			flipByte(t, p, frameHeader+1) // payloads of records 8 and 9
			flipByte(t, p, frameLen+frameHeader+1)
		}, []int{0, 1, 2, 3, 4, 5, 6, 7, 10, 11}, 4},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			o, logs := opts(t, seg4)
			s := mustOpen(t, dir, o)
			appendRange(t, s, 0, 12)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			tc.damage(t, segPath(dir, tc.seg))

			s = mustOpen(t, dir, o)
			defer s.Close()
			if !logs.Has("skipping") {
				t.Errorf("no corruption log line")
			}
			if got := s.Stats().Corrupt; got != 1 {
				t.Errorf("Corrupt: got %d, want 1", got)
			}
			checkRecords(t, s, tc.want)
			appendRange(t, s, 100, 101)
			checkRecords(t, s, append(slices.Clone(tc.want), 100))
			if got := len(segFiles(t, dir)); got != tc.newSegs {
				t.Errorf("segment files: got %d, want %d", got, tc.newSegs)
			}
		})
	}
}

func TestCorruptionWhileOpen(t *testing.T) {
	tests := []struct {
		name   string
		seg    uint64
		record int // index within the segment
		want   []int
	}{
		{"sealed segment", 2, 1, []int{0, 1, 2, 3, 4, 6, 7, 8, 9, 10, 11, 100}},
		{"active segment", 3, 1, []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 100}},
		{"last record of the active segment", 3, 3, []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 100}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			o, logs := opts(t, seg4)
			s := mustOpen(t, dir, o)
			defer s.Close()
			appendRange(t, s, 0, 12)
			flipByte(t, segPath(dir, tc.seg), int64(tc.record*frameLen+frameHeader+30))
			_, es := drain(t, s)
			if got := s.Stats().Corrupt; got != 1 || !logs.Has("checksum mismatch") {
				t.Errorf("Corrupt: got %d, want 1 with a log line", got)
			}
			// Appends after the damage must stay readable.
			appendRange(t, s, 100, 101)
			checkRecords(t, s, tc.want)
			if len(es) != len(tc.want)-1 {
				t.Errorf("first Peek: got %d records, want %d", len(es), len(tc.want)-1)
			}
		})
	}
}

func TestMissingSegment(t *testing.T) {
	dir := t.TempDir()
	o, logs := opts(t, seg4)
	s := mustOpen(t, dir, o)
	appendRange(t, s, 0, 20) // segments 1-5
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(segPath(dir, 3)); err != nil {
		t.Fatal(err)
	}
	s = mustOpen(t, dir, o)
	defer s.Close()
	if got := s.Stats().Corrupt; got != 1 || !logs.Has("missing") {
		t.Errorf("Corrupt: got %d, want 1 with a log line", got)
	}
	checkRecords(t, s, append(seq(0, 8), seq(12, 20)...))
}

func TestCursorRecovery(t *testing.T) {
	tests := []struct {
		name    string
		damage  func(t *testing.T, dir string)
		want    []int
		corrupt int64
		log     string
	}{
		{"cursor into missing segment", func(t *testing.T, dir string) {
			if err := os.Remove(segPath(dir, 2)); err != nil {
				t.Fatal(err)
			}
		}, seq(8, 20), 1, "missing segment"},
		{"cursor into missing last segments", func(t *testing.T, dir string) {
			for seq := uint64(2); seq <= 5; seq++ {
				if err := os.Remove(segPath(dir, seq)); err != nil {
					t.Fatal(err)
				}
			}
		}, nil, 1, "missing segment"},
		{"damaged cursor file", func(t *testing.T, dir string) {
			if err := os.WriteFile(filepath.Join(dir, cursorName), []byte("garbage"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, seq(4, 20), 1, "cursor file damaged"}, // segment 1 was deleted by Commit
		{"cursor past truncated data", func(t *testing.T, dir string) {
			if err := os.Truncate(segPath(dir, 2), frameLen); err != nil {
				t.Fatal(err)
			}
			if err := os.Remove(segPath(dir, 3)); err != nil {
				t.Fatal(err)
			}
		}, seq(12, 20), 1, "missing"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			o, logs := opts(t, seg4)
			s := mustOpen(t, dir, o)
			appendRange(t, s, 0, 20) // segments 1-5
			es, _ := s.Peek(6, 0)
			if err := s.Commit(es[5].Pos); err != nil { // cursor: segment 2, second record
				t.Fatal(err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			tc.damage(t, dir)

			s = mustOpen(t, dir, o)
			if got := s.Stats().Corrupt; got != tc.corrupt || !logs.Has(tc.log) {
				t.Errorf("Corrupt: got %d, want %d with log %q", got, tc.corrupt, tc.log)
			}
			checkRecords(t, s, tc.want)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			// The repaired cursor was persisted: a second Open is clean.
			s = mustOpen(t, dir, o)
			defer s.Close()
			if got := s.Stats().Corrupt; got != 0 {
				t.Errorf("Corrupt after second Open: got %d, want 0", got)
			}
			checkRecords(t, s, tc.want)
		})
	}
}
