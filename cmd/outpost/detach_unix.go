//go:build unix

package main

import (
	"os/exec"
	"syscall"
)

// detach starts the child in its own session, so stopping the agent (or a
// terminal's Ctrl-C) leaves the relay running.
func detach(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
}
