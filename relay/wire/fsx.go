package wire

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// SyncDir fsyncs a directory so that creations, renames and deletions in it
// survive a crash. It is here, not in a package of its own, because the
// agent (agentsim) writes durable files too and may import only relay/wire.
// A platform that cannot sync a directory (EINVAL) is not an error.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if errors.Is(err, syscall.EINVAL) {
		err = nil
	}
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// WriteFileAtomic replaces path with b: it writes path+".tmp" with mode
// perm, fsyncs it, renames it over path and fsyncs the directory. A crash
// leaves either the old file or the new one, never a mix; the spool's
// recovery removes a leftover path+".tmp" by that name.
func WriteFileAtomic(path string, b []byte, perm os.FileMode) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	err = f.Chmod(perm) // a leftover temp file keeps its old mode otherwise
	if err == nil {
		_, err = f.Write(b)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err == nil {
		err = SyncDir(filepath.Dir(path))
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// OpenAppend opens (or creates) path for appending, with perm, and returns
// its size: the live segment of the cache ring and of the collector.
func OpenAppend(path string, perm os.FileMode) (*os.File, int64, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, perm)
	if err != nil {
		return nil, 0, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	return f, fi.Size(), nil
}

// AppendWhole writes b at the end of f, which holds size bytes, so that f
// never ends in part of b: after a failed write it cuts f back to size. It
// returns the new size (size itself on failure); cutErr is a failed cut,
// after which f may end in part of b.
func AppendWhole(f *os.File, size int64, b []byte) (newSize int64, err, cutErr error) {
	w, err := f.Write(b)
	if err == nil {
		return size + int64(w), nil, nil
	}
	if w > 0 {
		cutErr = f.Truncate(size)
	}
	return size, err, cutErr
}
