// Package fsx holds the two file-system steps every durable file of the
// relay needs: syncing a directory after creating or renaming in it, and
// replacing a file atomically. Spool, cache ring, collector and the relay's
// own identity and certificates use them.
package fsx

import (
	"fmt"
	"os"
	"path/filepath"
)

// SyncDir fsyncs a directory so that creations, renames and deletions in it
// survive a crash.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// WriteFileAtomic replaces path with b: it writes path+".tmp" with mode
// perm, fsyncs it, renames it over path and fsyncs the directory. A crash
// leaves either the old file or the new one, never a mix.
func WriteFileAtomic(path string, b []byte, perm os.FileMode) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
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
