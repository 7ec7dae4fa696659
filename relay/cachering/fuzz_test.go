package cachering

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzRing: Open accepts whatever a crash or an operator left in the live
// file and a rotated segment, and then, for Appends of fuzzed sizes, the
// ring never holds more than its cap, a line that fits is on disk after
// its Append, and a line larger than a segment is refused without
// evicting anything.
func FuzzRing(f *testing.F) {
	f.Add([]byte("{\"n\":1}\n{\"n\":2"), []byte("{\"n\":0}\n"), []byte{10, 200, 30, 255, 1})
	f.Add([]byte(nil), []byte(nil), []byte{255, 255, 255, 255})
	f.Add(bytes.Repeat([]byte("x"), 9000), []byte("\n\n\n"), []byte{0, 1, 2})
	f.Fuzz(func(t *testing.T, live, rotated, sizes []byte) {
		const capBytes, segBytes = 16 << 10, 4 << 10
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, DefaultFileName), live, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, DefaultFileName+".000001"), rotated, 0o600); err != nil {
			t.Fatal(err)
		}
		r, err := Open(dir, Options{MaxBytes: capBytes, SegmentBytes: segBytes})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		b, err := os.ReadFile(filepath.Join(dir, DefaultFileName))
		if err != nil {
			t.Fatal(err)
		}
		if len(b) > 0 && b[len(b)-1] != '\n' {
			t.Fatalf("live file does not end in a newline after Open")
		}
		if st := r.Stats(); st.RecoveryDroppedBytes != int64(len(live)-len(b)) {
			t.Fatalf("RecoveryDroppedBytes: got %d, want %d", st.RecoveryDroppedBytes, len(live)-len(b))
		}
		for i, sz := range sizes[:min(len(sizes), 64)] {
			l, _ := json.Marshal(map[string]any{"i": i, "p": strings.Repeat("y", int(sz)*24)})
			before := r.Stats()
			err := r.Append(l)
			st := r.Stats()
			switch {
			case int64(len(l))+1 > segBytes:
				if err == nil || st != before {
					t.Fatalf("line of %d bytes: got %v and %+v, want ErrTooLarge and nothing changed", len(l)+1, err, st)
				}
				continue
			case err != nil:
				t.Fatalf("Append: %v", err)
			}
			if st.Bytes > capBytes {
				t.Fatalf("ring holds %d bytes in %d files, cap %d", st.Bytes, st.Segments, capBytes)
			}
			got, err := os.ReadFile(filepath.Join(dir, DefaultFileName))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasSuffix(got, append(l, '\n')) {
				t.Fatalf("line %d not at the end of the live file", i)
			}
		}
	})
}
