//go:build unix

package selfupdate

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// WatchCommand is the hidden command of this program that runs the
// watcher: BINARY WatchCommand... --dir DIR.
var WatchCommand = []string{"upgrade-watch"}

// Unit is the systemd unit this process runs under: $OUTPOST_UNIT when set
// (even empty, which means none), else, when systemd started the process
// ($INVOCATION_ID), the .service named in /proc/self/cgroup whose main
// process this is; "" otherwise. A relay an agent started for a quick
// deployment is in the agent's unit without being its main process: it
// re-executes in place rather than restart the agent's unit.
func Unit() string {
	if u, ok := os.LookupEnv("OUTPOST_UNIT"); ok {
		return u
	}
	if os.Getenv("INVOCATION_ID") == "" {
		return ""
	}
	b, _ := os.ReadFile("/proc/self/cgroup")
	return unitOf(b, os.Getpid(), func(unit string) (string, error) {
		return output("systemctl", "show", "--property", "MainPID", "--value", unit)
	})
}

// unitOf picks the .service of a /proc/PID/cgroup text and keeps it when
// pid is its main process (or systemd cannot say).
func unitOf(cgroup []byte, pid int, mainPID func(unit string) (string, error)) string {
	for _, l := range strings.Split(string(cgroup), "\n") {
		i := strings.LastIndexByte(l, ':')
		if i < 0 {
			continue
		}
		base := filepath.Base(l[i+1:])
		if !strings.HasSuffix(base, ".service") {
			continue
		}
		if m, err := mainPID(base); err == nil && m != strconv.Itoa(pid) {
			return ""
		}
		return base
	}
	return ""
}

// Restart is StartWatcher then Exec. Without systemd it returns only when
// it failed; under systemd it returns once the watcher runs, and the
// watcher restarts the unit (the process then gets SIGTERM).
func Restart(p Plan) error {
	if err := StartWatcher(p); err != nil {
		return err
	}
	return Exec(p)
}

// StartWatcher starts the watcher so that it outlives this process: under
// systemd as a transient unit (systemd-run --collect), which then installs
// p.Staged and restarts p.Unit; otherwise detached (its own session,
// reparented to init) from the previous binary. It returns when the
// watcher runs, or why it could not start; nothing is restarted then.
func StartWatcher(p Plan) error {
	if p.Unit != "" {
		name := fmt.Sprintf("outpost-upgrade-%d-%d", p.Command, time.Now().Unix())
		args := append([]string{"--collect", "--quiet", "--unit", name, "--", p.Binary}, WatchCommand...)
		return run("systemd-run", append(args, "--dir", p.Dir)...)
	}
	exe := p.Prev
	if _, err := os.Stat(exe); err != nil {
		exe = p.Binary // not installed yet
	}
	args := append(append([]string{}, WatchCommand...), "--dir", p.Dir, "--detach")
	var out bytes.Buffer
	cmd, err := startBusy(func() *exec.Cmd {
		c := exec.Command(exe, args...)
		c.Stdout, c.Stderr = &out, &out
		c.WaitDelay = time.Second
		return c
	})
	if err != nil {
		return fmt.Errorf("start the upgrade watcher: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("start the upgrade watcher: %v%s", err, lastLineOf(out.String()))
		}
		return nil
	case <-time.After(15 * time.Second):
		cmd.Process.Kill()
		return errors.New("start the upgrade watcher: no answer within 15s")
	}
}

// Detach is the watcher's first step (--detach): it starts the real
// watcher in its own session, with its output in DIR/upgrade/watch.log,
// and returns, so the process that asked does not keep it as a child.
func Detach(dir string) (pid int, err error) {
	if _, err := load(dir); errors.Is(err, os.ErrNotExist) {
		return 0, fmt.Errorf("no upgrade on trial in %s (no upgrade/trial.json)", dir)
	} else if err != nil {
		return 0, err
	}
	exe, err := os.Executable()
	if err != nil {
		return 0, err
	}
	args := append(append([]string{exe}, WatchCommand...), "--dir", dir)
	cmd, err := spawn(exe, args, "", filepath.Join(upgradeDir(dir), "watch.log"))
	if err != nil {
		return 0, err
	}
	pid = cmd.Process.Pid
	cmd.Process.Release()
	// For the operator (and tests) to find it: it ends on its own.
	os.WriteFile(WatcherPIDPath(dir), []byte(strconv.Itoa(pid)+"\n"), 0o600)
	return pid, nil
}

// WatcherPIDPath holds the detached watcher's PID (DIR/upgrade/watch.pid).
func WatcherPIDPath(dir string) string { return filepath.Join(upgradeDir(dir), "watch.pid") }

// Exec replaces this process with the new binary, same PID and argv
// (close listeners and files first: only stdin, stdout and stderr are
// inherited). Under systemd there is nothing to do: the watcher restarts
// the unit. It returns only on failure.
func Exec(p Plan) error {
	if p.Unit != "" {
		return nil
	}
	err := whileBusy(func() error { return syscall.Exec(p.Binary, p.Argv, os.Environ()) })
	return fmt.Errorf("exec %s: %w", p.Binary, err)
}

// spawn starts bin detached (new session, stdin /dev/null, output appended
// to logPath); the caller reaps or releases it.
func spawn(bin string, argv []string, cwd, logPath string) (*exec.Cmd, error) {
	lf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	defer lf.Close()
	cmd := &exec.Cmd{Path: bin, Args: argv, Dir: cwd, Env: os.Environ(), Stdout: lf, Stderr: lf,
		SysProcAttr: &syscall.SysProcAttr{Setsid: true}}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	return cmd, nil
}

// alive reports whether pid runs (a zombie does not).
func alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return !errors.Is(err, os.ErrNotExist) || !procMounted()
	}
	// pid (comm) STATE ...: comm may hold spaces and parentheses.
	if i := bytes.LastIndexByte(b, ')'); i >= 0 && i+2 < len(b) {
		return b[i+2] != 'Z' && b[i+2] != 'X'
	}
	return true
}

func procMounted() bool {
	_, err := os.Stat("/proc/self/stat")
	return err == nil
}

// stop ends pid: SIGTERM, then SIGKILL after wait.
func stop(pid int, wait time.Duration) {
	if !alive(pid) {
		return
	}
	syscall.Kill(pid, syscall.SIGTERM)
	deadline := time.Now().Add(wait)
	for alive(pid) {
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	for i := 0; i < 100 && alive(pid); i++ {
		time.Sleep(50 * time.Millisecond)
	}
}

// run runs a systemd tool found on PATH, its output in the error.
func run(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		msg := strings.TrimSpace(string(out))
		if msg == "" {
			msg = err.Error()
		}
		return fmt.Errorf("%s %s: %s", name, strings.Join(args, " "), clip(msg, 200))
	}
	return nil
}

// output runs a systemd tool and returns its trimmed output.
func output(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).Output()
	return strings.TrimSpace(string(out)), err
}
