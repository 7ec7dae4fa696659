package ops_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"outpost/store"
	"outpost/store/ops"
)

// fakeUpgrader answers UpgradeAgents: the first call resolves "" to the
// latest (which is then changed, as if a release were published during
// the run), errs scripts refusals.
type fakeUpgrader struct {
	mu     sync.Mutex
	latest string
	calls  []store.UpgradeAgentsInput
	errs   map[int]error // by call number
}

func (u *fakeUpgrader) callsSnapshot() []store.UpgradeAgentsInput {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]store.UpgradeAgentsInput(nil), u.calls...)
}

func (u *fakeUpgrader) UpgradeAgents(_ context.Context, in store.UpgradeAgentsInput) (store.AgentUpgradeResult, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.calls = append(u.calls, in)
	if err := u.errs[len(u.calls)]; err != nil {
		return store.AgentUpgradeResult{}, err
	}
	v := in.Version
	if v == "" {
		v = u.latest
	}
	u.latest = "9.9.9" // published meanwhile: later batches must not pick it
	res := store.AgentUpgradeResult{Version: v}
	for i, h := range in.Hosts {
		if i == 0 && in.Skip {
			res.Skipped = append(res.Skipped, store.AgentUpgrade{AgentID: h, Reason: "already runs " + v})
			continue
		}
		res.Queued = append(res.Queued, store.AgentUpgrade{AgentID: h})
	}
	return res, nil
}

// TestPacedUpgrade: batches of at most 500 a gap apart, all to the
// version the first batch resolved, skips gathered with their reasons; a
// refusal ends the run saying how many were queued before it.
func TestPacedUpgrade(t *testing.T) {
	ck := &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	u := &fakeUpgrader{latest: "3.1.0"}
	p := ops.NewPacedUpgrade(u, store.UpgradeAgentsInput{AccountID: 7, Skip: true}, ops.BindBatches(ids(1100)), time.Minute, ck)
	pr := p.Step(context.Background())
	if pr.Batch != 1 || pr.Version != "3.1.0" || len(pr.Queued) != 499 || len(pr.Skipped) != 1 || pr.Wait != time.Minute+ops.RetrySlack {
		t.Fatalf("first batch: got batch %d version %s, %d queued %d skipped, wait %s", pr.Batch, pr.Version, len(pr.Queued), len(pr.Skipped), pr.Wait)
	}
	ck.Advance(30 * time.Second)
	if pr = p.Step(context.Background()); len(u.calls) != 1 || pr.Wait != 30*time.Second+ops.RetrySlack {
		t.Fatalf("stepped before the gap: %d calls, wait %s", len(u.calls), pr.Wait)
	}
	for !pr.Finished {
		ck.Advance(pr.Wait)
		pr = p.Step(context.Background())
	}
	if pr.Err != nil || pr.Batch != 3 || pr.Done != 1100 || len(pr.Queued) != 1097 || len(pr.Skipped) != 3 {
		t.Errorf("end: got %+v (err %v), want 3 batches, 1097 queued and 3 skipped", pr.Line("done"), pr.Err)
	}
	for i, c := range u.calls {
		if (i > 0 && c.Version != "3.1.0") || c.AccountID != 7 || !c.Skip || len(c.Hosts) > store.BindBatchMax {
			t.Errorf("call %d: got %+v, want account 7, skip, version 3.1.0 after the first, at most 500 hosts", i+1, c)
		}
	}

	t.Run("a refusal ends the run", func(t *testing.T) {
		u := &fakeUpgrader{latest: "3.1.0", errs: map[int]error{2: store.Errorf(store.EConflict, "agent ag_x (web-9) has an upgrade under way")}}
		p := ops.NewPacedUpgrade(u, store.UpgradeAgentsInput{}, ops.BindBatches(ids(700)), time.Minute, ck)
		pr := p.Step(context.Background())
		ck.Advance(pr.Wait)
		pr = p.Step(context.Background())
		if !pr.Finished || pr.Err == nil || !strings.Contains(pr.Err.Error(), "batch 2/2 refused: agent ag_x (web-9) has an upgrade under way; 500 of 700 agents were queued before it") {
			t.Errorf("got %v, want the refusal with the count", pr.Err)
		}
	})
	t.Run("interrupted between batches", func(t *testing.T) {
		u := &fakeUpgrader{latest: "3.1.0"}
		p := ops.NewPacedUpgrade(u, store.UpgradeAgentsInput{}, ops.BindBatches(ids(700)), time.Hour, ck)
		interrupt, cancel := context.WithCancel(context.Background())
		go func() {
			for len(u.callsSnapshot()) == 0 {
				time.Sleep(time.Millisecond)
			}
			cancel()
		}()
		_, err := p.Run(context.Background(), interrupt, nil)
		if err == nil || !strings.Contains(err.Error(), "interrupted before batch 2/2: 500 of 700 agents queued") {
			t.Errorf("got %v, want interrupted before batch 2", err)
		}
	})
}
