package spool

import (
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestDamageResync: one damaged byte must cost at most the record it hit.
// Before record-by-record resynchronisation a byte flipped in already
// forwarded data dropped the whole acknowledged backlog behind it.
func TestDamageResync(t *testing.T) {
	const n, committed = 100, 50
	without := func(skip int) []int {
		return slices.DeleteFunc(seq(committed, n), func(i int) bool { return i == skip })
	}
	tests := []struct {
		name   string
		record int   // record whose bytes are damaged
		at     int64 // offset within its frame
		want   []int
	}{
		{"payload before the cursor", 10, frameHeader + 20, seq(committed, n)},
		{"header before the cursor", 10, 1, seq(committed, n)},
		{"record just before the cursor", committed - 1, frameHeader + 3, seq(committed, n)},
		{"payload after the cursor", 60, frameHeader + 20, without(60)},
		{"length after the cursor", 60, frameHeader - 5, without(60)},
		{"first record after the cursor", committed, 0, without(committed)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			o, logs := opts(t, 1<<20)
			s := mustOpen(t, dir, o)
			appendRange(t, s, 0, n)
			es, err := s.Peek(committed, 0)
			if err != nil || len(es) != committed {
				t.Fatalf("Peek: got %d records, %v", len(es), err)
			}
			cur := es[committed-1].Pos
			if err := s.Commit(cur); err != nil {
				t.Fatal(err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			flipByte(t, segPath(dir, 1), int64(tc.record)*frameLen+tc.at)

			s = mustOpen(t, dir, o)
			defer s.Close()
			checkRecords(t, s, tc.want)
			if s.cursor.seg != cur.seg || s.cursor.off != cur.off {
				t.Errorf("cursor: got %v, want %v (kept)", s.cursor, cur)
			}
			if logs.Has("next segment") || logs.Has("moving back") {
				t.Errorf("recovery gave up on the segment or moved the cursor: %q", logs.All())
			}
			st := s.Stats()
			if st.Corrupt != 1 || st.DroppedRecords != 1 || st.DroppedBytes != frameLen {
				t.Errorf("Stats: got Corrupt %d, dropped %d records %d bytes; want 1, 1, %d",
					st.Corrupt, st.DroppedRecords, st.DroppedBytes, frameLen)
			}
			// Writing continues behind the damage and survives a reopen.
			appendRange(t, s, 200, 202)
			want := append(slices.Clone(tc.want), 200, 201)
			checkRecords(t, s, want)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s = mustOpen(t, dir, o)
			checkRecords(t, s, want)
		})
	}
}

// TestLegacySegments drains a spool written by the previous frame format
// (testdata/v1: records 0-9 in segments of four, 0-2 committed) and keeps
// appending to its last segment in the current format.
func TestLegacySegments(t *testing.T) {
	dir := t.TempDir()
	copyDir(t, "testdata/v1", dir)
	o, logs := opts(t, seg4)
	s := mustOpen(t, dir, o)
	checkRecords(t, s, seq(3, 10))
	if got := s.Stats().Corrupt; got != 0 {
		t.Errorf("Corrupt: got %d, want 0 (%q)", got, logs.All())
	}
	appendRange(t, s, 100, 103)
	want := append(seq(3, 10), 100, 101, 102)
	checkRecords(t, s, want)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = mustOpen(t, dir, o)
	defer s.Close()
	es := checkRecords(t, s, want)
	if err := s.Commit(es[len(es)-1].Pos); err != nil {
		t.Fatal(err)
	}
	checkRecords(t, s, nil)
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(to, d.Name()), b, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestFileModes: event data is readable by the relay's user only.
func TestFileModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "spool")
	o, _ := opts(t, seg4)
	s := mustOpen(t, dir, o)
	appendRange(t, s, 0, 6)
	es, _ := s.Peek(1, 0)
	if err := s.Commit(es[0].Pos); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	checkModes(t, dir)
}

func checkModes(t *testing.T, dir string) {
	t.Helper()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		want := fs.FileMode(0o600)
		if d.IsDir() {
			want = 0o700
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s: mode got %04o, want %04o", p, got, want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
