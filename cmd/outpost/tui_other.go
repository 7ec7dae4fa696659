//go:build !unix

package main

import "os"

func pidRunning(pid int) bool {
	p, err := os.FindProcess(pid)
	return err == nil && p != nil
}

// redirectStderr is not available here: log lines may overwrite the
// dashboard until it redraws.
func redirectStderr(string) (func(), error) { return func() {}, nil }
