package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"outpost/store"
)

type agentPage struct {
	Agents []store.Agent `json:"agents"`
	Total  int           `json:"total"`
}

// writeHostFile lists the agents the three ways an operator may (agent id,
// IP, host name), with comments, blank lines and one duplicate.
func writeHostFile(t *testing.T, prefix string, ids []string) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("# hosts for the bind test\n\n")
	for i, id := range ids {
		switch i % 10 {
		case 0:
			b.WriteString(id + "\n")
		case 1:
			fmt.Fprintf(&b, "10.1.%d.%d   # by IP\n", i/250, i%250+1)
		default:
			fmt.Fprintf(&b, "  %s-%04d\n", prefix, i)
		}
		if i%100 == 50 {
			b.WriteString("\n# a section\n")
		}
	}
	fmt.Fprintf(&b, "%s-%04d\n", prefix, 2) // listed twice
	path := filepath.Join(t.TempDir(), "hosts.txt")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestBindFile(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	key := c.createAccount("acme")
	const cluster, prefix = "腾讯云-华南", "腾讯云-web"
	c.ok("cluster", "create", "--name", cluster, "--address", "gw.example.com")
	ids := seedAgents(t, c, key, 1100, prefix)
	file := writeHostFile(t, prefix, ids)
	c.ok("settings", "set", "bind_batch_gap=1s")

	start := time.Now()
	r := c.ok("agent", "bind", "--cluster", cluster, "--file", file)
	elapsed := time.Since(start)

	if want := "1100 host(s) bound to cluster 腾讯云-华南 in 3 batch(es)\n"; r.stdout != want {
		t.Errorf("stdout %q, want %q", r.stdout, want)
	}
	want := []string{
		"batch 1/3: 500 hosts bound (500/1100)",
		"batch 2/3: 500 hosts bound (1000/1100)",
		"batch 3/3: 100 hosts bound (1100/1100)",
	}
	if got := strings.Split(strings.TrimSpace(r.stderr), "\n"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("progress (not a terminal) = %q, want %q", got, want)
	}
	if strings.ContainsAny(r.stderr, "\r\x1b") {
		t.Errorf("progress bar escapes written to a pipe: %q", r.stderr)
	}
	// Two gaps of one second between three batches.
	if elapsed < 1900*time.Millisecond || elapsed > 10*time.Second {
		t.Errorf("bind took %s, want about 2s", elapsed)
	}

	var cl clusterJSON
	c.json(&cl, "cluster", "show", cluster)
	if cl.Agents != 1100 || cl.AgentsOnline != 1100 {
		t.Errorf("cluster show: %d agents, %d online", cl.Agents, cl.AgentsOnline)
	}
	var page agentPage
	c.json(&page, "agent", "list", "--cluster", cluster, "--limit", "1000")
	if page.Total != 1100 || len(page.Agents) != 1000 {
		t.Errorf("agent list --cluster: total %d, %d shown", page.Total, len(page.Agents))
	}
	c.json(&page, "agent", "list", "--direct")
	if page.Total != 0 {
		t.Errorf("agent list --direct: %d agents still direct", page.Total)
	}
	var es []store.AuditEntry
	c.json(&es, "audit", "--limit", "3")
	for _, e := range es {
		if e.Action != "agent.bind" {
			t.Errorf("audit: want 3 agent.bind entries, got %+v", es)
		}
	}

	t.Run("agent list table", func(t *testing.T) {
		r := c.ok("agent", "list", "--query", "web-000", "--sort", "hostname", "--desc", "--limit", "3")
		checkAligned(t, r.stdout, "IP", "10.1.0.10", "10.1.0.9", "10.1.0.8")
		checkAligned(t, r.stdout, "CLUSTER", cluster)
		checkAligned(t, r.stdout, "STATUS", "online")
		if !strings.Contains(r.stderr, "showing 1-3 of 10 agents") {
			t.Errorf("want the page note on stderr, got %q", r.stderr)
		}
	})
	t.Run("agent show", func(t *testing.T) {
		r := c.ok("agent", "show", prefix+"-0007")
		for _, s := range []string{"Host            腾讯云-web-0007", "Cluster         腾讯云-华南", "online, Protected, Safe"} {
			if !strings.Contains(r.stdout, s) {
				t.Errorf("agent show lacks %q:\n%s", s, r.stdout)
			}
		}
		var a store.Agent
		c.json(&a, "agent", "show", "10.1.0.8")
		if a.Hostname != prefix+"-0007" || a.Cluster != cluster {
			t.Errorf("agent show --json: %+v", a)
		}
	})
	t.Run("quick deploy", func(t *testing.T) {
		r := c.ok("proxy", "deploy", "--cluster", cluster, "--asset", prefix+"-0001")
		if !strings.HasPrefix(r.stdout, "deploy command ") || !strings.Contains(r.stdout, " queued for asset 腾讯云-web-0001 ("+ids[1]+")") {
			t.Errorf("quick deploy: %s", r)
		}
	})
	t.Run("uninstall", func(t *testing.T) {
		var u struct {
			Queued int      `json:"uninstall_queued"`
			Agents []string `json:"agents"`
		}
		c.json(&u, "agent", "uninstall", prefix+"-1099", ids[1098])
		if u.Queued != 2 {
			t.Errorf("uninstall: %+v", u)
		}
		c.fails(1, "already has an uninstall pending", "agent", "uninstall", prefix+"-1099")
	})
	t.Run("delete order", func(t *testing.T) {
		c.fails(1, "still has 1100 bound agent(s) (unbind them: outpost agent unbind --cluster 腾讯云-华南 --all)", "cluster", "delete", cluster)
		r := c.ok("agent", "unbind", "--cluster", cluster, prefix+"-0003")
		if !strings.HasPrefix(r.stdout, "1 agent(s) unbound") {
			t.Errorf("unbind: %s", r)
		}
		var u struct {
			Unbound int `json:"unbound"`
		}
		c.json(&u, "agent", "unbind", "--cluster", cluster, "--all")
		if u.Unbound != 1099 {
			t.Errorf("unbind --all: %+v", u)
		}
		c.ok("cluster", "delete", cluster)
	})
}

// TestBindInterrupt checks that SIGINT stops between batches and reports
// what was bound.
func TestBindInterrupt(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	key := c.createAccount("acme")
	c.ok("cluster", "create", "--name", "gz", "--address", "gz.example.com")
	ids := seedAgents(t, c, key, 600, "host")
	file := writeHostFile(t, "host", ids)
	c.ok("settings", "set", "bind_batch_gap=30s")

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := c.command(ctx, "agent", "bind", "--cluster", "gz", "--file", file)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stderr)
	var lines []string
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if strings.HasPrefix(sc.Text(), "batch 1/2:") {
			cmd.Process.Signal(syscall.SIGINT)
		}
	}
	start := time.Now()
	err = cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != 1 {
		t.Fatalf("exit %d (%v), want 1; stderr %q", code, err, lines)
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("took %s to stop after SIGINT", time.Since(start))
	}
	want := []string{
		"batch 1/2: 500 hosts bound (500/600)",
		"outpost: interrupted before batch 2/2: 500 of 600 hosts bound; run the same command again to bind the rest",
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("stderr = %q, want %q", lines, want)
	}
	var page agentPage
	c.json(&page, "agent", "list", "--cluster", "gz")
	if page.Total != 500 {
		t.Errorf("%d agents bound, want 500", page.Total)
	}
}

// TestBindWaitsForGap checks that a batch refused for the gap is retried
// after the wait the store names.
func TestBindWaitsForGap(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	key := c.createAccount("acme")
	c.ok("cluster", "create", "--name", "gz", "--address", "gz.example.com")
	seedAgents(t, c, key, 3, "h")
	c.ok("settings", "set", "bind_batch_gap=2s")
	c.ok("agent", "bind", "--cluster", "gz", "h-0000")
	start := time.Now()
	var sum bindSummary
	r := c.json(&sum, "agent", "bind", "--cluster", "gz", "h-0001", "h-0000")
	if sum.Bound != 1 || sum.Already != 1 || sum.Batches != 1 || sum.Hosts != 2 {
		t.Errorf("bind --json: %+v", sum)
	}
	if d := time.Since(start); d < time.Second {
		t.Errorf("second batch after %s: the gap was not waited out", d)
	}
	if !regexp.MustCompile(`^batch 1/1: cluster "gz" took a batch \d+s ago: wait \d+s between batches\nbatch 1/1: 1 hosts bound, 1 already bound \(2/2\)\n$`).MatchString(r.stderr) {
		t.Errorf("stderr %q", r.stderr)
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
