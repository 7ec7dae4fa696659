package ops_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"outpost/relay/wire"
	"outpost/store"
	"outpost/store/ops"
)

// fakeProxies is a cluster's proxy servers as the store shows them; each
// proxy's relay is simulated by a script of what it does after the
// upgrade is queued, keyed by the time since then.
type fakeProxies struct {
	ck      *clock
	latest  string
	ps      []store.Proxy
	relay   map[int64]func(p *store.Proxy, since time.Duration) // nil: the relay never answers
	queued  map[int64]time.Time
	order   []int64 // upgrade calls, in order
	refuse  map[int64]error
	nextCmd int64
}

func (f *fakeProxies) ListProxies(context.Context, int64) ([]store.Proxy, error) {
	return append([]store.Proxy(nil), f.ps...), nil
}
func (f *fakeProxies) LatestRelease(context.Context) (string, error) { return f.latest, nil }

func (f *fakeProxies) GetProxy(_ context.Context, id int64) (store.Proxy, error) {
	for i := range f.ps {
		p := &f.ps[i]
		if p.ID != id {
			continue
		}
		if at, ok := f.queued[id]; ok && f.relay[id] != nil {
			f.relay[id](p, f.ck.Now().Sub(at))
		}
		return *p, nil
	}
	return store.Proxy{}, store.Errorf(store.ENotFound, "proxy server %d not found", id)
}

func (f *fakeProxies) UpgradeProxy(ctx context.Context, id int64) (string, error) {
	if err := f.refuse[id]; err != nil {
		return "", err
	}
	f.order = append(f.order, id)
	f.queued[id] = f.ck.Now()
	f.nextCmd++
	for i := range f.ps {
		if f.ps[i].ID == id {
			f.ps[i].Commands = []store.Command{{ID: f.nextCmd, Type: "upgrade", State: wire.StateQueued, Payload: `{"version":"` + f.latest + `"}`}}
		}
	}
	return f.latest, nil
}

func (f *fakeProxies) ForceUpgradeProxy(ctx context.Context, id int64) (string, error) {
	return f.UpgradeProxy(ctx, id)
}

// healthyAfter is a relay that downloads, restarts (offline for a while)
// and comes back at the new version, its command done, after d.
func healthyAfter(d time.Duration, to string) func(p *store.Proxy, since time.Duration) {
	return func(p *store.Proxy, since time.Duration) {
		c := &p.Commands[0]
		switch {
		case since >= d:
			c.State, c.Stage = wire.StateDone, ""
			p.Status, p.Version = store.StatusOnline, to
		case since >= d/2:
			c.State, c.Stage = wire.StateRunning, wire.StageRestarting
			p.Status = store.StatusOffline
		default:
			c.State, c.Stage = wire.StateRunning, wire.StageDownloading
		}
	}
}

func rolledBackAfter(d time.Duration, reason string) func(p *store.Proxy, since time.Duration) {
	return func(p *store.Proxy, since time.Duration) {
		if since >= d {
			p.Commands[0].State, p.Commands[0].Error = wire.StateRolledBack, reason
		}
	}
}

func online(id int64, host, version string) store.Proxy {
	return store.Proxy{ID: id, Hostname: host, Version: version, Status: store.StatusOnline}
}

// drive steps the run to its end, advancing the fake clock by each wait,
// and returns the events in order.
func drive(t *testing.T, r *ops.RollingUpgrade, ck *clock) (ops.RollingProgress, []string) {
	t.Helper()
	var events []string
	for i := 0; i < 10000; i++ {
		pr := r.Step(context.Background())
		if pr.Event != "" {
			events = append(events, pr.Event)
		}
		if pr.Finished {
			return pr, events
		}
		ck.Advance(max(pr.Wait, time.Millisecond))
	}
	t.Fatal("the run never finished")
	return ops.RollingProgress{}, nil
}

func TestRollingUpgrade(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name        string
		ps          []store.Proxy
		relay       map[int64]func(*store.Proxy, time.Duration)
		refuse      map[int64]error
		wantOrder   []int64
		wantStates  []ops.RollState
		wantErr     string // "" = success
		wantWarning bool
		wantEvent   string // one event contains it
	}{
		{name: "one at a time, each healthy before the next",
			ps:        []store.Proxy{online(1, "px-1", "1.0.0"), online(2, "px-2", "1.0.0"), online(3, "px-3", "1.0.0")},
			relay:     map[int64]func(*store.Proxy, time.Duration){1: healthyAfter(20*time.Second, "1.1.0"), 2: healthyAfter(40*time.Second, "1.1.0"), 3: healthyAfter(time.Second, "1.1.0")},
			wantOrder: []int64{1, 2, 3}, wantStates: []ops.RollState{ops.RollDone, ops.RollDone, ops.RollDone}, wantEvent: "proxy server 2 (px-2): online at 1.1.0 after 40s"},
		{name: "skips offline and up to date",
			ps: []store.Proxy{online(1, "px-1", "1.1.0"), {ID: 2, Hostname: "px-2", Version: "1.0.0", Status: store.StatusOffline}, online(3, "px-3", "1.0.0"),
				online(4, "px-4", "1.2.0")},
			relay:     map[int64]func(*store.Proxy, time.Duration){3: healthyAfter(5*time.Second, "1.1.0")},
			wantOrder: []int64{3}, wantStates: []ops.RollState{ops.RollSkipped, ops.RollSkipped, ops.RollDone, ops.RollSkipped}},
		{name: "a rollback stops the run",
			ps:        []store.Proxy{online(1, "px-1", "1.0.0"), online(2, "px-2", "1.0.0"), online(3, "px-3", "1.0.0")},
			relay:     map[int64]func(*store.Proxy, time.Duration){1: healthyAfter(time.Second, "1.1.0"), 2: rolledBackAfter(90*time.Second, "no healthy heartbeat within 2m0s")},
			wantOrder: []int64{1, 2}, wantStates: []ops.RollState{ops.RollDone, ops.RollFailed, ops.RollPending},
			wantErr: "proxy server 2 (px-2): upgrade to 1.1.0 rolled back: no healthy heartbeat within 2m0s (command 2); stopped there: 1 of 3 upgraded before it"},
		{name: "done but never online at the new version times out",
			ps: []store.Proxy{online(1, "px-1", "1.0.0"), online(2, "px-2", "1.0.0")},
			relay: map[int64]func(*store.Proxy, time.Duration){1: func(p *store.Proxy, since time.Duration) {
				p.Commands[0].State = wire.StateDone // staged, but the old binary still runs
			}},
			wantOrder: []int64{1}, wantStates: []ops.RollState{ops.RollFailed, ops.RollPending},
			wantErr: "proxy server 1 (px-1): not online at 1.1.0 within 5m0s (command 1 done; the proxy is online at 1.0.0)"},
		{name: "a relay that never answers times out",
			ps:        []store.Proxy{online(1, "px-1", "1.0.0")},
			wantOrder: []int64{1}, wantStates: []ops.RollState{ops.RollFailed}, wantWarning: true,
			wantErr: "not online at 1.1.0 within 5m0s (command 1 queued; the proxy is online at 1.0.0)"},
		{name: "a refusal stops the run",
			ps:        []store.Proxy{online(1, "px-1", "1.0.0"), online(2, "px-2", "1.0.0")},
			refuse:    map[int64]error{1: store.Errorf(store.EConflict, "proxy server 1 (px-1) is offline: bring it online before upgrading")},
			wantOrder: nil, wantStates: []ops.RollState{ops.RollFailed, ops.RollPending}, wantErr: "is offline: bring it online before upgrading; stopped there: 0 of 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ck := &clock{now: t0}
			f := &fakeProxies{ck: ck, latest: "1.1.0", ps: tt.ps, relay: tt.relay, queued: map[int64]time.Time{}, refuse: tt.refuse}
			r, err := ops.NewRollingUpgrade(context.Background(), f, store.Cluster{ID: 1, Name: "edge"}, false, 0, ck)
			if err != nil {
				t.Fatal(err)
			}
			pr, events := drive(t, r, ck)
			if !slices.Equal(f.order, tt.wantOrder) {
				t.Errorf("upgrade order: got %v, want %v", f.order, tt.wantOrder)
			}
			var states []ops.RollState
			for _, p := range pr.Proxies {
				states = append(states, p.State)
			}
			if !slices.Equal(states, tt.wantStates) {
				t.Errorf("states: got %v, want %v", states, tt.wantStates)
			}
			switch {
			case tt.wantErr == "" && pr.Err != nil:
				t.Errorf("got %v, want success", pr.Err)
			case tt.wantErr != "" && (pr.Err == nil || !strings.Contains(pr.Err.Error(), tt.wantErr)):
				t.Errorf("got error %v, want %q", pr.Err, tt.wantErr)
			}
			if (pr.Warning != "") != tt.wantWarning {
				t.Errorf("warning: got %q, want one: %v", pr.Warning, tt.wantWarning)
			}
			if tt.wantEvent != "" && !strings.Contains(strings.Join(events, "\n"), tt.wantEvent) {
				t.Errorf("events: got\n%s\nwant one with %q", strings.Join(events, "\n"), tt.wantEvent)
			}
		})
	}
}

// TestRollingUpgradeWaitsForEach: the next proxy is not queued while the
// one before is restarting or online at its old version.
func TestRollingUpgradeWaitsForEach(t *testing.T) {
	ck := &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	f := &fakeProxies{ck: ck, latest: "1.1.0", ps: []store.Proxy{online(1, "px-1", "1.0.0"), online(2, "px-2", "1.0.0")},
		relay: map[int64]func(*store.Proxy, time.Duration){1: healthyAfter(time.Minute, "1.1.0"), 2: healthyAfter(time.Second, "1.1.0")}, queued: map[int64]time.Time{}}
	r, err := ops.NewRollingUpgrade(context.Background(), f, store.Cluster{ID: 1, Name: "edge"}, false, 0, ck)
	if err != nil {
		t.Fatal(err)
	}
	for ck.Now().Before(time.Date(2026, 1, 1, 0, 0, 59, 0, time.UTC)) {
		pr := r.Step(context.Background())
		if len(f.order) > 1 {
			t.Fatalf("proxy 2 queued at %s while proxy 1 is %s", ck.Now().Format(time.TimeOnly), pr.Proxies[0].State)
		}
		ck.Advance(max(pr.Wait, time.Millisecond))
	}
	if pr, _ := drive(t, r, ck); pr.Err != nil || len(f.order) != 2 {
		t.Errorf("got %v, order %v, want both upgraded", pr.Err, f.order)
	}
}

func TestRollingUpgradeRefusedUpFront(t *testing.T) {
	ck := &clock{}
	for _, tt := range []struct {
		name   string
		latest string
		ps     []store.Proxy
		want   string
	}{
		{"no release", "", []store.Proxy{online(1, "px-1", "1.0.0")}, "no release is published"},
		{"no proxy", "1.1.0", nil, `cluster "edge" has no proxy server to upgrade`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeProxies{ck: ck, latest: tt.latest, ps: tt.ps, queued: map[int64]time.Time{}}
			_, err := ops.NewRollingUpgrade(context.Background(), f, store.Cluster{ID: 1, Name: "edge"}, false, 0, ck)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want %q", err, tt.want)
			}
		})
	}
}
