package main

import (
	"strings"
	"testing"

	"outpost/agentsim/doctor"
	"outpost/relay/wire"
	"outpost/store"
)

// dtExpect checks a verdict and that the fix holds every wanted fragment;
// ok and skip carry no fix.
func dtExpect(t *testing.T, c doctor.Check, verdict doctor.Verdict, fix ...string) {
	t.Helper()
	if c.Verdict != verdict {
		t.Fatalf("%s %s: got verdict %s, want %s (detail %q, fix %q)", c.Name, c.Target, c.Verdict, verdict, c.Detail, c.Fix)
	}
	if c.Detail == "" {
		t.Errorf("%s: empty detail", c.Name)
	}
	if (verdict == doctor.VerdictOK || verdict == doctor.VerdictSkip) != (c.Fix == "") {
		t.Errorf("%s: verdict %s with fix %q", c.Name, verdict, c.Fix)
	}
	for _, f := range fix {
		if !strings.Contains(c.Fix, f) {
			t.Errorf("%s: fix %q lacks %q", c.Name, c.Fix, f)
		}
	}
}

// TestDoctorLinkLimits feeds the store's clusters, read as cmd reads them,
// to the doctor's link-limits check: the warnings are store.Warnings, the
// fixes name the command for the cluster.
func TestDoctorLinkLimits(t *testing.T) {
	const mbit = 1_000_000
	cl := func(name string, p store.Policy, agents, online int) store.Cluster {
		return store.Cluster{ID: int64(len(name)), Name: name, Account: "acme", Policy: p, Agents: agents, Proxies: online, ProxiesOnline: online,
			Warnings: store.Warnings(p, agents, online, online)}
	}
	tests := []struct {
		name    string
		c       store.Cluster
		verdict doctor.Verdict
		fix     []string
	}{
		{"within 60 %", cl("gz", store.Policy{Mode: wire.ModeForward, BandwidthBps: 2 * mbit / 8, LinkBps: 100 * mbit}, 10, 1), doctor.VerdictOK, nil},
		{"80 of 100 Mbit", cl("gz", store.Policy{Mode: wire.ModeForward, BandwidthBps: 80 * mbit / 8, LinkBps: 100 * mbit}, 10, 1),
			doctor.VerdictWarn, []string{"lower the bandwidth limit", "outpost cluster policy gz --bandwidth 60Mbit"}},
		{"unlimited on a known link", cl("gz", store.Policy{Mode: wire.ModeForward, LinkBps: 10 * mbit}, 0, 1),
			doctor.VerdictWarn, []string{"--bandwidth 6Mbit"}},
		{"hosts need more than the limit", cl("gz", store.Policy{Mode: wire.ModeForward, BandwidthBps: 100_000 / 8, LinkBps: 100 * mbit}, 50, 1),
			doctor.VerdictWarn, []string{"raise the bandwidth limit to at least 500 Kbit/s", "--bandwidth 500Kbit"}},
		{"more hosts than proxies carry", cl("gz", store.Policy{Mode: wire.ModeCache}, 7000, 1),
			doctor.VerdictWarn, []string{"outpost proxy deploy --cluster gz"}},
		{"link unknown", cl("gz", store.Policy{Mode: wire.ModeForward}, 10, 1), doctor.VerdictSkip, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := doctorCluster(tt.c)
			dtExpect(t, doctor.CheckClusterLimits(c, []doctor.Cluster{c}), tt.verdict, tt.fix...)
		})
	}
	// A cluster name used by two accounts is qualified in the fix.
	a := cl("gz", store.Policy{Mode: wire.ModeForward, BandwidthBps: 80 * mbit / 8, LinkBps: 100 * mbit}, 0, 1)
	b := a
	b.ID, b.Account = 99, "other"
	dtExpect(t, doctor.CheckClusterLimits(doctorCluster(a), []doctor.Cluster{doctorCluster(a), doctorCluster(b)}), doctor.VerdictWarn, "policy gz --account acme --bandwidth")
}

// TestDoctorRun runs every check together: a healthy relay reached by name

// TestDoctorCacheDefaults: a cluster without a cache directory or cap is
// handed to the doctor with the store's defaults.
func TestDoctorCacheDefaults(t *testing.T) {
	c := doctorCache("edge", "", 0)
	if c.Dir != store.DefaultCacheDir || c.Max != store.MaxCacheBytes {
		t.Errorf("doctorCache defaults: got %+v, want dir %q and max %d", c, store.DefaultCacheDir, int64(store.MaxCacheBytes))
	}
}
