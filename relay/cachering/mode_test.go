package cachering

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// TestFileModes: cached events are readable by the relay's user only,
// unless the operator gave the directory to a group.
func TestFileModes(t *testing.T) {
	tests := []struct {
		name          string
		premade       fs.FileMode // 0: the ring creates the directory
		dirWant, want fs.FileMode
	}{
		{"created by the ring", 0, 0o700, 0o600},
		{"operator's group directory", 0o750, 0o750, 0o640},
		{"operator's private directory", 0o700, 0o700, 0o600},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "cache")
			if tc.premade != 0 {
				if err := os.Mkdir(dir, tc.premade); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(dir, tc.premade); err != nil {
					t.Fatal(err)
				}
			}
			r, err := Open(dir, Options{MaxBytes: 64 << 10, SegmentBytes: MinSegmentBytes})
			if err != nil {
				t.Fatal(err)
			}
			for i := range 100 { // several rotations
				if err := r.Append(line(i)); err != nil {
					t.Fatal(err)
				}
			}
			if err := r.Close(); err != nil {
				t.Fatal(err)
			}
			checkModes(t, dir, tc.dirWant, tc.want)
		})
	}
}

func checkModes(t *testing.T, dir string, dirWant, fileWant fs.FileMode) {
	t.Helper()
	n := 0
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		want := fileWant
		if d.IsDir() {
			want = dirWant
		}
		n++
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s: mode got %04o, want %04o", filepath.Base(p), got, want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 3 {
		t.Errorf("checked %d entries, want the directory and at least two files", n)
	}
}
