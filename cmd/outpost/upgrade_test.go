package main

// A relay upgraded as an operator does it: two builds of this program
// (-X main.version=1.0.0 and 1.1.0) and a build that cannot run
// (testdata/badbuild), signed releases (release keygen, release add), a
// management host and a joined relay on 127.0.0.2 run as real processes,
// agents sending events through the relay while 'proxy upgrade' runs.

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"outpost/relay"
	"outpost/relay/selfupdate"
)

// upBuilds are the versioned binaries, built once per test run beside
// outpostBin (removed by TestMain).
var upBuilds struct {
	once sync.Once
	dir  string
	err  error
}

// upBuild returns the path of version's build: 1.0.0 and 1.1.0 of this
// program, 1.2.0 of testdata/badbuild.
func upBuild(t *testing.T, version string) string {
	t.Helper()
	upBuilds.once.Do(func() {
		upBuilds.dir = filepath.Join(filepath.Dir(outpostBin), "versions")
		goTool, err := exec.LookPath("go")
		if err != nil {
			goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
		}
		for _, b := range []struct{ version, pkg string }{{"1.0.0", "."}, {"1.1.0", "."}, {"1.2.0", "./testdata/badbuild"}} {
			out, err := exec.Command(goTool, "build", "-ldflags", "-X main.version="+b.version,
				"-o", filepath.Join(upBuilds.dir, "outpost-"+b.version), b.pkg).CombinedOutput()
			if err != nil {
				upBuilds.err = fmt.Errorf("build %s: %v\n%s", b.version, err, out)
				return
			}
		}
	})
	if upBuilds.err != nil {
		t.Fatal(upBuilds.err)
	}
	return filepath.Join(upBuilds.dir, "outpost-"+version)
}

// upFleet is a management host with cluster edge and a signing key, and
// one joined relay running 1.0.0 from its own copy of the binary.
type upFleet struct {
	c, rc    *cli
	mgrURL   string
	pin      string
	keyFile  string
	bin      string // the relay's binary
	v1       []byte // its content at 1.0.0
	relay    *proc
	relayURL string
	id       int64
	token    string // the join token the relay was started with
}

func newUpFleet(t *testing.T) *upFleet {
	t.Helper()
	f := &upFleet{c: newCLI(t)}
	c := f.c
	c.createAccount("acme")
	c.ok("cluster", "create", "--name", "edge", "--address", "edge.invalid")
	f.keyFile = filepath.Join(t.TempDir(), "release.key")
	c.ok("release", "keygen", "--out", f.keyFile)
	mgr := svStart(t, c, append([]string{"relay"}, svRelayListen...)...)
	info := svRunFile(t, mgr, c.data, "relay")
	f.mgrURL, f.pin = svURL(t, info, "https"), info.CASHA256
	var jt struct {
		Token string `json:"token"`
	}
	c.json(&jt, "proxy", "deploy", "--cluster", "edge", "--manual", "--manager", f.mgrURL)

	f.token = jt.Token
	f.rc = &cli{t: t, data: t.TempDir(), env: append(c.env, "OUTPOST_UNIT=")} // no systemd: re-exec in place
	f.bin = filepath.Join(t.TempDir(), "outpost")
	f.v1 = copyFile(t, upBuild(t, "1.0.0"), f.bin)
	addr := freeAddrOn(t, "127.0.0.2")
	f.relayURL = "https://" + addr
	cmd := exec.Command(f.bin, "--data", f.rc.data, "relay", "--manager", f.mgrURL, "--join", jt.Token, "--ca-sha256", f.pin,
		"--listen", f.relayURL, "--hostname", "edge-1", "--heartbeat", "200ms", "--upgrade-grace", "30s")
	cmd.Env = f.rc.env
	f.relay = startProc(t, cmd, "outpost relay (edge-1)")
	t.Cleanup(func() { f.killDetached(t) })
	svRunFile(t, f.relay, f.rc.data, "relay")
	p := f.waitProxy(t, 20*time.Second, "edge-1 online at 1.0.0", func(p upProxy) bool { return p.Status == "online" && p.Version == "1.0.0" })
	f.id = p.ID
	return f
}

// killDetached ends what the upgrade started outside the test's children:
// the watcher and a relay the watcher started again.
func (f *upFleet) killDetached(t *testing.T) {
	if b, err := os.ReadFile(selfupdate.WatcherPIDPath(f.rc.data)); err == nil {
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	if info, err := relay.ReadRunFile(f.rc.data, "relay"); err == nil && info.PID != f.relay.cmd.Process.Pid {
		syscall.Kill(info.PID, syscall.SIGKILL)
	}
	if t.Failed() {
		for _, n := range []string{"watch.log", "new.log", "rollback.log", "trial.json", "last.json"} {
			b, _ := os.ReadFile(filepath.Join(f.rc.data, "upgrade", n))
			t.Logf("--- upgrade/%s\n%s", n, b)
		}
	}
}

func copyFile(t *testing.T, from, to string) []byte {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return b
}

// upProxy is the part of `proxy list --json` these tests read.
type upProxy struct {
	ID           int64  `json:"id"`
	Hostname     string `json:"hostname"`
	Status       string `json:"status"`
	Version      string `json:"version"`
	UpgradeState string `json:"upgrade_state"`
	Commands     []struct {
		Type  string `json:"type"`
		State string `json:"state"`
		Error string `json:"error"`
	} `json:"commands"`
}

func (p upProxy) upgrade() (state, reason string) {
	for _, c := range p.Commands {
		if c.Type == "upgrade" {
			return c.State, c.Error
		}
	}
	return "", ""
}

func (f *upFleet) proxy(t *testing.T) (upProxy, bool) {
	t.Helper()
	r := f.c.run("proxy", "list", "--json")
	if r.code != 0 {
		return upProxy{}, false
	}
	var ps []upProxy
	mustOneJSON(t, r.stdout, &ps)
	for _, p := range ps {
		if p.Hostname == "edge-1" {
			return p, true
		}
	}
	return upProxy{}, false
}

func (f *upFleet) waitProxy(t *testing.T, d time.Duration, what string, cond func(upProxy) bool) upProxy {
	t.Helper()
	var p upProxy
	waitCond(t, f.relay, d, what, func() bool {
		var ok bool
		p, ok = f.proxy(t)
		return ok && cond(p)
	})
	return p
}

// publish adds release version with the package at path, signed.
func (f *upFleet) publish(t *testing.T, version, path string) {
	t.Helper()
	f.c.ok("release", "add", version, "--file", path, "--key", f.keyFile)
}

// unchanged checks that the relay still runs 1.0.0 from the same binary,
// in the same process, with nothing beside the binary.
func (f *upFleet) unchanged(t *testing.T) {
	t.Helper()
	if b, _ := os.ReadFile(f.bin); !bytes.Equal(b, f.v1) {
		t.Errorf("binary: changed (%d bytes), want 1.0.0 as it was", len(b))
	}
	es, _ := os.ReadDir(filepath.Dir(f.bin))
	for _, e := range es {
		if e.Name() != "outpost" {
			t.Errorf("beside the binary: got %s, want nothing", e.Name())
		}
	}
	if _, err := os.Stat(filepath.Join(f.rc.data, "upgrade", "trial.json")); err == nil {
		t.Errorf("upgrade/trial.json: present, want no trial")
	}
	if f.relay.exited() {
		t.Errorf("relay process: exited, want it still serving")
	}
}
