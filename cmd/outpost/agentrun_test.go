package main

// `outpost agent run` is tested as it runs on a host: the built binary is
// started as a real process against a management host (store, built-in
// collector, relay) running in the test process, and what the management
// host sees is compared with what the operating system says.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"outpost/agentsim"
	"outpost/agentsim/hostfacts"
	"outpost/relay"
	"outpost/relay/collector"
	"outpost/relay/relaytest"
	"outpost/store"
)

// arManager is an in-process management host.
type arManager struct {
	DB      *store.DB
	Col     *collector.Collector
	Srv     *relay.Server
	URL     string // the relay's own TLS listener
	Pin     string
	Account store.Account
	Key     string
}

// arStartManager starts store, collector and relay (relaytest) with one
// account and one install key. public, when set, is the URL handed to
// agents instead of the TLS listener's.
func arStartManager(t *testing.T, public string) *arManager {
	t.Helper()
	o := relaytest.Options{Config: func(cfg *relay.Config) {
		cfg.PollTimeout = 2 * time.Second
		cfg.HeartbeatInterval = 200 * time.Millisecond
	}}
	if public != "" {
		o.PublicURLs = []string{public}
	}
	rm := relaytest.Start(t, o)
	m := &arManager{DB: rm.DB, Col: rm.Collector, Srv: rm.Relay, URL: rm.TLSURL, Pin: rm.Pin()}
	ctx := context.Background()
	var err error
	if m.Account, _, err = m.DB.CreateAccount(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	ic, err := m.DB.CreateInstallCommand(ctx, store.InstallInput{AccountID: m.Account.ID})
	if err != nil {
		t.Fatal(err)
	}
	m.Key = ic.Key
	return m
}

// arAgent is one `outpost agent run` process on an agent directory.
type arAgent struct {
	*proc
	dir string
}

func arEnv(t *testing.T) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "OUTPOST_DATA", "OUTPOST_AGENT_DIR", "OUTPOST_MACHINE_ID_FILE", "HOME":
			continue
		}
		env = append(env, kv)
	}
	return append(env, "HOME="+t.TempDir())
}

// arStartAgent runs `outpost agent run` on dir against m with fast test
// timing; extra flags come last (a later --proxy replaces the default).
func arStartAgent(t *testing.T, m *arManager, dir string, extra ...string) *arAgent {
	t.Helper()
	args := []string{"agent", "run", "--key", m.Key, "--ca-sha256", m.Pin, "--dir", dir,
		"--inventory-every", "1s", "--event-every", "200ms", "--poll-wait", "2s"}
	hasProxy := false
	for _, e := range extra {
		if e == "--proxy" || strings.HasPrefix(e, "--proxy=") {
			hasProxy = true
		}
	}
	if !hasProxy {
		args = append(args, "--proxy", m.URL)
	}
	args = append(args, extra...)
	cmd := exec.Command(outpostBin, args...)
	cmd.Env = arEnv(t)
	return &arAgent{proc: startProc(t, cmd, "agent in "+filepath.Base(dir)), dir: dir}
}

// stop sends SIGTERM and expects a clean exit 0. It first waits for the
// agent's first log line, so the signal handler is surely installed.
func (p *arAgent) stop() {
	p.t.Helper()
	waitCond(p.t, p.proc, 10*time.Second, "the agent's first log line", func() bool { return p.stderr.String() != "" || p.exited() })
	p.signal(syscall.SIGTERM)
	p.wantExit0(15 * time.Second)
}

// arAgentID waits for the agent's identity file and returns its id.
func arAgentID(t *testing.T, p *arAgent) string {
	t.Helper()
	var id string
	waitCond(t, p.proc, 15*time.Second, "enrolment (identity file)", func() bool {
		got, ok, err := (&agentsim.DiskIdentity{Dir: p.dir}).Load()
		if ok && err == nil {
			id = got.AgentID
		}
		return id != ""
	})
	return id
}

// arFingerprint is the fingerprint an agent enrolled in dir on this
// machine presents: the machine's, with the directory's place.
func arFingerprint(t *testing.T, dir string) string {
	t.Helper()
	h, err := (hostfacts.HostFS{}).Host(version)
	if err != nil {
		t.Fatal(err)
	}
	st, err := agentsim.StampDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return agentsim.IdentityFingerprint(h.Fingerprint, st)
}

func arGetAgent(t *testing.T, m *arManager, id string) store.Agent {
	t.Helper()
	g, err := m.DB.GetAgent(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func TestAgentRunUsageAndBadKey(t *testing.T) {
	t.Parallel()
	m := arStartManager(t, "")
	c := newCLI(t)
	dir := t.TempDir()
	c.fails(2, "--proxy", "agent", "run", "--key", m.Key, "--dir", dir)
	c.fails(2, "--key", "agent", "run", "--proxy", m.URL, "--dir", dir)
	c.fails(2, "--proxy", "agent", "run", "--proxy", "ftp://x", "--key", m.Key, "--dir", dir)

	r := c.run("agent", "run", "--proxy", m.URL, "--ca-sha256", m.Pin, "--key", "ik_not_a_real_key", "--dir", dir)
	if r.code != 1 || r.stderr != "outpost: install key not recognised\n" {
		t.Fatalf("bad key: want exit 1 and one line, got %s", r)
	}
	if _, err := os.Stat(filepath.Join(dir, agentsim.IdentityFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("identity file left after a refused enrolment: %v", err)
	}
	if r := c.run("agent", "run", "--help"); r.code != 0 || !strings.Contains(r.stdout, "duplicate identity") {
		t.Errorf("agent run --help: %s", r)
	}
}

// arOSCounts is what the operating system says about this host.
type arOSCounts struct {
	procs, ports, accounts, roots int
	haveProcs, havePorts, haveAcc bool
}

func arOS(t *testing.T) arOSCounts {
	var c arOSCounts
	if out, err := exec.Command("ps", "-e", "--no-headers").Output(); err == nil {
		c.procs, c.haveProcs = len(strings.Split(strings.TrimSpace(string(out)), "\n")), true
	}
	ports := map[int]bool{}
	c.havePorts = true
	for _, args := range [][]string{{"-Hltn"}, {"-Hlun"}} {
		out, err := exec.Command("ss", args...).Output()
		if err != nil {
			c.havePorts = false
			break
		}
		for _, line := range strings.Split(string(out), "\n") {
			f := strings.Fields(line)
			if len(f) < 5 {
				continue
			}
			local := f[3]
			if n, err := strconv.Atoi(local[strings.LastIndex(local, ":")+1:]); err == nil && n > 0 {
				ports[n] = true
			}
		}
	}
	c.ports = len(ports)
	if out, err := exec.Command("getent", "passwd").Output(); err == nil {
		c.haveAcc = true
		for _, line := range strings.Split(string(out), "\n") {
			if strings.TrimSpace(line) == "" {
				continue
			}
			c.accounts++
			if f := strings.Split(line, ":"); len(f) > 2 && f[2] == "0" {
				c.roots++
			}
		}
	}
	return c
}

func arAbs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

// TestAgentRunLifecycle: enrolment with real host facts and inventory
// checked against ps, ss and getent; a restart keeps the identity; the
// directory copied to "another machine" is flagged as a duplicate
// identity; uninstall by command removes the identity and exits 0.
func TestAgentRunLifecycle(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the reference agent reads Linux host facts")
	}
	t.Parallel()
	m := arStartManager(t, "")
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "agent")
	a := arStartAgent(t, m, dir)
	id := arAgentID(t, a)

	// a) real host facts and inventory, as the OS reports them.
	waitCond(t, a.proc, 15*time.Second, "first inventory", func() bool { return !arGetAgent(t, m, id).LastInventory.IsZero() })
	g := arGetAgent(t, m, id)
	host, _ := os.Hostname()
	if g.Hostname != host || g.OS != "linux" || g.Arch != runtime.GOARCH || g.Version != version {
		t.Errorf("host facts %q %q %q %q, want %q linux %q %q", g.Hostname, g.OS, g.Arch, g.Version, host, runtime.GOARCH, version)
	}
	// The fingerprint covers this machine and where the identity lives.
	enrolledFP := arFingerprint(t, dir)
	if want, _ := (hostfacts.HostFS{}).Host(version); g.OSName != want.OSName || g.Fingerprint != enrolledFP {
		t.Errorf("os name %q fingerprint %q, want %q %q", g.OSName, g.Fingerprint, want.OSName, enrolledFP)
	}
	if !g.Online || g.SecurityStatus != "Protected" {
		t.Errorf("agent online=%v security=%q, want online and Protected", g.Online, g.SecurityStatus)
	}
	// Processes and ports move; compare snapshots taken close together and
	// retry while the inventory (sent every second) catches up.
	var last string
	okProcs, okPorts := false, false
	for try := 0; try < 20 && !(okProcs && okPorts); try++ {
		if try > 0 {
			time.Sleep(500 * time.Millisecond)
		}
		g = arGetAgent(t, m, id)
		osc := arOS(t)
		okProcs = !osc.haveProcs || arAbs(g.Processes-osc.procs) <= 10
		okPorts = !osc.havePorts || arAbs(g.Ports-osc.ports) <= 3
		last = fmt.Sprintf("agent: %d processes, %d ports; OS: %d processes (ps -e), %d ports (ss -ltn, ss -lun)", g.Processes, g.Ports, osc.procs, osc.ports)
		if try == 0 {
			if !osc.haveProcs || !osc.havePorts {
				t.Logf("ps or ss missing: that comparison is skipped")
			}
			if osc.haveAcc {
				if g.Accounts != osc.accounts || g.RootAccounts != osc.roots {
					t.Errorf("accounts: agent %d root / %d all, getent passwd %d root / %d all", g.RootAccounts, g.Accounts, osc.roots, osc.accounts)
				}
			} else {
				t.Logf("getent missing: account comparison skipped")
			}
		}
	}
	if !okProcs || !okPorts {
		t.Errorf("inventory does not match the OS: %s", last)
	} else {
		t.Logf("inventory matches the OS: %s; accounts %d root / %d all", last, g.RootAccounts, g.Accounts)
	}
	if g.Processes <= 0 || g.Accounts <= 0 {
		t.Errorf("empty inventory: %+v", g.Inventory)
	}
	waitCond(t, a.proc, 10*time.Second, "events at the collector", func() bool { return m.Col.Received(id) > 0 })

	// b) restart keeps the identity.
	a.stop()
	if !strings.Contains(a.stderr.String(), "enrolled agent="+id) {
		t.Errorf("no enrolment line in the log:\n%s", a.stderr.String())
	}
	clone := filepath.Join(t.TempDir(), "clone")
	if err := os.CopyFS(clone, os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	before := arGetAgent(t, m, id).LastCheckin
	a = arStartAgent(t, m, dir)
	waitCond(t, a.proc, 10*time.Second, "check-in after restart", func() bool { return arGetAgent(t, m, id).LastCheckin.After(before) })
	if got := arAgentID(t, a); got != id {
		t.Fatalf("restart changed the agent id: %s -> %s", id, got)
	}
	page, err := m.DB.ListAgents(ctx, store.AgentFilter{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if page.Total != 1 {
		t.Fatalf("store holds %d agents after a restart, want 1", page.Total)
	}
	// The child's stderr reaches the buffer through exec's copying
	// goroutine, which may lag the check-in on a loaded machine.
	waitCond(t, a.proc, 5*time.Second, "restart log naming the kept identity "+id, func() bool {
		return strings.Contains(a.stderr.String(), "agent starting agent="+id)
	})
	if arGetAgent(t, m, id).Duplicate {
		t.Fatal("flagged as duplicate before any copy ran")
	}

	// c) the directory copied to another machine: same id, other
	// fingerprint -> duplicate identity on the management host.
	midFile := filepath.Join(t.TempDir(), "machine-id")
	os.WriteFile(midFile, []byte("0123456789abcdef0123456789abcdef\n"), 0o644)
	c := arStartAgent(t, m, clone, "--machine-id-file", midFile)
	waitCond(t, c.proc, 15*time.Second, "duplicate identity flag", func() bool { return arGetAgent(t, m, id).Duplicate })
	g = arGetAgent(t, m, id)
	if g.DuplicateFix == "" {
		t.Error("duplicate without the fix text")
	}
	if g.Fingerprint != enrolledFP {
		t.Errorf("the clone overwrote the enrolled fingerprint: %s", g.Fingerprint)
	}
	waitCond(t, c.proc, 10*time.Second, "the clone told about the duplicate", func() bool {
		return strings.Contains(c.stderr.String(), "duplicate identity")
	})
	c.stop()

	// e) uninstall by command: exit 0, identity and buffer gone.
	if _, err := m.DB.Uninstall(store.WithActor(ctx, "tester@test"), m.Account.ID, []string{id}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-a.done:
	case <-time.After(10 * time.Second):
		t.Fatalf("agent still running 10s after the uninstall command; stderr:\n%s", a.stderr.String())
	}
	if a.code() != 0 || !strings.Contains(a.stdout.String(), "uninstalled by the management host") {
		t.Fatalf("after uninstall: exit %d stdout %q stderr:\n%s", a.code(), a.stdout.String(), a.stderr.String())
	}
	if _, err := os.Stat(filepath.Join(dir, agentsim.IdentityFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("identity file still there after uninstall: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "buffer")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("event buffer still there after uninstall: %v", err)
	}
}

// Quick deployment (seed 000): the deploy-proxy command makes the agent
// start a relay that joins the management host as a proxy server of the
// cluster, on this asset.
func TestAgentRunDeployProxy(t *testing.T) {
	t.Parallel()
	m := arStartManager(t, "")
	ctx := store.WithActor(context.Background(), "tester@test")
	dir := filepath.Join(t.TempDir(), "agent")
	a := arStartAgent(t, m, dir, "--deploy-listen", "https://127.0.0.1:0")
	id := arAgentID(t, a)
	waitCond(t, a.proc, 10*time.Second, "agent online", func() bool { return arGetAgent(t, m, id).Online })
	c, err := m.DB.CreateCluster(ctx, store.ClusterInput{AccountID: m.Account.ID, Name: "edge", Address: "edge.example.test"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.DB.CreateJoinToken(ctx, c.ID, store.DeployQuick, id, time.Hour); err != nil {
		t.Fatal(err)
	}
	pidRe := regexp.MustCompile(`started relay pid=(\d+)`)
	var pid int
	waitCond(t, a.proc, 10*time.Second, "relay started by the agent", func() bool {
		if mm := pidRe.FindStringSubmatch(a.stderr.String()); mm != nil {
			pid, _ = strconv.Atoi(mm[1])
		}
		return pid > 0
	})
	t.Cleanup(func() {
		// The relay is detached from the agent: stop it by its pid.
		if p, err := os.FindProcess(pid); err == nil {
			p.Signal(syscall.SIGTERM)
			deadline := time.Now().Add(10 * time.Second)
			for processAlive(pid) && time.Now().Before(deadline) {
				time.Sleep(50 * time.Millisecond)
			}
			p.Kill()
		}
	})
	var proxies []store.Proxy
	waitCond(t, a.proc, 20*time.Second, "the deployed relay registered as a proxy server", func() bool {
		proxies, err = m.DB.ListProxies(ctx, c.ID)
		return err == nil && len(proxies) == 1
	})
	p := proxies[0]
	if p.Deploy != store.DeployQuick || p.AssetID != id || len(p.URLs) == 0 {
		t.Errorf("proxy %+v: want quick deployment on asset %s with URLs", p, id)
	}

	// Bind the agent to the cluster: it moves to the new proxy server,
	// keeps the list in its identity file, and its data flows through it.
	waitCond(t, a.proc, 10*time.Second, "proxy online", func() bool {
		proxies, err = m.DB.ListProxies(ctx, c.ID)
		return err == nil && len(proxies) == 1 && proxies[0].Status == "online"
	})
	if _, err := m.DB.Bind(ctx, c.ID, []string{id}); err != nil {
		t.Fatal(err)
	}
	idents := &agentsim.DiskIdentity{Dir: dir}
	waitCond(t, a.proc, 15*time.Second, "bound agent checking in through the proxy server", func() bool {
		got, _, _ := idents.Load()
		return got.Cluster == "edge" && slices.Contains(got.Proxies, p.URLs[0]) && arGetAgent(t, m, id).ViaProxyID == p.ID
	})
	n := m.Col.Received(id)
	waitCond(t, a.proc, 15*time.Second, "events through the proxy server", func() bool { return m.Col.Received(id) > n+2 })
	if _, err := m.DB.Unbind(ctx, c.ID, []string{id}, false); err != nil {
		t.Fatal(err)
	}
	waitCond(t, a.proc, 15*time.Second, "unbound agent back on direct connection", func() bool {
		got, _, _ := idents.Load()
		return got.Cluster == "" && len(got.Proxies) > 0 && !slices.Contains(got.Proxies, p.URLs[0])
	})
	if !strings.Contains(a.stderr.String(), "relays changed by the management host cluster=edge") {
		t.Errorf("bind not logged:\n%s", a.stderr.String())
	}

	// The relay outlives the agent.
	a.stop()
	if !processAlive(pid) {
		logb, _ := os.ReadFile(filepath.Join(dir, "relay", "relay.log"))
		t.Fatalf("the deployed relay stopped with the agent; relay log:\n%s", logb)
	}
}
