package wire

import (
	"os"
	"path/filepath"
	"testing"
)

func TestWriteFileAtomic(t *testing.T) {
	for _, tt := range []struct {
		name   string
		before []byte      // nil: no file yet
		tmp    os.FileMode // mode of a temp file left by a crash, 0: none
		perm   os.FileMode
	}{
		{"new file", nil, 0, 0o600},
		{"replaces an existing file", []byte("old contents, longer than the new"), 0, 0o644},
		{"leftover temp file with a wider mode", nil, 0o644, 0o600},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "f")
			if tt.before != nil {
				if err := os.WriteFile(path, tt.before, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if tt.tmp != 0 {
				if err := os.WriteFile(path+".tmp", []byte("half"), tt.tmp); err != nil {
					t.Fatal(err)
				}
			}
			if err := WriteFileAtomic(path, []byte("new"), tt.perm); err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(path)
			if err != nil || string(got) != "new" {
				t.Errorf("got %q %v, want %q", got, err, "new")
			}
			if _, err := os.Stat(path + ".tmp"); !os.IsNotExist(err) {
				t.Errorf("temp file left behind: %v", err)
			}
			if st, _ := os.Stat(path); st.Mode().Perm() != tt.perm {
				t.Errorf("mode: got %v, want %v", st.Mode().Perm(), tt.perm)
			}
		})
	}
	t.Run("missing directory", func(t *testing.T) {
		if err := WriteFileAtomic(filepath.Join(t.TempDir(), "no", "f"), []byte("x"), 0o600); err == nil {
			t.Error("got nil error, want one")
		}
	})
}

func TestAppendWhole(t *testing.T) {
	path := filepath.Join(t.TempDir(), "seg")
	if err := os.WriteFile(path, []byte("a\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Run("appends and counts", func(t *testing.T) {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		size, err, cutErr := AppendWhole(f, 2, []byte("bc\n"))
		if size != 5 || err != nil || cutErr != nil {
			t.Fatalf("AppendWhole = %d, %v, %v; want 5, nil, nil", size, err, cutErr)
		}
	})
	t.Run("a failed write keeps the size", func(t *testing.T) {
		f, err := os.Open(path) // read-only: the write fails
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		size, err, cutErr := AppendWhole(f, 5, []byte("d\n"))
		if size != 5 || err == nil || cutErr != nil {
			t.Fatalf("AppendWhole = %d, %v, %v; want 5, an error, nil", size, err, cutErr)
		}
	})
	if b, _ := os.ReadFile(path); string(b) != "a\nbc\n" {
		t.Errorf("file holds %q, want %q", b, "a\nbc\n")
	}
}

func TestOpenAppend(t *testing.T) {
	path := filepath.Join(t.TempDir(), "live")
	f, size, err := OpenAppend(path, 0o600)
	if err != nil || size != 0 {
		t.Fatalf("OpenAppend(new) = %d, %v; want 0, nil", size, err)
	}
	f.Write([]byte("abc\n"))
	f.Close()
	f, size, err = OpenAppend(path, 0o600)
	if err != nil || size != 4 {
		t.Fatalf("OpenAppend(existing) = %d, %v; want 4, nil", size, err)
	}
	f.Close()
	if _, _, err := OpenAppend(filepath.Join(path, "under-a-file"), 0o600); err == nil {
		t.Error("OpenAppend under a file: got no error")
	}
}
