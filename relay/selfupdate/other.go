//go:build !unix

package selfupdate

import (
	"errors"
	"log/slog"
)

var errUnsupported = errors.New("upgrading in place needs a unix host")

// WatchCommand: see restart_unix.go.
var WatchCommand = []string{"upgrade-watch"}

func withLock(dir string, f func() error) error { return f() }

// Unit is "" off unix.
func Unit() string { return "" }

// Restart is not supported off unix.
func Restart(p Plan) error { return errUnsupported }

// StartWatcher is not supported off unix.
func StartWatcher(p Plan) error { return errUnsupported }

// Exec is not supported off unix.
func Exec(p Plan) error { return errUnsupported }

// Detach is not supported off unix.
func Detach(dir string) (int, error) { return 0, errUnsupported }

// Watch is not supported off unix.
func Watch(dir string, log *slog.Logger) error { return errUnsupported }
