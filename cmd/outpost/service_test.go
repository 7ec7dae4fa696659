//go:build unix

package main

import (
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// fakeSystemd puts a systemctl on PATH that appends its arguments to a log,
// and returns the flags pointing service at a temporary unit directory and
// a present systemd marker directory.
type fakeSystemd struct {
	log, unitDir string
	bin, sdDir   string
	flags        []string
}

func newFakeSystemd(t *testing.T, c *cli) *fakeSystemd {
	t.Helper()
	bin := t.TempDir()
	f := &fakeSystemd{log: filepath.Join(t.TempDir(), "systemctl.log"), unitDir: t.TempDir(), bin: bin, sdDir: t.TempDir()}
	script := "#!/bin/sh\necho \"$*\" >> '" + f.log + "'\n"
	if err := os.WriteFile(filepath.Join(bin, "systemctl"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	c.setPath(bin + string(os.PathListSeparator) + os.Getenv("PATH"))
	f.flags = []string{"--unit-dir", f.unitDir, "--systemd-dir", f.sdDir}
	return f
}

// withSystemdRun adds a systemd-run that logs its arguments (as
// "systemd-run ARGS" in the same log) and starts the command after "--"
// in a session of its own, as systemd starts a transient unit outside the
// caller; the pid of that command goes to the returned file.
func (f *fakeSystemd) withSystemdRun(t *testing.T) (pidFile string) {
	t.Helper()
	pidFile = filepath.Join(t.TempDir(), "transient.pid")
	script := "#!/bin/sh\necho \"systemd-run $*\" >> '" + f.log + "'\n" +
		"while [ $# -gt 0 ] && [ \"$1\" != -- ]; do shift; done\nshift\n" +
		"setsid \"$@\" >> '" + f.log + ".out' 2>&1 < /dev/null &\necho $! > '" + pidFile + "'\n"
	if err := os.WriteFile(filepath.Join(f.bin, "systemd-run"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return pidFile
}

func (c *cli) setPath(path string) {
	env := c.env[:0:0]
	for _, kv := range c.env {
		if !strings.HasPrefix(kv, "PATH=") {
			env = append(env, kv)
		}
	}
	c.env = append(env, "PATH="+path)
}

// with puts the fake's flags right after "service install KIND", before
// any "--".
func (f *fakeSystemd) with(args ...string) []string {
	n := min(3, len(args))
	return append(append(append([]string{}, args[:n]...), f.flags...), args[n:]...)
}

func (f *fakeSystemd) calls(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(f.log)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

func (f *fakeSystemd) unit(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(f.unitDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

var hardening = []string{
	"NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes",
	"Restart=on-failure", "RestartSec=5s", "WantedBy=multi-user.target",
}

func TestServiceInstall(t *testing.T) {
	for _, tc := range []struct {
		name, unit string
		args       func(c *cli, dir string) []string
		dir        func(c *cli, dir string) string
		exec       func(dir string) string
	}{
		{
			name: "relay", unit: "outpost-relay.service",
			args: func(c *cli, _ string) []string {
				return []string{"service", "install", "relay", "--bin", "/usr/local/bin/outpost", "--", "--listen", "https://0.0.0.0:8443", "--public", "https://relay.example:8443"}
			},
			dir: func(c *cli, _ string) string { return c.data },
			exec: func(dir string) string {
				return "ExecStart=/usr/local/bin/outpost --data " + dir + " relay --listen https://0.0.0.0:8443 --public https://relay.example:8443\n"
			},
		},
		{
			name: "agent", unit: "outpost-agent.service",
			args: func(c *cli, dir string) []string {
				return []string{"service", "install", "agent", "--dir", dir, "--bin", "/opt/outpost/bin/outpost", "--", "--proxy", "https://relay.example:8443"}
			},
			dir: func(_ *cli, dir string) string { return dir },
			exec: func(dir string) string {
				return "ExecStart=/opt/outpost/bin/outpost agent run --dir " + dir + " --proxy https://relay.example:8443\n"
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCLI(t)
			f := newFakeSystemd(t, c)
			agentDir := filepath.Join(t.TempDir(), "agent")
			r := c.ok(f.with(tc.args(c, agentDir)...)...)
			unit := f.unit(t, tc.unit)
			dir := tc.dir(c, agentDir)
			for _, want := range append(hardening, "ReadWritePaths="+dir+"\n", tc.exec(dir)) {
				if !strings.Contains(unit, want) {
					t.Errorf("unit lacks %q:\n%s", want, unit)
				}
			}
			if strings.Contains(unit, "User=") {
				t.Errorf("unit sets User= without --user:\n%s", unit)
			}
			st, err := os.Stat(filepath.Join(f.unitDir, tc.unit))
			if err != nil {
				t.Fatal(err)
			}
			if got, want := st.Mode().Perm(), os.FileMode(0o644); got != want {
				t.Errorf("unit mode: got %v, want %v", got, want)
			}
			if got, want := strings.Join(f.calls(t), "|"), "daemon-reload|enable --now "+tc.unit; got != want {
				t.Errorf("systemctl calls: got %q, want %q", got, want)
			}
			for _, want := range []string{"wrote " + filepath.Join(f.unitDir, tc.unit), "ran systemctl enable --now " + tc.unit} {
				if !strings.Contains(r.stdout, want) {
					t.Errorf("stdout lacks %q:\n%s", want, r.stdout)
				}
			}
		})
	}
}

// A --join token or --key must not be in the world-readable unit: it goes
// to DIR/service.env (0600), which the unit reads.
func TestServiceInstallSecret(t *testing.T) {
	for _, tc := range []struct {
		name, kind, flag, env string
	}{
		{"relay join", "relay", "--join", "OUTPOST_JOIN_TOKEN"},
		{"relay join=", "relay", "--join=", "OUTPOST_JOIN_TOKEN"},
		{"agent key", "agent", "--key", "OUTPOST_INSTALL_KEY"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCLI(t)
			f := newFakeSystemd(t, c)
			const secret = "jt_s3cret-value"
			dir := c.data
			args := []string{"service", "install", tc.kind}
			if tc.kind == "agent" {
				args = append(args, "--dir", dir)
			}
			pass := []string{"--", "--manager", "https://mgr.example:8444"}
			if strings.HasSuffix(tc.flag, "=") {
				pass = append(pass, tc.flag+secret)
			} else {
				pass = append(pass, tc.flag, secret)
			}
			c.ok(f.with(append(args, pass...)...)...)
			unitName := "outpost-" + tc.kind + ".service"
			unit := f.unit(t, unitName)
			if strings.Contains(unit, secret) {
				t.Errorf("the 0644 unit holds the secret:\n%s", unit)
			}
			envPath := filepath.Join(dir, "service.env")
			flag := strings.TrimSuffix(tc.flag, "=")
			for _, want := range []string{"EnvironmentFile=" + envPath + "\n", " " + flag + " ${" + tc.env + "}\n"} {
				if !strings.Contains(unit, want) {
					t.Errorf("unit lacks %q:\n%s", want, unit)
				}
			}
			b, err := os.ReadFile(envPath)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := string(b), tc.env+"="+secret+"\n"; got != want {
				t.Errorf("service.env: got %q, want %q", got, want)
			}
			st, _ := os.Stat(envPath)
			if got, want := st.Mode().Perm(), os.FileMode(0o600); got != want {
				t.Errorf("service.env mode: got %v, want %v", got, want)
			}
		})
	}
}

// service uninstall agent stops the relay deployed from the agent
// directory and removes the directory (unless --keep-dir), as an uninstall
// from the management host does.
func TestServiceUninstall(t *testing.T) {
	for _, tc := range []struct {
		name      string
		keepDir   bool
		wantDirGo bool
	}{
		{"agent", false, true},
		{"agent keep-dir", true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCLI(t)
			f := newFakeSystemd(t, c)
			dir := filepath.Join(t.TempDir(), "agent")
			c.ok(f.with("service", "install", "agent", "--dir", dir, "--bin", "/usr/local/bin/outpost", "--", "--key", "vk_x")...)
			if err := os.WriteFile(filepath.Join(dir, "identity.json"), []byte("{}"), 0o600); err != nil {
				t.Fatal(err)
			}
			relayPID := startFakeRelay(t, filepath.Join(dir, "relay"))
			os.Truncate(f.log, 0)
			args := append([]string{"service", "uninstall", "agent", "--dir", dir}, f.flags...)
			if tc.keepDir {
				args = append(args, "--keep-dir")
			}
			r := c.ok(args...)
			if got, want := strings.Join(f.calls(t), "|"), "disable --now outpost-agent.service|daemon-reload"; got != want {
				t.Errorf("systemctl calls: got %q, want %q", got, want)
			}
			if _, err := os.Stat(filepath.Join(f.unitDir, "outpost-agent.service")); !os.IsNotExist(err) {
				t.Errorf("unit file still there (%v)", err)
			}
			if _, err := os.Stat(filepath.Join(dir, "service.env")); !os.IsNotExist(err) {
				t.Errorf("service.env still there (%v)", err)
			}
			_, err := os.Stat(dir)
			if gone := os.IsNotExist(err); gone != tc.wantDirGo {
				t.Errorf("agent directory gone: got %v, want %v", gone, tc.wantDirGo)
			}
			if processRunning(relayPID) {
				t.Errorf("the deployed relay (pid %d) still runs", relayPID)
			}
			for _, want := range []string{"removed " + filepath.Join(f.unitDir, "outpost-agent.service"), fmt.Sprintf("(pid %d)", relayPID)} {
				if !strings.Contains(r.stdout, want) {
					t.Errorf("stdout lacks %q:\n%s", want, r.stdout)
				}
			}
		})
	}
}

func TestServiceNoSystemd(t *testing.T) {
	for _, tc := range []struct {
		name, want string
		setup      func(t *testing.T, c *cli, f *fakeSystemd) []string
	}{
		{"no systemctl", "no systemctl on PATH", func(t *testing.T, c *cli, f *fakeSystemd) []string {
			c.setPath(t.TempDir())
			return f.flags
		}},
		{"not booted with systemd", "missing", func(t *testing.T, c *cli, f *fakeSystemd) []string {
			return []string{"--unit-dir", f.unitDir, "--systemd-dir", filepath.Join(t.TempDir(), "absent")}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCLI(t)
			f := newFakeSystemd(t, c)
			flags := tc.setup(t, c, f)
			r := c.fails(1, tc.want, append(append([]string{"service", "install", "relay", "--bin", "/usr/local/bin/outpost"}, flags...), "--", "--listen", "https://0.0.0.0:8443")...)
			if want := "run under your supervisor: /usr/local/bin/outpost --data " + c.data + " relay --listen https://0.0.0.0:8443"; !strings.Contains(r.stderr, want) {
				t.Errorf("stderr lacks %q: %q", want, r.stderr)
			}
			if ents, _ := os.ReadDir(f.unitDir); len(ents) != 0 {
				t.Errorf("unit dir not empty: %v", ents)
			}
			if calls := f.calls(t); len(calls) != 1 || calls[0] != "" {
				t.Errorf("systemctl was called: %q", calls)
			}
		})
	}
}

func TestServiceUsage(t *testing.T) {
	c := newCLI(t)
	f := newFakeSystemd(t, c)
	for _, tc := range []struct {
		name, want string
		args       []string
	}{
		{"bad kind", `unknown service "foo"`, []string{"service", "install", "foo"}},
		{"bad kind uninstall", `unknown service "foo"`, []string{"service", "uninstall", "foo"}},
		{"missing kind", "missing KIND", []string{"service", "install"}},
		{"flag not passed through", "unknown flag: --listen", []string{"service", "install", "relay", "--listen", "x"}},
		{"data after dash", "give --data before '--'", []string{"service", "install", "relay", "--", "--data", "x"}},
		{"keep-dir relay", "--keep-dir is for the agent only", []string{"service", "uninstall", "relay", "--keep-dir"}},
		{"relative bin", "want an absolute path", []string{"service", "install", "relay", "--bin", "outpost"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c.fails(2, tc.want, f.with(tc.args...)...)
		})
	}
	if ents, _ := os.ReadDir(f.unitDir); len(ents) != 0 {
		t.Errorf("unit dir not empty: %v", ents)
	}
}

// Unit files expand % specifiers everywhere and $VAR in ExecStart: a path
// with a space or a flag with % or $ must reach the service unchanged.
func TestServiceUnitQuoting(t *testing.T) {
	k := serviceKinds["relay"]
	dir := "/srv/out post/100%"
	unit := renderUnit(k, []string{"/usr/local/bin/outpost", "--data", dir, "relay", "--ca-sha256", "a%b$c", k.secret, "${" + k.envVar + "}"}, dir, "outpost", dir+"/service.env")
	for _, want := range []string{
		`ExecStart=/usr/local/bin/outpost --data "/srv/out post/100%%" relay --ca-sha256 a%%b$$c --join ${OUTPOST_JOIN_TOKEN}` + "\n",
		`ReadWritePaths="/srv/out post/100%%"` + "\n",
		"EnvironmentFile=/srv/out post/100%%/service.env\n",
		"User=outpost\n",
	} {
		if !strings.Contains(unit, want) {
			t.Errorf("unit lacks %q:\n%s", want, unit)
		}
	}
}

// ProtectHome=yes would hide a data directory under a home directory from
// the service; there it is read-only instead, the directory itself writable.
func TestServiceProtectHome(t *testing.T) {
	for _, tc := range []struct{ dir, want string }{
		{"/var/lib/outpost-agent", "ProtectHome=yes\n"},
		{"/homework/outpost", "ProtectHome=yes\n"},
		{"/home/ops/.outpost-agent", "ProtectHome=read-only\n"},
		{"/root/.outpost", "ProtectHome=read-only\n"},
	} {
		t.Run(tc.dir, func(t *testing.T) {
			k := serviceKinds["agent"]
			unit := renderUnit(k, []string{"/usr/local/bin/outpost", "agent", "run", "--dir", tc.dir}, tc.dir, "", "")
			if !strings.Contains(unit, tc.want) {
				t.Errorf("unit lacks %q:\n%s", tc.want, unit)
			}
		})
	}
}

func TestServiceInstallUser(t *testing.T) {
	me, err := user.Current()
	if err != nil {
		t.Skip(err)
	}
	c := newCLI(t)
	f := newFakeSystemd(t, c)
	dir := filepath.Join(t.TempDir(), "agent")
	c.fails(1, `--user "no-such-outpost-user": no such account`, f.with("service", "install", "agent", "--dir", dir, "--user", "no-such-outpost-user")...)
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("refused install created %s (%v)", dir, err)
	}
	c.ok(f.with("service", "install", "agent", "--dir", dir, "--user", me.Username)...)
	if unit := f.unit(t, "outpost-agent.service"); !strings.Contains(unit, "\nUser="+me.Username+"\n") {
		t.Errorf("unit lacks User=%s:\n%s", me.Username, unit)
	}
	st, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fmt.Sprint(st.Sys().(*syscall.Stat_t).Uid), me.Uid; got != want {
		t.Errorf("owner of %s: got uid %s, want %s", dir, got, want)
	}
}
