//go:build unix

package main

// The printed one-liners, run as printed (plus a temporary prefix and
// directories) with sh from an empty directory, against a management host
// on loopback: the script downloads the binary, checks it, installs it and
// runs 'service install', and a fake systemd starts the unit's ExecStart.

import (
	"context"
	"crypto/rand"
	"errors"
	"io/fs"
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

// fakeSystemdRun is a systemctl that records its calls and, for
// "enable --now UNIT" and "start UNIT", runs the unit's ExecStart in the
// background with its EnvironmentFile loaded, as systemd would; the
// processes are killed when the test ends.
type fakeSystemdRun struct {
	root                 string // everything the "host" writes is under it
	bin, log, pids, out  string
	unitDir, systemdDir  string
	prefix, dir, dataDir string
	path                 string // PATH for the script
}

func newFakeSystemdRun(t *testing.T) *fakeSystemdRun {
	t.Helper()
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("no curl on PATH")
	}
	root := t.TempDir()
	f := &fakeSystemdRun{root: root, bin: filepath.Join(root, "fakebin"), log: filepath.Join(root, "systemctl.log"),
		pids: filepath.Join(root, "pids"), out: filepath.Join(root, "service.log"),
		unitDir: filepath.Join(root, "etc", "systemd", "system"), systemdDir: filepath.Join(root, "run", "systemd", "system"),
		prefix: filepath.Join(root, "usr", "local"), dir: filepath.Join(root, "var", "lib", "outpost-agent"),
		dataDir: filepath.Join(root, "var", "lib", "outpost")}
	for _, d := range []string{f.bin, f.unitDir, f.systemdDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	script := `#!/bin/sh
echo "$*" >> '` + f.log + `'
case "$1 $2" in
"enable --now"|"start "*) ;;
*) exit 0 ;;
esac
for unit; do :; done
file='` + f.unitDir + `'/$unit
[ -f "$file" ] || { echo "Unit $unit not found." >&2; exit 5; }
env=$(sed -n 's/^EnvironmentFile=//p' "$file")
cmd=$(sed -n 's/^ExecStart=//p' "$file")
(
	if [ -n "$env" ]; then set -a; . "$env"; set +a; fi
	eval "exec $cmd"
) >> '` + f.out + `' 2>&1 < /dev/null &
echo $! >> '` + f.pids + `'
`
	if err := os.WriteFile(filepath.Join(f.bin, "systemctl"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	f.path = f.bin + string(os.PathListSeparator) + os.Getenv("PATH")
	t.Cleanup(func() { f.killAll(t) })
	return f
}

// killAll ends what the fake started and waits until it is gone.
func (f *fakeSystemdRun) killAll(t *testing.T) {
	b, _ := os.ReadFile(f.pids)
	for _, s := range strings.Fields(string(b)) {
		pid, err := strconv.Atoi(s)
		if err != nil {
			continue
		}
		syscall.Kill(pid, syscall.SIGKILL)
		deadline := time.Now().Add(10 * time.Second)
		for syscall.Kill(pid, 0) == nil && time.Now().Before(deadline) {
			var ws syscall.WaitStatus
			syscall.Wait4(pid, &ws, syscall.WNOHANG, nil) // not our child: ESRCH/ECHILD is fine
			time.Sleep(20 * time.Millisecond)
		}
	}
	if t.Failed() {
		out, _ := os.ReadFile(f.out)
		t.Logf("service output:\n%s", out)
	}
}

// wrapCurl puts a curl on PATH that appends a byte to every binary it
// downloads from /v1/dist/: a binary tampered with on the way.
func (f *fakeSystemdRun) wrapCurl(t *testing.T) {
	t.Helper()
	real, err := exec.LookPath("curl")
	if err != nil {
		t.Fatal(err)
	}
	script := `#!/bin/sh
out=
prev=
for a; do [ "$prev" = -o ] && out=$a; prev=$a; done
'` + real + `' "$@" || exit
case "$*" in
*/v1/dist/*) printf 'X' >> "$out" ;;
esac
`
	if err := os.WriteFile(filepath.Join(f.bin, "curl"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
}

// runLine runs line with sh -c from a new empty directory.
func (f *fakeSystemdRun) runLine(t *testing.T, c *cli, line string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cwd := filepath.Join(f.root, "cwd")
	if err := os.MkdirAll(cwd, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, "sh", "-c", line)
	cmd.Dir = cwd
	env := []string{}
	for _, kv := range c.env {
		if !strings.HasPrefix(kv, "PATH=") {
			env = append(env, kv)
		}
	}
	cmd.Env = append(env, "PATH="+f.path)
	var out, errb syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("sh -c %q: %v", line, err)
	}
	if ents, _ := os.ReadDir(cwd); len(ents) != 0 {
		t.Errorf("the script wrote into the directory it ran from: %v", ents)
	}
	return r
}

// secretFiles lists the files under the fake host holding secret.
func (f *fakeSystemdRun) secretFiles(t *testing.T, secret string) map[string]os.FileMode {
	t.Helper()
	found := map[string]os.FileMode{}
	filepath.WalkDir(f.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err == nil && strings.Contains(string(b), secret) {
			st, _ := os.Stat(p)
			found[p] = st.Mode().Perm()
		}
		return nil
	})
	return found
}

// wantOnlyEnvFile checks the secret is only in DIR/service.env, 0600.
func (f *fakeSystemdRun) wantOnlyEnvFile(t *testing.T, secret, dir string) {
	t.Helper()
	env := filepath.Join(dir, "service.env")
	found := f.secretFiles(t, secret)
	if mode, ok := found[env]; !ok || mode != 0o600 {
		t.Errorf("%s: got mode %v (present %v), want the secret in it, 0600", env, mode, ok)
	}
	delete(found, env)
	for p, mode := range found {
		t.Errorf("the secret is in %s (mode %v)", p, mode)
	}
}

func (f *fakeSystemdRun) calls(t *testing.T) string {
	b, _ := os.ReadFile(f.log)
	return strings.TrimSpace(string(b))
}

// startInstallManager runs a management host on loopback and returns its
// https URL and CA pin.
func startInstallManager(t *testing.T, c *cli) (string, string) {
	t.Helper()
	c.createAccount("acme")
	mgr := svStart(t, c, "relay", "--listen", "https://127.0.0.1:0")
	info := svRunFile(t, mgr, c.data, "relay")
	return svURL(t, info, "https"), info.CASHA256
}

type installOut struct {
	Key     string `json:"key"`   // installcmd
	Token   string `json:"token"` // proxy deploy
	Command string `json:"command"`
	Install string `json:"install"`
}

func TestInstallOneLinerAgent(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	mgrURL, pin := startInstallManager(t, c)
	f := newFakeSystemdRun(t)
	var ic installOut
	c.json(&ic, "installcmd", "create", "--manager", mgrURL)
	wantPrefix := "curl -fsSk --pinnedpubkey sha256//"
	wantSuffix := " " + mgrURL + wire.PathInstallScript + " | sh -s -- agent --proxy " + mgrURL + " --key " + ic.Key + " --ca-sha256 " + pin
	if !strings.HasPrefix(ic.Install, wantPrefix) || !strings.HasSuffix(ic.Install, wantSuffix) {
		t.Fatalf("install line: got %q, want %q...%q", ic.Install, wantPrefix, wantSuffix)
	}
	if human := c.ok("installcmd", "create", "--manager", mgrURL).stdout; !strings.Contains(human, "\n  "+wantPrefix) || !strings.Contains(human, "\n  outpost agent run --proxy "+mgrURL) {
		t.Errorf("installcmd create does not print both the one-liner and the plain command:\n%s", human)
	}

	r := f.runLine(t, c, ic.Install+" --prefix "+f.prefix+" --dir "+f.dir+" --unit-dir "+f.unitDir+" --systemd-dir "+f.systemdDir)
	if r.code != 0 {
		t.Fatalf("the one-liner: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	t.Logf("script stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	bin := filepath.Join(f.prefix, "bin", "outpost")
	for _, want := range []string{" with curl (SHA-256 ", "verified)", "installed " + bin, "wrote " + filepath.Join(f.unitDir, "outpost-agent.service"),
		"ran systemctl enable --now outpost-agent.service", "done: outpost-agent.service"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("the script's output lacks %q:\n%s", want, r.stdout)
		}
	}
	if st, err := os.Stat(bin); err != nil || st.Mode().Perm() != 0o755 {
		t.Errorf("%s: %v, want an executable 0755 file", bin, err)
	}
	if got, want := f.calls(t), "daemon-reload\nenable --now outpost-agent.service"; got != want {
		t.Errorf("systemctl calls: got %q, want %q", got, want)
	}
	waitCond(t, nil, 30*time.Second, "the installed agent enrolled and online", func() bool {
		var page struct {
			Agents []struct {
				Online bool `json:"online"`
			} `json:"agents"`
		}
		r := c.run("agent", "list", "--json")
		if r.code != 0 {
			return false
		}
		mustOneJSON(t, r.stdout, &page)
		return len(page.Agents) == 1 && page.Agents[0].Online
	})
	f.wantOnlyEnvFile(t, ic.Key, f.dir)
}

func TestInstallOneLinerRelay(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	mgrURL, pin := startInstallManager(t, c)
	c.ok("cluster", "create", "--name", "edge", "--address", "relay.edge.example")
	f := newFakeSystemdRun(t)
	var jt installOut
	c.json(&jt, "proxy", "deploy", "--cluster", "edge", "--manual", "--manager", mgrURL)
	if want := " | sh -s -- relay --manager " + mgrURL + " --join " + jt.Token + " --ca-sha256 " + pin; !strings.HasSuffix(jt.Install, want) {
		t.Fatalf("install line: got %q, want it to end with %q", jt.Install, want)
	}
	relayAddr := freeAddrOn(t, "127.0.0.2")
	r := f.runLine(t, c, jt.Install+" --prefix "+f.prefix+" --data "+f.dataDir+" --unit-dir "+f.unitDir+" --systemd-dir "+f.systemdDir+
		" --listen https://"+relayAddr+" --hostname edge-1 --heartbeat 200ms")
	if r.code != 0 {
		t.Fatalf("the one-liner: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stdout, "ran systemctl enable --now outpost-relay.service") {
		t.Errorf("the script's output lacks the service start:\n%s", r.stdout)
	}
	human := c.ok("proxy", "deploy", "--cluster", "edge", "--manual", "--manager", mgrURL).stdout
	if !strings.Contains(human, "\n  curl -fsSk --pinnedpubkey sha256//") || !strings.Contains(human, "\n  outpost relay --manager "+mgrURL) {
		t.Errorf("proxy deploy --manual does not print both the one-liner and the plain command:\n%s", human)
	}
	waitCond(t, nil, 30*time.Second, "the installed relay online", func() bool {
		p, ok := rjProxyStatus(t, c, "edge-1")
		return ok && p.Status == "online"
	})
	f.wantOnlyEnvFile(t, jt.Token, f.dataDir)
}

// What must install nothing: a binary changed on the way (SHA-256
// mismatch), a server with another key than the pinned one, a script cut
// short; and without systemd the script says so and prints the command.
func TestInstallOneLinerRefuses(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	mgrURL, _ := startInstallManager(t, c)
	var ic installOut
	c.json(&ic, "installcmd", "create", "--manager", mgrURL)
	if ic.Install == "" {
		t.Fatal("installcmd create printed no one-liner")
	}
	fetch, _, _ := strings.Cut(ic.Install, " | ")
	rest := ic.Install[len(fetch)+len(" | "):]
	otherPin := make([]byte, 32)
	rand.Read(otherPin)

	for _, tc := range []struct {
		name      string
		line      func(f *fakeSystemdRun) string
		extra     string // after the test's --prefix and directories
		setup     func(t *testing.T, f *fakeSystemdRun)
		code      int
		stderr    []string
		installed bool // the binary, but no unit
	}{
		{
			name:   "tampered binary",
			setup:  func(t *testing.T, f *fakeSystemdRun) { f.wrapCurl(t) },
			line:   func(f *fakeSystemdRun) string { return ic.Install },
			code:   1,
			stderr: []string{"SHA-256 mismatch for outpost-", "refusing it, nothing installed"},
		},
		{
			name: "wrong pin",
			line: func(f *fakeSystemdRun) string {
				return strings.Replace(ic.Install, strings.Fields(fetch)[3], wire.KeyPin(otherPin), 1)
			},
			stderr: []string{"public key does not match pinned public key"},
		},
		{
			name: "script cut short",
			line: func(f *fakeSystemdRun) string {
				s := filepath.Join(f.root, "install.sh")
				return fetch + " -o " + s + " && head -c $(( $(wc -c < " + s + ") * 9 / 10 )) " + s + " | " + rest
			},
			code:   2,
			stderr: []string{"unexpected"},
		},
		{
			name:   "unknown kind",
			line:   func(f *fakeSystemdRun) string { return strings.Replace(ic.Install, " -- agent ", " -- agnet ", 1) },
			code:   1,
			stderr: []string{"usage: sh -s -- agent|relay"},
		},
		{
			name:   "relay directory for an agent",
			line:   func(f *fakeSystemdRun) string { return ic.Install },
			extra:  " --data /var/lib/outpost",
			code:   1,
			stderr: []string{"--data is for a relay; the agent's directory is --dir"},
		},
		{
			name:   "relative prefix",
			line:   func(f *fakeSystemdRun) string { return ic.Install },
			extra:  " --prefix usr/local",
			code:   1,
			stderr: []string{"--prefix usr/local: want an absolute path"},
		},
		{
			name:      "no systemd",
			setup:     func(t *testing.T, f *fakeSystemdRun) { os.Remove(f.systemdDir) },
			line:      func(f *fakeSystemdRun) string { return ic.Install },
			code:      1,
			installed: true,
			stderr: []string{"no systemd on this host", "run under your supervisor: ",
				" agent run --dir ", " --key " + ic.Key, "no service was set up"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeSystemdRun(t)
			if tc.setup != nil {
				tc.setup(t, f)
			}
			bin := filepath.Join(f.prefix, "bin", "outpost")
			r := f.runLine(t, c, tc.line(f)+" --prefix "+f.prefix+" --dir "+f.dir+" --unit-dir "+f.unitDir+" --systemd-dir "+f.systemdDir+tc.extra)
			t.Logf("stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
			if r.code != tc.code {
				t.Errorf("exit: got %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, tc.code, r.stdout, r.stderr)
			}
			for _, want := range tc.stderr {
				if !strings.Contains(r.stderr, want) {
					t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
				}
			}
			if tc.installed {
				if want := "run under your supervisor: " + bin + " agent run --dir " + f.dir; !strings.Contains(r.stderr, want) {
					t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
				}
			}
			if _, err := os.Stat(bin); (err == nil) != tc.installed {
				t.Errorf("%s present: got %v, want %v", bin, err == nil, tc.installed)
			}
			if ents, _ := os.ReadDir(filepath.Dir(bin)); len(ents) > 0 && !tc.installed {
				t.Errorf("%s holds %v, want nothing", filepath.Dir(bin), ents)
			}
			if ents, _ := os.ReadDir(f.unitDir); len(ents) != 0 {
				t.Errorf("unit dir holds %v, want nothing", ents)
			}
			if got := f.calls(t); got != "" {
				t.Errorf("systemctl was called: %q", got)
			}
			if found := f.secretFiles(t, ic.Key); len(found) != 0 {
				t.Errorf("the key is in files: %v", found)
			}
		})
	}
}

// On a host without curl the script downloads with wget (which cannot pin:
// the SHA-256 from the pinned script is what it checks).
func TestInstallScriptWget(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("wget"); err != nil {
		t.Skip("no wget on PATH")
	}
	c := newCLI(t)
	mgrURL, _ := startInstallManager(t, c)
	f := newFakeSystemdRun(t)
	var ic installOut
	c.json(&ic, "installcmd", "create", "--manager", mgrURL)
	fetch, rest, _ := strings.Cut(ic.Install, " | ")
	script := filepath.Join(f.root, "install.sh")
	if r := f.runLine(t, c, fetch+" -o "+script); r.code != 0 {
		t.Fatalf("fetch the script: %s", r.stderr)
	}
	// Only the tools the script and the fake systemctl use; no curl.
	tools := filepath.Join(f.root, "tools")
	os.MkdirAll(tools, 0o755)
	for _, name := range []string{"uname", "mkdir", "wget", "sha256sum", "chmod", "mv", "rm", "sed"} {
		p, err := exec.LookPath(name)
		if err != nil {
			t.Skipf("no %s on PATH", name)
		}
		if err := os.Symlink(p, filepath.Join(tools, name)); err != nil {
			t.Fatal(err)
		}
	}
	f.path = f.bin + string(os.PathListSeparator) + tools
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Fatal(err)
	}
	args := strings.TrimPrefix(rest, "sh -s -- ")
	r := f.runLine(t, c, sh+" "+script+" "+args+" --prefix "+f.prefix+" --dir "+f.dir+" --unit-dir "+f.unitDir+" --systemd-dir "+f.systemdDir)
	if r.code != 0 {
		t.Fatalf("the script with wget: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stdout, " with wget (SHA-256 ") || !strings.Contains(r.stdout, "ran systemctl enable --now outpost-agent.service") {
		t.Errorf("the script's output lacks the verified download or the service start:\n%s", r.stdout)
	}
	if _, err := os.Stat(filepath.Join(f.prefix, "bin", "outpost")); err != nil {
		t.Errorf("binary not installed: %v", err)
	}
	os.Remove(script)
	f.wantOnlyEnvFile(t, ic.Key, f.dir)
}
