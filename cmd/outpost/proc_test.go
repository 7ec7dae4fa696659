package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"
)

// Child processes of the tests (outpost relay, up, center, agent run):
// started with their output captured, killed when the test ends.

// syncBuffer is a goroutine-safe output sink for a child's stdout/stderr.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// proc is one running child process.
type proc struct {
	t              *testing.T
	label          string // for messages: the command line
	cmd            *exec.Cmd
	stdout, stderr *syncBuffer
	done           chan struct{}
	state          *os.ProcessState // set once done is closed
}

// startProc starts cmd; it is killed (if still running) when the test
// ends, and its output is logged if the test failed.
func startProc(t *testing.T, cmd *exec.Cmd, label string) *proc {
	t.Helper()
	p := &proc{t: t, label: label, cmd: cmd, stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.stdout, p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		cmd.Wait()
		p.state = cmd.ProcessState
		close(p.done)
	}()
	t.Cleanup(func() {
		if !p.exited() {
			cmd.Process.Kill()
		}
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			t.Errorf("%s: still running 10s after SIGKILL", label)
		}
		if t.Failed() {
			t.Logf("%s\n--- stdout\n%s--- stderr\n%s", label, p.stdout.String(), p.stderr.String())
		}
	})
	return p
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// code is the exit status once the process ended (-1 if a signal ended it).
func (p *proc) code() int { return p.state.ExitCode() }

func (p *proc) signal(sig os.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil && !p.exited() {
		p.t.Fatalf("signal %v: %v", sig, err)
	}
}

// waitExit waits up to d for the process to end and returns how it ended.
func (p *proc) waitExit(d time.Duration) *os.ProcessState {
	p.t.Helper()
	select {
	case <-p.done:
		return p.state
	case <-time.After(d):
		p.t.Fatalf("%s: still running after %s; stderr:\n%s", p.label, d, p.stderr.String())
		return nil
	}
}

// wantExit0 waits up to d for a clean exit (status 0).
func (p *proc) wantExit0(d time.Duration) {
	p.t.Helper()
	if st := p.waitExit(d); st.ExitCode() != 0 {
		p.t.Fatalf("%s: got %v, want exit 0; stderr:\n%s", p.label, st, p.stderr.String())
	}
}

// waitCond polls cond every 50 ms until it holds, failing after d; the
// process (if any) is described in the failure.
func waitCond(t *testing.T, p *proc, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			msg := ""
			if p != nil {
				msg = fmt.Sprintf("; %s exited=%v, stderr:\n%s", p.label, p.exited(), p.stderr.String())
			}
			t.Fatalf("timed out after %s waiting for %s%s", d, what, msg)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
