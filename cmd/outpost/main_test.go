package main

// The command line is tested as users and scripts see it: the binary is
// built once and run as a real process against a fresh data directory per
// test, checking exit status, stdout, stderr (one line on error) and JSON.

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mattn/go-runewidth"

	"outpost/store"
)

var outpostBin string // built once by TestMain

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "outpost-cli-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	outpostBin = filepath.Join(dir, "outpost")
	// go test puts its GOROOT/bin first on PATH, so this is the go that
	// runs the tests.
	goTool, err := exec.LookPath("go")
	if err != nil {
		fmt.Fprintln(os.Stderr, "build outpost:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	build := exec.Command(goTool, "build", "-o", outpostBin, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build outpost:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// cli runs the binary against one data directory.
type cli struct {
	t    *testing.T
	data string
	env  []string
}

func newCLI(t *testing.T) *cli {
	t.Helper()
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "OUTPOST_DATA", "USER", "SUDO_USER", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "RUNEWIDTH_EASTASIAN":
			continue
		}
		env = append(env, kv)
	}
	env = append(env, "HOME="+t.TempDir(), "USER=tester", "LANG=C.UTF-8")
	return &cli{t: t, data: t.TempDir(), env: env}
}

type result struct {
	code           int
	stdout, stderr string
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\n--- stdout\n%s--- stderr\n%s", r.code, r.stdout, r.stderr)
}

// command prepares a process with --data DIR in front of args.
func (c *cli) command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, outpostBin, append([]string{"--data", c.data}, args...)...)
	cmd.Env = c.env
	return cmd
}

func (c *cli) run(args ...string) result {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := c.command(ctx, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	default:
		c.t.Fatalf("outpost %s: %v", strings.Join(args, " "), err)
	}
	return r
}

// ok runs a command that must succeed.
func (c *cli) ok(args ...string) result {
	c.t.Helper()
	r := c.run(args...)
	if r.code != 0 {
		c.t.Fatalf("outpost %s: want exit 0, got\n%s", strings.Join(args, " "), r)
	}
	return r
}

// json runs a command with --json that must succeed and print exactly one
// JSON document, decoded into v.
func (c *cli) json(v any, args ...string) result {
	c.t.Helper()
	r := c.ok(append(args, "--json")...)
	mustOneJSON(c.t, r.stdout, v)
	return r
}

func mustOneJSON(t *testing.T, s string, v any) {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(s))
	if err := dec.Decode(v); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, s)
	}
	var extra json.RawMessage
	if err := dec.Decode(&extra); err != io.EOF {
		t.Fatalf("stdout holds more than one JSON document (%v):\n%s", err, s)
	}
}

// fails runs a command that must exit with code and print exactly one
// "outpost: ..." line on stderr containing want, and nothing on stdout.
func (c *cli) fails(code int, want string, args ...string) result {
	c.t.Helper()
	r := c.run(args...)
	checkFailure(c.t, r, code, want, args)
	return r
}

func checkFailure(t *testing.T, r result, code int, want string, args []string) {
	t.Helper()
	if r.code != code {
		t.Fatalf("outpost %s: want exit %d, got\n%s", strings.Join(args, " "), code, r)
	}
	if r.stdout != "" {
		t.Errorf("outpost %s: stdout should be empty on error, got %q", strings.Join(args, " "), r.stdout)
	}
	lines := strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n")
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "outpost: ") || !strings.HasSuffix(r.stderr, "\n") {
		t.Errorf("outpost %s: want one 'outpost: ...' line on stderr, got %q", strings.Join(args, " "), r.stderr)
	}
	if !strings.Contains(r.stderr, want) {
		t.Errorf("outpost %s: stderr %q does not contain %q", strings.Join(args, " "), r.stderr, want)
	}
}

// snapshot is everything the CLI can read back; equal snapshots mean the
// database did not change (every operator change also adds an audit entry).
func (c *cli) snapshot() string {
	c.t.Helper()
	var b strings.Builder
	for _, args := range [][]string{
		{"audit", "--limit", "1000"}, {"account", "list"}, {"cluster", "list"}, {"proxy", "list"},
		{"installcmd", "list"}, {"agent", "list", "--limit", "1000"}, {"settings", "show"}, {"release", "list"},
	} {
		b.WriteString(c.ok(append(args, "--json")...).stdout)
	}
	return b.String()
}

// createAccount creates an account and returns its verification key.
func (c *cli) createAccount(name string) string {
	c.t.Helper()
	var acct struct {
		Name string `json:"name"`
		Key  string `json:"verification_key"`
	}
	c.json(&acct, "account", "create", name)
	if acct.Name != name || !strings.HasPrefix(acct.Key, "vk_") {
		c.t.Fatalf("account create: got %+v", acct)
	}
	return acct.Key
}

// colStart is the display column where cell starts in line (-1 if absent).
func colStart(line, cell string) int {
	i := strings.Index(line, cell)
	if i < 0 {
		return -1
	}
	return runewidth.StringWidth(line[:i])
}

// checkAligned checks that in a table the cells of column header start at
// the header's display column on every row (CJK cells are two columns wide).
func checkAligned(t *testing.T, table, header string, cells ...string) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(table, "\n"), "\n")
	want := colStart(lines[0], header)
	if want < 0 {
		t.Fatalf("no %s column in\n%s", header, table)
	}
	for _, cell := range cells {
		found := false
		for _, l := range lines[1:] {
			if got := colStart(l, cell); got >= 0 {
				found = true
				if got != want {
					t.Errorf("%s cell %q starts at column %d, header at %d:\n%s", header, cell, got, want, table)
				}
			}
		}
		if !found {
			t.Errorf("cell %q not in\n%s", cell, table)
		}
	}
	for _, l := range lines {
		if strings.HasSuffix(l, " ") {
			t.Errorf("trailing space in %q", l)
		}
	}
}

type clusterJSON struct {
	ID            int64    `json:"id"`
	Name          string   `json:"name"`
	Address       string   `json:"address"`
	AddressKind   string   `json:"address_kind"`
	Status        string   `json:"status"`
	Agents        int      `json:"agents"`
	AgentsOnline  int      `json:"agents_online"`
	Proxies       int      `json:"proxies"`
	Warnings      []string `json:"warnings"`
	Policy        store.Policy
	ProxyServers  []store.Proxy `json:"proxy_servers"`
	ProxiesOnline int           `json:"proxies_online"`
}

func TestWalkthrough(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	const ipCluster, domainCluster = "腾讯云-广州", "edge"

	t.Run("account", func(t *testing.T) {
		c.createAccount("acme")
		r := c.ok("account", "list")
		checkAligned(t, r.stdout, "NAME", "acme")
		c.fails(1, `account "acme" already exists`, "account", "create", "acme")
	})
	t.Run("cluster create", func(t *testing.T) {
		var cl clusterJSON
		c.json(&cl, "cluster", "create", "--name", ipCluster, "--address", "10.0.0.5", "--region", "华南")
		if cl.Name != ipCluster || cl.AddressKind != "ip" || cl.Status != "offline" || cl.Policy.Mode != "forward" {
			t.Errorf("cluster create --json: %+v", cl)
		}
		r := c.ok("cluster", "create", "--name", domainCluster, "--address", "relay.example.com", "--remark", "web tier")
		if !strings.Contains(r.stdout, "cluster edge created") || !strings.Contains(r.stdout, "(domain)") {
			t.Errorf("cluster create: %s", r)
		}
	})
	t.Run("cluster list", func(t *testing.T) {
		var cs []clusterJSON
		c.json(&cs, "cluster", "list")
		if len(cs) != 2 {
			t.Fatalf("want 2 clusters, got %+v", cs)
		}
		r := c.ok("cluster", "list")
		checkAligned(t, r.stdout, "ADDRESS", "10.0.0.5", "relay.example.com")
		checkAligned(t, r.stdout, "STATUS", "offline")
	})
	t.Run("installcmd create", func(t *testing.T) {
		var ic struct {
			ID      int64  `json:"id"`
			Key     string `json:"key"`
			Cluster string `json:"cluster"`
			Command string `json:"command"`
			Expires string `json:"expires_at"`
		}
		r := c.json(&ic, "installcmd", "create", "--cluster", domainCluster, "--expires", "2h", "--group", "web")
		if !strings.HasPrefix(ic.Key, "ik_") || ic.Cluster != domainCluster ||
			ic.Command != "outpost agent run --proxy https://relay.example.com:8443 --key "+ic.Key {
			t.Errorf("installcmd create --json: %+v", ic)
		}
		if !strings.Contains(r.stderr, "no proxy server yet") {
			t.Errorf("want a note about the missing proxy, got %q", r.stderr)
		}
		r = c.ok("installcmd", "list")
		checkAligned(t, r.stdout, "CLUSTER", domainCluster)
		if strings.Contains(r.stdout, ic.Key) {
			t.Errorf("installcmd list shows the whole key:\n%s", r.stdout)
		}
		id := fmt.Sprint(ic.ID)
		c.ok("installcmd", "revoke", id)
		c.fails(1, "already revoked", "installcmd", "revoke", id)
		c.fails(1, "not found", "installcmd", "revoke", "999")
	})
	t.Run("policy forward", func(t *testing.T) {
		r := c.ok("cluster", "policy", ipCluster, "--mode", "forward", "--bandwidth", "80Mbit", "--frequency", "50", "--link", "100Mbit")
		if !strings.Contains(r.stdout, "bandwidth 80 Mbit/s, frequency 50 req/s, link 100 Mbit/s") {
			t.Errorf("policy: %s", r)
		}
		if !strings.HasPrefix(r.stderr, "warning: bandwidth limit 80 Mbit/s is more than 60% of the 100 Mbit/s link\n") {
			t.Errorf("want the 60%% warning on stderr, got %q", r.stderr)
		}
		var cl clusterJSON
		c.json(&cl, "cluster", "policy", ipCluster, "--bandwidth", "2Mbit")
		if cl.Policy.BandwidthBps != 250000 || cl.Policy.FrequencyRPS != 50 || len(cl.Warnings) != 0 {
			t.Errorf("policy kept values: %+v", cl.Policy)
		}
	})
	t.Run("policy cache", func(t *testing.T) {
		var cl clusterJSON
		c.json(&cl, "cluster", "policy", domainCluster, "--mode", "cache")
		if cl.Policy.Mode != "cache" || cl.Policy.CacheMax != store.MaxCacheBytes || cl.Policy.CacheDir == "" {
			t.Errorf("cache policy: %+v", cl.Policy)
		}
		c.fails(1, "cache-max 20 GB exceeds the maximum of 10 GB", "cluster", "policy", domainCluster, "--cache-max", "20GB")
		c.fails(2, "--bandwidth does not apply to cache mode", "cluster", "policy", domainCluster, "--bandwidth", "1Mbit")
		r := c.ok("cluster", "policy", domainCluster, "--cache-max", "512MB")
		if !strings.Contains(r.stdout, "capped at 512 MB") {
			t.Errorf("policy: %s", r)
		}
	})
	t.Run("proxy deploy manual", func(t *testing.T) {
		r := c.ok("proxy", "deploy", "--cluster", ipCluster, "--manual", "--manager", "https://mgr.example.com:8443", "--expires", "30m")
		if !strings.Contains(r.stdout, "outpost relay --manager https://mgr.example.com:8443 --join jt_") || !strings.Contains(r.stdout, "in 30m") {
			t.Errorf("proxy deploy: %s", r)
		}
		var jt struct {
			Token   string `json:"token"`
			Deploy  string `json:"deploy"`
			Command string `json:"command"`
		}
		c.json(&jt, "proxy", "deploy", "--cluster", ipCluster, "--manual", "--manager", "https://mgr.example.com:8443")
		if jt.Deploy != "manual" || jt.Command != "outpost relay --manager https://mgr.example.com:8443 --join "+jt.Token {
			t.Errorf("proxy deploy --json: %+v", jt)
		}
		var ps []store.Proxy
		c.json(&ps, "proxy", "list")
		if len(ps) != 0 {
			t.Errorf("no proxy has joined yet: %+v", ps)
		}
	})
	t.Run("cluster show", func(t *testing.T) {
		r := c.ok("cluster", "show", ipCluster)
		for _, want := range []string{"Cluster  腾讯云-广州", "Region   华南", "offline (0 of 0 proxy servers online)", "0 bound, 0 online",
			"forward to the built-in collector, bandwidth 2 Mbit/s, frequency 50 req/s, link 100 Mbit/s", "none yet"} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("cluster show lacks %q:\n%s", want, r.stdout)
			}
		}
		var cl clusterJSON
		c.json(&cl, "cluster", "show", ipCluster)
		if cl.Name != ipCluster || cl.ProxyServers == nil || len(cl.ProxyServers) != 0 {
			t.Errorf("cluster show --json: %+v", cl)
		}
	})
	t.Run("agent list empty", func(t *testing.T) {
		var page struct {
			Agents []store.Agent `json:"agents"`
			Total  int           `json:"total"`
		}
		r := c.json(&page, "agent", "list")
		if page.Total != 0 || page.Agents == nil || !strings.Contains(r.stdout, `"agents": []`) {
			t.Errorf("agent list --json: %s", r.stdout)
		}
	})
	t.Run("release", func(t *testing.T) {
		pkg := releasePackage(t)
		key := releaseKey(t, c)
		c.ok("release", "add", "1.2.0", "--notes", "first", "--file", pkg, "--key", key)
		c.ok("release", "add", "v1.10.0", "--file", pkg, "--key", key)
		var rs []store.Release
		c.json(&rs, "release", "list")
		if len(rs) != 2 || rs[0].Version != "1.10.0" || rs[1].Notes != "first" || len(rs[0].SHA256) != 64 {
			t.Errorf("release list: %+v", rs)
		}
		for _, tt := range []struct {
			name, want string
			code       int
			args       []string
		}{
			{"exists", "release 1.2.0 already exists", 1, []string{"1.2.0", "--file", pkg, "--key", key}},
			{"no package", "--file PATH is required", 2, []string{"1.3.0"}},
			{"missing package", "no such file", 1, []string{"1.3.0", "--file", pkg + ".missing", "--key", key}},
			{"not semver", `version "v1.0": three numbers are needed`, 1, []string{"v1.0", "--file", pkg, "--key", key}},
		} {
			t.Run(tt.name, func(t *testing.T) {
				before := c.snapshot()
				c.fails(tt.code, tt.want, append([]string{"release", "add"}, tt.args...)...)
				if after := c.snapshot(); after != before {
					t.Errorf("a refused release add changed the database")
				}
			})
		}
		c.fails(1, "release 9.9.9 not found", "release", "delete", "9.9.9")
		c.ok("release", "delete", "1.10.0")
		c.json(&rs, "release", "list")
		if len(rs) != 1 || rs[0].Version != "1.2.0" {
			t.Errorf("release list after delete: %+v", rs)
		}
		c.fails(1, "proxy server 7 not found", "proxy", "upgrade", "7")
		c.fails(1, "proxy server 7 not found", "proxy", "delete", "7")
	})
	t.Run("settings", func(t *testing.T) {
		var s map[string]string
		c.json(&s, "settings", "set", "bind_batch_gap=90s", "offline_after=1d")
		if s["bind_batch_gap"] != "1m30s" || s["offline_after"] != "24h" || s["inventory_interval"] != "5h" {
			t.Errorf("settings set: %v", s)
		}
		c.fails(1, "inventory_interval (5h0m0s) must be shorter than offline_after", "settings", "set", "offline_after=1h")
		r := c.ok("settings", "show")
		checkAligned(t, r.stdout, "VALUE", "1m30s", "24h")
	})
	t.Run("cluster delete", func(t *testing.T) {
		c.ok("cluster", "delete", domainCluster)
		c.fails(1, `cluster "edge" not found`, "cluster", "show", domainCluster)
	})
	t.Run("audit", func(t *testing.T) {
		var es []store.AuditEntry
		c.json(&es, "audit", "--limit", "100")
		if len(es) < 10 || es[0].Action != "cluster.delete" {
			t.Fatalf("audit: %+v", es)
		}
		for _, e := range es {
			if e.Actor != "tester@cli" {
				t.Errorf("audit actor %q, want tester@cli", e.Actor)
			}
		}
		var two []store.AuditEntry
		c.json(&two, "audit", "--limit", "2")
		if len(two) != 2 {
			t.Errorf("audit --limit 2: %d entries", len(two))
		}
	})
	t.Run("version", func(t *testing.T) {
		var v map[string]string
		c.json(&v, "version")
		if v["version"] == "" {
			t.Errorf("version --json: %v", v)
		}
	})
}

// TestSudoActor checks that the audit names the operator behind sudo.
func TestSudoActor(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.env = append(c.env, "SUDO_USER=alice")
	c.createAccount("acme")
	var es []store.AuditEntry
	c.json(&es, "audit")
	if len(es) != 1 || es[0].Actor != "alice@cli" {
		t.Errorf("audit: %+v", es)
	}
}

func TestUsageErrors(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.createAccount("acme")
	c.ok("cluster", "create", "--name", "gz", "--address", "10.0.0.5")
	before := c.snapshot()
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no command", nil, "missing command"},
		{"unknown command", []string{"clustr", "list"}, `unknown command "clustr" (did you mean cluster?)`},
		{"unknown subcommand", []string{"cluster", "lst"}, `cluster: unknown command "lst"`},
		{"missing subcommand", []string{"cluster"}, "cluster: missing command"},
		{"unknown flag", []string{"cluster", "list", "--foo"}, "cluster list: unknown flag: --foo"},
		{"missing argument", []string{"cluster", "show"}, "cluster show: missing NAME"},
		{"too many arguments", []string{"cluster", "show", "a", "b"}, "too many arguments"},
		{"unexpected argument", []string{"cluster", "list", "x"}, `takes no arguments, got "x"`},
		{"missing required flag", []string{"cluster", "create", "--name", "x"}, `required flag(s) "address" not set`},
		{"flag without value", []string{"audit", "--limit"}, "flag needs an argument"},
		{"bad number", []string{"audit", "--limit", "abc"}, `invalid argument "abc" for "--limit" flag: want a number`},
		{"bad bandwidth", []string{"cluster", "policy", "gz", "--bandwidth", "2Mq"}, `bandwidth "2Mq": unknown unit "Mq"`},
		{"bad frequency", []string{"cluster", "policy", "gz", "--frequency", "fast"}, `frequency "fast"`},
		{"bad cache-max", []string{"cluster", "policy", "gz", "--mode", "cache", "--cache-max", "lots"}, `size "lots"`},
		{"bad mode", []string{"cluster", "policy", "gz", "--mode", "relay"}, `invalid --mode "relay"`},
		{"policy without changes", []string{"cluster", "policy", "gz"}, "cluster policy: nothing to change"},
		{"cache flag in forward mode", []string{"cluster", "policy", "gz", "--cache-dir", "x"}, "--cache-dir does not apply to forward mode"},
		{"bad expires", []string{"proxy", "deploy", "--cluster", "gz", "--manual", "--expires", "abc"}, `invalid --expires "abc"`},
		{"negative expires", []string{"installcmd", "create", "--cluster", "gz", "--expires", "-1h"}, "must be positive"},
		{"bad os", []string{"installcmd", "create", "--os", "plan9"}, `invalid --os "plan9"`},
		{"deploy without mode", []string{"proxy", "deploy", "--cluster", "gz"}, "exactly one of --asset HOST or --manual"},
		{"deploy with both modes", []string{"proxy", "deploy", "--cluster", "gz", "--manual", "--asset", "h"}, "exactly one of"},
		{"bad manager", []string{"proxy", "deploy", "--cluster", "gz", "--manual", "--manager", "mgr:8443"}, "invalid --manager"},
		{"bad proxy id", []string{"proxy", "upgrade", "1", "x"}, `invalid proxy id "x"`},
		{"bad installcmd id", []string{"installcmd", "revoke", "one"}, `invalid install command id "one"`},
		{"bind without hosts", []string{"agent", "bind", "--cluster", "gz"}, "give hosts as arguments or --file F"},
		{"bind hosts and file", []string{"agent", "bind", "--cluster", "gz", "h1", "--file", "f"}, "give hosts as arguments or --file F"},
		{"unbind without hosts", []string{"agent", "unbind", "--cluster", "gz"}, "give HOST... or --all"},
		{"list cluster and direct", []string{"agent", "list", "--cluster", "gz", "--direct"}, "not both"},
		{"bad status", []string{"agent", "list", "--status", "up"}, `invalid --status "up"`},
		{"bad sort", []string{"agent", "list", "--sort", "size"}, `sort "size"`},
		{"bad limit", []string{"agent", "list", "--limit", "0"}, "invalid --limit 0"},
		{"settings without =", []string{"settings", "set", "bind_batch_gap"}, `"bind_batch_gap": want KEY=DURATION`},
		{"unknown setting", []string{"settings", "set", "speed=1s"}, `unknown key "speed"`},
		{"bad setting value", []string{"settings", "set", "bind_batch_gap=soon"}, `invalid bind_batch_gap "soon"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := *c
			c.t = t
			c.fails(2, tt.want, tt.args...)
		})
	}
	if after := c.snapshot(); after != before {
		t.Errorf("usage errors changed the database:\nbefore %s\nafter %s", before, after)
	}
}

func TestRefusalsLeaveDatabaseUnchanged(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	key := c.createAccount("acme")
	c.ok("cluster", "create", "--name", "gz", "--address", "10.0.0.5")
	c.ok("cluster", "create", "--name", "web", "--address", "web.example.com")
	c.ok("cluster", "policy", "web", "--mode", "cache", "--cache-max", "1GB")
	seedAgents(t, c, key, 3, "主机")
	c.ok("agent", "bind", "--cluster", "web", "主机-0001")
	hostFile := filepath.Join(t.TempDir(), "hosts.txt")
	os.WriteFile(hostFile, []byte("主机-0000\n# comment\nno-such-host\n主机-0002\n"), 0o600)
	many := []string{"agent", "bind", "--cluster", "gz"}
	for i := range store.BindBatchMax + 1 {
		many = append(many, fmt.Sprintf("h%d", i))
	}

	tests := []struct {
		name string
		code int
		want string
		args []string
	}{
		{"unknown cluster", 1, `cluster "nope" not found`, []string{"cluster", "show", "nope"}},
		{"policy of unknown cluster", 1, `cluster "nope" not found`, []string{"cluster", "policy", "nope", "--bandwidth", "1Mbit"}},
		{"deploy into unknown cluster", 1, `cluster "nope" not found`, []string{"proxy", "deploy", "--cluster", "nope", "--manual"}},
		{"delete unknown cluster", 1, `cluster "nope" not found`, []string{"cluster", "delete", "nope"}},
		{"malformed address", 1, `address "10.0.0.256" is not a valid IP address or domain name`, []string{"cluster", "create", "--name", "bad", "--address", "10.0.0.256"}},
		{"duplicate cluster", 1, `cluster "gz" already exists`, []string{"cluster", "create", "--name", "gz", "--address", "10.0.0.6"}},
		{"unknown account", 1, `account "other" not found`, []string{"cluster", "create", "--name", "x", "--address", "10.0.0.7", "--account", "other"}},
		{"cache over 10 GB", 1, "cache-max 20 GB exceeds the maximum of 10 GB", []string{"cluster", "policy", "web", "--cache-max", "20GB"}},
		{"cache under minimum", 1, "below the minimum", []string{"cluster", "policy", "web", "--cache-max", "1KB"}},
		{"bad upstream", 1, `upstream "ftp://x"`, []string{"cluster", "policy", "gz", "--upstream", "ftp://x"}},
		{"bad bandwidth", 2, `bandwidth "2Mq"`, []string{"cluster", "policy", "gz", "--bandwidth", "2Mq"}},
		{"bad expires", 2, `invalid --expires "abc"`, []string{"installcmd", "create", "--cluster", "gz", "--expires", "abc"}},
		{"cluster with agents", 1, `cluster "web" still has 1 bound agent(s) (unbind them: outpost agent unbind --cluster web --all)`, []string{"cluster", "delete", "web"}},
		{"unbind unbound host", 1, `host "主机-0002" is not bound to cluster "web"`, []string{"agent", "unbind", "--cluster", "web", "主机-0001", "主机-0002"}},
		{"bind unknown host", 1, `host "no-such-host" not found`, []string{"agent", "bind", "--cluster", "gz", "主机-0000", "no-such-host"}},
		{"bind file with unknown host", 1, "hosts.txt line 3: host \"no-such-host\" not found (1 of 3 hosts cannot be bound); nothing was bound", []string{"agent", "bind", "--cluster", "gz", "--file", hostFile}},
		{"bind missing file", 1, "no such file", []string{"agent", "bind", "--cluster", "gz", "--file", filepath.Join(t.TempDir(), "none")}},
		{"bind over 500 hosts", 1, "501 hosts in one batch: at most 500 per batch", many},
		{"uninstall unknown host", 1, `host "nope" not found`, []string{"agent", "uninstall", "主机-0000", "nope"}},
		{"show unknown agent", 1, `host "nope" not found`, []string{"agent", "show", "nope"}},
		{"quick deploy onto unknown asset", 1, `host "nope" not found`, []string{"proxy", "deploy", "--cluster", "web", "--asset", "nope"}},
		{"upgrade without release", 1, "proxy server 1 not found", []string{"proxy", "upgrade", "1"}},
		{"revoke unknown install command", 1, "install command 5 not found", []string{"installcmd", "revoke", "5"}},
		{"zero setting", 1, "setting poll_timeout must be positive", []string{"settings", "set", "poll_timeout=0s"}},
	}
	before := c.snapshot()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := *c
			c.t = t
			c.fails(tt.code, tt.want, tt.args...)
			if after := c.snapshot(); after != before {
				t.Errorf("the database changed:\nbefore %s\nafter %s", before, after)
			}
		})
	}
}

// seedAgents enrols n direct agents through the store, as the relay would,
// named PREFIX-0000... with IPs 10.1.x.y. It returns their ids.
func seedAgents(t *testing.T, c *cli, key string, n int, prefix string) []string {
	t.Helper()
	db, err := store.Open(filepath.Join(c.data, "outpost.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ids := make([]string, n)
	for i := range n {
		e, err := db.Enrol(context.Background(), store.EnrolInput{Key: key, Host: store.HostFacts{
			Hostname:    fmt.Sprintf("%s-%04d", prefix, i),
			IPs:         []string{fmt.Sprintf("10.1.%d.%d", i/250, i%250+1)},
			OS:          "linux",
			Arch:        "amd64",
			Fingerprint: fmt.Sprintf("fp-%s-%d", prefix, i),
			Version:     "1.0.0",
		}})
		if err != nil {
			t.Fatalf("enrol %d: %v", i, err)
		}
		ids[i] = e.Agent.ID
	}
	return ids
}

// TestManagerURLAndPin checks the generated commands: the URL of a running
// relay (DATA/run/relay.json) and the CA pin (DATA/tls/ca.pem).
func TestManagerURLAndPin(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.createAccount("acme")
	c.ok("cluster", "create", "--name", "gz", "--address", "10.0.0.5")

	host, _ := os.Hostname()
	r := c.ok("proxy", "deploy", "--cluster", "gz", "--manual")
	if !strings.Contains(r.stdout, "outpost relay --manager https://"+host+":8443 --join jt_") || strings.Contains(r.stdout, "--ca-sha256") {
		t.Errorf("without a running relay: %s", r)
	}

	os.MkdirAll(filepath.Join(c.data, "run"), 0o700)
	os.WriteFile(filepath.Join(c.data, "run", "relay.json"), []byte(`{"pid":1,"urls":["http://127.0.0.1:8080","https://127.0.0.1:8443"]}`), 0o600)
	der := selfSigned(t)
	os.MkdirAll(filepath.Join(c.data, "tls"), 0o700)
	os.WriteFile(filepath.Join(c.data, "tls", "ca.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	sum := sha256.Sum256(der)
	pin := hex.EncodeToString(sum[:])

	var jt struct {
		Token   string `json:"token"`
		Command string `json:"command"`
	}
	c.json(&jt, "proxy", "deploy", "--cluster", "gz", "--manual")
	if want := "outpost relay --manager https://127.0.0.1:8443 --join " + jt.Token + " --ca-sha256 " + pin; jt.Command != want {
		t.Errorf("command\n got %s\nwant %s", jt.Command, want)
	}
	var ic struct {
		Key     string `json:"key"`
		Command string `json:"command"`
	}
	c.json(&ic, "installcmd", "create", "--os", "windows")
	if want := "outpost agent run --proxy https://127.0.0.1:8443 --key " + ic.Key + " --ca-sha256 " + pin; ic.Command != want {
		t.Errorf("direct install command\n got %s\nwant %s", ic.Command, want)
	}
}

func selfSigned(t *testing.T) []byte {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "outpost test CA"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// TestDataDirFromEnv checks that OUTPOST_DATA is used when --data is not.
func TestDataDirFromEnv(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	c := newCLI(t)
	cmd := exec.Command(outpostBin, "account", "create", "acme")
	cmd.Env = append(c.env, "OUTPOST_DATA="+dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	st, err := os.Stat(filepath.Join(dir, "outpost.db"))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("database mode %v, want 0600", st.Mode().Perm())
	}
}

func TestProgressLine(t *testing.T) {
	tests := []struct {
		done, total, batch, batches int
		next                        time.Duration
		state, want                 string
	}{
		{1000, 2300, 3, 5, 41600 * time.Millisecond, "", "[########............] 1000/2300 hosts, batch 3/5, next in 42s"},
		{0, 2300, 1, 5, 0, "binding", "[....................] 0/2300 hosts, batch 1/5, binding"},
		{500, 2300, 2, 5, 300 * time.Millisecond, "", "[####................] 500/2300 hosts, batch 2/5, next in 1s"},
		{2300, 2300, 5, 5, 0, "done", "[####################] 2300/2300 hosts, batch 5/5, done"},
	}
	for _, tt := range tests {
		if got := progressLine(tt.done, tt.total, tt.batch, tt.batches, tt.next, tt.state); got != tt.want {
			t.Errorf("progressLine = %q, want %q", got, tt.want)
		}
	}
}

func TestErrorLineIsOneLine(t *testing.T) {
	err := errors.New("unknown command \"clustr\" for \"outpost\"\n\nDid you mean this?\n\tcluster\n")
	if got, want := errorLine(nil, err), `unknown command "clustr" for "outpost" (did you mean cluster?)`; got != want {
		t.Errorf("errorLine = %q, want %q", got, want)
	}
	if got := errorLine(nil, errors.New("a\nb\x1b[31m")); got != "a; b?[31m" {
		t.Errorf("errorLine = %q", got)
	}
}

// joinProxy redeems a join token as a relay would (store.JoinProxy).
func joinProxy(t *testing.T, c *cli, token, host, version string, urls ...string) store.Proxy {
	t.Helper()
	db, err := store.Open(filepath.Join(c.data, "outpost.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	p, _, err := db.JoinProxy(context.Background(), store.JoinInput{Token: token, Hostname: host, IP: "10.0.0.5", Version: version, URLs: urls})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestProxyLifecycle(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.createAccount("acme")
	c.ok("cluster", "create", "--name", "web", "--address", "relay.example.com")
	c.ok("cluster", "create", "--name", "gz", "--address", "10.0.0.5")
	var jt struct {
		Token string `json:"token"`
	}
	c.json(&jt, "proxy", "deploy", "--cluster", "web", "--manual")
	p := joinProxy(t, c, jt.Token, "腾讯云-relay-01", "1.0.0", "https://10.0.0.5:8443", "http://10.0.0.5:8080")
	id := fmt.Sprint(p.ID)

	var ps []store.Proxy
	c.json(&ps, "proxy", "list", "--cluster", "web")
	if len(ps) != 1 || ps[0].Status != "online" || ps[0].Hostname != "腾讯云-relay-01" || ps[0].Deploy != "manual" {
		t.Fatalf("proxy list: %+v", ps)
	}
	r := c.ok("proxy", "list")
	checkAligned(t, r.stdout, "IP", "10.0.0.5")
	checkAligned(t, r.stdout, "STATUS", "online")
	r = c.ok("cluster", "show", "web")
	if !strings.Contains(r.stdout, "online (1 of 1 proxy servers online)") || !strings.Contains(r.stdout, "腾讯云-relay-01") {
		t.Errorf("cluster show:\n%s", r.stdout)
	}
	var ic struct {
		Key     string `json:"key"`
		Command string `json:"command"`
	}
	r = c.json(&ic, "installcmd", "create", "--cluster", "web")
	// The cluster address first, then what the proxy advertised (here
	// joined directly in the store, so with a plain URL too).
	if want := "outpost agent run --proxy https://relay.example.com:8443,https://10.0.0.5:8443,http://10.0.0.5:8080 --key " + ic.Key; ic.Command != want || r.stderr != "" {
		t.Errorf("install command %q, want %q (stderr %q)", ic.Command, want, r.stderr)
	}

	// Upgrade: only to a newer published release; one bad id queues nothing.
	c.fails(1, "no release is published", "proxy", "upgrade", id)
	c.ok("release", "add", "1.1.0", "--file", releasePackage(t), "--key", releaseKey(t, c))
	before := c.snapshot()
	c.fails(1, "proxy server 99 not found", "proxy", "upgrade", id, "99")
	if after := c.snapshot(); after != before {
		t.Errorf("a refused upgrade changed the database")
	}
	r = c.ok("proxy", "upgrade", id)
	if !strings.Contains(r.stdout, "upgrade 1.0.0 -> 1.1.0 queued") {
		t.Errorf("proxy upgrade: %s", r)
	}

	// An IP-address cluster holds one proxy server.
	c.json(&jt, "proxy", "deploy", "--cluster", "gz", "--manual")
	joinProxy(t, c, jt.Token, "gz-relay", "1.1.0")
	c.fails(1, `cluster "gz" uses an IP address and already has its one proxy server`, "proxy", "deploy", "--cluster", "gz", "--manual")

	// Deletion order: an online proxy cannot be deleted, nor its cluster.
	c.fails(1, "is still online (last heartbeat ", "proxy", "delete", id)
	c.fails(1, `cluster "web" still has 1 proxy server(s) (stop each relay, then: outpost proxy delete ID)`, "cluster", "delete", "web")
	c.ok("settings", "set", "proxy_offline_after=1s")
	time.Sleep(1100 * time.Millisecond)
	r = c.ok("proxy", "delete", id)
	if !strings.Contains(r.stdout, "proxy server "+id+" (腾讯云-relay-01) deleted from cluster web") {
		t.Errorf("proxy delete: %s", r)
	}
	c.ok("cluster", "delete", "web")
}

// releaseKey makes the release signing key (release keygen) in a file
// outside the data directory and returns its path.
func releaseKey(t *testing.T, c *cli) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "release-signing.key")
	c.ok("release", "keygen", "--out", p)
	return p
}

// releasePackage writes a small release package file.
func releasePackage(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "outpost.pkg")
	if err := os.WriteFile(p, []byte("outpost release package"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
