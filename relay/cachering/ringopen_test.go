package cachering

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestOpenOptions(t *testing.T) {
	tests := []struct {
		name    string
		opts    Options
		wantErr error // nil: success; errAny: any error
		wantMax int64
		wantSeg int64
	}{
		{"defaults", Options{}, nil, MaxCap, MaxCap / 20},
		{"exactly 10GB", Options{MaxBytes: 10 * 1000 * 1000 * 1000}, nil, MaxCap, MaxCap / 20},
		{"above 10GB rejected", Options{MaxBytes: MaxCap + 1}, ErrCapTooLarge, 0, 0},
		{"10GiB rejected", Options{MaxBytes: 10 << 30}, ErrCapTooLarge, 0, 0},
		{"negative max", Options{MaxBytes: -1}, errAny, 0, 0},
		{"max below minimum segment", Options{MaxBytes: 1000}, errAny, 0, 0},
		{"negative segment", Options{SegmentBytes: -1}, errAny, 0, 0},
		{"segment raised to minimum", Options{MaxBytes: 1 << 20, SegmentBytes: 10}, nil, 1 << 20, MinSegmentBytes},
		{"segment clamped to cap", Options{MaxBytes: 64 << 10, SegmentBytes: 1 << 20}, nil, 64 << 10, 64 << 10},
		{"file name with a directory", Options{FileName: "a/export.log"}, errAny, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Open(t.TempDir(), tt.opts)
			switch {
			case tt.wantErr == nil && err != nil:
				t.Fatalf("got error %v, want none", err)
			case tt.wantErr == errAny && err == nil, tt.wantErr != nil && tt.wantErr != errAny && !errors.Is(err, tt.wantErr):
				t.Fatalf("got error %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			defer r.Close()
			if got, want := r.max, tt.wantMax; got != want {
				t.Errorf("max: got %d, want %d", got, want)
			}
			if got, want := r.seg, tt.wantSeg; got != want {
				t.Errorf("segment: got %d, want %d", got, want)
			}
		})
	}
}

var errAny = errors.New("any error")

func TestReopen(t *testing.T) {
	tests := []struct {
		name       string
		reopenMax  int64
		wantBytesF func(before int64) bool
	}{
		{"same cap continues", 64 << 10, func(b int64) bool { return b > 56<<10 }},
		{"smaller cap trims at open", 16 << 10, func(b int64) bool { return b <= 16<<10 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			opts := Options{MaxBytes: 64 << 10, SegmentBytes: 8 << 10}
			r, err := Open(dir, opts)
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for range 800 { // ~100 KB, past the cap
				n++
				if err := r.Append(line(n)); err != nil {
					t.Fatal(err)
				}
			}
			before := r.Stats()
			lastSeg := r.segs[len(r.segs)-1].num
			if err := r.Close(); err != nil {
				t.Fatal(err)
			}

			opts.MaxBytes = tt.reopenMax
			r, err = Open(dir, opts)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			after := r.Stats()
			if tt.reopenMax == 64<<10 && (after.Bytes != before.Bytes || after.Segments != before.Segments) {
				t.Fatalf("reopen: got %+v, want bytes and segments of %+v", after, before)
			}
			if !tt.wantBytesF(after.Bytes) {
				t.Fatalf("reopen: unexpected size %d", after.Bytes)
			}
			if got, _ := diskBytes(t, dir, DefaultFileName); got != after.Bytes {
				t.Fatalf("reopen: Stats.Bytes %d, disk %d", after.Bytes, got)
			}
			for range 400 {
				n++
				if err := r.Append(line(n)); err != nil {
					t.Fatal(err)
				}
			}
			if got, want := r.segs[len(r.segs)-1].num, lastSeg; got <= want {
				t.Fatalf("segment numbering: got newest %d, want > %d", got, want)
			}
			d := readDisk(t, dir, DefaultFileName)
			checkTail(t, d, n)
			if d.bytes > r.max+r.seg {
				t.Fatalf("%d bytes on disk, want <= %d", d.bytes, r.max+r.seg)
			}
		})
	}
}

func TestReopenCutsTornLine(t *testing.T) {
	dir := t.TempDir()
	r, err := Open(dir, Options{MaxBytes: 64 << 10, SegmentBytes: 8 << 10})
	if err != nil {
		t.Fatal(err)
	}
	for n := 1; n <= 3; n++ {
		if err := r.Append(line(n)); err != nil {
			t.Fatal(err)
		}
	}
	r.Close()
	live := filepath.Join(dir, DefaultFileName)
	f, err := os.OpenFile(live, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"n":4,"pad":"xx`) // crash in the middle of a write
	f.Close()

	r, err = Open(dir, Options{MaxBytes: 64 << 10, SegmentBytes: 8 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	// The cut is reported, so the relay can show it.
	st := r.Stats()
	if got, want := [2]int64{st.RecoveryDroppedRecords, st.RecoveryDroppedBytes}, [2]int64{1, int64(len(`{"n":4,"pad":"xx`))}; got != want {
		t.Errorf("recovery dropped (records, bytes): got %v, want %v", got, want)
	}
	if err := r.Append(line(4)); err != nil {
		t.Fatal(err)
	}
	checkTail(t, readDisk(t, dir, DefaultFileName), 4)
}
