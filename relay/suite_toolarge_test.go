package relay_test

import (
	"context"
	"errors"
	"net/http"
	"path/filepath"
	"slices"
	"testing"

	"outpost/agentsim"
	"outpost/relay/wire"
	"outpost/store"
)

// A record larger than a cache segment is refused with 413 (the agent
// keeps it) instead of being stored: stored, it took the ring past its cap
// and evicted every older record.
func TestOversizedRecordRefused(t *testing.T) {
	t.Parallel()
	const capBytes = 128 << 10 // segments of 6553 bytes
	ctx := context.Background()
	m := startManager(t)
	f, cl := clusterFleet(t, m, "acme", "dc1", "relay.dc1.example")
	cacheDir := filepath.Join(t.TempDir(), "siem")
	if _, err := m.DB.SetPolicy(ctx, cl.ID, store.Policy{Mode: wire.ModeCache, CacheDir: cacheDir, CacheMax: capBytes}); err != nil {
		t.Fatal(err)
	}
	_, url, err := joinRelay(t, m, cl.ID)
	if err != nil {
		t.Fatalf("join: %v", err)
	}
	c := agentClient(t, m, url)
	en := enrolLinux(t, c, f.Key, 1)
	s := &sender{C: c, Agent: en.AgentID, Batch: 20, Pad: 150}
	for s.Acked() < 100 {
		if err := s.step(ctx); err != nil {
			t.Fatalf("events: %v", err)
		}
	}
	before := dirSize(cacheDir, "export.log")

	tests := []struct {
		name string
		pad  int
	}{
		{"larger than a segment", 8 << 10},
		{"larger than the cap", 200 << 10},
	}
	for _, tc := range tests {
		_, err := c.SendEvents(ctx, paddedRecords(101, 101, tc.pad))
		var se *agentsim.StatusError
		if !errors.As(err, &se) || se.Status != http.StatusRequestEntityTooLarge || se.Code != "too_large" {
			t.Fatalf("%s: got %v, want 413 too_large", tc.name, err)
		}
		t.Logf("%s: %v", tc.name, err)
	}
	if got := dirSize(cacheDir, "export.log"); got != before {
		t.Errorf("cache size after the refusals: got %d, want %d (unchanged)", got, before)
	}
	// Records that fit are still taken, and nothing older was evicted.
	if acked, err := c.SendEvents(ctx, paddedRecords(101, 101, 150)); err != nil || !slices.Equal(acked, []uint64{101}) {
		t.Fatalf("normal record after the refusals: acked %v, %v", acked, err)
	}
	recs, bad := readRecords(t, cacheDir, "export.log")
	var seqs []uint64
	for _, r := range recs {
		seqs = append(seqs, r.Seq)
	}
	slices.Sort(seqs)
	if bad != 0 || len(seqs) != 101 || seqs[0] != 1 || seqs[100] != 101 {
		t.Errorf("cache holds %d records (%d bad), want seqs 1..101: %v", len(seqs), bad, seqs)
	}
	if got := dirSize(cacheDir, "export.log"); got > capBytes {
		t.Errorf("cache holds %d bytes, want at most the cap %d", got, capBytes)
	}
}
