package tui

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"outpost/relay/wire"
	"outpost/store"
)

func (f *fleet) publish(version string) {
	f.t.Helper()
	pkg := filepath.Join(f.t.TempDir(), "pkg")
	if err := os.WriteFile(pkg, []byte("package "+version), 0o600); err != nil {
		f.t.Fatal(err)
	}
	if _, err := f.db.PublishRelease(f.ctx, store.Release{Version: version}, pkg); err != nil {
		f.t.Fatalf("PublishRelease: %v", err)
	}
}

// TestUpgradeStatesShown: the agent view shows the agent's latest upgrade
// with its stage, and the proxies view an upgrade rolled back with its
// reason, as the command line does.
func TestUpgradeStatesShown(t *testing.T) {
	f := newFleet(t)
	gz := f.cluster("gz", "gz.example.com")
	p := f.proxy(gz, "edge-1")
	ag := f.agents(gz.ID, "web", 1)[0]
	f.publish("1.1.0")
	res, err := f.db.UpgradeAgents(f.ctx, store.UpgradeAgentsInput{AccountID: f.acct.ID, Hosts: []string{ag.ID}})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.db.ReportCommands(f.ctx, store.TargetAgent, ag.ID, []store.CommandReport{{ID: res.Queued[0].CommandID, State: wire.StateRunning, Stage: wire.StageVerifying}}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.db.UpgradeProxy(f.ctx, p.ID); err != nil {
		t.Fatal(err)
	}
	cmds, err := f.db.PendingCommands(f.ctx, store.TargetProxy, strconv.FormatInt(p.ID, 10))
	if err != nil || len(cmds) != 1 {
		t.Fatalf("proxy commands: %v %v", cmds, err)
	}
	if err := f.db.ReportCommands(f.ctx, store.TargetProxy, strconv.FormatInt(p.ID, 10), []store.CommandReport{{ID: cmds[0].ID, State: wire.StateRolledBack, Error: "crashed 3 times"}}); err != nil {
		t.Fatal(err)
	}

	c := f.common(false)
	hs := newHarness(t, c, 160, 40)
	hs.send(SwitchMsg{NewProxiesView(c, gz.ID)})
	hs.wantScreen("edge-1", "commands: upgrade rolled back: crashed 3 times", "last error: upgrade (command 2, 2026-03-01T09:00:00Z): rolled back: crashed 3 times")

	hs = newHarness(t, c, 120, 40)
	openAgents(hs, c)
	hs.keys("enter")
	if _, ok := hs.root.Active().(*AgentView); !ok {
		t.Fatalf("enter opened %T, want the agent view", hs.root.Active())
	}
	hs.wantScreen("Upgrade", "to 1.1.0: verifying", "upgrade: verifying")
}
