package cachering

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// TestLineLargerThanSegment: a line that does not fit in a segment is
// refused and nothing is evicted; before, it was stored in a segment of
// its own, took the ring past its cap and deleted all older data.
func TestLineLargerThanSegment(t *testing.T) {
	const capBytes, segBytes = 64 << 10, 4 << 10
	tests := []struct {
		name string
		size int
	}{
		{"just over a segment", segBytes},
		{"over the cap", 2 * capBytes},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			r, err := Open(dir, Options{MaxBytes: capBytes, SegmentBytes: segBytes})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			for n := 1; n <= 100; n++ {
				if err := r.Append(line(n)); err != nil {
					t.Fatal(err)
				}
			}
			before := r.Stats()
			big, _ := json.Marshal(rec{N: 101, Pad: strings.Repeat("x", tc.size)})
			err = r.Append(line(101), big)
			var le *LineError
			if !errors.Is(err, ErrTooLarge) || !errors.As(err, &le) || le.Index != 1 || le.Limit != segBytes {
				t.Fatalf("Append: got %v, want ErrTooLarge for line 1 with limit %d", err, segBytes)
			}
			if got := r.Stats(); got != before {
				t.Errorf("Stats after the refusal: got %+v, want %+v (nothing written or evicted)", got, before)
			}
			if got := r.MaxLine(); got != segBytes {
				t.Errorf("MaxLine: got %d, want %d", got, segBytes)
			}
			if err := r.Append(line(101)); err != nil {
				t.Fatal(err)
			}
			d := readDisk(t, dir, DefaultFileName)
			if first := checkTail(t, d, 101); first != 1 || d.bytes > capBytes {
				t.Errorf("ring holds records %d..101 in %d bytes, want 1..101 within %d", first, d.bytes, capBytes)
			}
		})
	}
}
