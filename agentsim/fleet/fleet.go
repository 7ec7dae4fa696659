// Package fleet invents realistic, varied identities for simulated agents, so
// that a load test of thousands of agents looks like a real fleet to the
// relay, the store and the console: a mix of Linux distributions and Windows
// servers, several clouds and regions, Chinese and ASCII host names, and
// inventories whose security figures are mostly zero with a long tail. Every
// value is derived from (seed, i) alone, so a run can be replayed exactly and
// a restarted simulator presents the same hosts (same fingerprints) again.
//
// Like agentsim, it imports nothing of the project but relay/wire.
package fleet

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"

	"outpost/relay/wire"
)

var linuxOSNames = []string{
	"Ubuntu 22.04.4 LTS",
	"Ubuntu 20.04.6 LTS",
	"Ubuntu 24.04.1 LTS",
	"CentOS Linux 7 (Core)",
	"CentOS Stream 9",
	"Alibaba Cloud Linux 3",
	"Alibaba Cloud Linux (Aliyun Linux) 2.1903 LTS (Hunting Beagle)",
	"Debian GNU/Linux 12 (bookworm)",
	"Debian GNU/Linux 11 (bullseye)",
	"Rocky Linux 9.3 (Blue Onyx)",
	"Anolis OS 8.8",
	"TencentOS Server 3.1 (Final)",
	"Kylin Linux Advanced Server V10 (Sword)",
}

var windowsOSNames = []string{
	"Windows Server 2019 Datacenter",
	"Windows Server 2016 Datacenter",
	"Windows Server 2022 Datacenter",
	"Windows Server 2012 R2 Standard",
}

type provider struct {
	name    string
	weight  int
	cjk     string // Chinese console-style name prefix for this provider
	regions []string
}

var providers = []provider{
	{"aliyun", 40, "阿里云", []string{"China (Hangzhou)", "China (Qingdao)", "China (Beijing)", "China (Shanghai)", "China (Shenzhen)", "China (Zhangjiakou)", "Singapore", "Japan (Tokyo)", "US (Virginia)", "Germany (Frankfurt)"}},
	{"tencent", 18, "腾讯云", []string{"China (Guangzhou)", "China (Shanghai)", "China (Beijing)", "China (Chengdu)", "Singapore"}},
	{"aws", 14, "在云", []string{"US (Virginia)", "US (Oregon)", "Japan (Tokyo)", "Singapore", "Germany (Frankfurt)"}},
	{"huawei", 5, "华为云", []string{"China (Beijing)", "China (Shanghai)", "China (Guangzhou)"}},
	{"idc-beijing", 10, "北京机房", []string{"China (Beijing)"}},
	{"idc-shanghai", 3, "上海机房", []string{"China (Shanghai)"}},
	{"outside-of-aliyun", 10, "在云", []string{""}},
}

var providerWeight = func() int {
	n := 0
	for _, p := range providers {
		n += p.weight
	}
	return n
}()

// Roles must not end in a digit: host names are prefix + "-" + i, and a
// letter before the final "-" keeps that mapping one-to-one.
var roles = []string{"web", "api", "db", "cache", "mq", "k8s-node", "bastion", "gateway", "batch", "monitor", "ftp", "mail"}

var envs = []string{"prod", "prod", "prod", "staging", "test", "dev", "uat"}

var groups = []string{"default", "default", "default", "生产环境", "测试环境", "web", "database", "payments", "ops", "大数据"}

var tagPool = []string{"prod", "staging", "pci", "k8s", "internet-facing", "legacy", "gpu", "等保三级", "核心业务", "dmz"}

// Host returns the identity and first inventory of simulated agent i.
// Same (seed, i, version) always gives the same result; different i give
// different host names (i is the name's numeric suffix) and fingerprints
// (hex SHA-256 of "seed/i"). About 80 % are Linux (amd64 or arm64) and 20 %
// Windows (amd64); about 30 % have Chinese names such as "腾讯云-web-07".
// IPs are private 10.x / 172.16-31.x strings that are reported, never
// dialled.
func Host(seed int64, i int, version string) (wire.Host, wire.Inventory) {
	return HostOS(seed, i, version, "")
}

// HostOS is Host with the OS forced to os ("linux" or "windows"),
// for a fleet enrolled with one OS's install key; every other value is
// drawn as Host draws it ("" forces nothing).
func HostOS(seed int64, i int, version string, os wire.OS) (wire.Host, wire.Inventory) {
	r := rand.New(rand.NewPCG(uint64(seed), uint64(i)^0x9e3779b97f4a7c15))

	prov := pickProvider(r)
	windows := r.Float64() < 0.2
	switch os {
	case wire.OSWindows:
		windows = true
	case wire.OSLinux:
		windows = false
	}
	role := roles[r.IntN(len(roles))]

	h := wire.Host{
		Provider: prov.name,
		Region:   prov.regions[r.IntN(len(prov.regions))],
		Version:  version,
	}
	sum := sha256.Sum256(fmt.Appendf(nil, "%d/%d", seed, i))
	h.Fingerprint = hex.EncodeToString(sum[:])

	cjk := r.Float64() < 0.3
	switch {
	case cjk:
		h.Hostname = fmt.Sprintf("%s-%s-%02d", prov.cjk, role, i)
	case windows:
		h.Hostname = fmt.Sprintf("WIN-%s-%04d", strings.ToUpper(role), i)
	default:
		h.Hostname = fmt.Sprintf("%s-%s-%04d", role, envs[r.IntN(len(envs))], i)
	}

	if windows {
		h.OS, h.Arch = wire.OSWindows, "amd64"
		h.OSName = windowsOSNames[r.IntN(len(windowsOSNames))]
	} else {
		h.OS, h.Arch = wire.OSLinux, "amd64"
		if r.Float64() < 0.15 {
			h.Arch = "arm64"
		}
		h.OSName = linuxOSNames[r.IntN(len(linuxOSNames))]
	}

	h.IPs = []string{fakeIP(r, i)}
	if r.Float64() < 0.2 {
		h.IPs = append(h.IPs, fakeIP(r, i+7919))
	}

	inv := wire.Inventory{
		Processes:       clampInt(int(math.Exp(math.Log(110)+0.6*r.NormFloat64())), 15, 400),
		ListeningPorts:  fakePorts(r, windows, role),
		Vulnerabilities: longTail(r, 0.6, 1.1, 500),
		BaselineRisks:   longTail(r, 0.5, 1.3, 120),
		Alerts:          longTail(r, 0.9, 1.2, 50),
		Group:           groups[r.IntN(len(groups))],
	}
	inv.Ports = len(inv.ListeningPorts)
	inv.RootAccounts = 1
	if r.Float64() < 0.05 {
		inv.RootAccounts = 2
	}
	switch {
	case windows:
		inv.Accounts = 2 + r.IntN(7) // Administrator, Guest, DefaultAccount...
	case r.Float64() < 0.05:
		inv.Accounts = 2 + r.IntN(5) // minimal image
	default:
		inv.Accounts = 18 + r.IntN(23) // distribution system accounts + users
	}
	inv.Accounts = max(inv.Accounts, inv.RootAccounts)
	for _, t := range tagPool {
		if r.Float64() < 0.12 {
			inv.Tags = append(inv.Tags, t)
		}
	}
	return h, inv
}

func pickProvider(r *rand.Rand) provider {
	n := r.IntN(providerWeight)
	for _, p := range providers {
		if n < p.weight {
			return p
		}
		n -= p.weight
	}
	return providers[0]
}

// fakeIP returns 10.a.b.c (70 %) or 172.16-31.b.c, with b.c spread by i.
func fakeIP(r *rand.Rand, i int) string {
	b, c := (i/254)%256, 1+i%254
	if r.Float64() < 0.7 {
		return fmt.Sprintf("10.%d.%d.%d", r.IntN(256), b, c)
	}
	return fmt.Sprintf("172.%d.%d.%d", 16+r.IntN(16), b, c)
}

var rolePorts = map[string][]int{
	"web":      {80, 443},
	"api":      {8080, 8443},
	"db":       {3306},
	"cache":    {6379},
	"mq":       {5672, 15672},
	"k8s-node": {10250, 10256},
	"gateway":  {80, 443, 8000},
	"batch":    {},
	"monitor":  {3000, 9090, 9093},
	"ftp":      {21},
	"mail":     {25, 110, 143, 587},
	"bastion":  {},
}

func fakePorts(r *rand.Rand, windows bool, role string) []int {
	var ports []int
	add := func(p float64, ps ...int) {
		if r.Float64() < p {
			ports = append(ports, ps...)
		}
	}
	if windows {
		ports = append(ports, 135, 445, 3389)
		add(0.8, 139)
		add(0.5, 5985)
		if role == "db" {
			ports = append(ports, 1433)
		} else {
			ports = append(ports, rolePorts[role]...)
		}
	} else {
		add(0.95, 22)
		if role == "db" && r.Float64() < 0.3 {
			ports = append(ports, 5432)
		} else {
			ports = append(ports, rolePorts[role]...)
		}
		if role == "k8s-node" {
			for n := r.IntN(4); n > 0; n-- {
				ports = append(ports, 30000+r.IntN(2768))
			}
		}
		add(0.4, 9100) // node_exporter
		add(0.2, 111)  // rpcbind
		add(0.3, 323)  // chronyd (udp)
		add(0.15, 53)  // local resolver
		add(0.1, 25)   // local MTA
	}
	add(0.1, 8000+r.IntN(1000)) // some ad-hoc service
	slices.Sort(ports)
	return slices.Compact(ports)
}

// longTail is 0 with probability pZero, otherwise a Pareto(alpha) draw
// starting at 1, capped at limit.
func longTail(r *rand.Rand, pZero, alpha float64, limit int) int {
	if r.Float64() < pZero {
		return 0
	}
	u := 1 - r.Float64() // (0, 1]
	x := math.Pow(u, -1/alpha)
	if x >= float64(limit) {
		return limit
	}
	return int(x)
}

func clampInt(v, lo, hi int) int {
	return min(max(v, lo), hi)
}

// InventoryDrift returns inv with the small changes seen between two
// inventories of the same host: the process count moves by a few percent,
// now and then a listening port opens or closes, vulnerabilities get patched
// or disclosed, baseline risks get fixed, alerts arrive or are handled, and
// rarely an account is added. inv itself (its slices included) is not
// modified; Ports is kept equal to len(ListeningPorts) and RootAccounts never
// exceeds Accounts.
func InventoryDrift(inv wire.Inventory, r *rand.Rand) wire.Inventory {
	out := inv
	out.ListeningPorts = slices.Clone(inv.ListeningPorts)
	out.Tags = slices.Clone(inv.Tags)

	step := max(2, inv.Processes/20)
	out.Processes = max(1, inv.Processes+r.IntN(2*step+1)-step)

	switch x := r.Float64(); {
	case x < 0.04:
		p := []int{8000 + r.IntN(1000), 9100, 6379, 8080, 3000}[r.IntN(5)]
		if !slices.Contains(out.ListeningPorts, p) {
			out.ListeningPorts = append(out.ListeningPorts, p)
			slices.Sort(out.ListeningPorts)
		}
	case x < 0.08 && len(out.ListeningPorts) > 1:
		k := r.IntN(len(out.ListeningPorts))
		if p := out.ListeningPorts[k]; p != 22 && p != 3389 {
			out.ListeningPorts = slices.Delete(out.ListeningPorts, k, k+1)
		}
	}
	if len(out.ListeningPorts) == 0 {
		out.ListeningPorts = nil
	}
	out.Ports = len(out.ListeningPorts)

	if r.Float64() < 0.1 {
		out.Vulnerabilities = max(0, out.Vulnerabilities+r.IntN(5)-2)
	}
	if r.Float64() < 0.05 {
		out.BaselineRisks = max(0, out.BaselineRisks+r.IntN(3)-1)
	}
	switch x := r.Float64(); {
	case x < 0.03:
		out.Alerts += 1 + r.IntN(3)
	case x < 0.13 && out.Alerts > 0:
		out.Alerts--
	}
	if r.Float64() < 0.01 {
		out.Accounts++
	}
	out.Accounts = max(out.Accounts, out.RootAccounts)
	return out
}
