package selfupdate_test

// The tests run real processes: copies of this test binary, each with a
// role and a version appended to the file (a marker after the ELF data,
// which the loader ignores), play the relay's old and new versions and
// the watcher. A copy reads its own tail to know what to do.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"outpost/relay/logs"
	"outpost/relay/selfupdate"
)

const markerTag = "\nSELFUPDATE-TEST-ROLE "

// role is what a copy of the test binary does when run.
type role struct {
	Role    string `json:"role"`    // upgrader, healthy, crash, hang
	Version string `json:"version"` // what --self-test prints
	Arch    string `json:"arch,omitempty"`
}

func TestMain(m *testing.M) {
	if os.Getenv("SELFUPDATE_HELPER") == "1" {
		os.Exit(helperMain(os.Args[1:]))
	}
	os.Exit(m.Run())
}

// readRole finds the marker at the end of this executable.
func readRole() (role, error) {
	exe, err := os.Executable()
	if err != nil {
		return role{}, err
	}
	b, err := os.ReadFile(exe)
	if err != nil {
		return role{}, err
	}
	i := bytes.LastIndex(b, []byte(markerTag))
	if i < 0 {
		return role{}, fmt.Errorf("no role marker in %s", exe)
	}
	var r role
	err = json.Unmarshal(b[i+len(markerTag):], &r)
	return r, err
}

func helperMain(args []string) int {
	r, err := readRole()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	switch {
	case len(args) == 1 && args[0] == "--self-test":
		return helperSelfTest(r)
	case len(args) > 0 && args[0] == "upgrade-watch":
		return helperWatch(args[1:])
	case len(args) == 2 && args[0] == "run":
		return helperRun(r, args[1])
	}
	fmt.Fprintf(os.Stderr, "helper: unknown command %q\n", args)
	return 2
}

func helperSelfTest(r role) int {
	switch r.Role {
	case "selftest-fails":
		fmt.Fprintln(os.Stderr, "first line\nself-test: cannot open the store")
		return 1
	case "selftest-garbage":
		fmt.Println("hello")
		return 0
	}
	arch := r.Arch
	if arch == "" {
		arch = hostArch
	}
	fmt.Printf(`{"version":%q,"os":%q,"arch":%q}`+"\n", r.Version, hostOS, arch)
	return 0
}

func helperWatch(args []string) int {
	dir, detach := "", false
	for i := 0; i < len(args); i++ {
		switch args[i] {
		case "--dir":
			i++
			dir = args[i]
		case "--detach":
			detach = true
		}
	}
	logf := func(format string, a ...any) { fmt.Fprintf(os.Stderr, format+"\n", a...) }
	if detach {
		if _, err := selfupdate.Detach(dir); err != nil {
			logf("detach: %v", err)
			return 1
		}
		return 0
	}
	if err := selfupdate.Watch(dir, slog.New(logs.NewTextHandler(os.Stderr, logs.Options{}))); err != nil {
		logf("watch: %v", err)
		return 1
	}
	return 0
}

// helperRun plays a relay of version r.Version in DIR: it notes each run
// in DIR/ran (version pid), then acts out its role. Every role ends on
// its own after a while, so nothing outlives a test for long.
func helperRun(r role, dir string) int {
	t, err := selfupdate.Start(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "start:", err)
		return 1
	}
	note(dir, "ran", fmt.Sprintf("%s %d", r.Version, os.Getpid()))
	var logw io.Writer = os.Stderr // as the relay does: its log also goes to the trial log
	if t != nil {
		if f, err := t.Log(); err == nil {
			logw = io.MultiWriter(os.Stderr, f)
		}
	}
	if res, ok := selfupdate.TakeOutcome(dir); ok {
		b, _ := json.Marshal(res)
		note(dir, "outcomes", string(b))
	}
	switch r.Role {
	case "upgrader":
		if pkg := os.Getenv("SELFUPDATE_NEW"); pkg != "" && t == nil && !exists(filepath.Join(dir, "upgrade")) {
			if err := upgrade(dir, pkg); err != nil {
				note(dir, "errors", err.Error())
				return 1
			}
		}
	case "healthy":
		if t != nil {
			if err := t.Healthy(); err != nil {
				note(dir, "errors", err.Error())
			}
		}
		if res, ok := selfupdate.TakeOutcome(dir); ok {
			b, _ := json.Marshal(res)
			note(dir, "outcomes", string(b))
		}
	case "crash":
		fmt.Fprintln(logw, "new version: cannot bind the listener: boom")
		return 1
	case "hang":
		fmt.Fprintln(logw, "new version: waiting for the management host")
	}
	time.Sleep(20 * time.Second)
	return 0
}

// upgrade is what the relay does with a verified package (the order of
// doc.go), the new binary being the file at pkgPath.
func upgrade(dir, pkgPath string) error {
	pkg, err := os.ReadFile(pkgPath)
	if err != nil {
		return err
	}
	bin, err := os.Executable()
	if err != nil {
		return err
	}
	want := os.Getenv("SELFUPDATE_VERSION")
	unit := os.Getenv("SELFUPDATE_UNIT")
	staged := selfupdate.NewPath(bin)
	if unit != "" {
		staged = filepath.Join(dir, "outpost.new")
	}
	if err := selfupdate.Stage(staged, pkg); err != nil {
		return err
	}
	if err := selfupdate.SelfTest(staged, want); err != nil {
		os.Remove(staged)
		return err
	}
	grace, _ := time.ParseDuration(os.Getenv("SELFUPDATE_GRACE"))
	p, err := selfupdate.Begin(dir, selfupdate.Plan{Command: 42, From: "1.0.0", To: want, Binary: bin, Staged: staged,
		Unit: unit, Grace: wireDuration(grace)})
	if err != nil {
		return err
	}
	if unit == "" {
		if _, err := selfupdate.Install(bin, staged); err != nil {
			return err
		}
	}
	return selfupdate.Restart(p)
}

func note(dir, name, line string) {
	f, err := os.OpenFile(filepath.Join(dir, name), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return
	}
	defer f.Close()
	fmt.Fprintln(f, line)
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// lines reads one of the note files.
func lines(dir, name string) []string {
	b, _ := os.ReadFile(filepath.Join(dir, name))
	return strings.Fields(strings.ReplaceAll(string(b), " ", "_"))
}

// makeBinary writes a copy of this test binary playing r to path.
func makeBinary(t *testing.T, path string, r role) []byte {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	m, _ := json.Marshal(r)
	b = append(append(b, markerTag...), m...)
	if path != "" {
		if err := os.WriteFile(path, b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return b
}
