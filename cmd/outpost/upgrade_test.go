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
// program, 1.2.0 and 1.2.1 (hang mode) of testdata/badbuild.
func upBuild(t *testing.T, version string) string {
	t.Helper()
	upBuilds.once.Do(func() {
		upBuilds.dir = filepath.Join(filepath.Dir(outpostBin), "versions")
		goTool, err := exec.LookPath("go") // go test puts its own first on PATH
		if err != nil {
			upBuilds.err = err
			return
		}
		for _, b := range []struct{ version, pkg, flags string }{{"1.0.0", ".", ""}, {"1.1.0", ".", ""},
			{"1.2.0", "./testdata/badbuild", ""}, {"1.2.1", "./testdata/badbuild", " -X main.mode=hang"}} {
			out, err := exec.Command(goTool, "build", "-ldflags", "-X main.version="+b.version+b.flags,
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
// joined relays running 1.0.0, each from its own copy of the binary; the
// first one's fields are the fleet's.
type upFleet struct {
	c       *cli
	mgrURL  string
	pin     string
	keyFile string
	grace   string // the relays' --upgrade-grace
	*upRelay
}

// upRelay is one joined relay.
type upRelay struct {
	host     string
	rc       *cli
	bin      string // the relay's binary
	v1       []byte // its content at 1.0.0
	relay    *proc
	relayURL string
	id       int64
	token    string // the join token the relay was started with
}

func newUpFleet(t *testing.T) *upFleet {
	t.Helper()
	return newUpFleetGrace(t, "30s")
}

// newUpFleetGrace is newUpFleet with the relays' --upgrade-grace.
func newUpFleetGrace(t *testing.T, grace string) *upFleet {
	t.Helper()
	f := &upFleet{c: newCLI(t), grace: grace}
	c := f.c
	c.createAccount("acme")
	c.ok("cluster", "create", "--name", "edge", "--address", "edge.invalid")
	f.keyFile = filepath.Join(t.TempDir(), "release.key")
	c.ok("release", "keygen", "--out", f.keyFile)
	mgr := svStart(t, c, append([]string{"relay"}, svRelayListen...)...)
	info := svRunFile(t, mgr, c.data, "relay")
	f.mgrURL, f.pin = svURL(t, info, "https"), info.CASHA256
	f.upRelay = f.startRelay(t, "127.0.0.2", "edge-1")
	return f
}

// startRelay joins a relay of version 1.0.0 on ip as host and waits until
// it is online.
func (f *upFleet) startRelay(t *testing.T, ip, host string) *upRelay {
	t.Helper()
	var jt struct {
		Token string `json:"token"`
	}
	f.c.json(&jt, "proxy", "deploy", "--cluster", "edge", "--manual", "--manager", f.mgrURL)
	r := &upRelay{host: host, token: jt.Token}
	r.rc = &cli{t: t, data: t.TempDir(), env: append(f.c.env, "OUTPOST_UNIT=")} // no systemd: re-exec in place
	r.bin = filepath.Join(t.TempDir(), "outpost")
	r.v1 = copyFile(t, upBuild(t, "1.0.0"), r.bin)
	r.relayURL = "https://" + freeAddrOn(t, ip)
	cmd := exec.Command(r.bin, "--data", r.rc.data, "relay", "--manager", f.mgrURL, "--join", jt.Token, "--ca-sha256", f.pin,
		"--listen", r.relayURL, "--hostname", host, "--heartbeat", "200ms", "--upgrade-grace", f.grace)
	cmd.Env = r.rc.env
	r.relay = startProc(t, cmd, "outpost relay ("+host+")")
	t.Cleanup(func() { r.killDetached(t) })
	svRunFile(t, r.relay, r.rc.data, "relay")
	p := f.waitHost(t, r, 20*time.Second, host+" online at 1.0.0", func(p upProxy) bool { return p.Status == "online" && p.Version == "1.0.0" })
	r.id = p.ID
	return r
}

// killDetached ends what the upgrade started outside the test's children:
// the watcher and a relay the watcher started again.
func (f *upRelay) killDetached(t *testing.T) {
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

func (f *upFleet) proxyOf(t *testing.T, host string) (upProxy, bool) {
	t.Helper()
	r := f.c.run("proxy", "list", "--json")
	if r.code != 0 {
		return upProxy{}, false
	}
	var ps []upProxy
	mustOneJSON(t, r.stdout, &ps)
	for _, p := range ps {
		if p.Hostname == host {
			return p, true
		}
	}
	return upProxy{}, false
}

func (f *upFleet) waitProxy(t *testing.T, d time.Duration, what string, cond func(upProxy) bool) upProxy {
	t.Helper()
	return f.waitHost(t, f.upRelay, d, what, cond)
}

func (f *upFleet) waitHost(t *testing.T, r *upRelay, d time.Duration, what string, cond func(upProxy) bool) upProxy {
	t.Helper()
	var p upProxy
	waitCond(t, r.relay, d, what, func() bool {
		var ok bool
		p, ok = f.proxyOf(t, r.host)
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
