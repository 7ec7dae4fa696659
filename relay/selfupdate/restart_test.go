//go:build linux

package selfupdate_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"outpost/relay/wire"
)

// upgradeCase is one upgrade from 1.0.0 to a 1.1.0 playing newRole.
type upgradeCase struct {
	name       string
	newRole    string
	want       wire.CommandResult // the outcome reported
	wantReason []string           // in its Error
	wantBinary string             // version installed at the end
}

var upgradeCases = []upgradeCase{
	{"healthy", "healthy", wire.CommandResult{ID: 42, State: wire.StateDone}, nil, "1.1.0"},
	{"crashes at start", "crash", wire.CommandResult{ID: 42, State: wire.StateRolledBack},
		[]string{"1.1.0 exited 3 times within 1m0s; 1.0.0 runs again", "last log lines: ", "cannot bind the listener: boom"}, "1.0.0"},
	{"never healthy", "hang", wire.CommandResult{ID: 42, State: wire.StateRolledBack},
		[]string{"1.1.0 did not report healthy within 1.5s; 1.0.0 runs again", "waiting for the management host"}, "1.0.0"},
}

// upgradeEnv is a binary of version 1.0.0 at DIR/bin/outpost and the
// package of 1.1.0 at DIR/pkg.
type upgradeEnv struct {
	dir, bin   string
	old, next  []byte
	env        []string
	newVersion string
}

func newUpgradeEnv(t *testing.T, newRole string) *upgradeEnv {
	t.Helper()
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "bin"), 0o755)
	e := &upgradeEnv{dir: dir, bin: filepath.Join(dir, "bin", "outpost"), newVersion: "1.1.0"}
	e.old = makeBinary(t, e.bin, role{Role: "upgrader", Version: "1.0.0"})
	e.next = makeBinary(t, filepath.Join(dir, "pkg"), role{Role: newRole, Version: e.newVersion})
	e.env = append(os.Environ(), "SELFUPDATE_HELPER=1", "SELFUPDATE_NEW="+filepath.Join(dir, "pkg"),
		"SELFUPDATE_VERSION="+e.newVersion, "SELFUPDATE_GRACE=1.5s", "GORACE=atexit_sleep_ms=0")
	t.Cleanup(func() { e.killAll() })
	return e
}

// killAll ends every process the test's binaries started (they note
// their PIDs in DIR/ran).
func (e *upgradeEnv) killAll() {
	for _, l := range lines(e.dir, "ran") {
		_, pid, _ := strings.Cut(l, "_")
		if n, err := strconv.Atoi(pid); err == nil {
			syscall.Kill(n, syscall.SIGKILL)
		}
	}
}

// outcome waits for a process to report the trial's outcome.
func (e *upgradeEnv) outcome(t *testing.T, d time.Duration) wire.CommandResult {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(filepath.Join(e.dir, "outcomes")); err == nil && len(b) > 0 {
			var r wire.CommandResult
			if err := json.Unmarshal(bytes.SplitN(b, []byte("\n"), 2)[0], &r); err != nil {
				t.Fatal(err)
			}
			return r
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no outcome reported within %s; ran %v, errors %v\nwatch.log:\n%s", d, lines(e.dir, "ran"), lines(e.dir, "errors"),
		readString(filepath.Join(e.dir, "upgrade", "watch.log")))
	return wire.CommandResult{}
}

func readString(p string) string {
	b, _ := os.ReadFile(p)
	return string(b)
}

func (e *upgradeEnv) check(t *testing.T, tt upgradeCase, got wire.CommandResult) {
	t.Helper()
	if got.ID != tt.want.ID || got.State != tt.want.State {
		t.Errorf("outcome: got %+v, want %s for command %d", got, tt.want.State, tt.want.ID)
	}
	for _, w := range tt.wantReason {
		if !strings.Contains(got.Error, w) {
			t.Errorf("reason: got %q, want it to contain %q", got.Error, w)
		}
	}
	if len(tt.wantReason) == 0 && got.Error != "" {
		t.Errorf("reason: got %q, want none", got.Error)
	}
	wantBin := e.old
	if tt.wantBinary == e.newVersion {
		wantBin = e.next
	}
	waitUntil(t, 5*time.Second, "the binary "+tt.wantBinary+" in place", func() bool {
		b, _ := os.ReadFile(e.bin)
		return bytes.Equal(b, wantBin)
	})
	if tt.wantBinary == e.newVersion {
		if b, _ := os.ReadFile(e.bin + ".prev"); !bytes.Equal(b, e.old) {
			t.Errorf("%s.prev: got %d bytes, want the previous binary kept", e.bin, len(b))
		}
	}
}

func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestUpgradeReexec: without systemd, the running 1.0.0 installs 1.1.0
// and execs it in place (same PID); a healthy new version ends the trial
// done, one that crashes three times or never reports healthy is rolled
// back by the watcher: 1.0.0 is back in place, runs again and reports why.
func TestUpgradeReexec(t *testing.T) {
	for _, tt := range upgradeCases {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newUpgradeEnv(t, tt.newRole)
			cmd := exec.Command(e.bin, "run", e.dir)
			cmd.Env = append(e.env, "OUTPOST_UNIT=")
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			pid := cmd.Process.Pid
			go cmd.Wait()
			got := e.outcome(t, 15*time.Second)
			e.check(t, tt, got)
			ran := lines(e.dir, "ran")
			if len(ran) < 2 || ran[0] != fmt.Sprintf("1.0.0_%d", pid) || ran[1] != fmt.Sprintf("1.1.0_%d", pid) {
				t.Errorf("ran: got %v, want 1.0.0 then 1.1.0 in the same process %d", ran, pid)
			}
			if tt.want.State == wire.StateRolledBack {
				last := ran[len(ran)-1]
				if !strings.HasPrefix(last, "1.0.0_") || last == ran[0] {
					t.Errorf("ran: got %v, want 1.0.0 started again last", ran)
				}
				waitUntil(t, 5*time.Second, "the new version's processes to end", func() bool {
					return !anyAlive(ran[1 : len(ran)-1])
				})
			}
			if errs := lines(e.dir, "errors"); len(errs) > 0 {
				t.Errorf("errors noted: %v", errs)
			}
		})
	}
}

// anyAlive reports whether one of the noted "version_pid" processes runs.
func anyAlive(ran []string) bool {
	for _, l := range ran {
		_, p, _ := strings.Cut(l, "_")
		n, _ := strconv.Atoi(p)
		if n > 0 && syscall.Kill(n, 0) == nil {
			if b, err := os.ReadFile("/proc/" + p + "/stat"); err == nil && !bytes.Contains(b, []byte(") Z")) {
				return true
			}
		}
	}
	return false
}

const fakeSystemdRun = `#!/bin/sh
echo "systemd-run $*" >> "$FAKE_DIR/calls"
while [ "$1" != "--" ]; do shift; done; shift
"$@" >> "$FAKE_DIR/upgrade/watch.log" 2>&1 &
`

// The fake systemctl starts and stops "the unit" (FAKE_BIN run DIR) as
// systemd would on restart, and records every call.
const fakeSystemctl = `#!/bin/sh
echo "systemctl $*" >> "$FAKE_DIR/calls"
case "$1" in
show) echo 0 ;;
is-active) echo active ;;
restart)
	if [ -f "$FAKE_DIR/main.pid" ]; then kill "$(cat "$FAKE_DIR/main.pid")" 2>/dev/null; sleep 0.1; fi
	"$FAKE_BIN" run "$FAKE_DIR" >> "$FAKE_DIR/unit.log" 2>&1 &
	echo $! > "$FAKE_DIR/main.pid" ;;
esac
`

// TestUpgradeUnderSystemd: under a unit the relay only stages and
// self-tests; the watcher runs as a transient unit (systemd-run
// --collect), installs the new binary and restarts the unit, and on a
// rollback restores the previous binary, resets and restarts the unit.
func TestUpgradeUnderSystemd(t *testing.T) {
	for _, tt := range []upgradeCase{upgradeCases[0], upgradeCases[2]} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newUpgradeEnv(t, tt.newRole)
			fake := filepath.Join(e.dir, "fakebin")
			os.MkdirAll(fake, 0o755)
			os.MkdirAll(filepath.Join(e.dir, "upgrade"), 0o700)
			for name, body := range map[string]string{"systemd-run": fakeSystemdRun, "systemctl": fakeSystemctl, "journalctl": "#!/bin/sh\nexit 1\n"} {
				if err := os.WriteFile(filepath.Join(fake, name), []byte(body), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			env := append(e.env, "PATH="+fake+":"+os.Getenv("PATH"), "FAKE_DIR="+e.dir, "FAKE_BIN="+e.bin,
				"SELFUPDATE_UNIT=outpost-relay.service")
			// The upgrade dir exists before the first run: let the upgrader
			// know it has not upgraded yet by a fresh trial-less directory.
			os.Remove(filepath.Join(e.dir, "upgrade", "watch.log"))
			os.Remove(filepath.Join(e.dir, "upgrade"))
			start := exec.Command(filepath.Join(fake, "systemctl"), "restart", "outpost-relay.service")
			start.Env = env
			if out, err := start.CombinedOutput(); err != nil {
				t.Fatalf("start the unit: %v %s", err, out)
			}
			got := e.outcome(t, 15*time.Second)
			e.check(t, tt, got)
			calls := readString(filepath.Join(e.dir, "calls"))
			want := []string{"systemd-run --collect --quiet --unit outpost-upgrade-42-", "-- " + e.bin + " upgrade-watch --dir " + e.dir,
				"systemctl restart --no-block outpost-relay.service"}
			if tt.want.State == wire.StateRolledBack {
				want = append(want, "systemctl reset-failed outpost-relay.service")
			}
			for _, w := range want {
				if !strings.Contains(calls, w) {
					t.Errorf("calls: got\n%s\nwant one with %q", calls, w)
				}
			}
			if exists(filepath.Join(e.dir, "outpost.new")) {
				t.Errorf("staged binary left in the data directory after the install")
			}
		})
	}
}
