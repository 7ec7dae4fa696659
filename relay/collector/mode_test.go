package collector

import (
	"io/fs"
	"path/filepath"
	"testing"
)

// TestFileModes: stored events are readable by the collector's user only.
func TestFileModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "collector")
	_, srv := start(t, dir)
	ingest(t, srv, records("a1", 1, 2, 3))
	n := 0
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
		n++
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s: mode got %04o, want %04o", filepath.Base(p), got, want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 2 {
		t.Errorf("checked %d entries, want the directory and a segment", n)
	}
}
