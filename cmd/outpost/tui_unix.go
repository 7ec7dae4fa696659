//go:build unix

package main

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// pidRunning reports whether pid is a running process (EPERM: it runs as
// another user).
func pidRunning(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := unix.Kill(pid, 0)
	return err == nil || errors.Is(err, unix.EPERM)
}

// redirectStderr points file descriptor 2 at path (appending) so that
// every log line of this process, including a runtime panic, lands there;
// restore points it back.
func redirectStderr(path string) (restore func(), err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	saved, err := unix.Dup(2)
	if err != nil {
		return nil, err
	}
	if err := unix.Dup2(int(f.Fd()), 2); err != nil {
		unix.Close(saved)
		return nil, err
	}
	return func() {
		unix.Dup2(saved, 2)
		unix.Close(saved)
	}, nil
}
