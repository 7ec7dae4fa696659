package fleet

import (
	"maps"
	"math/rand/v2"
	"net"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"testing"
	"unicode"

	"outpost/relay/wire"
)

const testN = 10000

func hasCJK(s string) bool {
	for _, r := range s {
		if unicode.Is(unicode.Han, r) {
			return true
		}
	}
	return false
}

func TestFleetDeterministic(t *testing.T) {
	for _, seed := range []int64{0, 1, 42, -7} {
		for _, i := range []int{0, 1, 17, 9999} {
			h1, inv1 := Host(seed, i, "2.4.0")
			h2, inv2 := Host(seed, i, "2.4.0")
			if !reflect.DeepEqual(h1, h2) || !reflect.DeepEqual(inv1, inv2) {
				t.Fatalf("seed %d i %d: not deterministic:\n%+v %+v\n%+v %+v", seed, i, h1, inv1, h2, inv2)
			}
			if h1.Version != "2.4.0" {
				t.Errorf("version = %q", h1.Version)
			}
		}
	}
	// A different seed gives a different fleet.
	same := 0
	for i := 0; i < 100; i++ {
		a, _ := Host(1, i, "v")
		b, _ := Host(2, i, "v")
		if a.Fingerprint == b.Fingerprint {
			t.Fatalf("i %d: seeds 1 and 2 share fingerprint", i)
		}
		if reflect.DeepEqual(a.IPs, b.IPs) && a.OSName == b.OSName && a.Hostname == b.Hostname {
			same++
		}
	}
	if same > 10 {
		t.Errorf("%d of 100 hosts identical across seeds", same)
	}
}

var testSuffix = regexp.MustCompile(`-([0-9]+)$`)

func TestFleetUniqueAndPlausible(t *testing.T) {
	names := map[string]int{}
	prints := map[string]int{}
	var windows, cjk, arm, zeroVulns, zeroAlerts, maxVulns int
	providers := map[string]int{}
	prefixes := map[string]bool{}
	for i := 0; i < testN; i++ {
		h, inv := Host(20240601, i, "1.0.0")
		if j, dup := names[h.Hostname]; dup {
			t.Fatalf("hostname %q for %d and %d", h.Hostname, j, i)
		}
		names[h.Hostname] = i
		if j, dup := prints[h.Fingerprint]; dup {
			t.Fatalf("fingerprint %s for %d and %d", h.Fingerprint, j, i)
		}
		prints[h.Fingerprint] = i
		if len(h.Fingerprint) != 64 {
			t.Fatalf("fingerprint %q", h.Fingerprint)
		}
		m := testSuffix.FindStringSubmatch(h.Hostname)
		if m == nil {
			t.Fatalf("hostname %q has no numeric suffix", h.Hostname)
		}
		if n, _ := strconv.Atoi(m[1]); n != i {
			t.Fatalf("hostname %q: suffix %d, want i=%d", h.Hostname, n, i)
		}
		if hasCJK(h.Hostname) {
			cjk++
			prefixes[regexp.MustCompile(`^[^-]+`).FindString(h.Hostname)] = true
		}
		switch h.OS {
		case "windows":
			windows++
			if h.Arch != "amd64" {
				t.Errorf("%s: windows on %s", h.Hostname, h.Arch)
			}
		case "linux":
		default:
			t.Fatalf("%s: OS %q", h.Hostname, h.OS)
		}
		if h.Arch == "arm64" {
			arm++
		} else if h.Arch != "amd64" {
			t.Fatalf("arch %q", h.Arch)
		}
		if h.OSName == "" || h.Provider == "" {
			t.Fatalf("%s: empty OSName/provider: %+v", h.Hostname, h)
		}
		providers[h.Provider]++
		if len(h.IPs) == 0 {
			t.Fatalf("%s: no IPs", h.Hostname)
		}
		for _, s := range h.IPs {
			ip := net.ParseIP(s)
			if ip == nil || ip.To4() == nil || !ip.IsPrivate() {
				t.Fatalf("%s: IP %q is not private IPv4", h.Hostname, s)
			}
		}
		checkInventory(t, h.Hostname, inv)
		if inv.Processes < 15 || inv.Processes > 400 {
			t.Fatalf("%s: processes %d", h.Hostname, inv.Processes)
		}
		if inv.RootAccounts < 1 || inv.RootAccounts > 2 || inv.Accounts < 2 || inv.Accounts > 40 {
			t.Fatalf("%s: root/accounts %d/%d", h.Hostname, inv.RootAccounts, inv.Accounts)
		}
		if inv.Vulnerabilities == 0 {
			zeroVulns++
		}
		if inv.Alerts == 0 {
			zeroAlerts++
		}
		maxVulns = max(maxVulns, inv.Vulnerabilities)
	}
	winShare := float64(windows) / testN
	t.Logf("%d hosts: windows %.1f%%, CJK names %.1f%% (prefixes %v), arm64 %d, providers %v, zero vulns %.1f%%, zero alerts %.1f%%, max vulns %d",
		testN, 100*winShare, 100*float64(cjk)/testN, slices.Sorted(maps.Keys(prefixes)), arm, providers,
		100*float64(zeroVulns)/testN, 100*float64(zeroAlerts)/testN, maxVulns)
	if winShare < 0.17 || winShare > 0.23 {
		t.Errorf("windows share %.3f, want about 0.20", winShare)
	}
	if cjk < testN/10 {
		t.Errorf("only %d CJK names", cjk)
	}
	for _, p := range []string{"腾讯云", "在云", "阿里云"} {
		if !prefixes[p] {
			t.Errorf("no host name starts with %s", p)
		}
	}
	if arm == 0 {
		t.Error("no arm64 hosts")
	}
	if len(providers) < 5 {
		t.Errorf("providers %v", providers)
	}
	if zeroVulns < testN/2 || zeroAlerts < testN*8/10 {
		t.Errorf("security figures should be mostly zero: vulns %d alerts %d of %d", zeroVulns, zeroAlerts, testN)
	}
	if maxVulns < 20 {
		t.Errorf("no long tail: max vulnerabilities %d", maxVulns)
	}
}

// checkInventory checks the invariants every fake inventory keeps.
func checkInventory(t *testing.T, name string, inv wire.Inventory) {
	t.Helper()
	if inv.Ports != len(inv.ListeningPorts) {
		t.Fatalf("%s: Ports %d != len(ListeningPorts) %d", name, inv.Ports, len(inv.ListeningPorts))
	}
	if !slices.IsSorted(inv.ListeningPorts) || len(slices.Compact(slices.Clone(inv.ListeningPorts))) != len(inv.ListeningPorts) {
		t.Fatalf("%s: ports not sorted/distinct: %v", name, inv.ListeningPorts)
	}
	for _, p := range inv.ListeningPorts {
		if p <= 0 || p > 65535 {
			t.Fatalf("%s: port %d", name, p)
		}
	}
	if inv.RootAccounts > inv.Accounts || inv.Processes < 1 ||
		inv.Vulnerabilities < 0 || inv.BaselineRisks < 0 || inv.Alerts < 0 {
		t.Fatalf("%s: implausible inventory %+v", name, inv)
	}
}

func TestFleetInventoryDrift(t *testing.T) {
	_, inv := Host(5, 3, "v")
	orig := inv
	origPorts := slices.Clone(inv.ListeningPorts)
	origTags := slices.Clone(inv.Tags)

	run := func(seed uint64) []wire.Inventory {
		r := rand.New(rand.NewPCG(seed, 0))
		cur := inv
		var out []wire.Inventory
		for k := 0; k < 500; k++ {
			cur = InventoryDrift(cur, r)
			out = append(out, cur)
		}
		return out
	}
	a, b := run(9), run(9)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("drift with the same rand stream is not deterministic")
	}
	if !reflect.DeepEqual(inv, orig) || !slices.Equal(inv.ListeningPorts, origPorts) || !slices.Equal(inv.Tags, origTags) {
		t.Fatal("drift modified its input")
	}
	changedPorts, changedProcs := false, false
	prev := inv
	for k, cur := range a {
		checkInventory(t, "drift step "+strconv.Itoa(k), cur)
		step := max(2, prev.Processes/20)
		if d := cur.Processes - prev.Processes; d > step || d < -step {
			t.Fatalf("step %d: processes jumped %d -> %d", k, prev.Processes, cur.Processes)
		}
		if cur.RootAccounts != inv.RootAccounts || cur.Group != inv.Group || !slices.Equal(cur.Tags, inv.Tags) {
			t.Fatalf("step %d: identity-like fields changed: %+v", k, cur)
		}
		changedPorts = changedPorts || !slices.Equal(cur.ListeningPorts, prev.ListeningPorts)
		changedProcs = changedProcs || cur.Processes != prev.Processes
		prev = cur
	}
	if !changedPorts || !changedProcs {
		t.Errorf("500 drifts changed ports=%v processes=%v", changedPorts, changedProcs)
	}
	// Single step: small.
	one := InventoryDrift(inv, rand.New(rand.NewPCG(1, 1)))
	if d := one.Ports - inv.Ports; d > 1 || d < -1 {
		t.Errorf("one drift changed %d ports", d)
	}

	// Works on an empty inventory too.
	empty := InventoryDrift(wire.Inventory{}, rand.New(rand.NewPCG(2, 2)))
	checkInventory(t, "empty", empty)
}
