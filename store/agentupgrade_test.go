package store_test

import (
	"slices"
	"strings"
	"testing"

	"outpost/relay/wire"
	"outpost/store"
)

// TestUpgradeAgents: upgrade commands are queued with the release named,
// audited; each refusal (no release, unknown version, already at or newer
// without force, an upgrade under way, uninstalled or being uninstalled)
// refuses the batch with its reason and changes nothing, or with Skip
// leaves that agent out with the reason.
func TestUpgradeAgents(t *testing.T) {
	f := newFixture(t)
	a, key := f.account("acme")
	var ids []string
	for _, h := range []string{"web-01", "web-02", "web-03", "web-04", "web-05", "web-06"} {
		ids = append(ids, f.enrol(key, h).ID) // all run 3.0.0
	}
	up := func(in store.UpgradeAgentsInput) (store.AgentUpgradeResult, error) {
		in.AccountID = a.ID
		return f.db.UpgradeAgents(f.ctx, in)
	}
	refused := func(name string, in store.UpgradeAgentsInput, code, want string) {
		t.Helper()
		t.Run(name, func(t *testing.T) {
			before := f.dump()
			_, err := up(in)
			if wantCode(t, err, code) && !strings.Contains(err.Error(), want) {
				t.Errorf("got %v, want %q", err, want)
			}
			f.unchanged(before)
		})
	}
	refused("no release", store.UpgradeAgentsInput{Hosts: []string{"web-01"}}, store.EConflict, "no release is published")
	f.publish("2.9.0")
	f.publish("3.1.0")
	refused("no hosts", store.UpgradeAgentsInput{}, store.EInvalid, "no hosts given")
	refused("unknown version", store.UpgradeAgentsInput{Hosts: []string{"web-01"}, Version: "3.2.0"}, store.ENotFound, "release 3.2.0 is not published (the latest is 3.1.0)")
	refused("unknown host", store.UpgradeAgentsInput{Hosts: []string{"web-01", "nope"}}, store.ENotFound, `host "nope" not found`)
	refused("older release", store.UpgradeAgentsInput{Hosts: []string{"web-01"}, Version: "2.9.0"}, store.EConflict, "runs 3.0.0, newer than 2.9.0 (--force downgrades it)")

	res, err := up(store.UpgradeAgentsInput{Hosts: []string{"web-01", "web-02", "web-01"}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Version != "3.1.0" || len(res.Queued) != 2 || len(res.Skipped) != 0 || res.Queued[0].From != "3.0.0" || res.Queued[0].CommandID == 0 {
		t.Fatalf("got %+v, want web-01 and web-02 queued to 3.1.0", res)
	}
	if cs := f.pending(store.TargetAgent, ids[0]); len(cs) != 1 || cs[0].Type != "upgrade" || cs[0].Payload != `{"version":"3.1.0"}` {
		t.Errorf("web-01 pending: got %+v, want one upgrade to 3.1.0", cs)
	}
	if e := f.audits()[0]; e.Action != "agent.upgrade" || e.Target != "agents/acme" || !strings.Contains(e.Detail, "to=3.1.0 hosts=2") {
		t.Errorf("audit: got %+v, want agent.upgrade to=3.1.0 hosts=2", e)
	}
	refused("under way", store.UpgradeAgentsInput{Hosts: []string{"web-03", "web-01"}}, store.EConflict, "has an upgrade under way (command "+itoa(res.Queued[0].CommandID)+" to 3.1.0, queued)")

	t.Run("skip leaves out the refused with their reason", func(t *testing.T) {
		res, err := up(store.UpgradeAgentsInput{Hosts: []string{"web-01", "web-03"}, Skip: true})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Queued) != 1 || res.Queued[0].Hostname != "web-03" || len(res.Skipped) != 1 || !strings.Contains(res.Skipped[0].Reason, "has an upgrade under way") {
			t.Errorf("got %+v, want web-03 queued and web-01 skipped as under way", res)
		}
	})
	t.Run("force downgrades, audited", func(t *testing.T) {
		res, err := up(store.UpgradeAgentsInput{Hosts: []string{"web-04"}, Version: "v2.9.0", Force: true})
		if err != nil || len(res.Queued) != 1 || res.Version != "2.9.0" {
			t.Fatalf("got %+v, %v", res, err)
		}
		if cs := f.pending(store.TargetAgent, ids[3]); len(cs) != 1 || cs[0].Payload != `{"version":"2.9.0","force":true}` {
			t.Errorf("web-04 pending: got %+v, want a forced upgrade to 2.9.0", cs)
		}
		if e := f.audits()[0]; e.Action != "agent.upgrade.force" {
			t.Errorf("audit: got %+v, want agent.upgrade.force", e)
		}
	})
	t.Run("already at the release", func(t *testing.T) {
		if _, err := f.raw().Exec(`UPDATE agents SET version = '3.1.0' WHERE id = ?`, ids[5]); err != nil {
			t.Fatal(err)
		}
		before := f.dump()
		_, err := up(store.UpgradeAgentsInput{Hosts: []string{"web-06"}})
		if wantCode(t, err, store.EConflict) && !strings.Contains(err.Error(), "already runs 3.1.0 (--force installs it again)") {
			t.Errorf("got %v", err)
		}
		f.unchanged(before)
	})
	t.Run("uninstalled or being uninstalled", func(t *testing.T) {
		if _, err := f.db.Uninstall(f.ctx, a.ID, []string{"web-05"}); err != nil {
			t.Fatal(err)
		}
		before := f.dump()
		_, err := up(store.UpgradeAgentsInput{Hosts: []string{"web-05"}})
		if wantCode(t, err, store.EConflict) && !strings.Contains(err.Error(), "is being uninstalled (queued)") {
			t.Errorf("got %v", err)
		}
		cmd := f.pending(store.TargetAgent, ids[4])[0]
		f.unchanged(before)
		if err := f.db.AckCommands(f.ctx, store.TargetAgent, ids[4], []int64{cmd.ID}); err != nil {
			t.Fatal(err)
		}
		before = f.dump()
		_, err = up(store.UpgradeAgentsInput{Hosts: []string{"web-05"}, Force: true})
		if wantCode(t, err, store.EConflict) && !strings.Contains(err.Error(), "is uninstalled") {
			t.Errorf("got %v", err)
		}
		f.unchanged(before)
	})
	t.Run("candidates leave out the uninstalled", func(t *testing.T) {
		got, err := f.db.UpgradeCandidates(f.ctx, a.ID, 0)
		if want := []string{ids[0], ids[1], ids[2], ids[3], ids[5]}; err != nil || !slices.Equal(sortedCopy(got), sortedCopy(want)) {
			t.Errorf("got %v, %v, want %v", got, err, want)
		}
	})
	t.Run("the release being upgraded to cannot be deleted", func(t *testing.T) {
		err := f.db.DeleteRelease(f.ctx, "3.1.0")
		if wantCode(t, err, store.EConflict) && !strings.Contains(err.Error(), "agent "+ids[0]+" is upgrading to it") {
			t.Errorf("got %v", err)
		}
	})
}

func sortedCopy(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// TestAgentUpgradeState: GetAgent and FindAgent carry the latest upgrade
// command, its stage while running and its reason once failed or rolled
// back; a stuck stage shows as the failure it will be.
func TestAgentUpgradeState(t *testing.T) {
	f := newFixture(t)
	a, key := f.account("acme")
	w := f.enrol(key, "web-01")
	f.publish("3.1.0")
	if g := f.agent(w.ID); g.Upgrade != nil || store.UpgradeText(g.Upgrade) != "-" {
		t.Fatalf("before any upgrade: got %+v", g.Upgrade)
	}
	res, err := f.db.UpgradeAgents(f.ctx, store.UpgradeAgentsInput{AccountID: a.ID, Hosts: []string{"web-01"}})
	if err != nil {
		t.Fatal(err)
	}
	id := res.Queued[0].CommandID
	report := func(r store.CommandReport) {
		t.Helper()
		r.ID = id
		if err := f.db.ReportCommands(f.ctx, store.TargetAgent, w.ID, []store.CommandReport{r}); err != nil {
			t.Fatal(err)
		}
	}
	shown := func() string {
		t.Helper()
		g, err := f.db.FindAgent(f.ctx, a.ID, "web-01")
		if err != nil {
			t.Fatal(err)
		}
		if f.agent(w.ID).Upgrade == nil {
			t.Fatal("GetAgent: no upgrade")
		}
		return store.UpgradeText(g.Upgrade)
	}
	if got := shown(); got != "to 3.1.0: queued" {
		t.Errorf("queued: got %q", got)
	}
	if _, err := f.db.DeliverCommands(f.ctx, store.TargetAgent, w.ID); err != nil {
		t.Fatal(err)
	}
	if got := shown(); got != "to 3.1.0: delivered" {
		t.Errorf("delivered: got %q", got)
	}
	report(store.CommandReport{State: wire.StateRunning, Stage: wire.StageVerifying})
	if got := shown(); got != "to 3.1.0: verifying" {
		t.Errorf("verifying: got %q", got)
	}
	f.clock.Advance(store.CommandAnswerTimeout)
	if got := shown(); !strings.HasPrefix(got, "to 3.1.0: failed: stuck verifying: no answer from the agent since") {
		t.Errorf("stuck: got %q", got)
	}
	res, err = f.db.UpgradeAgents(f.ctx, store.UpgradeAgentsInput{AccountID: a.ID, Hosts: []string{"web-01"}})
	if err != nil {
		t.Fatalf("again after the timeout: %v", err)
	}
	id = res.Queued[0].CommandID
	report(store.CommandReport{State: wire.StateRolledBack, Error: "the new version crashed 3 times in a minute"})
	if got := shown(); got != "to 3.1.0: rolled back: the new version crashed 3 times in a minute" {
		t.Errorf("rolled back: got %q", got)
	}
}
