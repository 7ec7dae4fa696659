package store_test

import (
	"strings"
	"testing"
	"time"

	"outpost/relay/wire"
	"outpost/store"
)

// --- status timing (rule 2) ---

func TestAgentOfflineAfterDefault(t *testing.T) {
	f := newFixture(t)
	a, key := f.account("acme")
	c := f.cluster(a.ID, "edge", "relay.acme.example")
	ag := f.enrol(key, "web-01")
	if _, err := f.db.Bind(f.ctx, c.ID, []string{"web-01"}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		advance  time.Duration // from the previous step
		online   bool
		security store.Security
	}{
		{"just enrolled", 0, true, store.Protected},
		{"11h59m", 11*time.Hour + 59*time.Minute, true, store.Protected},
		{"12h", time.Minute, false, store.Unprotected},
		{"13h", time.Hour, false, store.Unprotected},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.clock.Advance(tt.advance)
			got := f.agent(ag.ID)
			if got.Online != tt.online || got.SecurityStatus != tt.security {
				t.Errorf("GetAgent: got online=%v %s, want online=%v %s", got.Online, got.SecurityStatus, tt.online, tt.security)
			}
			wantN := 0
			if tt.online {
				wantN = 1
			}
			// Every view agrees at the boundary.
			if c := f.getCluster(c.ID); c.AgentsOnline != wantN {
				t.Errorf("cluster AgentsOnline: got %d, want %d", c.AgentsOnline, wantN)
			}
			counts, err := f.db.CountAgents(f.ctx, a.ID)
			if err != nil {
				t.Fatal(err)
			}
			if counts.Online != wantN {
				t.Errorf("CountAgents.Online: got %d, want %d", counts.Online, wantN)
			}
			page, err := f.db.ListAgents(f.ctx, store.AgentFilter{Status: store.StatusOnline})
			if err != nil {
				t.Fatal(err)
			}
			if page.Total != wantN {
				t.Errorf("ListAgents online: got %d, want %d", page.Total, wantN)
			}
		})
	}
	t.Run("check-in brings it back", func(t *testing.T) {
		if err := f.db.RecordCheckins(f.ctx, []store.Checkin{{AgentID: ag.ID, Fingerprint: ag.Fingerprint}}); err != nil {
			t.Fatal(err)
		}
		if got := f.agent(ag.ID); !got.Online || got.SecurityStatus != store.Protected {
			t.Errorf("got online=%v %s, want online=true Protected", got.Online, got.SecurityStatus)
		}
	})
}

func TestAgentOfflineAfterSetting(t *testing.T) {
	f := newFixture(t)
	_, key := f.account("acme")
	s := store.DefaultSettings()
	s.OfflineAfter, s.InventoryInterval = 30*time.Second, 10*time.Second
	if err := f.db.SetSettings(f.ctx, s); err != nil {
		t.Fatalf("SetSettings: %v", err)
	}
	ag := f.enrol(key, "web-01")
	f.clock.Advance(29 * time.Second)
	if got := f.agent(ag.ID); !got.Online {
		t.Errorf("at 29s: got offline, want online")
	}
	f.clock.Advance(time.Second)
	if got := f.agent(ag.ID); got.Online || got.SecurityStatus != store.Unprotected {
		t.Errorf("at 30s: got online=%v %s, want offline Unprotected", got.Online, got.SecurityStatus)
	}

	// The setting survives a restart.
	f.db.Close()
	db, err := store.Open(f.db.Path, f.clock)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if got := db.Settings(); got != s {
		t.Errorf("after reopen: got %+v, want %+v", got, s)
	}
}

func TestSetSettingsRefusesBadValues(t *testing.T) {
	f := newFixture(t)
	if got := f.db.Settings(); got != store.DefaultSettings() {
		t.Errorf("fresh database: got %+v, want defaults", got)
	}
	if got := f.db.Settings().InventoryInterval; got != 5*time.Hour {
		t.Errorf("InventoryInterval: got %v, want 5h", got)
	}
	bad := store.DefaultSettings()
	bad.OfflineAfter = 0
	before := f.dump()
	err := f.db.SetSettings(f.ctx, bad)
	if wantCode(t, err, store.EInvalid) && !strings.Contains(err.Error(), "offline_after") {
		t.Errorf("got %q, want it to name offline_after", err)
	}
	f.unchanged(before)
	if got := f.db.Settings(); got != store.DefaultSettings() {
		t.Errorf("after refusal: got %+v, want defaults", got)
	}
}

// --- binding (rule 4) ---

// --- install commands (rule 5) ---

// --- uninstall (rule 10) ---

// An uninstalled agent is never shown online or Protected: at once when it
// acknowledged the command, after the grace when it was not heard of since
// the request. Counts and filters agree with the agent's own status.
func TestUninstalledStatus(t *testing.T) {
	grace := store.DefaultSettings().UninstallGrace
	tests := []struct {
		name        string
		ack         bool          // the agent acknowledges the uninstall command
		fail        string        // or reports that it failed, with this reason
		advance     time.Duration // then the clock moves on
		checkinLate bool          // and the agent checks in again
		wantStatus  store.Status
		wantSec     store.Security
	}{
		{name: "acknowledged", ack: true, wantStatus: store.StatusUninstalled, wantSec: store.Unprotected},
		{name: "acknowledged, an hour later", ack: true, advance: time.Hour, wantStatus: store.StatusUninstalled, wantSec: store.Unprotected},
		{name: "pending within the grace", advance: grace - time.Minute, wantStatus: store.StatusOnline, wantSec: store.Protected},
		{name: "not heard of since, grace passed", advance: grace, wantStatus: store.StatusUninstalled, wantSec: store.Unprotected},
		{name: "still checking in after the grace", advance: grace, checkinLate: true, wantStatus: store.StatusOnline, wantSec: store.Protected},
		{name: "failed: the agent still runs", fail: "permission denied", wantStatus: store.StatusOnline, wantSec: store.Protected},
		{name: "failed, then silent past the grace", fail: "permission denied", advance: grace, wantStatus: store.StatusOnline, wantSec: store.Protected},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			a, key := f.account("acme")
			c := f.cluster(a.ID, "edge", "relay.acme.example")
			ag := f.enrol(key, "web-01")
			if _, err := f.db.Bind(f.ctx, c.ID, []string{ag.ID}); err != nil {
				t.Fatal(err)
			}
			if _, err := f.db.Uninstall(f.ctx, a.ID, []string{ag.ID}); err != nil {
				t.Fatal(err)
			}
			ackAt := f.clock.Now()
			if tt.ack {
				var ids []int64
				for _, cmd := range f.pending(store.TargetAgent, ag.ID) {
					ids = append(ids, cmd.ID)
				}
				f.clock.Advance(time.Second) // the ack arrives a moment later
				ackAt = f.clock.Now()
				if err := f.db.AckCommands(f.ctx, store.TargetAgent, ag.ID, ids); err != nil {
					t.Fatal(err)
				}
			}
			if tt.fail != "" {
				cmds := f.pending(store.TargetAgent, ag.ID)
				f.clock.Advance(time.Second)
				// The failure arrives with a check-in, as the relay records it.
				if err := f.db.RecordCheckins(f.ctx, []store.Checkin{{AgentID: ag.ID, Fingerprint: ag.Fingerprint}}); err != nil {
					t.Fatal(err)
				}
				if err := f.db.ReportCommands(f.ctx, store.TargetAgent, ag.ID, []store.CommandReport{
					{ID: cmds[len(cmds)-1].ID, State: wire.StateFailed, Error: tt.fail}}); err != nil {
					t.Fatal(err)
				}
			}
			f.clock.Advance(tt.advance)
			if tt.checkinLate {
				if err := f.db.RecordCheckins(f.ctx, []store.Checkin{{AgentID: ag.ID, Fingerprint: ag.Fingerprint}}); err != nil {
					t.Fatal(err)
				}
			}
			got := f.agent(ag.ID)
			online := tt.wantStatus == store.StatusOnline
			if got.Status != tt.wantStatus || got.SecurityStatus != tt.wantSec || got.Online != online || got.Uninstalled == online {
				t.Errorf("got status %s %s online=%v uninstalled=%v, want %s %s online=%v", got.Status, got.SecurityStatus, got.Online,
					got.Uninstalled, tt.wantStatus, tt.wantSec, online)
			}
			if got.Connected && !online {
				t.Errorf("got connected=true for a %s agent", got.Status)
			}
			if tt.ack && !got.UninstalledAt.Equal(ackAt) {
				t.Errorf("UninstalledAt: got %v, want %v", got.UninstalledAt, ackAt)
			}
			if want := "failed: " + tt.fail; tt.fail != "" && got.UninstallState != want {
				t.Errorf("UninstallState: got %q, want %q", got.UninstallState, want)
			}
			wantN := 0
			if online {
				wantN = 1
			}
			if cl := f.getCluster(c.ID); cl.AgentsOnline != wantN {
				t.Errorf("cluster AgentsOnline: got %d, want %d", cl.AgentsOnline, wantN)
			}
			if n, err := f.db.CountAgents(f.ctx, a.ID); err != nil || n.Online != wantN {
				t.Errorf("CountAgents.Online: got %d (%v), want %d", n.Online, err, wantN)
			}
			for _, st := range []store.Status{store.StatusOnline, store.StatusOffline, store.StatusUninstalled} {
				page, err := f.db.ListAgents(f.ctx, store.AgentFilter{AccountID: a.ID, Status: st})
				if err != nil {
					t.Fatal(err)
				}
				want := 0
				if st == tt.wantStatus || (st == store.StatusOffline && tt.wantStatus == store.StatusUninstalled) {
					want = 1
				}
				if page.Total != want {
					t.Errorf("ListAgents(status %s): got %d, want %d", st, page.Total, want)
				}
			}
		})
	}
}

// --- listing (rule 12) ---

func TestFindAgent(t *testing.T) {
	f, a, _, _ := listFixture(t)
	for _, tt := range []struct {
		host string
		want string
		code string
	}{
		{"db-01", "ag_3", ""},
		{"ag_3", "ag_3", ""},
		{"172.16.0.3", "ag_3", ""},
		{"10.9.0.1", "", store.EForbidden},
		{"nope", "", store.ENotFound},
		{"", "", store.EInvalid},
	} {
		t.Run(quoteName(tt.host), func(t *testing.T) {
			got, err := f.db.FindAgent(f.ctx, a.ID, tt.host)
			if tt.code != "" {
				wantCode(t, err, tt.code)
				return
			}
			if err != nil || got.ID != tt.want {
				t.Errorf("got %q %v, want %q", got.ID, err, tt.want)
			}
		})
	}
}
