package store_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"outpost/relay/wire"
	"outpost/store"
)

func commandIDs(cs []store.Command) []int64 {
	out := make([]int64, len(cs))
	for i, c := range cs {
		out[i] = c.ID
	}
	return out
}

func TestCommandsLifecycle(t *testing.T) {
	f := newFixture(t)
	a, key := f.account("acme")
	c := f.cluster(a.ID, "edge", "relay.acme.example")
	w1, w2 := f.enrol(key, "web-01"), f.enrol(key, "web-02")
	if _, err := f.db.Bind(f.ctx, c.ID, []string{"web-01", "web-02"}); err != nil {
		t.Fatal(err)
	}
	c1, c2 := f.pending(store.TargetAgent, w1.ID), f.pending(store.TargetAgent, w2.ID)
	if len(c1) != 1 || len(c2) != 1 {
		t.Fatalf("got %d and %d pending, want 1 each", len(c1), len(c2))
	}
	id1, id2 := c1[0].ID, c2[0].ID
	if c1[0].TargetKind != store.TargetAgent || c1[0].TargetID != w1.ID || !c1[0].CreatedAt.Equal(t0) || !c1[0].DeliveredAt.IsZero() {
		t.Errorf("got %+v, want an undelivered agent command for %s created at %v", c1[0], w1.ID, t0)
	}

	after := func(id int64) []int64 {
		t.Helper()
		cs, err := f.db.CommandsAfter(f.ctx, id, 0)
		if err != nil {
			t.Fatal(err)
		}
		return commandIDs(cs)
	}
	if got := after(0); !slices.Equal(got, []int64{id1, id2}) {
		t.Errorf("CommandsAfter(0): got %v, want %v", got, []int64{id1, id2})
	}
	if got := after(id1); !slices.Equal(got, []int64{id2}) {
		t.Errorf("CommandsAfter(%d): got %v, want %v", id1, got, []int64{id2})
	}
	if cs, err := f.db.CommandsAfter(f.ctx, 0, 1); err != nil || len(cs) != 1 {
		t.Errorf("CommandsAfter limit 1: got %d, %v, want 1", len(cs), err)
	}

	t.Run("MarkDelivered keeps it pending", func(t *testing.T) {
		f.clock.Advance(time.Second)
		if err := f.db.MarkDelivered(f.ctx, []int64{id1}); err != nil {
			t.Fatal(err)
		}
		got := f.pending(store.TargetAgent, w1.ID)
		if len(got) != 1 || !got[0].DeliveredAt.Equal(t0.Add(time.Second)) {
			t.Errorf("got %+v, want still pending, delivered at %v", got, t0.Add(time.Second))
		}
		// A second delivery does not move the first delivery time.
		f.clock.Advance(time.Second)
		if err := f.db.MarkDelivered(f.ctx, []int64{id1}); err != nil {
			t.Fatal(err)
		}
		if got := f.pending(store.TargetAgent, w1.ID); !got[0].DeliveredAt.Equal(t0.Add(time.Second)) {
			t.Errorf("got delivered %v, want %v", got[0].DeliveredAt, t0.Add(time.Second))
		}
	})
	t.Run("ack by another target does nothing", func(t *testing.T) {
		before := f.dump()
		for _, tt := range []struct {
			kind   store.TargetKind
			target string
		}{{store.TargetAgent, w2.ID}, {store.TargetProxy, w1.ID}, {store.TargetAgent, "ag_nope"}} {
			if err := f.db.AckCommands(f.ctx, tt.kind, tt.target, []int64{id1}); err != nil {
				t.Fatal(err)
			}
		}
		f.unchanged(before)
		if got := f.pending(store.TargetAgent, w1.ID); len(got) != 1 {
			t.Errorf("got %d pending, want 1", len(got))
		}
	})
	t.Run("ack by the target", func(t *testing.T) {
		if err := f.db.AckCommands(f.ctx, store.TargetAgent, w1.ID, []int64{id1}); err != nil {
			t.Fatal(err)
		}
		if got := f.pending(store.TargetAgent, w1.ID); len(got) != 0 {
			t.Errorf("got %v, want none pending", commandTypes(got))
		}
		if got := after(0); !slices.Equal(got, []int64{id2}) {
			t.Errorf("CommandsAfter(0): got %v, want %v", got, []int64{id2})
		}
		if got := f.pending(store.TargetAgent, w2.ID); len(got) != 1 {
			t.Errorf("web-02: got %d pending, want 1", len(got))
		}
	})
	t.Run("empty id lists", func(t *testing.T) {
		if err := f.db.MarkDelivered(f.ctx, nil); err != nil {
			t.Error(err)
		}
		if err := f.db.AckCommands(f.ctx, store.TargetAgent, w2.ID, nil); err != nil {
			t.Error(err)
		}
	})
}

// TestCommandStates walks commands through the states an operator sees
// and the bounds that end them: a failed report, MaxDeliveries deliveries
// without an answer, and CommandAnswerTimeout without news.
func TestCommandStates(t *testing.T) {
	type step func(f *fixture, kind store.TargetKind, target string, id int64)
	deliver := func(f *fixture, kind store.TargetKind, target string, id int64) {
		f.t.Helper()
		if _, err := f.db.DeliverCommands(f.ctx, kind, target); err != nil {
			f.t.Fatal(err)
		}
	}
	report := func(state wire.State, reason string) step {
		return func(f *fixture, kind store.TargetKind, target string, id int64) {
			f.t.Helper()
			if err := f.db.ReportCommands(f.ctx, kind, target, []store.CommandReport{{ID: id, State: state, Error: reason}}); err != nil {
				f.t.Fatal(err)
			}
		}
	}
	advance := func(d time.Duration) step {
		return func(f *fixture, _ store.TargetKind, _ string, _ int64) { f.clock.Advance(d) }
	}
	sweep := func(f *fixture, _ store.TargetKind, _ string, _ int64) {
		f.t.Helper()
		if _, err := f.db.ExpireCommands(f.ctx); err != nil {
			f.t.Fatal(err)
		}
	}
	since := func(d time.Duration) string { return t0.Add(d).Format(time.RFC3339) }
	tests := []struct {
		name      string
		steps     []step
		wantState wire.State
		wantError string
		wantAudit string // actor of the command.failed entry, "" = none
	}{
		{"queued", nil, wire.StateQueued, "", ""},
		{"delivered", []step{deliver}, wire.StateDelivered, "", ""},
		{"running", []step{deliver, report(wire.StateRunning, "")}, wire.StateRunning, "", ""},
		{"done", []step{deliver, report(wire.StateRunning, ""), report(wire.StateDone, "")}, wire.StateDone, "", ""},
		{"failed report ends it at once", []step{deliver, report(wire.StateFailed, "relay exited (exit status 1): port 127.0.0.1:18443 already in use")},
			wire.StateFailed, "relay exited (exit status 1): port 127.0.0.1:18443 already in use", "agent/"},
		{"a failure is final", []step{deliver, report(wire.StateFailed, "boom"), report(wire.StateDone, ""), deliver},
			wire.StateFailed, "boom", "agent/"},
		{"failed without a reason", []step{deliver, report(wire.StateFailed, "")}, wire.StateFailed, "the agent gave no reason", "agent/"},
		{"reason kept to one line", []step{deliver, report(wire.StateFailed, "line one\nline\ttwo\x1b[31m")}, wire.StateFailed, "line one line two[31m", "agent/"},
		{"done is final", []step{deliver, report(wire.StateDone, ""), report(wire.StateFailed, "late")}, wire.StateDone, "", ""},
		{"redelivered up to the bound", []step{deliver, deliver, deliver}, wire.StateDelivered, "", ""},
		{"no answer after the bound", []step{deliver, deliver, deliver, deliver}, wire.StateFailed,
			"delivered 3 times without an answer from the agent", "system"},
		{"no answer in time, delivered", []step{deliver, advance(store.CommandAnswerTimeout), sweep}, wire.StateFailed,
			"no answer from the agent since " + since(0), "system"},
		{"no answer in time, running", []step{deliver, advance(time.Minute), report(wire.StateRunning, ""), advance(store.CommandAnswerTimeout), sweep},
			wire.StateFailed, "no answer from the agent since " + since(time.Minute), "system"},
		{"shown failed before the sweep", []step{deliver, advance(store.CommandAnswerTimeout)}, wire.StateFailed,
			"no answer from the agent since " + since(0), ""},
		{"news in time keeps it", []step{deliver, advance(store.CommandAnswerTimeout - time.Second), report(wire.StateRunning, ""),
			advance(store.CommandAnswerTimeout - time.Second), sweep}, wire.StateRunning, "", ""},
		{"queued waits for its target", []step{advance(10 * store.CommandAnswerTimeout), sweep}, wire.StateQueued, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			a, key := f.account("acme")
			c := f.cluster(a.ID, "edge", "relay.acme.example")
			w := f.enrol(key, "web-01")
			if _, err := f.db.Bind(f.ctx, c.ID, []string{"web-01"}); err != nil {
				t.Fatal(err)
			}
			id := f.pending(store.TargetAgent, w.ID)[0].ID
			audits := len(f.audits())
			for _, s := range tt.steps {
				s(f, store.TargetAgent, w.ID, id)
			}
			cs, err := f.db.ListCommands(f.ctx, store.TargetAgent, w.ID, 0)
			if err != nil {
				t.Fatal(err)
			}
			if len(cs) != 1 || cs[0].ID != id {
				t.Fatalf("ListCommands: got %v, want [%d]", commandIDs(cs), id)
			}
			if got := cs[0]; got.State != tt.wantState || got.Error != tt.wantError {
				t.Errorf("got %q %q, want %q %q", got.State, got.Error, tt.wantState, tt.wantError)
			}
			var failed []store.AuditEntry
			for _, e := range f.audits()[:len(f.audits())-audits] {
				if e.Action == "command.failed" {
					failed = append(failed, e)
				}
			}
			switch {
			case tt.wantAudit == "" && len(failed) > 0:
				t.Errorf("audit: got %+v, want no command.failed entry", failed)
			case tt.wantAudit != "" && len(failed) != 1:
				t.Errorf("audit: got %d command.failed entries, want 1", len(failed))
			case tt.wantAudit != "":
				want := tt.wantAudit
				if want == "agent/" {
					want += w.ID
				}
				if e := failed[0]; e.Actor != want || e.Target != "agent/"+w.ID || !strings.Contains(e.Detail, tt.wantError) {
					t.Errorf("audit: got %+v, want actor %s, target agent/%s, detail with %q", e, want, w.ID, tt.wantError)
				}
			}
			// Delivered again only while within its bounds.
			want := tt.wantState == wire.StateQueued || (tt.wantState == wire.StateDelivered && cs[0].Attempts < store.MaxDeliveries)
			if got := len(f.pending(store.TargetAgent, w.ID)) == 1; got != want {
				t.Errorf("pending: got %v, want %v", got, want)
			}
		})
	}
}

func TestReportCommandsRefusals(t *testing.T) {
	f := newFixture(t)
	a, key := f.account("acme")
	c := f.cluster(a.ID, "edge", "relay.acme.example")
	w1, w2 := f.enrol(key, "web-01"), f.enrol(key, "web-02")
	if _, err := f.db.Bind(f.ctx, c.ID, []string{"web-01", "web-02"}); err != nil {
		t.Fatal(err)
	}
	id := f.pending(store.TargetAgent, w1.ID)[0].ID
	before := f.dump()
	tests := []struct {
		name     string
		kind     store.TargetKind
		target   string
		r        store.CommandReport
		wantCode string
	}{
		{"unknown state", store.TargetAgent, w1.ID, store.CommandReport{ID: id, State: "exploded"}, store.EInvalid},
		{"queued is not a report", store.TargetAgent, w1.ID, store.CommandReport{ID: id, State: wire.StateQueued}, store.EInvalid},
		{"another agent's command", store.TargetAgent, w2.ID, store.CommandReport{ID: id, State: wire.StateFailed, Error: "forged"}, ""},
		{"a proxy with the agent's id", store.TargetProxy, w1.ID, store.CommandReport{ID: id, State: wire.StateDone}, ""},
		{"no such command", store.TargetAgent, w1.ID, store.CommandReport{ID: id + 100, State: wire.StateFailed}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := f.db.ReportCommands(f.ctx, tt.kind, tt.target, []store.CommandReport{tt.r})
			if tt.wantCode != "" {
				wantCode(t, err, tt.wantCode)
			} else if err != nil {
				t.Fatal(err)
			}
			f.unchanged(before)
		})
	}
}

// TestCommandIDsNeverReused: the relays' poll cursor (CommandsAfter) skips
// every id it has seen, so an id given again after a delete would hide the
// new command from it.
func TestCommandIDsNeverReused(t *testing.T) {
	f := newFixture(t)
	a, _ := f.account("acme")
	c := f.cluster(a.ID, "edge", "relay.acme.example")
	p := f.proxy(c.ID, "px-1", "1.0.0")
	f.publish("1.1.0")
	if _, err := f.db.UpgradeProxy(f.ctx, p.ID); err != nil {
		t.Fatal(err)
	}
	first := f.pending(store.TargetProxy, itoa(p.ID))[0].ID
	f.clock.Advance(time.Hour) // offline: deletable
	if err := f.db.DeleteProxy(f.ctx, p.ID); err != nil {
		t.Fatal(err)
	}
	q := f.proxy(c.ID, "px-2", "1.0.0")
	if _, err := f.db.UpgradeProxy(f.ctx, q.ID); err != nil {
		t.Fatal(err)
	}
	if got := f.pending(store.TargetProxy, itoa(q.ID))[0].ID; got <= first {
		t.Errorf("new command id: got %d, want more than the deleted %d", got, first)
	}
}

// TestQuickDeployTokenExpiry: a quick deployment whose join token expired
// before the agent took it can never succeed; it ends failed with that
// reason rather than staying queued, and is not handed to the agent.
func TestQuickDeployTokenExpiry(t *testing.T) {
	for _, tt := range []struct {
		name  string
		sweep func(f *fixture, agent string)
	}{
		{"shown before any sweep", func(*fixture, string) {}},
		{"swept", func(f *fixture, _ string) {
			if _, err := f.db.ExpireCommands(f.ctx); err != nil {
				f.t.Fatal(err)
			}
		}},
		{"the agent asks again", func(f *fixture, agent string) {
			if cs, err := f.db.DeliverCommands(f.ctx, store.TargetAgent, agent); err != nil || len(cs) != 0 {
				f.t.Fatalf("DeliverCommands: got %v, %v, want nothing to deliver", commandIDs(cs), err)
			}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			a, key := f.account("acme")
			c := f.cluster(a.ID, "edge", "relay.acme.example")
			w := f.enrol(key, "web-01")
			jt, err := f.db.CreateQuickDeploy(f.ctx, c.ID, w.ID, time.Minute, store.RelayOptions{Listen: []string{"https://127.0.0.1:18443"}})
			if err != nil {
				t.Fatal(err)
			}
			f.clock.Advance(time.Minute)
			tt.sweep(f, w.ID)
			ds, err := f.db.ListDeployments(f.ctx, c.ID)
			if err != nil || len(ds) != 1 || ds[0].Command.ID != jt.CommandID {
				t.Fatalf("ListDeployments: got %+v, %v, want command %d", ds, err, jt.CommandID)
			}
			want := "the join token expired at " + t0.Add(time.Minute).Format(time.RFC3339)
			if d := ds[0]; d.State != wire.StateFailed || !strings.Contains(d.Error, want) {
				t.Errorf("got %s %q, want failed: %s...", d.State, d.Error, want)
			}
		})
	}
}

func TestCreateQuickDeployOptions(t *testing.T) {
	f := newFixture(t)
	a, key := f.account("acme")
	c := f.cluster(a.ID, "edge", "relay.acme.example")
	w := f.enrol(key, "web-01")
	before := f.dump()
	for _, tt := range []struct {
		name string
		o    store.RelayOptions
	}{
		{"listen without a port", store.RelayOptions{Listen: []string{"https://127.0.0.1"}}},
		{"public not a URL", store.RelayOptions{Public: []string{"relay.example.com:8443"}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.db.CreateQuickDeploy(f.ctx, c.ID, w.ID, time.Hour, tt.o)
			wantCode(t, err, store.EInvalid)
			f.unchanged(before)
		})
	}
	t.Run("passed to the agent", func(t *testing.T) {
		o := store.RelayOptions{Listen: []string{"https://0.0.0.0:9443"}, Public: []string{"https://relay.acme.example:9443"}}
		jt, err := f.db.CreateQuickDeploy(f.ctx, c.ID, w.ID, time.Hour, o)
		if err != nil {
			t.Fatal(err)
		}
		cs := f.pending(store.TargetAgent, w.ID)
		if len(cs) != 1 || cs[0].ID != jt.CommandID ||
			!strings.Contains(cs[0].Payload, `"listen":["https://0.0.0.0:9443"]`) || !strings.Contains(cs[0].Payload, `"public":["https://relay.acme.example:9443"]`) {
			t.Errorf("got %+v, want the deploy-proxy command %d with listen and public", cs, jt.CommandID)
		}
	})
}
