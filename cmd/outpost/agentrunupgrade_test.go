//go:build unix

package main

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"outpost/relay/wire"
	"outpost/store"
)

var (
	buildsMu sync.Mutex
	builds   = map[string]string{}
)

// buildVersion builds this binary with -X main.version=v once per test
// run, beside the one TestMain built, and returns its path.
func buildVersion(t *testing.T, v string) string {
	t.Helper()
	buildsMu.Lock()
	defer buildsMu.Unlock()
	if p, ok := builds[v]; ok {
		return p
	}
	p := filepath.Join(filepath.Dir(outpostBin), "outpost-"+v)
	goTool, err := exec.LookPath("go") // go test puts its own first on PATH
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(goTool, "build", "-ldflags", "-X main.version="+v, "-o", p, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("build version %s: %v\n%s", v, err, out)
	}
	builds[v] = p
	return p
}

// copyExe copies an executable to dst (0755).
func copyExe(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o755); err != nil {
		t.Fatal(err)
	}
}

func sameFile(t *testing.T, a, b string) bool {
	t.Helper()
	x, err1 := os.ReadFile(a)
	y, err2 := os.ReadFile(b)
	return err1 == nil && err2 == nil && bytes.Equal(x, y)
}

// pidsWithArg lists the live processes whose command line has arg (the
// agent directory): what an upgrade or a rollback started detached.
func pidsWithArg(arg string) []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err == nil && slices.Contains(strings.Split(string(b), "\x00"), arg) && processRunning(pid) {
			out = append(out, pid)
		}
	}
	return out
}

// badBuild is a package that passes the self-test as version v and then
// crashes at every start: a build that fails its health check.
func badBuild(t *testing.T, v string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "outpost-bad")
	script := fmt.Sprintf(`#!/bin/sh
if [ "$1" = --self-test ]; then echo '{"version":"%s","os":"%s","arch":"%s"}'; exit 0; fi
echo "panic: this build is broken" >&2
exit 2
`, v, runtime.GOOS, runtime.GOARCH)
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// upEnv is one agent upgraded in TestAgentUpgrade.
type upEnv struct {
	t        *testing.T
	c        *cli
	m        *arManager
	a        *arAgent
	id, dir  string
	bin, key string // the installed binary, the current signing key
	v1, v2   string // the 1.0.0 and 1.1.0 builds
}

func (e *upEnv) show() store.Agent {
	var g store.Agent
	e.c.json(&g, "agent", "show", e.id)
	return g
}

// upgrade queues an upgrade to v and waits until it ended; it logs the
// states agent show went through.
func (e *upEnv) upgrade(v string) store.Command {
	e.t.Helper()
	e.c.ok("agent", "upgrade", e.id, "--version", v)
	var seen []string
	var g store.Agent
	waitCond(e.t, nil, 60*time.Second, "upgrade to "+v+" to end", func() bool {
		g = e.show()
		if g.Upgrade == nil {
			return false
		}
		if d := g.Upgrade.Describe(); len(seen) == 0 || seen[len(seen)-1] != d {
			seen = append(seen, d)
		}
		return g.Upgrade.Ended() && g.Upgrade.UpgradeVersion() == v
	})
	e.t.Logf("upgrade to %s: states seen %q", v, seen)
	return *g.Upgrade
}

// TestAgentUpgrade: a real agent process, built as 1.0.0 and installed in
// a prefix, follows a release key rotation through its check-ins, is
// upgraded to a 1.1.0 build (agent upgrade on the management host): the
// same process (exec, same pid) runs the new binary, agent show --json
// says 1.1.0 and done, and the 1.0.0 binary is kept as outpost.prev. A
// package whose bytes do not match the signed SHA-256 is refused (failed,
// nothing changed), and a build that crashes at start is rolled back
// (rolled_back with the reason and its last log line, 1.1.0 back in place
// and checking in).
func TestAgentUpgrade(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the reference agent reads Linux host facts")
	}
	c := newCLI(t)
	e := &upEnv{t: t, c: c, m: auStartManager(t, c), key: releaseKey(t, c), v1: buildVersion(t, "1.0.0"), v2: buildVersion(t, "1.1.0"),
		bin: filepath.Join(t.TempDir(), "outpost"), dir: filepath.Join(t.TempDir(), "agent")}
	copyExe(t, e.v1, e.bin)
	t.Cleanup(func() {
		for _, pid := range pidsWithArg(e.dir) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	e.a = upStartAgent(t, e.m, e.bin, e.dir)
	e.id = arAgentID(t, e.a)
	waitCond(t, e.a.proc, 15*time.Second, "agent online as 1.0.0", func() bool { g := e.show(); return g.Online && g.Version == "1.0.0" })

	// The key is rotated after enrolment: the agent follows the chain,
	// which comes with the upgrade command, and so takes a release signed
	// by the new key only.
	key2 := filepath.Join(t.TempDir(), "release-2.key")
	c.ok("release", "keygen", "--rotate", "--key", e.key, "--out", key2)
	e.key = key2
	c.ok("release", "add", "1.1.0", "--file", e.v2, "--key", e.key)
	upInPlace(t, e)
	if !strings.Contains(e.a.stderr.String(), "release keys: trusting keys=2") {
		t.Errorf("agent log: no %q after the upgrade signed by the rotated key", "release keys: trusting keys=2")
	}
	upRefusesTampered(t, e)
	upRollsBack(t, e)
}

// upInPlace: 1.0.0 -> 1.1.0 in the same process, outpost.prev kept, the
// install key in neither the new argv nor the trial file.
func upInPlace(t *testing.T, e *upEnv) {
	pid := e.a.cmd.Process.Pid
	start := time.Now()
	if u := e.upgrade("1.1.0"); u.State != wire.StateDone {
		t.Fatalf("upgrade to 1.1.0: got %s, want done; agent log:\n%s", u.Describe(), e.a.stderr.String())
	}
	waitCond(t, e.a.proc, 15*time.Second, "agent show to say 1.1.0", func() bool { return e.show().Version == "1.1.0" })
	t.Logf("upgrade to 1.1.0 done and the new version online in %s", time.Since(start).Round(time.Millisecond))
	if e.a.exited() {
		t.Fatalf("the agent process ended with the upgrade (want the same pid running the new binary)")
	}
	// The watcher ends once it saw the outcome.
	waitCond(t, nil, 10*time.Second, "only the agent's pid left", func() bool { return slices.Equal(pidsWithArg(e.dir), []int{pid}) })
	if !sameFile(t, e.bin, e.v2) || !sameFile(t, e.bin+".prev", e.v1) {
		t.Errorf("after the upgrade: want %s = the 1.1.0 build and outpost.prev = the 1.0.0 build", e.bin)
	}
	for _, f := range []string{fmt.Sprintf("/proc/%d/cmdline", pid), filepath.Join(e.dir, "upgrade", "last.json")} {
		if b, err := os.ReadFile(f); err != nil || strings.Contains(string(b), e.m.Key) {
			t.Errorf("%s holds the install key (or is unreadable: %v)", f, err)
		}
	}
}

// upRefusesTampered: a package that does not match its signed SHA-256 is
// refused and nothing changes.
func upRefusesTampered(t *testing.T, e *upEnv) {
	e.c.ok("release", "add", "1.3.0", "--file", e.v2, "--key", e.key)
	if err := os.WriteFile(filepath.Join(e.c.data, "releases", "1.3.0"), []byte("tampered"), 0o600); err != nil {
		t.Fatal(err)
	}
	if u := e.upgrade("1.3.0"); u.State != wire.StateFailed || !strings.Contains(u.Error, "does not match its signed SHA-256") {
		t.Errorf("tampered package: got %s, want failed: does not match its signed SHA-256", u.Describe())
	}
	if !sameFile(t, e.bin, e.v2) || e.show().Version != "1.1.0" {
		t.Errorf("the refused package changed the binary or the version")
	}
	e.c.ok("release", "delete", "1.3.0")
}

// upRollsBack: a build that crashes at start is rolled back to 1.1.0,
// which runs again (started by the watcher) and checks in.
func upRollsBack(t *testing.T, e *upEnv) {
	e.c.ok("release", "add", "1.2.0", "--file", badBuild(t, "1.2.0"), "--key", e.key)
	u := e.upgrade("1.2.0")
	if u.State != wire.StateRolledBack || !strings.Contains(u.Error, "exited 3 times") || !strings.Contains(u.Error, "this build is broken") {
		t.Errorf("bad build: got %s, want rolled back after 3 exits with its last log line", u.Describe())
	}
	if !sameFile(t, e.bin, e.v2) {
		t.Errorf("after the rollback %s is not the 1.1.0 build", e.bin)
	}
	before := e.show().LastCheckin
	waitCond(t, nil, 15*time.Second, "1.1.0 checking in again after the rollback", func() bool {
		g := e.show()
		return g.Version == "1.1.0" && g.LastCheckin.After(before)
	})
	waitCond(t, nil, 10*time.Second, "one agent process (1.1.0 started again, the watcher gone)", func() bool { return len(pidsWithArg(e.dir)) == 1 })
}

// upStartAgent runs bin (an installed copy) as 'agent run' on dir.
func upStartAgent(t *testing.T, m *arManager, bin, dir string) *arAgent {
	t.Helper()
	cmd := exec.Command(bin, "agent", "run", "--key", m.Key, "--ca-sha256", m.Pin, "--dir", dir, "--proxy", m.URL,
		"--inventory-every", "1s", "--event-every", "200ms", "--poll-wait", "2s")
	for _, kv := range arEnv(t) {
		if !strings.HasPrefix(kv, "INVOCATION_ID=") && !strings.HasPrefix(kv, "OUTPOST_UNIT=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	return &arAgent{proc: startProc(t, cmd, "agent in "+filepath.Base(dir)), dir: dir}
}

// TestAgentUpgradeRefusals: what the agent refuses before it changes
// anything: a downgrade without force, a signature by a key it does not
// trust, an unsigned release, a package that is not the signed one.
func TestAgentUpgradeRefusals(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	otherPub, _, _ := ed25519.GenerateKey(rand.Reader)
	pkg := []byte("package 1.2.0")
	sum := wire.Fingerprint(pkg)
	sign := func(v, sha string) string {
		return hex.EncodeToString(ed25519.Sign(priv, store.ReleaseMessage(v, sha)))
	}
	good := wire.Release{Version: "1.2.0", SHA256: sum, Signature: sign("1.2.0", sum)}
	for _, tc := range []struct {
		name string
		keys []string
		rel  wire.Release
		pkg  []byte
		want string
	}{
		{"good", []string{hex.EncodeToString(pub)}, good, pkg, ""},
		{"good, signed by an older trusted key", []string{hex.EncodeToString(pub), hex.EncodeToString(otherPub)}, good, pkg, ""},
		{"untrusted key", []string{hex.EncodeToString(otherPub)}, good, pkg, "signature"},
		{"unsigned", []string{hex.EncodeToString(pub)}, wire.Release{Version: "1.2.0", SHA256: sum}, pkg, "not signed"},
		{"signature of another version", []string{hex.EncodeToString(pub)}, wire.Release{Version: "1.3.0", SHA256: sum, Signature: good.Signature}, pkg, "signature"},
		{"tampered package", []string{hex.EncodeToString(pub)}, good, []byte("package 1.2.0!"), "does not match its signed SHA-256"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := verifyPackage(tc.keys, tc.rel, tc.pkg)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("got %v, want accepted", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("got %v, want an error saying %q", err, tc.want)
			}
		})
	}
	for _, tc := range []struct {
		name, to, running string
		force             bool
		want              string
	}{
		{"newer", "1.2.0", "1.1.0", false, ""},
		{"same version", "1.1.0", "1.1.0", false, "not newer"},
		{"downgrade", "1.0.0", "1.1.0", false, "a downgrade needs"},
		{"forced downgrade", "1.0.0", "1.1.0", true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkUpgrade(wire.UpgradeArgs{Version: tc.to, Force: tc.force}, tc.running)
			if got := err != nil && strings.Contains(err.Error(), tc.want); (tc.want != "") != got || (tc.want == "" && err != nil) {
				t.Errorf("got %v, want %q", err, tc.want)
			}
		})
	}
}

// The fake systemd of TestAgentUpgradeUnderSystemd: systemd-run starts the
// transient unit's command in the background; systemctl restart stops "the
// unit" (SIGTERM, then waits until it is gone) and starts $FAKE_START
// again, as systemd restarts outpost-agent.service. Every call is recorded.
const (
	upFakeSystemdRun = `#!/bin/sh
echo "systemd-run $*" >> "$FAKE_DIR/calls"
while [ "$1" != "--" ]; do shift; done; shift
setsid "$@" >> "$FAKE_DIR/transient.log" 2>&1 < /dev/null &
`
	upFakeSystemctl = `#!/bin/sh
echo "systemctl $*" >> "$FAKE_DIR/calls"
case "$1" in
show) echo 0 ;;
is-active) echo active ;;
restart)
	if [ -f "$FAKE_DIR/main.pid" ]; then
		p=$(cat "$FAKE_DIR/main.pid"); kill "$p" 2>/dev/null
		for i in $(seq 200); do
			st=$(cut -d' ' -f3 "/proc/$p/stat" 2>/dev/null)
			if [ -z "$st" ] || [ "$st" = Z ]; then break; fi
			sleep 0.05
		done
	fi
	setsid sh -c "$FAKE_START" >> "$FAKE_DIR/unit.log" 2>&1 < /dev/null &
	echo $! > "$FAKE_DIR/main.pid" ;;
esac
`
)

// TestAgentUpgradeUnderSystemd: an agent run by (a fake) systemd only
// stages the release in its directory and self-tests it; the watcher runs
// as a transient unit, installs it beside the binary (outpost.prev kept)
// and restarts the unit, and the restarted agent reports done at 1.1.0.
func TestAgentUpgradeUnderSystemd(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the reference agent reads Linux host facts")
	}
	c := newCLI(t)
	m := auStartManager(t, c)
	key := releaseKey(t, c)
	v1, v2 := buildVersion(t, "1.0.0"), buildVersion(t, "1.1.0")
	bin := filepath.Join(t.TempDir(), "outpost")
	copyExe(t, v1, bin)
	dir := filepath.Join(t.TempDir(), "agent")
	fake := t.TempDir()
	for name, body := range map[string]string{"systemd-run": upFakeSystemdRun, "systemctl": upFakeSystemctl, "journalctl": "#!/bin/sh\nexit 1\n"} {
		if err := os.WriteFile(filepath.Join(fake, name), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, pid := range pidsWithArg(dir) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	start := shellJoin([]string{"exec", bin, "agent", "run", "--dir", dir, "--key", m.Key, "--ca-sha256", m.Pin, "--proxy", m.URL,
		"--inventory-every", "1s", "--event-every", "200ms", "--poll-wait", "2s"})
	var env []string
	for _, kv := range arEnv(t) {
		if !strings.HasPrefix(kv, "INVOCATION_ID=") && !strings.HasPrefix(kv, "PATH=") {
			env = append(env, kv)
		}
	}
	env = append(env, "PATH="+fake+string(os.PathListSeparator)+os.Getenv("PATH"), "FAKE_DIR="+fake, "FAKE_START="+start,
		"OUTPOST_UNIT=outpost-agent.service")
	systemctl := exec.Command(filepath.Join(fake, "systemctl"), "restart", "outpost-agent.service")
	systemctl.Env = env
	if out, err := systemctl.CombinedOutput(); err != nil {
		t.Fatalf("start the unit: %v %s", err, out)
	}
	unitLog := func() string { b, _ := os.ReadFile(filepath.Join(fake, "unit.log")); return string(b) }
	var id string
	waitCond(t, nil, 15*time.Second, "enrolment", func() bool {
		id = ""
		if strings.Contains(unitLog(), "release keys: trusting keys=1") {
			if i := strings.Index(unitLog(), "enrolled agent="); i >= 0 {
				id = strings.Fields(unitLog()[i+len("enrolled agent="):])[0]
			}
		}
		return id != ""
	})
	c.ok("release", "add", "1.1.0", "--file", v2, "--key", key)
	c.ok("agent", "upgrade", id, "--version", "1.1.0")
	var g store.Agent
	waitCond(t, nil, 60*time.Second, "the upgrade to end", func() bool {
		c.json(&g, "agent", "show", id)
		return g.Upgrade != nil && g.Upgrade.Ended() && g.Version == "1.1.0"
	})
	if g.Upgrade.State != wire.StateDone {
		t.Fatalf("upgrade under systemd: got %s, want done; unit log:\n%s", g.Upgrade.Describe(), unitLog())
	}
	if !sameFile(t, bin, v2) || !sameFile(t, bin+".prev", v1) {
		t.Errorf("after the upgrade: want %s = the 1.1.0 build and outpost.prev = the 1.0.0 build", bin)
	}
	if _, err := os.Stat(filepath.Join(dir, "upgrade", "outpost.new")); !os.IsNotExist(err) {
		t.Errorf("the staged binary is still in the agent directory (%v)", err)
	}
	b, _ := os.ReadFile(filepath.Join(fake, "calls"))
	for _, want := range []string{"systemd-run --collect --quiet --unit outpost-upgrade-", "-- " + bin + " upgrade-watch --dir " + dir,
		"systemctl restart --no-block outpost-agent.service"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("calls: got\n%s\nwant one with %q", b, want)
		}
	}
	if strings.Contains(unitLog(), "upgrade: installed: restarting") {
		t.Errorf("the sandboxed agent installed the binary itself:\n%s", unitLog())
	}
}

// TestAgentReleaseKeyChain: the agent takes the first key of the first
// chain it gets, then adds only keys reached from it through signed links
// (kept in DIR/release-keys.json across restarts); a chain with a forged
// link or without its key adds nothing.
func TestAgentReleaseKeyChain(t *testing.T) {
	type key struct {
		pub  string
		priv ed25519.PrivateKey
	}
	newKey := func() key {
		pub, priv, _ := ed25519.GenerateKey(rand.Reader)
		return key{hex.EncodeToString(pub), priv}
	}
	k1, k2, k3, evil := newKey(), newKey(), newKey(), newKey()
	link := func(k key, by key) wire.ReleaseKeyLink {
		return wire.ReleaseKeyLink{Key: k.pub, Signature: hex.EncodeToString(ed25519.Sign(by.priv, store.KeyLinkMessage(k.pub)))}
	}
	first := wire.ReleaseKeyLink{Key: k1.pub}
	for _, tc := range []struct {
		name   string
		chains [][]wire.ReleaseKeyLink
		want   []string
	}{
		{"first key taken", [][]wire.ReleaseKeyLink{{first}}, []string{k1.pub}},
		{"rotation followed", [][]wire.ReleaseKeyLink{{first}, {first, link(k2, k1)}, {first, link(k2, k1), link(k3, k2)}}, []string{k1.pub, k2.pub, k3.pub}},
		{"forged link refused", [][]wire.ReleaseKeyLink{{first}, {first, link(evil, evil)}}, []string{k1.pub}},
		{"link after a forged one refused", [][]wire.ReleaseKeyLink{{first}, {first, link(evil, evil), link(k3, evil)}}, []string{k1.pub}},
		{"another chain refused", [][]wire.ReleaseKeyLink{{first}, {{Key: evil.pub}, link(k2, evil)}}, []string{k1.pub}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			u := &agentUpgrader{r: &agentRun{a: &app{stdout: io.Discard, stderr: io.Discard}, log: slog.New(slog.DiscardHandler)}, dir: dir}
			for _, ch := range tc.chains {
				u.takeChain(ch)
			}
			if !slices.Equal(u.keys, tc.want) {
				t.Errorf("trusted keys: got %d %v, want %d", len(u.keys), u.keys, len(tc.want))
			}
			again := &agentUpgrader{dir: dir}
			if err := again.loadKeys(); err != nil || !slices.Equal(again.keys, tc.want) {
				t.Errorf("keys after a restart: got %v (%v), want the same %d", again.keys, err, len(tc.want))
			}
		})
	}
}
