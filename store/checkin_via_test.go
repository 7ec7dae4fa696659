package store_test

import (
	"testing"

	"outpost/store"
)

// TestRecordCheckinsVia: the proxy an agent last came through follows its
// check-ins (it is written only when it changes), is kept when a copy of
// the agent checks in, and is cleared for an unknown proxy or a direct
// check-in.
func TestRecordCheckinsVia(t *testing.T) {
	f := newFixture(t)
	a, key := f.account("acme")
	c := f.cluster(a.ID, "edge", "relay.acme.example")
	p1 := f.proxy(c.ID, "relay-1", "1.0.0")
	p2 := f.proxy(c.ID, "relay-2", "1.0.0")
	ag := f.enrol(key, "web-01")
	for _, tc := range []struct {
		name string
		fp   string
		via  int64
		want int64
	}{
		{"through relay-1", ag.Fingerprint, p1.ID, p1.ID},
		{"again through relay-1", ag.Fingerprint, p1.ID, p1.ID},
		{"moved to relay-2", ag.Fingerprint, p2.ID, p2.ID},
		{"a copy through relay-1 leaves it", "fp-copy", p1.ID, p2.ID},
		{"no fingerprint counts as the agent", "", p1.ID, p1.ID},
		{"direct", ag.Fingerprint, 0, 0},
		{"back through relay-2", ag.Fingerprint, p2.ID, p2.ID},
		{"an unknown proxy clears it", ag.Fingerprint, 999, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := f.db.RecordCheckins(f.ctx, []store.Checkin{{AgentID: ag.ID, Fingerprint: tc.fp, ViaProxyID: tc.via}}); err != nil {
				t.Fatal(err)
			}
			if got := f.agent(ag.ID).ViaProxyID; got != tc.want {
				t.Errorf("via: got %d, want %d", got, tc.want)
			}
		})
	}
}
