package selfupdate

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"outpost/relay/wire"
)

// DefaultGrace is how long a new version has to report healthy.
const DefaultGrace = 2 * time.Minute

// CrashLimit is how many exits within CrashWindow a new version may have
// before it is rolled back (more than two crashes in a minute).
const (
	CrashLimit  = 2
	CrashWindow = time.Minute
)

// Plan is one upgrade about to restart into a new binary.
type Plan struct {
	Command int64  `json:"command"` // the upgrade command reported on
	From    string `json:"from"`    // running version
	To      string `json:"to"`      // new version
	Binary  string `json:"binary"`  // the installed binary (the new version after Install)
	Prev    string `json:"prev"`    // the previous binary kept by Install
	// Staged is the self-tested new binary; under systemd the watcher
	// installs it (the unit's sandbox keeps the binary's directory
	// read-only to the service itself).
	Staged string        `json:"staged,omitempty"`
	Argv   []string      `json:"argv"`          // argv to run the binary with (default os.Args)
	Cwd    string        `json:"cwd,omitempty"` // working directory (default this one)
	Unit   string        `json:"unit,omitempty"`
	Grace  wire.Duration `json:"grace"`
	Dir    string        `json:"-"` // DIR; the trial lives in DIR/upgrade
}

// Trial is an upgrade on trial, kept in DIR/upgrade/trial.json: written by
// Begin, updated by the new process (Start, Healthy) and by the watcher
// (Installed, the outcome).
type Trial struct {
	Plan
	PID       int         `json:"pid"` // the process that restarts (exec keeps its PID)
	Started   time.Time   `json:"started"`
	Installed bool        `json:"installed"`
	Starts    []time.Time `json:"starts,omitempty"` // starts of the new version
	HealthyAt time.Time   `json:"healthy,omitzero"`
	Outcome   *Outcome    `json:"outcome,omitempty"`
}

// Outcome ends a trial: wire.StateDone, StateRolledBack or StateFailed.
type Outcome struct {
	State  wire.State `json:"state"`
	Reason string     `json:"reason,omitempty"`
	At     time.Time  `json:"at"`
}

// ErrRolledBack is Healthy's answer when the watcher already decided.
var ErrRolledBack = errors.New("the watcher rolled this upgrade back")

func upgradeDir(dir string) string { return filepath.Join(dir, "upgrade") }
func trialPath(dir string) string  { return filepath.Join(upgradeDir(dir), "trial.json") }

// LogPath is the new version's log during its trial (DIR/upgrade/new.log);
// its last lines go with a rollback.
func LogPath(dir string) string { return filepath.Join(upgradeDir(dir), "new.log") }

// Begin records the trial of p before the restart, filling the defaults
// (argv, working directory, prev, grace) and returning the completed plan.
// It refuses while another trial is open.
func Begin(dir string, p Plan) (Plan, error) {
	if p.Binary == "" || p.To == "" {
		return p, fmt.Errorf("upgrade: the plan names no binary or version")
	}
	p.Dir = dir
	if p.Prev == "" {
		p.Prev = PrevPath(p.Binary)
	}
	if len(p.Argv) == 0 {
		p.Argv = os.Args
	}
	if p.Cwd == "" {
		p.Cwd, _ = os.Getwd()
	}
	if p.Grace <= 0 {
		p.Grace = wire.Duration(DefaultGrace)
	}
	if err := os.MkdirAll(upgradeDir(dir), 0o700); err != nil {
		return p, err
	}
	err := withLock(dir, func() error {
		if t, err := load(dir); err == nil && t.Outcome == nil {
			return fmt.Errorf("upgrade: the upgrade to %s (command %d) is still on trial", t.To, t.Command)
		}
		os.Remove(LogPath(dir))
		return save(dir, &Trial{Plan: p, PID: os.Getpid(), Started: time.Now().UTC()})
	})
	return p, err
}

// Abandon removes the trial of a restart that did not happen.
func Abandon(dir string) { os.Remove(trialPath(dir)) }

// Start is called at the start of a relay or agent process: when an
// upgrade is on trial it records this start (the watcher counts them) and
// returns the trial; nil when none is (or it has an outcome already).
func Start(dir string) (*Trial, error) {
	if _, err := os.Stat(trialPath(dir)); errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	var out *Trial
	err := withLock(dir, func() error {
		t, err := load(dir)
		if errors.Is(err, os.ErrNotExist) || (err == nil && t.Outcome != nil) {
			return nil
		} else if err != nil {
			return err
		}
		t.Starts = append(t.Starts, time.Now().UTC())
		if err := save(dir, t); err != nil {
			return err
		}
		out = t
		return nil
	})
	return out, err
}

// Healthy marks the new version healthy (its first successful heartbeat
// or check-in) and ends the trial done; ErrRolledBack when the watcher
// ended it first.
func (t *Trial) Healthy() error {
	return withLock(t.Dir, func() error {
		cur, err := load(t.Dir)
		if err != nil {
			return err
		}
		if cur.Outcome != nil {
			if cur.Outcome.State == wire.StateDone {
				return nil
			}
			return ErrRolledBack
		}
		cur.HealthyAt = time.Now().UTC()
		cur.Outcome = &Outcome{State: wire.StateDone, At: cur.HealthyAt}
		return save(t.Dir, cur)
	})
}

// Log opens the new version's trial log for appending (LogPath).
func (t *Trial) Log() (*os.File, error) {
	return os.OpenFile(LogPath(t.Dir), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
}

// TakeOutcome returns a finished trial's result, to report once: the trial
// file moves to DIR/upgrade/last.json, so a later call finds nothing. The
// caller keeps the result until the management host has it (or uses
// PendingOutcome and Reported, which survive a crash in between).
func TakeOutcome(dir string) (wire.CommandResult, bool) {
	r, ok := PendingOutcome(dir)
	if ok {
		Reported(dir, r.ID)
	}
	return r, ok
}

// PendingOutcome returns a finished trial's result without ending it:
// every call returns it until Reported.
func PendingOutcome(dir string) (wire.CommandResult, bool) {
	if _, err := os.Stat(trialPath(dir)); err != nil {
		return wire.CommandResult{}, false
	}
	var r wire.CommandResult
	ok := false
	withLock(dir, func() error {
		t, err := load(dir)
		if err == nil && t.Outcome != nil {
			r, ok = wire.CommandResult{ID: t.Command, State: t.Outcome.State, Error: t.Outcome.Reason}, true
		}
		return nil
	})
	return r, ok
}

// Reported ends the trial of command id once its outcome reached the
// management host: the trial file moves to DIR/upgrade/last.json.
func Reported(dir string, id int64) {
	withLock(dir, func() error {
		if t, err := load(dir); err != nil || t.Outcome == nil || t.Command != id {
			return nil
		}
		return os.Rename(trialPath(dir), filepath.Join(upgradeDir(dir), "last.json"))
	})
}

// Load reads the trial in DIR/upgrade (os.ErrNotExist when there is none).
func Load(dir string) (*Trial, error) { return load(dir) }

func load(dir string) (*Trial, error) {
	b, err := os.ReadFile(trialPath(dir))
	if err != nil {
		return nil, err
	}
	var t Trial
	if err := json.Unmarshal(b, &t); err != nil {
		return nil, fmt.Errorf("%s: %w", trialPath(dir), err)
	}
	t.Dir = dir
	return &t, nil
}

// save writes the trial atomically (wire.WriteFileAtomic: trial.json.tmp,
// sync, rename, directory synced).
func save(dir string, t *Trial) error {
	b, _ := json.MarshalIndent(t, "", "  ")
	return wire.WriteFileAtomic(trialPath(dir), append(b, '\n'), 0o600)
}

// setOutcome ends the trial unless it has ended; it reports whether this
// call decided.
func setOutcome(dir string, o Outcome) (bool, error) {
	decided := false
	err := withLock(dir, func() error {
		t, err := load(dir)
		if err != nil {
			return err
		}
		if t.Outcome != nil {
			return nil
		}
		o.At = time.Now().UTC()
		t.Outcome, decided = &o, true
		return save(dir, t)
	})
	return decided, err
}

// lastLines is the end of a log file as one line: its last n non-empty
// lines joined with " | ", at most max characters (the end kept).
func lastLines(path string, n, max int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	var keep []string
	lines := strings.Split(string(b), "\n")
	for i := len(lines) - 1; i >= 0 && len(keep) < n; i-- {
		if l := strings.TrimSpace(lines[i]); l != "" {
			keep = append([]string{l}, keep...)
		}
	}
	s := strings.Join(keep, " | ")
	if r := []rune(s); len(r) > max {
		s = "…" + string(r[len(r)-max:])
	}
	return s
}
