//go:build unix

package selfupdate

import (
	"os"
	"path/filepath"
	"syscall"
)

// withLock runs f holding DIR/upgrade/lock (flock): the new process and
// the watcher both update the trial file.
func withLock(dir string, f func() error) error {
	if err := os.MkdirAll(upgradeDir(dir), 0o700); err != nil {
		return err
	}
	l, err := os.OpenFile(filepath.Join(upgradeDir(dir), "lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	defer l.Close()
	if err := syscall.Flock(int(l.Fd()), syscall.LOCK_EX); err != nil {
		return err
	}
	defer syscall.Flock(int(l.Fd()), syscall.LOCK_UN)
	return f()
}
