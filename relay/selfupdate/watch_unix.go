//go:build unix

package selfupdate

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"outpost/relay/logs"
	"outpost/relay/wire"
)

// WatchPoll is how often the watcher looks at the trial and the process.
var WatchPoll = 100 * time.Millisecond

// watcher follows one trial (see Watch).
type watcher struct {
	dir     string
	log     *slog.Logger
	pid     int         // the new version's process (no systemd)
	crashes []time.Time // its exits within CrashWindow
	base    int         // the unit's NRestarts when the watch began
}

// Watch follows the trial in DIR/upgrade until it ends. Under systemd it
// first installs the staged binary and restarts the unit. The new version
// must mark itself healthy (Trial.Healthy) within the grace period; it may
// exit at most CrashLimit times within CrashWindow (without systemd the
// watcher starts it again itself, its output in DIR/upgrade/new.log).
// Otherwise the watcher rolls back: it stops the new version, puts the
// previous binary back, starts it (same argv) and records the outcome
// rolled_back with the reason and the new version's last log lines.
func Watch(dir string, log *slog.Logger) error {
	log = logs.OrDiscard(log)
	t, err := load(dir)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("no upgrade on trial in %s (no upgrade/trial.json)", dir)
	} else if err != nil {
		return err
	}
	w := &watcher{dir: dir, log: log, pid: t.PID}
	if t.Unit != "" {
		if err := w.installUnit(t); err != nil {
			return err
		}
	}
	log.Info("upgrade-watch: waiting for a healthy report", "from", t.From, "version", t.To, "command", t.Command, "grace", time.Duration(t.Grace))
	deadline := t.Started.Add(time.Duration(t.Grace))
	for {
		t, err := load(dir)
		if errors.Is(err, os.ErrNotExist) {
			return nil // ended and already reported
		} else if err != nil {
			return err
		}
		if t.Outcome != nil {
			log.Info("upgrade-watch: ended", "state", t.Outcome.State, "reason", t.Outcome.Reason)
			return nil
		}
		if n, err := w.exits(t); err != nil {
			return w.rollback(t, err.Error())
		} else if n > CrashLimit {
			return w.rollback(t, fmt.Sprintf("%s exited %d times within %s", t.To, n, CrashWindow))
		}
		if time.Now().After(deadline) {
			return w.rollback(t, fmt.Sprintf("%s did not report healthy within %s", t.To, time.Duration(t.Grace)))
		}
		time.Sleep(WatchPoll)
	}
}

// installUnit installs the staged binary (the unit's sandbox cannot) and
// restarts the unit into it; a failure ends the trial failed, the old
// version still running.
func (w *watcher) installUnit(t *Trial) error {
	if !t.Installed {
		if _, err := Install(t.Binary, t.Staged); err != nil {
			setOutcome(w.dir, Outcome{State: wire.StateFailed, Reason: err.Error()})
			return err
		}
		os.Remove(t.Staged)
		if err := withLock(w.dir, func() error {
			cur, err := load(w.dir)
			if err == nil {
				cur.Installed = true
				err = save(w.dir, cur)
			}
			return err
		}); err != nil {
			return err
		}
	}
	n, _ := output("systemctl", "show", "--property", "NRestarts", "--value", t.Unit)
	w.base, _ = strconv.Atoi(n)
	if err := run("systemctl", "restart", "--no-block", t.Unit); err != nil {
		return w.rollback(t, err.Error())
	}
	return nil
}

// exits counts the new version's exits within CrashWindow. Without
// systemd an exited process is started again here while under the limit.
func (w *watcher) exits(t *Trial) (int, error) {
	now := time.Now()
	if t.Unit != "" {
		n := len(t.Starts) - 1
		if v, err := output("systemctl", "show", "--property", "NRestarts", "--value", t.Unit); err == nil {
			if r, err := strconv.Atoi(v); err == nil && r-w.base > n {
				n = r - w.base
			}
		}
		if st, _ := output("systemctl", "is-active", t.Unit); st == "failed" {
			n = max(n, CrashLimit+1) // systemd gave up restarting it
		}
		return n, nil
	}
	if alive(w.pid) {
		return w.count(now), nil
	}
	w.crashes = append(w.crashes, now)
	if n := w.count(now); n > CrashLimit {
		return n, nil
	}
	cmd, err := spawn(t.Binary, t.Argv, t.Cwd, LogPath(w.dir))
	if err != nil {
		return 0, fmt.Errorf("%s exited and could not be started again: %v", t.To, err)
	}
	go cmd.Wait()
	w.pid = cmd.Process.Pid
	w.log.Warn("upgrade-watch: the new version exited: started again", "version", t.To, "exits", len(w.crashes), "within", CrashWindow, "pid", w.pid)
	return w.count(now), nil
}

func (w *watcher) count(now time.Time) int {
	keep := w.crashes[:0]
	for _, c := range w.crashes {
		if now.Sub(c) < CrashWindow {
			keep = append(keep, c)
		}
	}
	w.crashes = keep
	return len(keep)
}

// rollback ends the trial rolled_back (unless the new version reported
// healthy first), then stops the new version, restores the previous
// binary and starts it.
func (w *watcher) rollback(t *Trial, why string) error {
	// Describe already says "rolled back: "; the reason says why and what runs now.
	reason := why + "; " + t.From + " runs again"
	if logs := w.lastLog(t); logs != "" {
		reason += "; last log lines: " + logs
	}
	decided, err := setOutcome(w.dir, Outcome{State: wire.StateRolledBack, Reason: reason})
	if err != nil || !decided {
		return err
	}
	w.log.Warn("upgrade-watch: rolled back", "reason", reason)
	bin := t.Binary
	if t.Unit == "" {
		stop(w.pid, 10*time.Second)
	}
	if t.Installed || t.Unit == "" {
		if err := Restore(t.Binary, t.Prev); err != nil {
			w.log.Warn("upgrade-watch: restore failed: starting the previous binary itself", "binary", t.Prev, "err", err)
			bin = t.Prev
		}
	}
	if t.Unit != "" {
		run("systemctl", "reset-failed", t.Unit)
		return run("systemctl", "restart", "--no-block", t.Unit)
	}
	cmd, err := spawn(bin, t.Argv, t.Cwd, filepath.Join(upgradeDir(w.dir), "rollback.log"))
	if err != nil {
		return err
	}
	w.log.Info("upgrade-watch: the previous version started again", "version", t.From, "pid", cmd.Process.Pid)
	return cmd.Process.Release()
}

// lastLog is the new version's last log lines: DIR/upgrade/new.log, else
// (under systemd) the unit's journal.
func (w *watcher) lastLog(t *Trial) string {
	if s := lastLines(LogPath(w.dir), 3, 160); s != "" || t.Unit == "" {
		return s
	}
	out, err := exec.Command("journalctl", "--unit", t.Unit, "--lines", "3", "--no-pager", "--output", "cat").Output()
	if err != nil {
		return ""
	}
	p := filepath.Join(upgradeDir(w.dir), "journal.tail")
	if os.WriteFile(p, out, 0o600) != nil {
		return ""
	}
	defer os.Remove(p)
	return lastLines(p, 3, 160)
}
