package store_test

import (
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"outpost/store"
)

func TestDuplicateIdentity(t *testing.T) {
	f := newFixture(t)
	a, key := f.account("acme")
	e, err := f.db.Enrol(f.ctx, store.EnrolInput{Key: key, Host: store.HostFacts{Hostname: "orig", IPs: []string{"10.0.0.1"},
		Fingerprint: "fp-orig", OS: "linux", OSName: "Ubuntu 22.04", Arch: "amd64", Version: "3.0.0"}})
	if err != nil {
		t.Fatal(err)
	}
	id := e.Agent.ID

	t.Run("same fingerprint", func(t *testing.T) {
		f.clock.Advance(time.Minute)
		err := f.db.RecordCheckins(f.ctx, []store.Checkin{{AgentID: id, Fingerprint: "fp-orig",
			Host: &store.HostFacts{Hostname: "orig", IPs: []string{"10.0.0.1", "10.0.0.2"}, OSName: "Ubuntu 24.04", Arch: "amd64", Version: "3.1.0"}}})
		if err != nil {
			t.Fatal(err)
		}
		got := f.agent(id)
		if got.Duplicate || got.DuplicateFix != "" {
			t.Errorf("got duplicate %v %q, want not flagged", got.Duplicate, got.DuplicateFix)
		}
		if got.OSName != "Ubuntu 24.04" || got.Version != "3.1.0" || !slices.Equal(got.IPs, []string{"10.0.0.1", "10.0.0.2"}) {
			t.Errorf("got %q %q %v, want the enrolled machine's new facts", got.OSName, got.Version, got.IPs)
		}
		if !got.LastCheckin.Equal(f.clock.Now()) {
			t.Errorf("LastCheckin: got %v, want %v", got.LastCheckin, f.clock.Now())
		}
	})
	t.Run("other fingerprint", func(t *testing.T) {
		err := f.db.RecordCheckins(f.ctx, []store.Checkin{{AgentID: id, Fingerprint: "fp-clone",
			Host: &store.HostFacts{Hostname: "clone", IPs: []string{"10.9.9.9"}, OSName: "CentOS 7", Arch: "arm64", Version: "2.0.0"}}})
		if err != nil {
			t.Fatal(err)
		}
		got := f.agent(id)
		if !got.Duplicate || got.DuplicateFix != store.DuplicateFix {
			t.Errorf("got duplicate %v %q, want flagged with the fix", got.Duplicate, got.DuplicateFix)
		}
		if got.Hostname != "orig" || got.OSName != "Ubuntu 24.04" || got.Arch != "amd64" || got.Version != "3.1.0" ||
			!slices.Equal(got.IPs, []string{"10.0.0.1", "10.0.0.2"}) || got.Fingerprint != "fp-orig" {
			t.Errorf("got %q %q %q %q %v %q, want the original's facts kept", got.Hostname, got.OSName, got.Arch, got.Version, got.IPs, got.Fingerprint)
		}
		auth, err := f.db.LookupAgentAuth(f.ctx, id)
		if err != nil || !auth.Duplicate {
			t.Errorf("LookupAgentAuth: got duplicate %v %v, want true", auth.Duplicate, err)
		}
	})
	t.Run("flag is sticky", func(t *testing.T) {
		if err := f.db.RecordCheckins(f.ctx, []store.Checkin{{AgentID: id, Fingerprint: "fp-orig"}}); err != nil {
			t.Fatal(err)
		}
		if got := f.agent(id); !got.Duplicate {
			t.Errorf("got duplicate false, want still flagged")
		}
		counts, err := f.db.CountAgents(f.ctx, a.ID)
		if err != nil || counts.Duplicates != 1 {
			t.Errorf("CountAgents: got %+v %v, want 1 duplicate", counts, err)
		}
	})
}

func TestRecordCheckins(t *testing.T) {
	f := newFixture(t)
	a, key := f.account("acme")
	c := f.cluster(a.ID, "edge", "relay.acme.example")
	p := f.proxy(c.ID, "relay-1", "1.0.0")
	ag := f.enrol(key, "web-01")
	f.clock.Advance(time.Hour)
	later := f.clock.Now()
	inv := store.Inventory{Processes: 120, Ports: 8, RootAccounts: 1, Accounts: 12, Vulns: 2, Alerts: 1}
	if err := f.db.RecordCheckins(f.ctx, []store.Checkin{{AgentID: ag.ID, Fingerprint: ag.Fingerprint, ViaProxyID: p.ID, Inventory: &inv, CPU: 12.5, Mem: 40}}); err != nil {
		t.Fatal(err)
	}
	got := f.agent(ag.ID)
	if got.Inventory != inv || !got.LastInventory.Equal(later) || got.ViaProxyID != p.ID || got.CPU != 12.5 || got.RiskStatus != "At risk" {
		t.Errorf("got %+v via %d cpu %v risk %q, want the reported inventory through proxy %d", got.Inventory, got.ViaProxyID, got.CPU, got.RiskStatus, p.ID)
	}
	t.Run("an older check-in does not move time back", func(t *testing.T) {
		if err := f.db.RecordCheckins(f.ctx, []store.Checkin{{AgentID: ag.ID, At: t0, Fingerprint: ag.Fingerprint}}); err != nil {
			t.Fatal(err)
		}
		if got := f.agent(ag.ID).LastCheckin; !got.Equal(later) {
			t.Errorf("got %v, want %v", got, later)
		}
	})
	t.Run("unknown proxy is not recorded", func(t *testing.T) {
		if err := f.db.RecordCheckins(f.ctx, []store.Checkin{{AgentID: ag.ID, Fingerprint: ag.Fingerprint, ViaProxyID: 999}}); err != nil {
			t.Fatal(err)
		}
		if got := f.agent(ag.ID).ViaProxyID; got != 0 {
			t.Errorf("got via %d, want 0", got)
		}
	})
	t.Run("unknown agent is ignored", func(t *testing.T) {
		if err := f.db.RecordCheckins(f.ctx, []store.Checkin{{AgentID: "ag_nope"}}); err != nil {
			t.Errorf("got %v, want nil", err)
		}
	})
}

// seedCheckinAgents writes n agents that have never checked in.
func seedCheckinAgents(f *fixture, n int) []string {
	a, _ := f.account("acme")
	return f.seedAgents(a.ID, 0, "h", n, time.Time{})
}

func TestBatcherConcurrentAdds(t *testing.T) {
	t.Parallel() // slow under -race: let the quick tests run alongside
	f := newFixture(t)
	const n, workers = 5000, 50
	ids := seedCheckinAgents(f, n)
	b := store.NewBatcher(f.db, 20*time.Millisecond, 1000, slog.New(slog.NewTextHandler(t.Output(), nil)))
	defer b.Close()
	at := f.clock.Now()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				// Each agent twice; the later one wins within a batch.
				b.Add(store.Checkin{AgentID: ids[i], At: at.Add(-time.Second), Fingerprint: "fp-" + ids[i]})
				b.Add(store.Checkin{AgentID: ids[i], At: at, Fingerprint: "fp-" + ids[i], CPU: float64(i % 100)})
			}
		}()
	}
	wg.Wait()
	if err := b.Flush(); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	var landed int
	if err := f.raw().QueryRow(`SELECT COUNT(*) FROM agents WHERE last_checkin = ?`, at.UnixMilli()).Scan(&landed); err != nil {
		t.Fatal(err)
	}
	if landed != n {
		t.Errorf("got %d check-ins written, want %d", landed, n)
	}
	counts, err := f.db.CountAgents(f.ctx, 0)
	if err != nil || counts.Online != n {
		t.Errorf("CountAgents: got %+v %v, want %d online", counts, err, n)
	}
	if got := f.agent(ids[4242]).CPU; got != 42 {
		t.Errorf("CPU: got %v, want 42", got)
	}
}

func TestBatcherCloseFlushes(t *testing.T) {
	f := newFixture(t)
	const n = 300
	ids := seedCheckinAgents(f, n)
	// Neither the timer nor the size trigger fires: only Close writes.
	b := store.NewBatcher(f.db, time.Hour, 1_000_000, slog.New(slog.NewTextHandler(t.Output(), nil)))
	for _, id := range ids {
		b.Add(store.Checkin{AgentID: id, Fingerprint: "fp-" + id})
	}
	written := func() int {
		var c int
		if err := f.raw().QueryRow(`SELECT COUNT(*) FROM agents WHERE last_checkin > 0`).Scan(&c); err != nil {
			t.Fatal(err)
		}
		return c
	}
	if got := written(); got != 0 {
		t.Errorf("before Close: got %d written, want 0", got)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if got := written(); got != n {
		t.Errorf("after Close: got %d written, want %d", got, n)
	}
}

func TestBatcherKeepsInventory(t *testing.T) {
	f := newFixture(t)
	ids := seedCheckinAgents(f, 1)
	b := store.NewBatcher(f.db, time.Hour, 100, nil)
	defer b.Close()
	inv := store.Inventory{Processes: 7, Vulns: 1}
	b.Add(store.Checkin{AgentID: ids[0], Fingerprint: "fp-" + ids[0], Inventory: &inv})
	b.Add(store.Checkin{AgentID: ids[0], Fingerprint: "fp-" + ids[0]}) // a plain check-in right after
	if err := b.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := f.agent(ids[0]).Inventory; got != inv {
		t.Errorf("got %+v, want %+v", got, inv)
	}
	// Flush with nothing pending returns.
	if err := b.Flush(); err != nil {
		t.Errorf("empty Flush: got %v, want nil", err)
	}
}

func TestBatcherManyFlushes(t *testing.T) {
	f := newFixture(t)
	ids := seedCheckinAgents(f, 200)
	b := store.NewBatcher(f.db, time.Millisecond, 7, nil)
	defer b.Close()
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(ids); i += 4 {
				b.Add(store.Checkin{AgentID: ids[i], Fingerprint: "fp-" + ids[i]})
				if i%10 == 0 {
					if err := b.Flush(); err != nil {
						t.Errorf("Flush: %v", err)
					}
				}
			}
		}()
	}
	wg.Wait()
	if err := b.Flush(); err != nil {
		t.Fatal(err)
	}
	page, err := f.db.ListAgents(f.ctx, store.AgentFilter{Status: store.StatusOnline})
	if err != nil || page.Total != len(ids) {
		t.Errorf("got %d online %v, want %d", page.Total, err, len(ids))
	}
}
