package store_test

import (
	"strings"
	"testing"
	"time"

	"outpost/store"
)

// TestDiagnoseAgent checks the server-side reasons an agent is offline,
// each derived from what the store knows.
func TestDiagnoseAgent(t *testing.T) {
	f := newFixture(t)
	acct, _ := f.account("acme")
	gz := f.cluster(acct.ID, "gz", "gz.example.com")
	empty := f.cluster(acct.ID, "empty", "empty.example.com")
	ic := f.installCmd(store.InstallInput{AccountID: acct.ID, ClusterID: gz.ID, OS: "linux"})
	icEmpty := f.installCmd(store.InstallInput{AccountID: acct.ID, ClusterID: empty.ID, OS: "linux"})
	p := f.proxy(gz.ID, "edge-1", "1.0.0")

	online := f.enrol(ic.Key, "web-online")
	stale := f.enrol(ic.Key, "web-stale")
	lonely := f.enrol(icEmpty.Key, "web-lonely")
	gone := f.enrol(ic.Key, "web-gone")
	if _, err := f.db.Uninstall(f.ctx, 0, []string{gone.ID}); err != nil {
		t.Fatalf("Uninstall: %v", err)
	}
	if err := f.db.RevokeInstallCommand(f.ctx, acct.ID, ic.ID); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	s := f.db.Settings()
	// 13 h pass: everything is offline (and the proxy too); the online one
	// checks in again just now.
	f.clock.Advance(s.OfflineAfter + time.Hour)
	if err := f.db.RecordCheckins(f.ctx, []store.Checkin{{AgentID: online.ID, ViaProxyID: p.ID, Fingerprint: online.Fingerprint}}); err != nil {
		t.Fatalf("Checkin: %v", err)
	}

	tests := []struct {
		name     string
		id       string
		want     []string // substrings of the reasons
		wantNext string
	}{
		{"online and connected", online.ID, nil, ""},
		{"stale", stale.ID, []string{"no check-in for 13h0m0s, longer than offline_after (12h0m0s)", "its cluster gz has no proxy server online (1 deployed, all offline)",
			"its install command " + itoa(ic.ID) + " is revoked"}, "outpost doctor"},
		{"cluster without proxy", lonely.ID, []string{"its cluster empty has no proxy server: deploy one"}, "outpost doctor"},
		{"uninstalled", gone.ID, []string{"uninstalled: requested"}, "install the agent again"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := f.db.DiagnoseAgent(f.ctx, tt.id)
			if err != nil {
				t.Fatalf("DiagnoseAgent: %v", err)
			}
			got := strings.Join(d.Reasons, "\n")
			if tt.want == nil && got != "" {
				t.Errorf("reasons = %q, want none", got)
			}
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("reasons = %q, want %q", got, w)
				}
			}
			if !strings.Contains(d.Next, tt.wantNext) {
				t.Errorf("next = %q, want %q", d.Next, tt.wantNext)
			}
		})
	}
}

// TestOfflineReasonsDuplicate: a cloned identity says so with its fix.
func TestOfflineReasonsDuplicate(t *testing.T) {
	now := t0
	a := store.Agent{ID: "ag_1", Hostname: "web", Duplicate: true, LastCheckin: now.Add(-13 * time.Hour)}
	reasons, next := store.OfflineReasons(a, store.DiagnoseFacts{Settings: store.DefaultSettings(), Now: now})
	if got := strings.Join(reasons, "\n"); !strings.Contains(got, "duplicate identity") || !strings.Contains(got, store.DuplicateFix) {
		t.Errorf("reasons = %q, want the duplicate identity with its fix", got)
	}
	if !strings.Contains(next, store.DuplicateFix) {
		t.Errorf("next = %q, want the fix", next)
	}
}
