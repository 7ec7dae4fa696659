package doctor

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"strings"
)

// run collects the checks of one Run in order.
type run struct {
	d   *Doctor
	out []Check
}

// add runs a check unless --skip names it.
func (r *run) add(name, target string, check func() Check) Check {
	var c Check
	if r.d.skipped(name) {
		c = Check{Name: name, Target: target, Verdict: VerdictSkip, Detail: "skipped (--skip " + name + ")"}
	} else {
		c = check()
	}
	r.out = append(r.out, c)
	return c
}

// skip records a check that could not run, with why.
func (r *run) skip(name, target, why string) Check {
	return r.add(name, target, func() Check { return Check{Name: name, Target: target, Verdict: VerdictSkip, Detail: why} })
}

// Run runs every check and returns them in order: per relay host name
// resolution, then per relay URL port, pinned CA, health and clock, then
// this host's load, the agent identity, the install key, and the proxy-host
// checks (upstream, cache space, link limits). A check whose prerequisite
// failed (no address, port closed) is reported as skipped.
func (d *Doctor) Run(ctx context.Context) []Check {
	r := &run{d: d}
	healthy := r.relays(ctx)
	r.add(CheckLoad, "this host", func() Check { return d.CheckLoad() })
	r.add(CheckIdentity, d.IdentityDir, func() Check { return d.CheckIdentity(ctx, healthy) })
	r.add(CheckKey, keyPrefix(d.Key), func() Check { return d.CheckKey(ctx) })
	if len(d.Upstreams) == 0 {
		r.skip(CheckUpstream, "", "no upstream to check: not a joined proxy host (give --upstream URL)")
	}
	for _, up := range d.Upstreams {
		r.add(CheckUpstream, up, func() Check { return d.CheckUpstream(ctx, up) })
	}
	r.clusters(ctx)
	return r.out
}

// relayURL is one --proxy URL, parsed.
type relayURL struct {
	raw, host, port, scheme string
}

// relays runs the network checks of each relay URL and returns the URLs
// whose health check passed (or was skipped by --skip).
func (r *run) relays(ctx context.Context) (healthy []string) {
	d := r.d
	var urls []relayURL
	for _, raw := range d.Proxies {
		u, host, port, err := parseURL(raw)
		if err != nil {
			r.out = append(r.out, Check{Name: CheckPort, Target: raw, Verdict: VerdictFail, Detail: err.Error(),
				Fix: "give the relay as a URL: --proxy https://HOST:8443 (or http://HOST:8080)"})
			continue
		}
		urls = append(urls, relayURL{raw: u.String(), host: host, port: port, scheme: u.Scheme})
	}
	if len(d.Proxies) == 0 {
		for _, n := range []string{CheckDNS, CheckPort, CheckTLS, CheckHealth, CheckClock} {
			r.out = append(r.out, Check{Name: n, Verdict: VerdictSkip, Detail: "no relay to check: give --proxy URL (or --dir with an agent identity)"})
		}
	}
	resolved := map[string]bool{}
	for _, u := range urls {
		if _, done := resolved[u.host]; done {
			continue
		}
		c := r.add(CheckDNS, u.host, func() Check { return d.CheckDNS(ctx, u.host) })
		resolved[u.host] = c.Verdict != VerdictFail
	}
	for _, u := range urls {
		if r.relay(ctx, u, resolved[u.host]) {
			healthy = append(healthy, u.raw)
		}
	}
	return healthy
}

// relay runs port, tls-pin, health and clock for one URL; it reports
// whether the relay counts as healthy.
func (r *run) relay(ctx context.Context, u relayURL, resolved bool) bool {
	d := r.d
	addr := net.JoinHostPort(u.host, u.port)
	var port Check
	if !resolved {
		port = r.skip(CheckPort, addr, u.host+" does not resolve")
	} else {
		port = r.add(CheckPort, addr, func() Check { return d.checkPort(ctx, addr, u.scheme == "https") })
	}
	if !resolved || port.Verdict == VerdictFail {
		why := "port " + addr + " is not reachable"
		if !resolved {
			why = u.host + " does not resolve"
		}
		for _, n := range []string{CheckTLS, CheckHealth, CheckClock} {
			r.skip(n, u.raw, why)
		}
		return false
	}
	r.add(CheckTLS, u.raw, func() Check { return d.CheckTLS(ctx, u.raw) })
	h := r.add(CheckHealth, u.raw, func() Check { return d.CheckHealth(ctx, u.raw) })
	r.add(CheckClock, u.raw, func() Check { return d.CheckClock(ctx, u.raw) })
	return h.Verdict == VerdictOK || (h.Verdict == VerdictSkip && d.skipped(CheckHealth))
}

// clusters runs cache-space for this host's cache directories and the
// cache-mode clusters of the store, and link-limits for every cluster.
func (r *run) clusters(ctx context.Context) {
	d := r.d
	var clusters []Cluster
	var clusterErr error
	if d.Clusters != nil && !(d.skipped(CheckCache) && d.skipped(CheckLink)) {
		clusters, clusterErr = d.Clusters(ctx)
	}
	caches := append([]CacheTarget(nil), d.Caches...)
	for _, c := range clusters {
		if c.Cache != nil {
			caches = append(caches, *c.Cache)
		}
	}
	if len(caches) == 0 {
		r.skip(CheckCache, "", "no cluster in cache mode here")
	}
	for _, ct := range caches {
		r.add(CheckCache, ct.Cluster, func() Check { return d.CheckCache(ct) })
	}
	switch {
	case clusterErr != nil:
		r.add(CheckLink, "", func() Check {
			return Check{Name: CheckLink, Verdict: VerdictFail, Detail: "cannot read the clusters: " + clusterErr.Error(),
				Fix: "check that the data directory holds a readable outpost.db (--data DIR)"}
		})
	case d.Clusters == nil:
		r.skip(CheckLink, "", "no management store here (run it on the management host, or give --data DIR)")
	case len(clusters) == 0:
		r.skip(CheckLink, "", "no clusters yet")
	}
	for _, c := range clusters {
		r.add(CheckLink, c.Name, func() Check { return CheckClusterLimits(c, clusters) })
	}
}

// parseURL accepts http(s)://HOST[:PORT][/...] and returns the host and
// port (443 or 80 when absent).
func parseURL(raw string) (*url.URL, string, string, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Hostname() == "" {
		return nil, "", "", fmt.Errorf("%q is not an http:// or https:// URL", raw)
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"https": "443", "http": "80"}[u.Scheme]
	}
	u.Path, u.RawQuery, u.Fragment = strings.TrimRight(u.Path, "/"), "", ""
	return u, u.Hostname(), port, nil
}
