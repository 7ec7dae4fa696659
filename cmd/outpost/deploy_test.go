package main

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"outpost/relay"
	"outpost/relay/relaytest"
	"outpost/relay/wire"
	"outpost/store"
)

// TestQuickDeployStates: a quick deployment is followed to its end across
// the processes involved (the CLI queues it, the management host hands it
// to the agent, the agent starts a relay): onto a port that is taken it
// ends "failed" with the relay's reason in 'proxy deployments', 'proxy
// list' and the audit log, instead of "queued" for ever; deployed again
// with a free --listen and a --public URL it ends "done" and the proxy
// server advertises that URL.
func TestQuickDeployStates(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	rm := relaytest.Start(t, relaytest.Options{Dir: c.data, Config: func(cfg *relay.Config) {
		cfg.PollTimeout = 2 * time.Second
	}})
	ctx := store.WithActor(context.Background(), "tester@test")
	acct, _, err := rm.DB.CreateAccount(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	ic, err := rm.DB.CreateInstallCommand(ctx, store.InstallInput{AccountID: acct.ID})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rm.DB.CreateCluster(ctx, store.ClusterInput{AccountID: acct.ID, Name: "edge", Address: "edge.example.test"}); err != nil {
		t.Fatal(err)
	}
	m := &arManager{DB: rm.DB, Srv: rm.Relay, URL: rm.TLSURL, Pin: rm.Pin(), Account: acct, Key: ic.Key}
	dir := filepath.Join(t.TempDir(), "agent")
	a := arStartAgent(t, m, dir)
	id := arAgentID(t, a)
	waitCond(t, a.proc, 10*time.Second, "agent online", func() bool { return arGetAgent(t, m, id).Online })

	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	addr := taken.Addr().String()

	deployment := func(cmdID int64) store.Deployment {
		t.Helper()
		var ds []store.Deployment
		c.json(&ds, "proxy", "deployments", "--cluster", "edge")
		for _, d := range ds {
			if d.Command.ID == cmdID {
				return d
			}
		}
		t.Fatalf("proxy deployments: command %d missing in %+v", cmdID, ds)
		return store.Deployment{}
	}
	var jt store.JoinToken
	c.json(&jt, "proxy", "deploy", "--cluster", "edge", "--asset", id, "--listen", "https://"+addr)
	var d store.Deployment
	waitCond(t, a.proc, 30*time.Second, "the deployment onto a taken port to fail", func() bool {
		d = deployment(jt.CommandID)
		return d.State == wire.StateFailed
	})
	if want := "port " + addr + " already in use"; !strings.Contains(d.Error, want) {
		t.Errorf("deployment error: got %q, want it to say %q", d.Error, want)
	}
	if r := c.ok("proxy", "list", "--cluster", "edge"); !strings.Contains(r.stdout, "failed: relay exited (exit status 1): port "+addr+" already in use") {
		t.Errorf("proxy list does not show the failure:\n%s", r)
	}
	es, err := rm.DB.ListAudit(ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range es {
		found = found || (e.Action == "command.failed" && e.Actor == "agent/"+id && strings.Contains(e.Detail, addr))
	}
	if !found {
		t.Errorf("audit: no command.failed entry by agent/%s naming %s in %+v", id, addr, es)
	}

	// Again on a free port, with the URL agents should use.
	free := relaytest.FreeAddr(t)
	public := "https://relay.edge.example.test:" + strings.Split(free, ":")[1]
	c.json(&jt, "proxy", "deploy", "--cluster", "edge", "--asset", id, "--listen", "https://"+free, "--public", public)
	pidRe := regexp.MustCompile(`started relay pid=(\d+)`)
	t.Cleanup(func() {
		ms := pidRe.FindAllStringSubmatch(a.stderr.String(), -1)
		for _, mm := range ms {
			pid, _ := strconv.Atoi(mm[1])
			if p, err := os.FindProcess(pid); err == nil && processAlive(pid) {
				p.Signal(syscall.SIGTERM)
				deadline := time.Now().Add(10 * time.Second)
				for processAlive(pid) && time.Now().Before(deadline) {
					time.Sleep(50 * time.Millisecond)
				}
				p.Kill()
			}
		}
	})
	waitCond(t, a.proc, 30*time.Second, "the second deployment to be done", func() bool {
		d = deployment(jt.CommandID)
		return d.State == wire.StateDone || d.State == wire.StateFailed
	})
	if d.State != wire.StateDone || d.ProxyID == 0 {
		t.Fatalf("second deployment: got %s %q (proxy %d), want done with a proxy", d.State, d.Error, d.ProxyID)
	}
	p, err := rm.DB.GetProxy(ctx, d.ProxyID)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.URLs) != 1 || p.URLs[0] != public {
		t.Errorf("proxy URLs: got %v, want [%s] (--public)", p.URLs, public)
	}
	if r := c.ok("proxy", "list", "--cluster", "edge"); strings.Contains(r.stdout, "quick deployment onto") {
		t.Errorf("proxy list still shows a deployment note after a done one:\n%s", r)
	}
	if r := c.ok("proxy", "show", strconv.FormatInt(d.ProxyID, 10)); !strings.Contains(r.stdout, public) || !strings.Contains(r.stdout, "Recent commands:") {
		t.Errorf("proxy show: want the public URL and the recent commands, got\n%s", r)
	}
	a.stop()
}
