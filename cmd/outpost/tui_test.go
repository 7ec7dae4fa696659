//go:build linux

package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// openPTY returns a new pseudo-terminal pair. Nothing answers on the
// master side unless the test writes: a terminal that never replies to
// queries.
func openPTY(t *testing.T, cols, rows uint16) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlock pty: %v", err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("pty number: %v", err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open pty slave: %v", err)
	}
	if err := unix.IoctlSetWinsize(int(s.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: rows, Col: cols}); err != nil {
		t.Fatalf("pty size: %v", err)
	}
	t.Cleanup(func() { m.Close(); s.Close() })
	return m, s
}

// ptyProc is the binary running with the pty as its controlling terminal,
// in the foreground (where a terminal query would be sent).
type ptyProc struct {
	cmd    *exec.Cmd
	master *os.File
	mu     sync.Mutex
	out    bytes.Buffer
	done   chan error
}

func startOnPTY(t *testing.T, c *cli, args ...string) *ptyProc {
	t.Helper()
	return startOnPTYSize(t, c, 80, 24, args...)
}

func startOnPTYSize(t *testing.T, c *cli, cols, rows uint16, args ...string) *ptyProc {
	t.Helper()
	master, slave := openPTY(t, cols, rows)
	cmd := c.command(context.Background(), args...)
	cmd.Env = append(cmd.Env, "TERM=xterm-256color")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	p := &ptyProc{cmd: cmd, master: master, done: make(chan error, 1)}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %v: %v", args, err)
	}
	slave.Close()
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := master.Read(buf)
			p.mu.Lock()
			p.out.Write(buf[:n])
			p.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
		}
	})
	return p
}

func (p *ptyProc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// waitFor polls the output for want until the deadline.
func (p *ptyProc) waitFor(t *testing.T, want string, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for time.Since(start) < within {
		if strings.Contains(p.output(), want) {
			return time.Since(start)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no %q on the terminal within %s; got:\n%q", want, within, p.output())
	return 0
}

func (p *ptyProc) wait(t *testing.T, within time.Duration) {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(within):
		t.Fatalf("still running after %s; terminal:\n%q", within, p.output())
	}
}

const bgQuery = "\x1b]11;?" // OSC 11: what is your background colour?

// TestNoTerminalQueryAtStart: bubbletea v1 asks the terminal for its
// background colour in a package init and waits up to 5 s for an answer, so
// linking the dashboard stalled every outpost command on a terminal that
// does not answer. No command may send the query.
func TestNoTerminalQueryAtStart(t *testing.T) {
	c := newCLI(t)
	c.ok("account", "create", "acme")
	c.ok("cluster", "create", "--name", "腾讯云-广州", "--address", "relay.gz.example")

	t.Run("version", func(t *testing.T) {
		p := startOnPTY(t, c, "version")
		p.wait(t, 4*time.Second) // the stall is 5 s
		if out := p.output(); strings.Contains(out, bgQuery) {
			t.Fatalf("outpost version sent the background-colour query: %q", out)
		}
	})
	t.Run("tui", func(t *testing.T) {
		start := time.Now()
		p := startOnPTY(t, c, "tui")
		p.waitFor(t, "腾讯云-广州", 4*time.Second)
		t.Logf("first frame with the cluster %s after start", time.Since(start).Round(time.Millisecond))
		if _, err := p.master.Write([]byte("q")); err != nil {
			t.Fatalf("write q: %v", err)
		}
		p.wait(t, 4*time.Second)
		out := p.output()
		if strings.Contains(out, bgQuery) {
			t.Errorf("outpost tui sent the background-colour query: %q", out)
		}
		if !strings.Contains(out, "\x1b[?1049l") {
			t.Errorf("the dashboard did not leave the alternate screen (terminal not restored): %q", out[max(0, len(out)-200):])
		}
		if code := p.cmd.ProcessState.ExitCode(); code != 0 {
			t.Errorf("exit code %d, want 0; terminal: %q", code, out)
		}
	})
}

func TestTUIRefusals(t *testing.T) {
	c := newCLI(t)
	t.Run("no store", func(t *testing.T) {
		c.fails(1, "no store in", "tui")
		if _, err := os.Stat(c.data + "/" + dbFileName); err == nil {
			t.Errorf("outpost tui created a store in the empty data directory")
		}
	})
	t.Run("not a terminal", func(t *testing.T) {
		c.ok("account", "create", "acme")
		c.fails(1, "needs a terminal", "tui")
	})
}

// TestUpRunsTheDashboard: `outpost up` on a terminal shows the dashboard
// instead of the text summary, keeps the relay's log off the screen, and
// quitting the dashboard stops the relay.
func TestUpRunsTheDashboard(t *testing.T) {
	c := newCLI(t)
	c.ok("account", "create", "acme")
	c.ok("cluster", "create", "--name", "腾讯云-广州", "--address", "relay.gz.example")
	p := startOnPTYSize(t, c, 120, 30, "up", "--listen", "https://127.0.0.1:0", "--listen", "http://127.0.0.1:0")
	p.waitFor(t, "relay running", 10*time.Second)
	p.waitFor(t, "腾讯云-广州", 5*time.Second)
	if _, err := os.Stat(filepath.Join(c.data, "run", "relay.json")); err != nil {
		t.Fatalf("relay run file: %v", err)
	}
	if strings.Contains(p.output(), "== outpost") {
		t.Errorf("the text summary was printed on a terminal")
	}
	if _, err := p.master.Write([]byte("q")); err != nil {
		t.Fatal(err)
	}
	p.wait(t, 25*time.Second)
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("up exited %d after q, want 0", code)
	}
	if _, err := os.Stat(filepath.Join(c.data, "run", "relay.json")); !os.IsNotExist(err) {
		t.Errorf("relay run file still there after the dashboard quit (err %v): the relay was not stopped", err)
	}
	if !strings.Contains(p.output(), "dashboard closed: stopping the relay") {
		t.Errorf("no word about stopping the relay: %q", p.output()[max(0, len(p.output())-300):])
	}
	if _, err := os.Stat(filepath.Join(c.data, "up.log")); err != nil {
		t.Errorf("relay log while the dashboard runs: %v", err)
	}
}
