package main

// The command line is tested as users and scripts see it: the binary is
// built once and run as a real process against a fresh data directory per
// test, checking exit status, stdout, stderr (one line on error) and JSON.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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
