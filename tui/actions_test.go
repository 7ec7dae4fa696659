package tui

import (
	"strconv"
	"strings"
	"testing"

	"outpost/relay/wire"
	"outpost/store"
	"outpost/store/ops"
)

// dialog returns the open dialog as D or fails.
func dialogAs[D any](t *testing.T, hs *harness) D {
	t.Helper()
	d, ok := hs.root.Dialog().(D)
	if !ok {
		var zero D
		t.Fatalf("open dialog is %T, want %T\n%s", hs.root.Dialog(), zero, hs.screen())
	}
	return d
}

func TestCreateCluster(t *testing.T) {
	f := newFleet(t)
	hs := newHarness(t, f.common(false), 100, 30)
	hs.keys("n")
	form := dialogAs[*Form](t, hs)
	hs.wantScreen("Create a cluster", "cannot be changed after creation")
	hs.typeText("腾讯云-广州")
	hs.keys("tab")
	hs.typeText("relay.gz.example")
	hs.wantScreen("domain name: this cluster can hold any number of proxy servers")
	hs.keys("tab")
	hs.typeText("华南")
	hs.keys("enter")
	if hs.root.Dialog() != nil {
		t.Fatalf("form still open after a good submit: %q\n%s", form.Err(), hs.screen())
	}
	cs := f.clusters()
	if len(cs) != 1 || cs[0].Name != "腾讯云-广州" || cs[0].Address != "relay.gz.example" || cs[0].Region != "华南" || cs[0].AddressKind != "domain" {
		t.Fatalf("store holds %+v, want the new domain cluster", cs)
	}
	if got := hs.flash(); !strings.Contains(got, "cluster 腾讯云-广州 created") {
		t.Errorf("flash %q, want the creation said", got)
	}
	hs.wantScreen("腾讯云-广州", "relay.gz.example")

	refusals := []struct{ name, address, want string }{
		{"腾讯云-广州", "other.example", "already exists"},
		{"bad", "10.0.0", "not a valid IP address or domain name"},
		{"", "ok.example", "name is required"},
	}
	for _, r := range refusals {
		t.Run(r.want, func(t *testing.T) {
			before := f.auditCount()
			hs.keys("n")
			form := dialogAs[*Form](t, hs)
			form.Set("name", r.name)
			form.Set("address", r.address)
			hs.keys("enter")
			if hs.root.Dialog() != form {
				t.Fatalf("a refused create closed the form")
			}
			if !strings.Contains(form.Err(), r.want) {
				t.Errorf("form says %q, want the store's %q", form.Err(), r.want)
			}
			if !strings.Contains(hs.flash(), r.want) {
				t.Errorf("flash %q, want the store's %q", hs.flash(), r.want)
			}
			hs.wantScreen(r.want)
			if n := len(f.clusters()); n != 1 {
				t.Errorf("%d clusters after a refusal, want 1", n)
			}
			if after := f.auditCount(); after != before {
				t.Errorf("audit grew %d -> %d on a refusal", before, after)
			}
			hs.keys("esc")
		})
	}
}

func TestCreateClusterSeveralAccounts(t *testing.T) {
	f := newFleet(t)
	other, _, err := f.db.CreateAccount(f.ctx, "globex")
	if err != nil {
		t.Fatal(err)
	}
	c := f.common(false)
	c.Account = store.Account{} // every account
	hs := newHarness(t, c, 100, 30)
	hs.wantScreen("account all accounts")
	hs.keys("n")
	form := dialogAs[*Form](t, hs)
	hs.keys("right") // acme -> globex
	hs.keys("tab")
	hs.typeText("edge")
	hs.keys("tab")
	hs.typeText("10.9.9.9")
	hs.keys("enter")
	if hs.root.Dialog() != nil {
		t.Fatalf("form still open: %q", form.Err())
	}
	cs, _ := f.db.ListClusters(f.ctx, other.ID)
	if len(cs) != 1 || cs[0].Name != "edge" || cs[0].AddressKind != "ip" {
		t.Fatalf("globex holds %+v, want cluster edge", cs)
	}
}

func TestPolicyForm(t *testing.T) {
	f := newFleet(t)
	gz := f.cluster("gz", "gz.example")
	f.proxy(gz, "web-01")
	hs := newHarness(t, f.common(false), 120, 40)
	hs.keys("e")
	form := dialogAs[*Form](t, hs)
	hs.wantScreen("Proxy settings of cluster gz", "Bandwidth limit", "no warnings")
	if strings.Contains(hs.screen(), "Cache cap") {
		t.Errorf("forward mode shows the cache fields")
	}
	form.Set("link", "10Mbit")
	form.Set("bandwidth", "7Mbit")
	hs.keys("tab") // any key redraws; the warning is computed from the values
	want := "bandwidth limit 7 Mbit/s is more than 60% of the 10 Mbit/s link"
	hs.wantScreen("warning: " + want)
	form.Set("bandwidth", "5Mbit")
	hs.keys("tab")
	if strings.Contains(hs.screen(), "more than 60%") {
		t.Errorf("5 of 10 Mbit/s still warns:\n%s", hs.screen())
	}
	form.Set("bandwidth", "7Mbit")
	form.Set("frequency", "200")
	hs.keys("enter")
	if hs.root.Dialog() != nil {
		t.Fatalf("form still open: %q", form.Err())
	}
	got, _ := f.db.GetCluster(f.ctx, gz.ID)
	if got.Policy.BandwidthBps != 875_000 || got.Policy.FrequencyRPS != 200 || got.Policy.LinkBps != 10_000_000 {
		t.Fatalf("policy %+v, want 7 Mbit/s, 200 req/s, 10 Mbit/s link", got.Policy)
	}
	if !strings.Contains(hs.flash(), "1 warning") {
		t.Errorf("flash %q, want the warning counted", hs.flash())
	}
	hs.wantScreen("warning: " + want) // under the clusters table

	t.Run("cache cap above 10 GB refused", func(t *testing.T) {
		before := f.auditCount()
		hs.keys("e")
		form := dialogAs[*Form](t, hs)
		hs.keys("right") // mode: cache
		hs.wantScreen("Cache cap", "Cache directory")
		if strings.Contains(hs.screen(), "Bandwidth limit") {
			t.Errorf("cache mode shows the forward fields")
		}
		form.Set("cache_max", "20GB")
		hs.keys("tab")
		hs.wantScreen("exceeds the maximum of 10 GB")
		hs.keys("enter")
		if hs.root.Dialog() != form || !strings.Contains(form.Err(), "exceeds the maximum of 10 GB") {
			t.Fatalf("form %v err %q, want it open with the store's refusal", hs.root.Dialog(), form.Err())
		}
		got, _ := f.db.GetCluster(f.ctx, gz.ID)
		if got.Policy.Mode != wire.ModeForward || f.auditCount() != before {
			t.Errorf("refusal changed the policy (%+v) or the audit", got.Policy)
		}
		form.Set("cache_max", "5GB")
		hs.keys("enter")
		got, _ = f.db.GetCluster(f.ctx, gz.ID)
		if got.Policy.Mode != wire.ModeCache || got.Policy.CacheMax != 5_000_000_000 || got.Policy.CacheDir == "" {
			t.Errorf("policy %+v, want cache mode capped at 5 GB in the default directory", got.Policy)
		}
	})
	t.Run("unparsable value", func(t *testing.T) {
		hs.keys("e")
		form := dialogAs[*Form](t, hs)
		hs.keys("left") // back to forward
		form.Set("bandwidth", "fast")
		hs.keys("enter")
		if !strings.Contains(form.Err(), `bandwidth "fast"`) {
			t.Errorf("form says %q, want the bandwidth refused", form.Err())
		}
		hs.keys("esc")
	})
}

func TestDeployManual(t *testing.T) {
	f := newFleet(t)
	gz := f.cluster("gz", "gz.example")
	c := f.common(false)
	c.DataDir = t.TempDir() // no relay, no CA: https://HOSTNAME:8443, no pin
	hs := newHarness(t, c, 120, 40)
	hs.keys("enter", "p")
	ch := dialogAs[*Choice](t, hs)
	if ch.Focused() != "Cancel" {
		t.Fatalf("deploy choice focuses %q, want Cancel", ch.Focused())
	}
	hs.keys("right", "right", "enter") // Manual
	d := dialogAs[*CommandDialog](t, hs)
	mgr, _ := ops.ManagerURL(c.DataDir, "")
	prefix := ops.JoinCommand(mgr, "", "")
	if !strings.HasPrefix(d.Command(), prefix+"jt_") {
		t.Fatalf("command %q, want the CLI's %q + token", d.Command(), prefix)
	}
	hs.wantScreen("Run this on the proxy host of gz", "One use; expires at", "outpost relay --manager")
	hs.keys("y")
	if len(hs.copied) != 1 || hs.copied[0] != d.Command() {
		t.Fatalf("copied %q, want the whole command", hs.copied)
	}
	token := strings.TrimPrefix(d.Command(), prefix)
	if _, _, err := f.db.JoinProxy(f.ctx, store.JoinInput{Token: token, Hostname: "腾讯云-web-01", IP: "10.0.0.9", Version: "1.0.0"}); err != nil {
		t.Fatalf("the shown token does not join: %v", err)
	}
	hs.keys("esc")
	hs.keys("ctrl+r")
	hs.wantScreen("腾讯云-web-01")
	_ = gz
}

func TestDeployQuick(t *testing.T) {
	f := newFleet(t)
	gz := f.cluster("gz", "gz.example")
	assets := f.agents(0, "腾讯云-db", 2)
	hs := newHarness(t, f.common(false), 120, 40)
	hs.keys("enter", "p", "right", "enter") // Quick
	dialogAs[*assetPicker](t, hs)
	hs.wantScreen("pick an online Linux asset", "腾讯云-db-1", "腾讯云-db-2")
	hs.keys("/")
	hs.typeText("db-2")
	hs.keys("enter", "enter")
	if hs.root.Dialog() != nil {
		t.Fatalf("picker still open")
	}
	if got := hs.flash(); !strings.Contains(got, "deploy command queued for asset 腾讯云-db-2") {
		t.Fatalf("flash %q", got)
	}
	cmds, err := f.db.PendingCommands(f.ctx, store.TargetAgent, assets[1].ID)
	if err != nil || len(cmds) != 1 || cmds[0].Type != "deploy-proxy" {
		t.Fatalf("pending for the asset: %+v %v, want one deploy-proxy", cmds, err)
	}
	_ = gz
}

func TestDeployRefusedOnFullIPCluster(t *testing.T) {
	f := newFleet(t)
	bj := f.cluster("bj", "10.1.1.1")
	f.proxy(bj, "web-01")
	hs := newHarness(t, f.common(false), 120, 40)
	hs.keys("p")
	hs.wantScreen("holds one proxy server", "store will refuse")
	before := f.auditCount()
	hs.keys("right", "right", "enter")
	if got := hs.flash(); !strings.Contains(got, "already has its one proxy server") {
		t.Fatalf("flash %q, want the store's refusal", got)
	}
	if hs.root.Dialog() != nil || f.auditCount() != before {
		t.Errorf("a refused deploy left a dialog or changed the store")
	}
}

func TestUpgradeProxy(t *testing.T) {
	f := newFleet(t)
	gz := f.cluster("gz", "gz.example")
	p := f.proxy(gz, "web-01")
	hs := newHarness(t, f.common(false), 120, 40)
	hs.keys("enter")
	hs.wantScreen("u upgrade (up to date)")
	before := f.auditCount()
	hs.keys("u") // not upgradable: the store says why, no question
	if got := hs.flash(); !strings.Contains(got, "no release is published") {
		t.Fatalf("flash %q, want the store's reason", got)
	}
	if got := f.auditCount(); got != before {
		t.Errorf("a refused upgrade: audit entries %d, want %d", got, before)
	}
	if err := f.db.AddRelease(f.ctx, store.Release{Version: "1.1.0", SHA256: strings.Repeat("a", 64)}); err != nil {
		t.Fatal(err)
	}
	before = f.auditCount()
	hs.keys("ctrl+r")
	hs.wantScreen("u upgrade ", "upgradable")
	hs.keys("u")
	if got := dialogAs[*Choice](t, hs).Focused(); got != "Cancel" {
		t.Fatalf("upgrade focus %q, want Cancel", got)
	}
	hs.keys("enter") // Cancel is focused
	if f.auditCount() != before {
		t.Fatalf("enter on Cancel upgraded")
	}
	hs.keys("u", "right", "enter")
	if got := hs.flash(); !strings.Contains(got, "upgrade 1.0.0 -> 1.1.0 queued") {
		t.Fatalf("flash %q", got)
	}
	cmds, _ := f.db.PendingCommands(f.ctx, store.TargetProxy, itoa64(p.ID))
	var ups int
	for _, c := range cmds {
		if c.Type == "upgrade" {
			ups++
		}
	}
	if ups != 1 {
		t.Fatalf("pending proxy commands %+v, want one upgrade", cmds)
	}
	f.advance(10 * f.db.Settings().ProxyOfflineAfter)
	hs.keys("ctrl+r")
	hs.wantScreen("u upgrade (offline)")
	hs.keys("u")
	if got := hs.flash(); !strings.Contains(got, "offline: bring it online before upgrading") {
		t.Errorf("flash %q, want the offline refusal", got)
	}
}

func TestDeleteProxy(t *testing.T) {
	f := newFleet(t)
	gz := f.cluster("gz", "gz.example")
	f.proxy(gz, "web-01")
	hs := newHarness(t, f.common(false), 120, 40)
	hs.keys("enter", "ctrl+d")
	ch := dialogAs[*Choice](t, hs)
	if ch.Focused() != "Cancel" {
		t.Fatalf("focus %q, want Cancel", ch.Focused())
	}
	hs.wantScreen("It is online", "Stop its relay")
	hs.keys("right", "enter")
	if got := hs.flash(); !strings.Contains(got, "stop its relay first") {
		t.Fatalf("flash %q, want the store's refusal", got)
	}
	if ps, _ := f.db.ListProxies(f.ctx, gz.ID); len(ps) != 1 {
		t.Fatalf("refused delete removed the proxy")
	}
	f.advance(10 * f.db.Settings().ProxyOfflineAfter)
	hs.keys("ctrl+r", "ctrl+d", "right", "enter")
	if ps, _ := f.db.ListProxies(f.ctx, gz.ID); len(ps) != 0 {
		t.Fatalf("offline proxy not deleted: %+v (flash %q)", ps, hs.flash())
	}
	hs.wantScreen("no proxy server yet")
}

// TestDeleteClusterGuided walks the deletion order from the refusal:
// unbind all agents, wait for the proxy to go offline, delete it, delete
// the cluster; each step is offered with Cancel focused.
func TestDeleteClusterGuided(t *testing.T) {
	f := newFleet(t)
	gz := f.cluster("腾讯云-广州", "gz.example")
	f.proxy(gz, "web-01")
	agents := f.agents(gz.ID, "host", 2)
	hs := newHarness(t, f.common(false), 120, 40)
	hs.keys("ctrl+d")
	hs.wantScreen("Delete cluster 腾讯云-广州?")
	hs.keys("right", "enter")
	if got := hs.flash(); !strings.Contains(got, "still has 2 bound agent(s)") {
		t.Fatalf("flash %q, want the store's refusal", got)
	}
	g := dialogAs[*Choice](t, hs)
	hs.wantScreen("cannot be deleted yet", "Left: 2 bound agent(s); 1 proxy server(s), 1 online", "Unbind all 2 agents")
	if g.Focused() != "Cancel" {
		t.Fatalf("guide focuses %q", g.Focused())
	}
	hs.keys("right", "enter")
	if a, _ := f.db.GetAgent(f.ctx, agents[0].ID); a.ClusterID != 0 {
		t.Fatalf("agents still bound after the unbind step")
	}
	hs.wantScreen("Left: 0 bound agent(s); 1 proxy server(s), 1 online", "stop the relay process on each online proxy server")
	hs.keys("enter") // Close
	if len(f.clusters()) != 1 {
		t.Fatalf("cluster gone too early")
	}
	f.advance(10 * f.db.Settings().ProxyOfflineAfter)
	hs.keys("ctrl+r", "ctrl+d", "right", "enter")
	hs.wantScreen("Delete 1 offline proxy servers")
	hs.keys("right", "enter")
	hs.wantScreen("the cluster is empty; delete it", "Delete cluster 腾讯云-广州")
	hs.keys("right", "enter")
	if n := len(f.clusters()); n != 0 {
		t.Fatalf("%d clusters left, want 0 (flash %q)", n, hs.flash())
	}
	if got := hs.flash(); !strings.Contains(got, "cluster 腾讯云-广州 deleted") {
		t.Errorf("flash %q", got)
	}
	hs.wantScreen("no cluster yet")
}

// TestReadOnly: no key changes anything, none is shown, and every action
// refuses even when reached another way.
func TestReadOnly(t *testing.T) {
	f := newFleet(t)
	gz := f.cluster("gz", "gz.example")
	f.proxy(gz, "web-01")
	f.agents(gz.ID, "host", 1)
	if err := f.db.AddRelease(f.ctx, store.Release{Version: "2.0.0", SHA256: strings.Repeat("b", 64)}); err != nil {
		t.Fatal(err)
	}
	c := f.common(true)
	hs := newHarness(t, c, 120, 40)
	before := f.auditCount()
	hs.wantScreen("READ-ONLY")
	check := func(where string) {
		t.Helper()
		for _, k := range []string{"n", "e", "p", "u", "ctrl+d", "b", "U", "X", "R"} {
			hs.keys(k)
			if d := hs.root.Dialog(); d != nil {
				t.Errorf("%s: %s opened %T in read-only mode", where, k, d)
				hs.keys("esc")
			}
		}
		for _, w := range []string{"n new", "ctrl+d", "p deploy", "e edit", "u upgrade"} {
			if strings.Contains(lastLine(hs.screen()), w) {
				t.Errorf("%s: footer offers %q in read-only mode: %q", where, w, lastLine(hs.screen()))
			}
		}
	}
	check("clusters")
	hs.keys("enter")
	check("cluster")
	hs.keys("?")
	hs.wantScreen("read-only: no key changes anything")
	if s := hs.screen(); strings.Contains(s, "create a cluster") || strings.Contains(s, "delete the proxy") {
		t.Errorf("help lists changing keys in read-only mode:\n%s", s)
	}
	hs.keys("esc")
	// The actions refuse on their own too.
	for name, cmd := range map[string]func(){
		"create":  func() { hs.run(createClusterForm(c)) },
		"deploy":  func() { hs.run(deployDialog(c, gz)) },
		"delete":  func() { hs.run(deleteClusterConfirm(c, 0, gz)) },
		"upgrade": func() { p, _ := f.db.ListProxies(f.ctx, gz.ID); hs.run(upgradeProxyConfirm(c, 0, p[0])) },
		"proxy":   func() { p, _ := f.db.ListProxies(f.ctx, gz.ID); hs.run(deleteProxyConfirm(c, 0, p[0])) },
		"manual":  func() { hs.run(manualDeploy(c, gz)) },
	} {
		cmd()
		if hs.root.Dialog() != nil || !strings.Contains(hs.flash(), "read-only") {
			t.Errorf("%s: dialog %T, flash %q; want a read-only refusal", name, hs.root.Dialog(), hs.flash())
		}
	}
	if after := f.auditCount(); after != before {
		t.Fatalf("read-only session changed the store: audit %d -> %d", before, after)
	}
}

func lastLine(s string) string {
	ls := strings.Split(s, "\n")
	return ls[len(ls)-1]
}

func itoa64(n int64) string { return strconv.FormatInt(n, 10) }

// TestProxyCommandStates: the proxies tab says what the proxy's commands
// are doing, and a failure's reason.
func TestProxyCommandStates(t *testing.T) {
	f := newFleet(t)
	gz := f.cluster("gz", "gz.example")
	p := f.proxy(gz, "web-01")
	if err := f.db.AddRelease(f.ctx, store.Release{Version: "1.1.0", SHA256: strings.Repeat("a", 64)}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.db.UpgradeProxy(f.ctx, p.ID); err != nil {
		t.Fatal(err)
	}
	hs := newHarness(t, f.common(false), 130, 40)
	hs.keys("enter")
	hs.wantScreen("upgrade: queued", "commands: upgrade queued")
	cmds, err := f.db.PendingCommands(f.ctx, store.TargetProxy, itoa64(p.ID))
	if err != nil || len(cmds) == 0 {
		t.Fatalf("pending: %v %v", cmds, err)
	}
	var id int64
	for _, c := range cmds {
		if c.Type == "upgrade" {
			id = c.ID
		}
	}
	if err := f.db.ReportCommands(f.ctx, store.TargetProxy, itoa64(p.ID), []store.CommandReport{{ID: id, State: wire.StateFailed, Error: "sha256 mismatch"}}); err != nil {
		t.Fatal(err)
	}
	hs.keys("ctrl+r")
	hs.wantScreen("upgrade: faile", "commands: upgrade failed: sha256 mismatch", "last error: upgrade (command")
}
