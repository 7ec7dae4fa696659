package store_test

import (
	"strings"
	"testing"
	"time"

	"outpost/relay/wire"
	"outpost/store"
)

// TestUpgradeStages walks a proxy's upgrade command through the stages and
// endings an operator sees: each stage shows in Describe, a running report
// without a stage keeps the stage, rolled back is final and audited with
// its reason, and a stage that hears nothing more times out into failed.
func TestUpgradeStages(t *testing.T) {
	type step func(f *fixture, target string, id int64)
	report := func(state wire.State, stage wire.Stage, reason string) step {
		return func(f *fixture, target string, id int64) {
			f.t.Helper()
			if err := f.db.ReportCommands(f.ctx, store.TargetProxy, target, []store.CommandReport{{ID: id, State: state, Stage: stage, Error: reason}}); err != nil {
				f.t.Fatal(err)
			}
		}
	}
	deliver := func(f *fixture, target string, _ int64) {
		f.t.Helper()
		if _, err := f.db.DeliverCommands(f.ctx, store.TargetProxy, target); err != nil {
			f.t.Fatal(err)
		}
	}
	advance := func(d time.Duration) step { return func(f *fixture, _ string, _ int64) { f.clock.Advance(d) } }
	running := func(stage wire.Stage) step { return report(wire.StateRunning, stage, "") }
	since := func(d time.Duration) string { return t0.Add(d).Format(time.RFC3339) }
	tests := []struct {
		name         string
		steps        []step
		wantState    wire.State
		wantStg      wire.Stage
		wantDescribe string
		wantAudit    string // action of the ending's audit entry, "" = none
	}{
		{"downloading", []step{deliver, running(wire.StageDownloading)}, wire.StateRunning, wire.StageDownloading, "downloading", ""},
		{"verifying", []step{deliver, running(wire.StageDownloading), running(wire.StageVerifying)}, wire.StateRunning, wire.StageVerifying, "verifying", ""},
		{"running without a stage keeps it", []step{deliver, running(wire.StageRestarting), running("")}, wire.StateRunning, wire.StageRestarting, "restarting", ""},
		{"running, no stage yet", []step{deliver, running("")}, wire.StateRunning, "", "running", ""},
		{"done clears the stage", []step{deliver, running(wire.StageRestarting), report(wire.StateDone, "", "")}, wire.StateDone, "", "done", ""},
		{"rolled back", []step{deliver, running(wire.StageRestarting), report(wire.StateRolledBack, "", "no healthy heartbeat within 2m0s; last log: panic: boom")},
			wire.StateRolledBack, "", "rolled back: no healthy heartbeat within 2m0s; last log: panic: boom", "command.rolled_back"},
		{"rolled back without a reason", []step{deliver, report(wire.StateRolledBack, "", "")}, wire.StateRolledBack, "", "rolled back: the proxy gave no reason", "command.rolled_back"},
		{"rolled back is final", []step{deliver, report(wire.StateRolledBack, "", "crashed 3 times"), report(wire.StateDone, "", ""), running(wire.StageDownloading)},
			wire.StateRolledBack, "", "rolled back: crashed 3 times", "command.rolled_back"},
		{"failed while verifying", []step{deliver, running(wire.StageVerifying), report(wire.StateFailed, "", "signature does not verify")},
			wire.StateFailed, "", "failed: signature does not verify", "command.failed"},
		{"a stuck stage times out", []step{deliver, advance(time.Minute), running(wire.StageDownloading), advance(store.CommandAnswerTimeout)},
			wire.StateFailed, wire.StageDownloading, "failed: stuck downloading: no answer from the relay since " + since(time.Minute), ""},
		{"a stuck stage is swept", []step{deliver, running(wire.StageRestarting), advance(store.CommandAnswerTimeout), func(f *fixture, _ string, _ int64) {
			if _, err := f.db.ExpireCommands(f.ctx); err != nil {
				f.t.Fatal(err)
			}
		}}, wire.StateFailed, "", "failed: stuck restarting: no answer from the relay since " + since(0), "command.failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			a, _ := f.account("acme")
			c := f.cluster(a.ID, "edge", "relay.acme.example")
			p := f.proxy(c.ID, "px-1", "1.0.0")
			f.publish("1.1.0")
			if _, err := f.db.UpgradeProxy(f.ctx, p.ID); err != nil {
				t.Fatal(err)
			}
			target := itoa(p.ID)
			id := f.pending(store.TargetProxy, target)[0].ID
			audits := len(f.audits())
			for _, s := range tt.steps {
				s(f, target, id)
			}
			cs, err := f.db.ListCommands(f.ctx, store.TargetProxy, target, 0)
			if err != nil || len(cs) != 1 {
				t.Fatalf("ListCommands: got %v, %v, want [%d]", commandIDs(cs), err, id)
			}
			got := cs[0]
			if got.State != tt.wantState || got.Stage != tt.wantStg || got.Describe() != tt.wantDescribe {
				t.Errorf("got %q stage %q %q, want %q stage %q %q", got.State, got.Stage, got.Describe(), tt.wantState, tt.wantStg, tt.wantDescribe)
			}
			// The listing shows the same, through Proxy.UpgradeCommand.
			px, err := f.db.GetProxy(f.ctx, p.ID)
			if err != nil {
				t.Fatal(err)
			}
			if uc, ok := px.UpgradeCommand(); !ok || uc.Describe() != tt.wantDescribe {
				t.Errorf("GetProxy upgrade command: got %q (%v), want %q", uc.Describe(), ok, tt.wantDescribe)
			}
			var ends []store.AuditEntry
			for _, e := range f.audits()[:len(f.audits())-audits] {
				if strings.HasPrefix(e.Action, "command.") {
					ends = append(ends, e)
				}
			}
			reason := got.Error
			switch {
			case tt.wantAudit == "" && len(ends) > 0:
				t.Errorf("audit: got %+v, want none", ends)
			case tt.wantAudit != "" && (len(ends) != 1 || ends[0].Action != tt.wantAudit || !strings.HasSuffix(ends[0].Detail, ": "+reason)):
				t.Errorf("audit: got %+v, want one %s ending with the reason %q", ends, tt.wantAudit, reason)
			}
			// An ending recorded in the store leaves the open commands.
			open, err := f.db.CommandsAfter(f.ctx, 0, 0)
			if err != nil {
				t.Fatal(err)
			}
			if wantOpen := tt.wantAudit == "" && tt.wantState != wire.StateDone; (len(open) == 1) != wantOpen {
				t.Errorf("CommandsAfter: got %v, want the command open: %v", commandIDs(open), wantOpen)
			}
		})
	}
}

// TestReportStageRefusals: a stage word the store does not know is bad
// input from the target, refused with nothing recorded.
func TestReportStageRefusals(t *testing.T) {
	f := newFixture(t)
	a, _ := f.account("acme")
	c := f.cluster(a.ID, "edge", "relay.acme.example")
	p := f.proxy(c.ID, "px-1", "1.0.0")
	f.publish("1.1.0")
	if _, err := f.db.UpgradeProxy(f.ctx, p.ID); err != nil {
		t.Fatal(err)
	}
	id := f.pending(store.TargetProxy, itoa(p.ID))[0].ID
	before := f.dump()
	for _, stage := range []wire.Stage{"exploding", "Downloading", wire.Stage(strings.Repeat("x", 500))} {
		err := f.db.ReportCommands(f.ctx, store.TargetProxy, itoa(p.ID), []store.CommandReport{{ID: id, State: wire.StateRunning, Stage: stage}})
		if wantCode(t, err, store.EInvalid) && len(err.Error()) > 200 {
			t.Errorf("stage %.20q: error of %d characters, want one short line", stage, len(err.Error()))
		}
		f.unchanged(before)
	}
}

// TestRolledBackReasonKeepsLogLines: a rollback's reason carries the new
// version's last log lines, so it may be longer than a failure's, but it
// is still one bounded line.
func TestRolledBackReasonKeepsLogLines(t *testing.T) {
	f := newFixture(t)
	a, _ := f.account("acme")
	c := f.cluster(a.ID, "edge", "relay.acme.example")
	p := f.proxy(c.ID, "px-1", "1.0.0")
	f.publish("1.1.0")
	if _, err := f.db.UpgradeProxy(f.ctx, p.ID); err != nil {
		t.Fatal(err)
	}
	id := f.pending(store.TargetProxy, itoa(p.ID))[0].ID
	logs := "no healthy heartbeat within 2m0s; last log lines:\n" + strings.Repeat("relay: listen tcp :8443: bind: address already in use\n", 8)
	long := strings.Repeat("y", 5000)
	for _, r := range []struct {
		reason        string
		wantLen       int
		wantTruncated bool
	}{{logs, len([]rune(strings.Join(strings.Fields(logs), " "))), false}, {long, 1001, true}} {
		if err := f.db.ReportCommands(f.ctx, store.TargetProxy, itoa(p.ID), []store.CommandReport{{ID: id, State: wire.StateRolledBack, Error: r.reason}}); err != nil {
			t.Fatal(err)
		}
		cs, _ := f.db.ListCommands(f.ctx, store.TargetProxy, itoa(p.ID), 1)
		got := cs[0].Error
		if strings.Contains(got, "\n") || len([]rune(got)) != r.wantLen || strings.HasSuffix(got, "…") != r.wantTruncated {
			t.Errorf("reason: got %d characters %.60q, want %d on one line (truncated %v)", len([]rune(got)), got, r.wantLen, r.wantTruncated)
		}
		// The next case needs an open command again.
		if _, err := f.db.ForceUpgradeProxy(f.ctx, p.ID); err != nil {
			t.Fatal(err)
		}
		id = f.pending(store.TargetProxy, itoa(p.ID))[0].ID
	}
}
