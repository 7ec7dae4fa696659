package store

import (
	"encoding/json"
	"fmt"

	"outpost/relay/wire"
)

// WarningKind names one of the operator warnings of seed 000; Text and
// Fix are chosen by kind.
type WarningKind string

// Warning kinds, in the order Warnings reports them.
const (
	WarnBandwidthUnlimited WarningKind = "bandwidth-unlimited" // forward, no limit, link known
	WarnBandwidthOverLink  WarningKind = "bandwidth-over-link" // limit above 60 % of the link
	WarnReserveOverLink    WarningKind = "reserve-over-link"   // 10 Kbit/s per host above 60 % of the link
	WarnReserveOverLimit   WarningKind = "reserve-over-limit"  // 10 Kbit/s per host above the bandwidth limit
	WarnNoProxy            WarningKind = "no-proxy"            // bound agents, no proxy server
	WarnProxyDown          WarningKind = "proxy-down"          // bound agents, every proxy server offline
	WarnProxyCapacity      WarningKind = "proxy-capacity"      // more agents than the online proxies carry
)

// Warning is one operator warning of a cluster. Need and Limit are what
// the cluster asks for and the ceiling it passes: bits/s for the link and
// bandwidth kinds (Limit is 60 % of the link, or the bandwidth limit), hosts
// for the proxy kinds (Limit is what the online proxy servers carry).
type Warning struct {
	Kind    WarningKind
	Need    int64
	Limit   int64
	Link    int64 // the proxy host's link, bits/s (link kinds)
	Hosts   int   // bound agents
	Proxies int   // proxy servers: all of them for proxy-down, online ones for proxy-capacity
}

// Text is the warning as the CLI and dashboard show it.
func (w Warning) Text() string {
	switch w.Kind {
	case WarnBandwidthUnlimited:
		return fmt.Sprintf("bandwidth is unlimited: relay traffic may take more than 60%% of the %s link; set a limit", formatBits(w.Link))
	case WarnBandwidthOverLink:
		return fmt.Sprintf("bandwidth limit %s is more than 60%% of the %s link", formatBits(w.Need), formatBits(w.Link))
	case WarnReserveOverLink:
		return fmt.Sprintf("%d hosts need %s reserved (10 Kbit/s each), more than 60%% of the %s link", w.Hosts, formatBits(w.Need), formatBits(w.Link))
	case WarnReserveOverLimit:
		return fmt.Sprintf("%d hosts need %s reserved (10 Kbit/s each) but the bandwidth limit is %s", w.Hosts, formatBits(w.Need), formatBits(w.Limit))
	case WarnNoProxy:
		return fmt.Sprintf("no proxy server: the %d bound agent(s) cannot connect through this cluster until one is deployed (outpost proxy deploy)", w.Hosts)
	case WarnProxyDown:
		return fmt.Sprintf("proxy down: all %d proxy server(s) offline: agents cannot connect through this cluster", w.Proxies)
	case WarnProxyCapacity:
		return fmt.Sprintf("%d agents exceed what %d online proxy server(s) carry (6,000 hosts each): add proxies", w.Hosts, w.Proxies)
	}
	return string(w.Kind)
}

// String is Text.
func (w Warning) String() string { return w.Text() }

// MarshalJSON keeps `--json` output as it was: the sentence.
func (w Warning) MarshalJSON() ([]byte, error) { return json.Marshal(w.Text()) }

// Fix is the operator's action for the warning; cluster is the cluster as
// `outpost cluster policy` takes it (with --account when the name is
// ambiguous).
func (w Warning) Fix(cluster string) string {
	switch w.Kind {
	case WarnBandwidthUnlimited, WarnBandwidthOverLink:
		return fmt.Sprintf("lower the bandwidth limit to 60 %% of the link: `outpost cluster policy %s --bandwidth %s`", cluster, bitsArg(w.Limit))
	case WarnReserveOverLink:
		return "move hosts to another cluster or give the proxy host a faster link (10 Kbit/s per host)"
	case WarnReserveOverLimit:
		return fmt.Sprintf("raise the bandwidth limit to at least %s: `outpost cluster policy %s --bandwidth %s`", formatBits(w.Need), cluster, bitsArg(w.Need))
	case WarnNoProxy, WarnProxyDown, WarnProxyCapacity:
		return "add or start proxy servers (6,000 hosts each): `outpost proxy deploy --cluster " + cluster + " --manual`"
	}
	return ""
}

// bitsArg renders bits/s as a --bandwidth value (60Mbit, 480Kbit), rounded
// down so it stays within a share.
func bitsArg(bits int64) string {
	switch {
	case bits >= 1_000_000_000 && bits%1_000_000_000 == 0:
		return fmt.Sprintf("%dGbit", bits/1_000_000_000)
	case bits >= 1_000_000 && bits%1_000_000 == 0:
		return fmt.Sprintf("%dMbit", bits/1_000_000)
	case bits >= 1000:
		return fmt.Sprintf("%dKbit", bits/1000)
	}
	return fmt.Sprintf("%dbit", bits)
}

// Warnings returns the operator warnings of seed 000 for a cluster: limits
// above 60 % of the proxy host's link, and capacity (6,000 hosts per proxy,
// 10 Kbit/s reserved per host). agents are the bound agents, proxies the
// cluster's proxy servers. Bound agents with no proxy server online is
// "proxy down" (or "no proxy server"), not a capacity problem: adding
// proxies would not help while the existing ones are stopped.
func Warnings(p Policy, agents, proxies, proxiesOnline int) []Warning {
	var w []Warning
	share := int64(LinkShareWarn * float64(p.LinkBps))
	link := func(k WarningKind, need int64) Warning {
		return Warning{Kind: k, Need: need, Limit: share, Link: p.LinkBps, Hosts: agents}
	}
	if p.Mode == wire.ModeForward && p.LinkBps > 0 {
		if p.BandwidthBps == 0 {
			w = append(w, link(WarnBandwidthUnlimited, 0))
		} else if float64(p.BandwidthBps*8) > LinkShareWarn*float64(p.LinkBps) {
			w = append(w, link(WarnBandwidthOverLink, p.BandwidthBps*8))
		}
	}
	need := int64(agents) * ReservedBpsPerHost
	if p.LinkBps > 0 && float64(need) > LinkShareWarn*float64(p.LinkBps) {
		w = append(w, link(WarnReserveOverLink, need))
	}
	if p.Mode == wire.ModeForward && p.BandwidthBps > 0 && need > p.BandwidthBps*8 {
		w = append(w, Warning{Kind: WarnReserveOverLimit, Need: need, Limit: p.BandwidthBps * 8, Link: p.LinkBps, Hosts: agents})
	}
	hosts := func(k WarningKind, n int) Warning {
		return Warning{Kind: k, Need: int64(agents), Limit: int64(proxiesOnline) * HostsPerProxy, Hosts: agents, Proxies: n}
	}
	switch {
	case agents > 0 && proxies == 0:
		w = append(w, hosts(WarnNoProxy, 0))
	case agents > 0 && proxiesOnline == 0:
		w = append(w, hosts(WarnProxyDown, proxies))
	case agents > proxiesOnline*HostsPerProxy:
		w = append(w, hosts(WarnProxyCapacity, proxiesOnline))
	}
	return w
}
