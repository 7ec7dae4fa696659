package store_test

import (
	"strings"
	"testing"
)

// TestFlagDuplicate: a copy found by the relay raises the flag once (one
// audit entry naming why) and changes nothing else about the agent.
func TestFlagDuplicate(t *testing.T) {
	for _, tc := range []struct {
		name, fingerprint, why string
	}{
		{"same fingerprint, two live connections", "fp-vm", "two live connections with the same fingerprint"},
		{"another fingerprint", "fp-copy", "a copy with another fingerprint"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			_, key := f.account("acme")
			a := f.enrol(key, "vm")
			before := len(f.audits())
			for i := 0; i < 2; i++ {
				if err := f.db.FlagDuplicate(f.ctx, a.ID, tc.fingerprint, "127.0.0.1:5000 direct"); err != nil {
					t.Fatal(err)
				}
			}
			got := f.agent(a.ID)
			if !got.Duplicate || got.DuplicateFix == "" {
				t.Errorf("duplicate: got %v (fix %q), want flagged with the fix", got.Duplicate, got.DuplicateFix)
			}
			if got.Fingerprint != a.Fingerprint || !got.LastCheckin.Equal(a.LastCheckin) {
				t.Errorf("agent changed: got fingerprint %q last check-in %v, want %q %v", got.Fingerprint, got.LastCheckin, a.Fingerprint, a.LastCheckin)
			}
			es := f.audits()
			if n := len(es) - before; n != 1 {
				t.Fatalf("audit entries: got %d new, want 1", n)
			}
			if e := es[0]; e.Action != "agent.duplicate" || e.Target != "agent/"+a.ID || e.Actor != "system" || !strings.Contains(e.Detail, tc.why) {
				t.Errorf("audit: got %+v, want agent.duplicate on agent/%s by system saying %q", e, a.ID, tc.why)
			}
		})
	}
}
