//go:build linux

package main

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"outpost/store"
)

// seedBigFleet fills DATA/outpost.db with one account, nClusters clusters
// (one proxy server, online, in every tenth), and nAgents agents inserted
// in one transaction (the store API would take minutes): 90 % bound to a
// cluster, 70 % online, host names partly CJK.
// It returns a few of the host names, for filters.
func seedBigFleet(t *testing.T, dataDir string, nClusters, nAgents int) (samples []string) {
	t.Helper()
	start := time.Now()
	path := filepath.Join(dataDir, dbFileName)
	db, err := store.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := store.WithActor(context.Background(), "seed")
	acct, _, err := db.CreateAccount(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	var clusters []int64
	for i := range nClusters {
		name := fmt.Sprintf("cluster-%04d", i)
		if i%7 == 0 {
			name = fmt.Sprintf("腾讯云-广州-%04d", i)
		}
		c, err := db.CreateCluster(ctx, store.ClusterInput{AccountID: acct.ID, Name: name, Address: fmt.Sprintf("relay%04d.example", i), Region: "华南"})
		if err != nil {
			t.Fatal(err)
		}
		clusters = append(clusters, c.ID)
		if i%10 == 0 {
			jt, err := db.CreateJoinToken(ctx, c.ID, store.DeployManual, "", time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := db.JoinProxy(ctx, store.JoinInput{Token: jt.Token, Hostname: fmt.Sprintf("proxy-%04d", i), IP: "10.9.0.1", Version: version}); err != nil {
				t.Fatal(err)
			}
		}
	}
	raw, err := sql.Open("sqlite", "file:"+(&url.URL{Path: path}).EscapedPath()+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	tx, err := raw.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	stmt, err := tx.Prepare(`INSERT INTO agents (id, account_id, secret_hash, fingerprint, hostname, ips, os, arch, version, cluster_id,
		enrolled_at, last_checkin, vulns) VALUES (?, ?, ?, ?, ?, ?, ?, 'amd64', '1.0.0', ?, ?, ?, ?)`)
	if err != nil {
		t.Fatal(err)
	}
	prefixes := []string{"web", "db", "cache", "api", "k8s-node", "腾讯云-web", "阿里云-db", "华为云-app"}
	rng := rand.New(rand.NewPCG(1, 2))
	now := time.Now()
	for i := range nAgents {
		var cl any
		if rng.IntN(10) != 0 {
			cl = clusters[rng.IntN(len(clusters))]
		}
		seen := now.Add(-time.Duration(rng.Int64N(int64(time.Minute))))
		if rng.IntN(10) >= 7 {
			seen = now.Add(-13 * time.Hour)
		}
		id := fmt.Sprintf("ag_%016x", rng.Uint64())
		osName := "linux"
		if rng.IntN(5) == 0 {
			osName = "windows"
		}
		host := fmt.Sprintf("%s-%06d", prefixes[rng.IntN(len(prefixes))], i)
		if i%20011 == 1000 {
			samples = append(samples, host)
		}
		if _, err := stmt.Exec(id, acct.ID, store.HashSecret(id), "fp-"+id, host,
			fmt.Sprintf("10.%d.%d.%d", i/62500, i/250%250, i%250+1), osName, cl, seen.Add(-time.Hour).UnixMilli(), seen.UnixMilli(), rng.IntN(3)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec(`INSERT INTO agents_search(agents_search) VALUES ('rebuild')`); err != nil {
		t.Logf("search index rebuild: %v (filter figures may be off)", err)
	}
	t.Logf("seeded %d clusters, %d agents in %s", nClusters, nAgents, time.Since(start).Round(time.Millisecond))
	return samples
}

// quiet waits until the terminal output has not grown for d.
func (p *ptyProc) quiet(d time.Duration) int {
	n := len(p.output())
	for {
		time.Sleep(d)
		m := len(p.output())
		if m == n {
			return m
		}
		n = m
	}
}

// keyToFrame writes key and returns the time until the terminal receives
// the next frame (the first byte after the key); it waits for quiet first.
func (p *ptyProc) keyToFrame(t *testing.T, key string) time.Duration {
	t.Helper()
	return p.keyTo(t, key, "")
}

// keyTo writes key and returns the time until the output after it holds
// want (any output when want is "").
func (p *ptyProc) keyTo(t *testing.T, key, want string) time.Duration {
	t.Helper()
	n := p.quiet(60 * time.Millisecond)
	start := time.Now()
	if _, err := p.master.WriteString(key); err != nil {
		t.Fatal(err)
	}
	for time.Since(start) < 5*time.Second {
		if out := p.output(); len(out) > n && strings.Contains(out[n:], want) {
			return time.Since(start)
		}
		time.Sleep(200 * time.Microsecond)
	}
	out := p.output()
	t.Fatalf("no %q within 5 s after %q; the terminal's last output:\n%q", want, key, out[max(0, len(out)-1500):])
	return 0
}

func rssMB(t *testing.T, pid int) float64 {
	t.Helper()
	buf, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(buf), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.Atoi(f[1])
			return float64(kb) / 1024
		}
	}
	return 0
}

type figures []time.Duration

func (f figures) String() string {
	s := slices.Clone(f)
	slices.Sort(s)
	return fmt.Sprintf("median %s, max %s (%d samples)", s[len(s)/2].Round(100*time.Microsecond), s[len(s)-1].Round(100*time.Microsecond), len(s))
}

// TestDashboardSpeed measures the dashboard on a pseudo-terminal against
// a store with 100,000 agents and 1,000 clusters: first frame from process
// start, key to frame (cursor, page, view switch), the first page of an
// agent filter, and the process's RSS. It is a measurement harness, not a
// timed unit test: run it with
//
//	OUTPOST_TUI_SPEED=1 go test -run TestDashboardSpeed -v ./cmd/outpost/
func TestDashboardSpeed(t *testing.T) {
	if os.Getenv("OUTPOST_TUI_SPEED") == "" {
		t.Skip("measurement harness: set OUTPOST_TUI_SPEED=1")
	}
	c := newCLI(t)
	nc, na := 1000, 100_000
	if v, err := strconv.Atoi(os.Getenv("OUTPOST_TUI_SPEED_AGENTS")); err == nil {
		na = v
	}
	if v, err := strconv.Atoi(os.Getenv("OUTPOST_TUI_SPEED_CLUSTERS")); err == nil {
		nc = v
	}
	samples := seedBigFleet(t, c.data, nc, na)

	var firsts figures
	var p *ptyProc
	for range 3 {
		start := time.Now()
		p = startOnPTY(t, c, "tui", "--account", "acme")
		p.waitFor(t, "cluster-0001", 10*time.Second)
		firsts = append(firsts, time.Since(start))
		p.master.WriteString("q")
		p.wait(t, 5*time.Second)
	}
	t.Logf("first full frame from process start (pty, 80x24): %s", firsts)
	if tmux, err := exec.LookPath("tmux"); err == nil {
		var inTmux figures
		for i := range 3 {
			name := fmt.Sprintf("outpost-speed-%d-%d", os.Getpid(), i)
			args := []string{"new-session", "-d", "-s", name, "-x", "120", "-y", "40", "env"}
			args = append(args, c.env...)
			args = append(args, outpostBin, "--data", c.data, "tui", "--account", "acme")
			start := time.Now()
			if out, err := exec.Command(tmux, args...).CombinedOutput(); err != nil {
				t.Fatalf("tmux: %v %s", err, out)
			}
			for {
				out, _ := exec.Command(tmux, "capture-pane", "-p", "-t", name).Output()
				if strings.Contains(string(out), "cluster-0001") {
					inTmux = append(inTmux, time.Since(start))
					break
				}
				if time.Since(start) > 10*time.Second {
					t.Fatalf("no frame in tmux within 10 s: %s", out)
				}
				time.Sleep(5 * time.Millisecond)
			}
			exec.Command(tmux, "kill-session", "-t", name).Run()
		}
		t.Logf("first full frame in tmux (120x40) from starting the session: %s", inTmux)
	}

	p = startOnPTYSize(t, c, 120, 40, "tui", "--account", "acme")
	p.waitFor(t, "cluster-0001", 10*time.Second)
	var down, page figures
	for range 30 {
		down = append(down, p.keyToFrame(t, "j"))
	}
	for range 20 {
		page = append(page, p.keyToFrame(t, "\x1b[6~")) // page down
	}
	t.Logf("cursor down (clusters): %s", down)
	t.Logf("page down (clusters): %s", page)
	// A view switch counts until its rows are drawn, not the first byte.
	var toProxies, toAgents, toClusters figures
	typ := func(s string) {
		for _, r := range s {
			p.keyToFrame(t, string(r))
		}
	}
	for range 5 {
		typ(":proxies")
		toProxies = append(toProxies, p.keyTo(t, "\r", "proxy-0"))
		typ(":agents")
		toAgents = append(toAgents, p.keyTo(t, "\r", "10.")) // an agent's IP
		typ(":clusters")
		toClusters = append(toClusters, p.keyTo(t, "\r", "ADDRESS")) // the home view keeps its cursor
	}
	t.Logf("switch to :proxies until its rows show: %s", toProxies)
	t.Logf("switch to :agents until its rows show: %s", toAgents)
	t.Logf("switch to :clusters until its rows show: %s", toClusters)
	var open figures
	for range 5 {
		open = append(open, p.keyTo(t, "\r", "proxy servers online")) // the cluster's summary
		p.keyTo(t, "\x1b", "ADDRESS")
	}
	t.Logf("enter a cluster until its summary shows: %s", open)

	// Agents: paging and a filter over the whole fleet (server-side).
	typ(":agents")
	p.keyTo(t, "\r", "10.")
	var apage figures
	for range 20 {
		apage = append(apage, p.keyToFrame(t, "\x1b[6~"))
	}
	t.Logf("page down (all agents): %s", apage)
	// The renderer redraws changed lines only, so a result row may not be
	// written again; the agents view's count line ("N agent(s) matching
	// "Q"") is, with N from the store.
	sdb, err := store.Open(filepath.Join(c.data, dbFileName), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sdb.Close()
	var filter figures
	for _, host := range samples {
		rs := []rune(host)
		q := string(rs[1:]) // all but the first letter
		last := string(rs[len(rs)-1])
		pg, err := sdb.ListAgents(context.Background(), store.AgentFilter{Query: q, Limit: 1})
		if err != nil {
			t.Fatal(err)
		}
		p.keyToFrame(t, "/")
		typ(strings.TrimSuffix(q, last))
		filter = append(filter, p.keyTo(t, last, fmt.Sprintf("%d agent(s) matching %q", pg.Total, q)))
		p.keyToFrame(t, "\r")
		p.keyToFrame(t, "\x1b")
	}
	t.Logf("agent filter over the fleet, last key until the matching row shows: %s", filter)
	t.Logf("RSS after all of it: %.1f MB", rssMB(t, p.cmd.Process.Pid))

	// The store calls behind them, without the terminal.
	db := sdb
	ctx := context.Background()
	var lc, la figures
	for range 10 {
		s := time.Now()
		if _, err := db.ListClusters(ctx, 0); err != nil {
			t.Fatal(err)
		}
		lc = append(lc, time.Since(s))
	}
	for _, host := range samples {
		q := string([]rune(host)[1:])
		s := time.Now()
		// As the agents view asks at 120x40: one account, three screens.
		if _, err := db.ListAgents(ctx, store.AgentFilter{AccountID: 1, Query: q, Limit: 3 * 33}); err != nil {
			t.Fatal(err)
		}
		la = append(la, time.Since(s))
	}
	t.Logf("store: ListClusters (1,000 clusters with counts): %s", lc)
	t.Logf("store: ListAgents with the same filters, first window: %s", la)
	p.master.WriteString("q")
	p.wait(t, 5*time.Second)
}
