package store_test

import (
	"encoding/json"
	"strings"
	"testing"

	"outpost/relay/wire"
	"outpost/store"
)

// TestWarningFields: each warning carries its kind and numbers, a fix that
// names the cluster, and keeps its sentence in JSON.
func TestWarningFields(t *testing.T) {
	const mbit = 1000 * 1000 / 8 // bytes/s in one Mbit/s
	tests := []struct {
		name        string
		p           store.Policy
		agents      int
		proxies     int
		online      int
		kind        store.WarningKind
		need, limit int64
		fix         string
	}{
		{"unlimited", store.Policy{Mode: wire.ModeForward, LinkBps: 10_000_000}, 0, 1, 1,
			store.WarnBandwidthUnlimited, 0, 6_000_000, "`outpost cluster policy gz --bandwidth 6Mbit`"},
		{"over the link", store.Policy{Mode: wire.ModeForward, BandwidthBps: 80 * mbit, LinkBps: 100_000_000}, 0, 1, 1,
			store.WarnBandwidthOverLink, 80_000_000, 60_000_000, "--bandwidth 60Mbit"},
		{"reserve over the link", store.Policy{Mode: wire.ModeCache, LinkBps: 10_000_000}, 650, 1, 1,
			store.WarnReserveOverLink, 6_500_000, 6_000_000, "faster link"},
		{"reserve over the limit", store.Policy{Mode: wire.ModeForward, BandwidthBps: 100_000}, 100, 1, 1,
			store.WarnReserveOverLimit, 1_000_000, 800_000, "raise the bandwidth limit to at least 1 Mbit/s: `outpost cluster policy gz --bandwidth 1Mbit`"},
		{"no proxy", store.Policy{Mode: wire.ModeForward}, 3, 0, 0, store.WarnNoProxy, 3, 0, "outpost proxy deploy --cluster gz"},
		{"proxy down", store.Policy{Mode: wire.ModeForward}, 3, 2, 0, store.WarnProxyDown, 3, 0, "add or start proxy servers"},
		{"capacity", store.Policy{Mode: wire.ModeForward}, 6001, 1, 1, store.WarnProxyCapacity, 6001, 6000, "6,000 hosts each"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ws := store.Warnings(tt.p, tt.agents, tt.proxies, tt.online)
			if len(ws) != 1 {
				t.Fatalf("got %d warnings %v, want 1", len(ws), ws)
			}
			w := ws[0]
			if w.Kind != tt.kind || w.Need != tt.need || w.Limit != tt.limit {
				t.Errorf("got kind %s need %d limit %d, want %s %d %d", w.Kind, w.Need, w.Limit, tt.kind, tt.need, tt.limit)
			}
			if got := w.Fix("gz"); !strings.Contains(got, tt.fix) {
				t.Errorf("fix: got %q, want it to contain %q", got, tt.fix)
			}
			b, err := json.Marshal(w)
			if err != nil {
				t.Fatal(err)
			}
			var s string
			if err := json.Unmarshal(b, &s); err != nil || s != w.Text() || w.String() != s {
				t.Errorf("JSON: got %s, want the sentence %q", b, w.Text())
			}
		})
	}
}
