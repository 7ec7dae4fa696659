//go:build !unix

package main

import "os/exec"

// detach does nothing where the platform has no sessions: the relay stays
// in the agent's process group.
func detach(*exec.Cmd) {}
