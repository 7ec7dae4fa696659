package selfupdate_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"outpost/relay/selfupdate"
	"outpost/relay/wire"
)

var hostOS, hostArch = runtime.GOOS, runtime.GOARCH

func wireDuration(d time.Duration) wire.Duration { return wire.Duration(d) }

func TestSelfTest(t *testing.T) {
	for _, tt := range []struct {
		name string
		r    *role  // nil: a package that is not a binary
		want string // "" = passes
	}{
		{"the release it claims", &role{Role: "healthy", Version: "1.1.0"}, ""},
		{"another version inside", &role{Role: "healthy", Version: "1.0.9"}, `it says version "1.0.9", the release is 1.1.0`},
		{"built for another architecture", &role{Role: "healthy", Version: "1.1.0", Arch: "s390x"}, "it is built for " + hostOS + "/s390x"},
		{"self-test fails", &role{Role: "selftest-fails", Version: "1.1.0"}, "exit status 1: self-test: cannot open the store"},
		{"prints no identity", &role{Role: "selftest-garbage", Version: "1.1.0"}, `it printed "hello", not its identity`},
		{"not a binary", nil, "it does not run on this host (exec format error)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "outpost.new")
			if tt.r != nil {
				makeBinary(t, path, *tt.r)
			} else if err := os.WriteFile(path, []byte("release 1.1.0 package bytes"), 0o755); err != nil {
				t.Fatal(err)
			}
			t.Setenv("SELFUPDATE_HELPER", "1")
			t.Setenv("GORACE", "atexit_sleep_ms=0") // a race build otherwise sleeps 1 s at exit
			err := selfupdate.SelfTest(path, "1.1.0")
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("got %v, want it to pass", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("got %v, want an error with %q", err, tt.want)
			}
		})
	}
}

func TestInstallAndRestore(t *testing.T) {
	for _, tt := range []struct {
		name   string
		staged func(dir, bin string) string
	}{
		{"staged beside the binary", func(dir, bin string) string { return selfupdate.NewPath(bin) }},
		{"staged in the data directory", func(dir, bin string) string { return filepath.Join(dir, "data", "outpost.new") }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			os.MkdirAll(filepath.Join(dir, "bin"), 0o755)
			os.MkdirAll(filepath.Join(dir, "data"), 0o700)
			bin := filepath.Join(dir, "bin", "outpost")
			old, next := []byte("old binary"), []byte("new binary")
			if err := os.WriteFile(bin, old, 0o755); err != nil {
				t.Fatal(err)
			}
			staged := tt.staged(dir, bin)
			if err := selfupdate.Stage(staged, next); err != nil {
				t.Fatal(err)
			}
			if st, err := os.Stat(staged); err != nil || st.Mode().Perm() != 0o755 {
				t.Fatalf("staged file: got %v %v, want mode 0755", st, err)
			}
			if got := read(t, bin); !bytes.Equal(got, old) {
				t.Fatalf("binary after Stage: got %q, want it unchanged", got)
			}
			prev, err := selfupdate.Install(bin, staged)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := prev, bin+".prev"; got != want {
				t.Errorf("prev: got %s, want %s", got, want)
			}
			if got := read(t, bin); !bytes.Equal(got, next) {
				t.Errorf("binary after Install: got %q, want %q", got, next)
			}
			if got := read(t, prev); !bytes.Equal(got, old) {
				t.Errorf("prev after Install: got %q, want %q", got, old)
			}
			if st, _ := os.Stat(bin); st.Mode().Perm() != 0o755 {
				t.Errorf("binary mode: got %v, want 0755", st.Mode().Perm())
			}
			if exists(selfupdate.NewPath(bin)) {
				t.Errorf("%s left behind", selfupdate.NewPath(bin))
			}
			if err := selfupdate.Restore(bin, prev); err != nil {
				t.Fatal(err)
			}
			if got := read(t, bin); !bytes.Equal(got, old) {
				t.Errorf("binary after Restore: got %q, want %q", got, old)
			}
			if exists(prev) {
				t.Errorf("prev after Restore: still there, want it renamed back")
			}
		})
	}
}

func read(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestTrialLifecycle: the trial file through Begin, Start, Healthy and
// TakeOutcome, and the watcher deciding first.
func TestTrialLifecycle(t *testing.T) {
	plan := selfupdate.Plan{Command: 7, From: "1.0.0", To: "1.1.0", Binary: "/opt/outpost", Argv: []string{"outpost", "relay"}}
	for _, tt := range []struct {
		name        string
		watcher     *selfupdate.Outcome // decided before Healthy
		wantHealthy error
		want        wire.CommandResult
	}{
		{"healthy first", nil, nil, wire.CommandResult{ID: 7, State: wire.StateDone}},
		{"rolled back first", &selfupdate.Outcome{State: wire.StateRolledBack, Reason: "1.1.0 exited 3 times"}, selfupdate.ErrRolledBack,
			wire.CommandResult{ID: 7, State: wire.StateRolledBack, Error: "1.1.0 exited 3 times"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if tr, err := selfupdate.Start(dir); tr != nil || err != nil {
				t.Fatalf("Start with nothing on trial: got %v %v, want nil", tr, err)
			}
			if _, ok := selfupdate.TakeOutcome(dir); ok || exists(filepath.Join(dir, "upgrade")) {
				t.Fatalf("TakeOutcome with nothing on trial: got ok=%v, want nothing (and no directory made)", ok)
			}
			p, err := selfupdate.Begin(dir, plan)
			if err != nil {
				t.Fatal(err)
			}
			if p.Prev != "/opt/outpost.prev" || time.Duration(p.Grace) != selfupdate.DefaultGrace {
				t.Errorf("plan defaults: got prev %q grace %s, want /opt/outpost.prev and %s", p.Prev, time.Duration(p.Grace), selfupdate.DefaultGrace)
			}
			if _, err := selfupdate.Begin(dir, plan); err == nil || !strings.Contains(err.Error(), "still on trial") {
				t.Errorf("second Begin: got %v, want refused while on trial", err)
			}
			tr, err := selfupdate.Start(dir)
			if err != nil || tr == nil {
				t.Fatalf("Start on trial: got %v %v, want the trial", tr, err)
			}
			selfupdate.Start(dir)
			if got, _ := selfupdate.Load(dir); len(got.Starts) != 2 || got.To != "1.1.0" || got.PID != os.Getpid() {
				t.Errorf("trial: got %d starts, to %q, pid %d; want 2, 1.1.0, %d", len(got.Starts), got.To, got.PID, os.Getpid())
			}
			if _, ok := selfupdate.TakeOutcome(dir); ok {
				t.Errorf("TakeOutcome while on trial: got ok, want nothing yet")
			}
			if tt.watcher != nil {
				if decided, err := selfupdate.SetOutcome(dir, *tt.watcher); !decided || err != nil {
					t.Fatalf("watcher outcome: got %v %v", decided, err)
				}
			}
			if err := tr.Healthy(); !errors.Is(err, tt.wantHealthy) {
				t.Errorf("Healthy: got %v, want %v", err, tt.wantHealthy)
			}
			for i := 0; i < 2; i++ {
				if got, ok := selfupdate.PendingOutcome(dir); !ok || got != tt.want {
					t.Errorf("PendingOutcome %d: got %+v %v, want %+v until reported", i+1, got, ok, tt.want)
				}
			}
			selfupdate.Reported(dir, 8) // another command's report ends nothing
			got, ok := selfupdate.TakeOutcome(dir)
			if !ok || got != tt.want {
				t.Errorf("TakeOutcome: got %+v %v, want %+v", got, ok, tt.want)
			}
			if _, ok := selfupdate.TakeOutcome(dir); ok {
				t.Errorf("second TakeOutcome: got ok, want it reported once")
			}
			if _, ok := selfupdate.PendingOutcome(dir); ok {
				t.Errorf("PendingOutcome after TakeOutcome: got ok, want nothing")
			}
			if tr, _ := selfupdate.Start(dir); tr != nil {
				t.Errorf("Start after the outcome: got a trial, want nil")
			}
			if _, err := selfupdate.Begin(dir, plan); err != nil {
				t.Errorf("Begin after the outcome was taken: %v", err)
			}
		})
	}
}
