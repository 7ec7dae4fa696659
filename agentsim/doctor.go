// This file holds the checks of `outpost doctor`: the troubleshooting steps
// of seed 002 chapter 4 ("Troubleshoot the problem of Security Center agent
// going offline": name resolution, firewall, high CPU or memory) and the
// proxy-host prerequisites of seed 000 (ports 80/443/8080, 60 % of the link,
// the 10 GB cache directory), plus what Outpost adds on top (the pinned CA,
// the relay's health, clock skew, duplicated identities, install keys).
//
// Every check is a method of Doctor that returns one Check with a verdict
// and, when the verdict is not ok, a one-line fix. Everything the checks
// touch (resolver, dialer, local clock, load, free disk space, the
// management store) is a field, so tests run them against fakes and real
// loopback listeners.

package agentsim

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"outpost/relay/wire"
	"outpost/store"
)

// Verdicts of a check.
const (
	VerdictOK   = "ok"
	VerdictWarn = "warn"
	VerdictFail = "fail"
	VerdictSkip = "skip"
)

// Check names: stable identifiers for --skip and JSON consumers.
const (
	CheckDNS       = "dns"         // seed 002 ch.4 step 4a
	CheckPort      = "port"        // seed 002 ch.4 step 4b, seed 000 ports 80/443/8080
	CheckTLS       = "tls-pin"     // the relay's CA against --ca-sha256
	CheckHealth    = "health"      // GET /healthz
	CheckClock     = "clock"       // the relay's Date header against this host
	CheckLoad      = "load"        // seed 002 ch.4 step 5: CPU or memory at 95 %
	CheckIdentity  = "identity"    // seed 002 ch.1: cloned agent directory
	CheckKey       = "install-key" // expired or revoked install command
	CheckUpstream  = "upstream"    // proxy host: the management host / collector
	CheckCache     = "cache-space" // seed 000: cache directory, 10 GB at most
	CheckLink      = "link-limits" // seed 000: limits within 60 % of the link
	doctorLoadMax  = 95.0          // percent (seed 002 ch.4 step 5)
	doctorSkewWarn = 5 * time.Second
	doctorSkewFail = 60 * time.Second
)

// CheckNames lists every check in the order Run reports them.
var CheckNames = []string{CheckDNS, CheckPort, CheckTLS, CheckHealth, CheckClock, CheckLoad, CheckIdentity,
	CheckKey, CheckUpstream, CheckCache, CheckLink}

// Check is one verdict of the doctor.
type Check struct {
	Name    string `json:"name"`             // one of CheckNames
	Target  string `json:"target,omitempty"` // host, URL, cluster... the check is about
	Verdict string `json:"verdict"`          // ok | warn | fail | skip
	Detail  string `json:"detail"`
	Fix     string `json:"fix,omitempty"` // one line, when the verdict is warn or fail
}

// CacheTarget is a cache-mode directory on this host with its cap.
type CacheTarget struct {
	Cluster string
	Dir     string // absolute, or relative to Doctor.DataDir
	Max     int64  // bytes; 0 = the 10 GB default
}

// Doctor runs the checks. Zero-valued dependencies use the real system.
type Doctor struct {
	// Agent side: the relay URLs, the pinned CA, the agent's identity.
	Proxies     []string
	CASHA256    string
	Identity    *Identity // from the agent directory (--dir), nil when none
	IdentityDir string    // where Identity was read, for messages
	IdentityErr error     // the identity file exists but cannot be used

	// Management host: the install key to look up (--key).
	Key string

	// Proxy host: URLs the relay sends to (management host, collector) and
	// its cache directories.
	Upstreams []string
	Caches    []CacheTarget
	DataDir   string // resolves relative cache directories

	Skip    []string      // check names not to run
	Timeout time.Duration // per network operation; 0 = 3 s

	Resolve     func(ctx context.Context, host string) ([]string, error)
	Dial        func(ctx context.Context, network, addr string) (net.Conn, error)
	Now         func() time.Time          // this host's clock
	Load        func() (cpu, mem float64) // percent; default HostFS{}.Load
	LoadSamples int                       // Load readings, all at 95 % or more to fail; 0 = 5
	LoadEvery   time.Duration             // gap between readings; 0 = 200 ms
	FreeBytes   func(dir string) (uint64, error)
	Fingerprint func() (string, error) // this machine's identity; default HostFS{}.Host

	// The management store, set only where DATA holds one; nil elsewhere.
	Agent           func(ctx context.Context, id string) (store.Agent, error)
	Duplicates      func(ctx context.Context) (agents []store.Agent, total int, err error)
	InstallCommands func(ctx context.Context) ([]store.InstallCommand, error)
	Clusters        func(ctx context.Context) ([]store.Cluster, error)
}

// DoctorSummary counts verdicts.
type DoctorSummary struct {
	Checks   int `json:"checks"` // checks that ran (skipped ones are not counted)
	OK       int `json:"ok"`
	Warnings int `json:"warnings"`
	Failures int `json:"failures"`
	Skipped  int `json:"skipped"`
}

// Summarize counts the verdicts of checks.
func Summarize(checks []Check) DoctorSummary {
	var s DoctorSummary
	for _, c := range checks {
		switch c.Verdict {
		case VerdictOK:
			s.OK++
		case VerdictWarn:
			s.Warnings++
		case VerdictFail:
			s.Failures++
		default:
			s.Skipped++
		}
	}
	s.Checks = s.OK + s.Warnings + s.Failures
	return s
}

// String is the doctor's last line: "N checks: X ok, Y warnings, Z failures".
func (s DoctorSummary) String() string {
	return fmt.Sprintf("%d checks: %d ok, %d warnings, %d failures", s.Checks, s.OK, s.Warnings, s.Failures)
}

// ---------------------------------------------------------------------------
// Dependencies

func (d *Doctor) timeout() time.Duration {
	if d.Timeout > 0 {
		return d.Timeout
	}
	return 3 * time.Second
}

func (d *Doctor) now() time.Time {
	if d.Now != nil {
		return d.Now()
	}
	return time.Now()
}

func (d *Doctor) resolve(ctx context.Context, host string) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, d.timeout())
	defer cancel()
	if d.Resolve != nil {
		return d.Resolve(ctx, host)
	}
	return net.DefaultResolver.LookupHost(ctx, host)
}

func (d *Doctor) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, d.timeout())
	defer cancel()
	if d.Dial != nil {
		return d.Dial(ctx, network, addr)
	}
	var nd net.Dialer
	return nd.DialContext(ctx, network, addr)
}

// dialResolved resolves a host name with Resolve and dials its addresses in
// turn with Dial, so a fake resolver steers every connection of a check.
func (d *Doctor) dialResolved(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	if net.ParseIP(host) != nil {
		return d.dial(ctx, network, addr)
	}
	ips, err := d.resolve(ctx, host)
	if err != nil {
		return nil, err
	}
	if len(ips) == 0 {
		return nil, fmt.Errorf("%s resolves to no address", host)
	}
	var last error
	for _, ip := range ips {
		c, err := d.dial(ctx, network, net.JoinHostPort(ip, port))
		if err == nil {
			return c, nil
		}
		last = err
	}
	return nil, last
}

// client is an HTTP client whose connections go through dialResolved. A nil
// tlsConf means the diagnostic probes (/healthz, Date): they send nothing
// secret, so the certificate is not verified there (tls-pin does that).
func (d *Doctor) client(tlsConf *tls.Config) *http.Client {
	if tlsConf == nil {
		tlsConf = &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}
	}
	return &http.Client{
		Timeout: d.timeout() * 2,
		Transport: &http.Transport{
			Proxy:                 nil, // like the agent: never through $HTTPS_PROXY
			DialContext:           d.dialResolved,
			TLSClientConfig:       tlsConf,
			TLSHandshakeTimeout:   d.timeout(),
			ResponseHeaderTimeout: d.timeout(),
			DisableKeepAlives:     true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

func (d *Doctor) skipped(name string) bool { return slices.Contains(d.Skip, name) }

// ---------------------------------------------------------------------------
// Run

// Run runs every check and returns them in order: per relay host name
// resolution, then per relay URL port, pinned CA, health and clock, then
// this host's load, the agent identity, the install key, and the proxy-host
// checks (upstream, cache space, link limits). A check whose prerequisite
// failed (no address, port closed) is reported as skipped.
func (d *Doctor) Run(ctx context.Context) []Check {
	var out []Check
	add := func(name, target string, run func() Check) Check {
		var c Check
		if d.skipped(name) {
			c = Check{Name: name, Target: target, Verdict: VerdictSkip, Detail: "skipped (--skip " + name + ")"}
		} else {
			c = run()
		}
		out = append(out, c)
		return c
	}

	type relayURL struct {
		raw, host, port, scheme string
	}
	var urls []relayURL
	for _, raw := range d.Proxies {
		u, host, port, err := doctorParseURL(raw)
		if err != nil {
			out = append(out, Check{Name: CheckPort, Target: raw, Verdict: VerdictFail, Detail: err.Error(),
				Fix: "give the relay as a URL: --proxy https://HOST:8443 (or http://HOST:8080)"})
			continue
		}
		urls = append(urls, relayURL{raw: u.String(), host: host, port: port, scheme: u.Scheme})
	}
	if len(d.Proxies) == 0 {
		for _, n := range []string{CheckDNS, CheckPort, CheckTLS, CheckHealth, CheckClock} {
			out = append(out, Check{Name: n, Verdict: VerdictSkip, Detail: "no relay to check: give --proxy URL (or --dir with an agent identity)"})
		}
	}

	resolved := map[string]bool{}
	for _, u := range urls {
		if _, done := resolved[u.host]; done {
			continue
		}
		c := add(CheckDNS, u.host, func() Check { return d.CheckDNS(ctx, u.host) })
		resolved[u.host] = c.Verdict != VerdictFail
	}
	var healthy []string
	for _, u := range urls {
		addr := net.JoinHostPort(u.host, u.port)
		var port Check
		if !resolved[u.host] {
			port = add(CheckPort, addr, func() Check {
				return Check{Name: CheckPort, Target: addr, Verdict: VerdictSkip, Detail: u.host + " does not resolve"}
			})
		} else {
			port = add(CheckPort, addr, func() Check { return d.checkPort(ctx, addr, u.scheme == "https") })
		}
		if !resolved[u.host] || port.Verdict == VerdictFail {
			why := "port " + addr + " is not reachable"
			if !resolved[u.host] {
				why = u.host + " does not resolve"
			}
			for _, n := range []string{CheckTLS, CheckHealth, CheckClock} {
				add(n, u.raw, func() Check { return Check{Name: n, Target: u.raw, Verdict: VerdictSkip, Detail: why} })
			}
			continue
		}
		add(CheckTLS, u.raw, func() Check { return d.CheckTLS(ctx, u.raw) })
		h := add(CheckHealth, u.raw, func() Check { return d.CheckHealth(ctx, u.raw) })
		if h.Verdict == VerdictOK || (h.Verdict == VerdictSkip && d.skipped(CheckHealth)) {
			healthy = append(healthy, u.raw)
		}
		add(CheckClock, u.raw, func() Check { return d.CheckClock(ctx, u.raw) })
	}

	add(CheckLoad, "this host", func() Check { return d.CheckLoad() })
	add(CheckIdentity, d.IdentityDir, func() Check { return d.CheckIdentity(ctx, healthy) })
	add(CheckKey, doctorKeyPrefix(d.Key), func() Check { return d.CheckKey(ctx) })

	if len(d.Upstreams) == 0 {
		add(CheckUpstream, "", func() Check {
			return Check{Name: CheckUpstream, Verdict: VerdictSkip, Detail: "no upstream to check: not a joined proxy host (give --upstream URL)"}
		})
	}
	for _, up := range d.Upstreams {
		add(CheckUpstream, up, func() Check { return d.CheckUpstream(ctx, up) })
	}

	var clusters []store.Cluster
	var clusterErr error
	if d.Clusters != nil && !(d.skipped(CheckCache) && d.skipped(CheckLink)) {
		clusters, clusterErr = d.Clusters(ctx)
	}
	caches := append([]CacheTarget(nil), d.Caches...)
	for _, c := range clusters {
		if c.Policy.Mode == store.ModeCache {
			caches = append(caches, CacheTarget{Cluster: c.Name, Dir: c.Policy.CacheDir, Max: c.Policy.CacheMax})
		}
	}
	if len(caches) == 0 {
		add(CheckCache, "", func() Check {
			return Check{Name: CheckCache, Verdict: VerdictSkip, Detail: "no cluster in cache mode here"}
		})
	}
	for _, ct := range caches {
		add(CheckCache, ct.Cluster, func() Check { return d.CheckCache(ct) })
	}
	switch {
	case clusterErr != nil:
		add(CheckLink, "", func() Check {
			return Check{Name: CheckLink, Verdict: VerdictFail, Detail: "cannot read the clusters: " + clusterErr.Error(),
				Fix: "check that the data directory holds a readable outpost.db (--data DIR)"}
		})
	case d.Clusters == nil:
		add(CheckLink, "", func() Check {
			return Check{Name: CheckLink, Verdict: VerdictSkip, Detail: "no management store here (run it on the management host, or give --data DIR)"}
		})
	case len(clusters) == 0:
		add(CheckLink, "", func() Check { return Check{Name: CheckLink, Verdict: VerdictSkip, Detail: "no clusters yet"} })
	}
	for _, c := range clusters {
		add(CheckLink, c.Name, func() Check { return CheckClusterLimits(c, clusters) })
	}
	return out
}

// doctorParseURL accepts http(s)://HOST[:PORT][/...] and returns the host
// and port (443 or 80 when absent).
func doctorParseURL(raw string) (*url.URL, string, string, error) {
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

// ---------------------------------------------------------------------------
// Network checks (agent side)

// CheckDNS resolves a relay's host name (seed 002 ch.4 step 4a). An IP
// address needs no lookup and is skipped.
func (d *Doctor) CheckDNS(ctx context.Context, host string) Check {
	c := Check{Name: CheckDNS, Target: host}
	if net.ParseIP(host) != nil {
		c.Verdict, c.Detail = VerdictSkip, "IP address: nothing to resolve"
		return c
	}
	ips, err := d.resolve(ctx, host)
	if err == nil && len(ips) == 0 {
		err = errors.New("no address")
	}
	if err != nil {
		c.Verdict = VerdictFail
		c.Detail = "does not resolve: " + doctorErr(err)
		c.Fix = fmt.Sprintf("make sure the DNS service is running on this host (check /etc/resolv.conf, or restart it), "+
			"or add \"IP %s\" to the hosts file, or use the relay's IP address in --proxy", host)
		return c
	}
	c.Verdict, c.Detail = VerdictOK, "resolves to "+strings.Join(ips, ", ")
	return c
}

// CheckPort dials HOST:PORT over TCP (seed 002 ch.4 step 4b; the seed's
// proxy ports are 80, 443 and 8080, Outpost's defaults 8443 and 8080).
func (d *Doctor) CheckPort(ctx context.Context, addr string) Check {
	return d.checkPort(ctx, addr, false)
}

// checkPort with useTLS completes a TLS handshake on the open port (its
// outcome is tls-pin's business) so the relay does not log an aborted one.
func (d *Doctor) checkPort(ctx context.Context, addr string, useTLS bool) Check {
	c := Check{Name: CheckPort, Target: addr}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		c.Verdict, c.Detail, c.Fix = VerdictFail, err.Error(), "give the relay as HOST:PORT"
		return c
	}
	start := time.Now()
	conn, err := d.dialResolved(ctx, "tcp", addr)
	if err != nil {
		c.Verdict = VerdictFail
		c.Detail = "TCP connect failed: " + doctorErr(err)
		c.Fix = fmt.Sprintf("open TCP port %s on %s in the firewall ACL / security group (inbound on the proxy host, outbound here) "+
			"and check that the relay listens on it (`outpost relay --listen`)", port, host)
		return c
	}
	elapsed := time.Since(start)
	if useTLS {
		tc := tls.Client(conn, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12})
		hctx, cancel := context.WithTimeout(ctx, d.timeout())
		if tc.HandshakeContext(hctx) == nil {
			tc.Close()
		}
		cancel()
	}
	conn.Close()
	took := "<1ms"
	if elapsed >= time.Millisecond {
		took = elapsed.Round(time.Millisecond).String()
	}
	c.Verdict, c.Detail = VerdictOK, "TCP connect in "+took
	return c
}

// CheckTLS compares the CA in the relay's certificate chain with the pin
// (--ca-sha256), exactly as the agent does (wire.PinnedTLS).
func (d *Doctor) CheckTLS(ctx context.Context, rawURL string) Check {
	c := Check{Name: CheckTLS, Target: rawURL}
	u, host, port, err := doctorParseURL(rawURL)
	if err != nil {
		c.Verdict, c.Detail = VerdictSkip, err.Error()
		return c
	}
	if u.Scheme != "https" {
		c.Verdict, c.Detail = VerdictSkip, "plain HTTP: no certificate to check"
		return c
	}
	conn, err := d.dialResolved(ctx, "tcp", net.JoinHostPort(host, port))
	if err != nil {
		c.Verdict, c.Detail = VerdictSkip, "cannot connect: "+doctorErr(err)
		return c
	}
	defer conn.Close()
	conf := &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}
	if net.ParseIP(host) == nil {
		conf.ServerName = host
	}
	tc := tls.Client(conn, conf)
	hctx, cancel := context.WithTimeout(ctx, d.timeout())
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		c.Verdict = VerdictFail
		c.Detail = "TLS handshake failed: " + doctorErr(err)
		c.Fix = "check that " + net.JoinHostPort(host, port) + " is an Outpost relay TLS listener (https://) and not plain HTTP or another service"
		return c
	}
	certs := tc.ConnectionState().PeerCertificates
	tc.Close()
	raw := make([][]byte, len(certs))
	for i, cert := range certs {
		raw[i] = cert.Raw
	}
	presented := doctorCAFingerprint(certs)
	pin := strings.ToLower(strings.TrimSpace(d.CASHA256))
	if pin == "" {
		c.Verdict = VerdictSkip
		c.Detail = "no --ca-sha256 given; the relay presents CA sha256 " + presented
		return c
	}
	if err := wire.PinnedTLS(pin).VerifyPeerCertificate(raw, nil); err != nil {
		c.Verdict = VerdictFail
		c.Detail = fmt.Sprintf("the relay presents CA sha256 %s, the pin is %s (%v)", doctorShort(presented), doctorShort(pin), err)
		c.Fix = "copy the install command again from the management host (`outpost installcmd create ...` prints the current --ca-sha256): " +
			"the relay was reinstalled with a new CA, or the pin was mistyped"
		return c
	}
	if err := wire.VerifyName(tls.ConnectionState{PeerCertificates: certs}, host, pin); err != nil {
		c.Verdict, c.Detail = VerdictFail, err.Error()
		c.Fix = "use the URL the install command names, or rejoin the relay with --public URL so its certificate names " + host
		return c
	}
	c.Verdict, c.Detail = VerdictOK, "the relay's CA matches the pin "+doctorShort(pin)+" and its certificate names "+host
	return c
}

// doctorCAFingerprint names the CA of a chain: the first certificate marked
// as a CA, else the last one.
func doctorCAFingerprint(certs []*x509.Certificate) string {
	if len(certs) == 0 {
		return "(none)"
	}
	for _, c := range certs {
		if c.IsCA {
			return wire.Fingerprint(c.Raw)
		}
	}
	return wire.Fingerprint(certs[len(certs)-1].Raw)
}

func doctorShort(h string) string {
	if len(h) > 16 {
		return h[:16] + "…"
	}
	return h
}

// doctorProbe is one GET of /healthz.
type doctorProbe struct {
	status     int
	body       []byte
	date       time.Time
	sent, recv time.Time
}

func (d *Doctor) probe(ctx context.Context, rawURL string) (doctorProbe, error) {
	var p doctorProbe
	u, _, _, err := doctorParseURL(rawURL)
	if err != nil {
		return p, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String()+wire.PathHealth, nil)
	if err != nil {
		return p, err
	}
	p.sent = d.now()
	resp, err := d.client(nil).Do(req)
	if err != nil {
		return p, err
	}
	defer resp.Body.Close()
	p.recv = d.now()
	p.status = resp.StatusCode
	p.body, _ = io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if t, err := http.ParseTime(resp.Header.Get("Date")); err == nil {
		p.date = t
	}
	return p, nil
}

// CheckHealth asks the relay's GET /healthz for 200 and status "ok".
func (d *Doctor) CheckHealth(ctx context.Context, rawURL string) Check {
	c := Check{Name: CheckHealth, Target: rawURL}
	host := rawURL
	if u, err := url.Parse(rawURL); err == nil && u.Hostname() != "" {
		host = u.Hostname()
	}
	p, err := d.probe(ctx, rawURL)
	if err != nil {
		c.Verdict = VerdictFail
		c.Detail = "no answer to " + wire.PathHealth + ": " + doctorErr(err)
		c.Fix = "start the relay on " + host + " (`outpost relay`) and check its log"
		return c
	}
	var h struct {
		Status   string `json:"status"`
		Version  string `json:"version"`
		Mode     string `json:"mode"`
		ProxyID  int64  `json:"proxy_id"`
		Cluster  string `json:"cluster"`
		CASHA256 string `json:"ca_sha256"`
	}
	jsonErr := json.Unmarshal(p.body, &h)
	if p.status != http.StatusOK || jsonErr != nil || h.Status != "ok" {
		c.Verdict = VerdictFail
		c.Detail = fmt.Sprintf("%s answered HTTP %d %q", wire.PathHealth, p.status, doctorTrim(string(p.body), 80))
		c.Fix = "check the relay's log on " + host + " (is this URL an Outpost relay? restart it with `outpost relay`)"
		return c
	}
	parts := []string{"status ok"}
	if h.Version != "" {
		parts = append(parts, "version "+h.Version)
	}
	if h.Mode != "" {
		parts = append(parts, "mode "+h.Mode)
	}
	if h.ProxyID != 0 {
		parts = append(parts, fmt.Sprintf("proxy %d of cluster %s", h.ProxyID, h.Cluster))
	} else if h.CASHA256 != "" {
		parts = append(parts, "management host")
	}
	c.Verdict, c.Detail = VerdictOK, strings.Join(parts, ", ")
	return c
}

// CheckClock compares the relay's HTTP Date header with this host's clock:
// warn beyond 5 s, fail beyond 60 s (the Date header has 1 s resolution).
func (d *Doctor) CheckClock(ctx context.Context, rawURL string) Check {
	c := Check{Name: CheckClock, Target: rawURL}
	p, err := d.probe(ctx, rawURL)
	if err != nil {
		c.Verdict, c.Detail = VerdictSkip, "no answer: "+doctorErr(err)
		return c
	}
	if p.date.IsZero() {
		c.Verdict, c.Detail = VerdictSkip, "the relay sent no Date header"
		return c
	}
	// Date has 1 s resolution (truncated): the relay's time was within the
	// second after it; compare the middle of both intervals.
	local := p.sent.Add(p.recv.Sub(p.sent) / 2)
	skew := p.date.Add(500 * time.Millisecond).Sub(local)
	abs := skew
	if abs < 0 {
		abs = -abs
	}
	dir := "ahead of"
	if skew < 0 {
		dir = "behind"
	}
	host := rawURL
	if u, err := url.Parse(rawURL); err == nil && u.Hostname() != "" {
		host = u.Hostname()
	}
	detail := fmt.Sprintf("the relay's clock is %s %s this host", abs.Round(time.Second), dir)
	fix := "enable NTP on this host and on " + host + " (`timedatectl set-ntp true`, or run chronyd/ntpd) so their clocks agree"
	switch {
	case abs > doctorSkewFail:
		c.Verdict, c.Detail, c.Fix = VerdictFail, detail+" (more than 60s)", fix
	case abs > doctorSkewWarn:
		c.Verdict, c.Detail, c.Fix = VerdictWarn, detail+" (more than 5s)", fix
	default:
		c.Verdict, c.Detail = VerdictOK, fmt.Sprintf("within %s of this host", max(abs.Round(time.Second), time.Second))
	}
	return c
}

// ---------------------------------------------------------------------------
// This host

// CheckLoad fails when CPU or memory use stays at 95 % or more (seed 002
// ch.4 step 5: "maintained at 95% or higher" keeps the agent from running
// properly): every one of LoadSamples readings, LoadEvery apart, must be
// that high, so a short burst does not count. The lowest readings are shown.
func (d *Doctor) CheckLoad() Check {
	c := Check{Name: CheckLoad, Target: "this host"}
	load := d.Load
	if load == nil {
		load = HostFS{}.Load
	}
	n, every := d.LoadSamples, d.LoadEvery
	if n <= 0 {
		n = 5
	}
	if every <= 0 {
		every = 200 * time.Millisecond
	}
	cpu, mem := load()
	for i := 1; i < n && (cpu >= doctorLoadMax || mem >= doctorLoadMax); i++ {
		time.Sleep(every)
		c2, m2 := load()
		cpu, mem = min(cpu, c2), min(mem, m2)
	}
	c.Detail = fmt.Sprintf("CPU %.0f %%, memory %.0f %%", cpu, mem)
	var fixes []string
	if cpu >= doctorLoadMax {
		fixes = append(fixes, "find the process using the CPU (`top`, sort with P) and stop or limit it, or add CPUs")
	}
	if mem >= doctorLoadMax {
		fixes = append(fixes, "find the process using the memory (`top`, sort with M) and stop it, or add memory")
	}
	if len(fixes) > 0 {
		c.Verdict = VerdictFail
		c.Detail += fmt.Sprintf(" in each of %d readings: at 95 %% or more the agent cannot run properly", n)
		c.Fix = strings.Join(fixes, "; ")
		return c
	}
	c.Verdict = VerdictOK
	return c
}

// CheckIdentity looks for a duplicated agent identity (seed 002 ch.1: an
// agent directory copied to another machine or baked into an image). With
// an identity (--dir) it checks in through the first healthy relay, as the
// agent does, and reads duplicate_identity; without a relay it asks the
// store. Without an identity but with a store it lists the fleet's
// duplicates.
func (d *Doctor) CheckIdentity(ctx context.Context, relays []string) Check {
	c := Check{Name: CheckIdentity, Target: d.IdentityDir}
	dupFix := "the agent directory was copied or baked into an image: delete it on this machine and install the agent again (re-enrol)"
	if d.IdentityErr != nil {
		c.Verdict = VerdictFail
		c.Detail = "the agent identity cannot be read: " + d.IdentityErr.Error()
		c.Fix = "delete " + filepath.Join(d.IdentityDir, IdentityFile) + " if present and run a current install command again " +
			"(`outpost agent run --proxy URL --key KEY --dir " + d.IdentityDir + "`): its log shows why enrolment fails"
		return c
	}
	if d.Identity == nil || d.Identity.AgentID == "" {
		if d.Duplicates == nil {
			c.Verdict, c.Detail = VerdictSkip, "no agent identity: give --dir AGENTDIR (or run on the management host)"
			return c
		}
		c.Target = "fleet"
		agents, total, err := d.Duplicates(ctx)
		if err != nil {
			c.Verdict, c.Detail = VerdictSkip, "cannot list agents: "+doctorErr(err)
			return c
		}
		if total == 0 {
			c.Verdict, c.Detail = VerdictOK, "no agent is flagged as a duplicate identity"
			return c
		}
		var names []string
		for _, a := range agents {
			names = append(names, a.Hostname+" ("+a.ID+")")
		}
		if total > len(agents) {
			names = append(names, fmt.Sprintf("%d more", total-len(agents)))
		}
		c.Verdict = VerdictFail
		c.Detail = fmt.Sprintf("%d agent(s) flagged as a duplicate identity: %s", total, strings.Join(names, ", "))
		c.Fix = "on each clone, " + store.DuplicateFix + " (list them: `outpost agent list --duplicate`)"
		return c
	}
	id := *d.Identity
	c.Target = id.AgentID
	if d.IdentityDir != "" {
		c.Target = d.IdentityDir
	}
	var fp string
	if d.Fingerprint != nil {
		fp, _ = d.Fingerprint()
	} else if h, err := (HostFS{}).Host(""); err == nil {
		fp = h.Fingerprint
	}
	if d.IdentityDir != "" {
		fp, _ = CheckinFingerprint(id, d.IdentityDir, fp) // what the agent of this directory presents
	}
	// The secret travels only over TLS when an https relay is available.
	relays = slices.Clone(relays)
	slices.SortStableFunc(relays, func(a, b string) int {
		return strings.Compare(strings.SplitN(b, ":", 2)[0], strings.SplitN(a, ":", 2)[0]) // https before http
	})
	var lastErr error
	for _, base := range relays {
		resp, status, msg, err := d.checkin(ctx, base, id, fp)
		if err != nil {
			lastErr = err
			continue
		}
		switch {
		case status == http.StatusUnauthorized:
			c.Verdict = VerdictFail
			c.Detail = fmt.Sprintf("the relay does not recognise agent %s (deleted, or its credentials were replaced)", id.AgentID)
			c.Fix = "delete the agent directory and install the agent again with a current install command (re-enrol)"
		case status == http.StatusForbidden && strings.Contains(msg, "TLS"):
			lastErr = fmt.Errorf("%s: %s", base, msg)
			continue
		case status == http.StatusForbidden:
			c.Verdict = VerdictFail
			c.Detail = fmt.Sprintf("the relay refuses agent %s: %s", id.AgentID, doctorTrim(msg, 160))
			c.Fix = "use the proxy URLs of the agent's own account and cluster (from its install command), or install the agent again"
		case status != http.StatusOK:
			lastErr = fmt.Errorf("check-in answered HTTP %d", status)
			continue
		case resp.Clone:
			c.Verdict = VerdictFail
			c.Detail = fmt.Sprintf("this directory is a copy of agent %s's (another machine or directory holds the enrolled identity)", id.AgentID)
			c.Fix = dupFix
		case resp.DuplicateID:
			c.Verdict = VerdictFail
			c.Detail = fmt.Sprintf("the management host reports agent %s as a duplicate identity (a copy of it checked in)", id.AgentID)
			c.Fix = dupFix
		default:
			c.Verdict, c.Detail = VerdictOK, fmt.Sprintf("agent %s checks in and is not duplicated", id.AgentID)
		}
		return c
	}
	if d.Agent != nil {
		a, err := d.Agent(ctx, id.AgentID)
		switch {
		case store.ErrorCode(err) == store.ENotFound:
			c.Verdict = VerdictFail
			c.Detail = fmt.Sprintf("agent %s is not in the store (deleted, or enrolled with another management host)", id.AgentID)
			c.Fix = "delete the agent directory and install the agent again with a current install command (re-enrol)"
		case err != nil:
			c.Verdict, c.Detail = VerdictSkip, "cannot read the store: "+doctorErr(err)
		case a.Duplicate:
			c.Verdict = VerdictFail
			c.Detail = fmt.Sprintf("the store flags agent %s (%s) as a duplicate identity", a.ID, a.Hostname)
			c.Fix = dupFix
		default:
			c.Verdict, c.Detail = VerdictOK, fmt.Sprintf("agent %s (%s) is not duplicated", a.ID, a.Hostname)
		}
		return c
	}
	c.Verdict = VerdictSkip
	c.Detail = "no relay took the check-in, so the identity could not be checked"
	if lastErr != nil {
		c.Detail += ": " + doctorErr(lastErr)
	}
	return c
}

// checkin does one agent check-in without waiting (Wait 0): commands it
// may receive stay pending until the agent acknowledges them.
func (d *Doctor) checkin(ctx context.Context, base string, id Identity, fp string) (wire.CheckinResponse, int, string, error) {
	var resp wire.CheckinResponse
	body, _ := json.Marshal(wire.CheckinRequest{Fingerprint: fp})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(base, "/")+wire.PathCheckin, bytes.NewReader(body))
	if err != nil {
		return resp, 0, "", err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+id.AgentID+":"+id.Secret)
	// The secret is sent: verify the relay as the agent does.
	hc := d.client(nil)
	hc.Transport = wire.PinTransport(hc.Transport.(*http.Transport), d.CASHA256)
	r, err := hc.Do(req)
	if err != nil {
		return resp, 0, "", err
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if r.StatusCode != http.StatusOK {
		var e wire.Error
		json.Unmarshal(b, &e)
		return resp, r.StatusCode, e.Message, nil
	}
	if err := json.Unmarshal(b, &resp); err != nil {
		return resp, r.StatusCode, "", fmt.Errorf("check-in answer: %w", err)
	}
	return resp, r.StatusCode, "", nil
}

// doctorKeyPrefix is what the store keeps of an install key (its first 10
// characters).
func doctorKeyPrefix(key string) string {
	key = strings.TrimSpace(key)
	if len(key) > 10 {
		return key[:10]
	}
	return key
}

// CheckKey looks the install key up on the management host: the store keeps
// only hashes and the first 10 characters, so commands are matched by that
// prefix. Expired or revoked commands enrol nothing.
func (d *Doctor) CheckKey(ctx context.Context) Check {
	prefix := doctorKeyPrefix(d.Key)
	c := Check{Name: CheckKey, Target: prefix}
	newCmd := func(cluster string) string {
		if cluster == "" {
			return "create a new install command (`outpost installcmd create`) and run it on the host"
		}
		return "create a new install command (`outpost installcmd create --cluster " + cluster + "`) and run it on the host"
	}
	switch {
	case d.Key == "":
		c.Verdict, c.Detail = VerdictSkip, "no --key given"
		return c
	case d.InstallCommands == nil:
		c.Verdict, c.Detail = VerdictSkip, "no management store here: run `outpost doctor --key KEY` on the management host"
		return c
	case len(strings.TrimSpace(d.Key)) < 10:
		c.Verdict, c.Detail, c.Fix = VerdictFail, "too short to be an install key", newCmd("")
		return c
	}
	cmds, err := d.InstallCommands(ctx)
	if err != nil {
		c.Verdict, c.Detail = VerdictSkip, "cannot read the store: "+doctorErr(err)
		return c
	}
	var match []store.InstallCommand
	for _, ic := range cmds {
		if ic.KeyPrefix == prefix {
			match = append(match, ic)
		}
	}
	if len(match) == 0 {
		c.Verdict = VerdictFail
		c.Detail = "no install command has this key (mistyped, or created on another management host)"
		c.Fix = newCmd("")
		return c
	}
	where := func(ic store.InstallCommand) string {
		if ic.Cluster == "" {
			return fmt.Sprintf("install command %d (direct)", ic.ID)
		}
		return fmt.Sprintf("install command %d (cluster %s)", ic.ID, ic.Cluster)
	}
	for _, ic := range match {
		if !ic.Revoked && !ic.Expired {
			c.Verdict = VerdictOK
			c.Detail = fmt.Sprintf("%s is valid until %s, used %d time(s)", where(ic), ic.ExpiresAt.UTC().Format(time.RFC3339), ic.Uses)
			return c
		}
	}
	ic := match[0]
	c.Verdict = VerdictFail
	if ic.Revoked {
		c.Detail = where(ic) + " was revoked: it enrols nothing"
	} else {
		c.Detail = fmt.Sprintf("%s expired at %s: it enrols nothing", where(ic), ic.ExpiresAt.UTC().Format(time.RFC3339))
	}
	c.Fix = newCmd(ic.Cluster)
	return c
}

// ---------------------------------------------------------------------------
// Proxy host

// CheckUpstream dials where this relay sends data: the management host it
// joined, or the collector URL of the policy.
func (d *Doctor) CheckUpstream(ctx context.Context, rawURL string) Check {
	c := Check{Name: CheckUpstream, Target: rawURL}
	_, host, port, err := doctorParseURL(rawURL)
	if err != nil {
		c.Verdict, c.Detail = VerdictFail, err.Error()
		c.Fix = "set an http:// or https:// upstream URL (`outpost cluster policy NAME --upstream URL`)"
		return c
	}
	addr := net.JoinHostPort(host, port)
	conn, err := d.dialResolved(ctx, "tcp", addr)
	if err != nil {
		c.Verdict = VerdictFail
		c.Detail = "TCP connect to " + addr + " failed: " + doctorErr(err)
		c.Fix = fmt.Sprintf("allow outbound TCP %s from this proxy host (firewall ACL / security group) and check that the management host or collector runs there", addr)
		return c
	}
	conn.Close()
	c.Verdict, c.Detail = VerdictOK, "TCP connect to "+addr+" works"
	return c
}

// CheckCache compares the free space of a cache directory's volume with
// what the ring may still grow by (its cap minus what it holds): below it,
// the disk fills before the oldest data is overwritten (seed 000: 10 GB).
func (d *Doctor) CheckCache(ct CacheTarget) Check {
	c := Check{Name: CheckCache, Target: ct.Cluster}
	dir := ct.Dir
	if dir == "" {
		dir = store.DefaultCacheDir
	}
	if !filepath.IsAbs(dir) && d.DataDir != "" {
		dir = filepath.Join(d.DataDir, dir)
	}
	maxBytes := ct.Max
	if maxBytes <= 0 {
		maxBytes = store.MaxCacheBytes
	}
	used := doctorDirSize(dir)
	// The directory may not exist yet: measure the volume it will be on.
	probe := dir
	for {
		if _, err := os.Stat(probe); err == nil {
			break
		}
		parent := filepath.Dir(probe)
		if parent == probe {
			break
		}
		probe = parent
	}
	freeFn := d.FreeBytes
	if freeFn == nil {
		freeFn = doctorDiskFree
	}
	free, err := freeFn(probe)
	if err != nil {
		c.Verdict, c.Detail = VerdictSkip, "cannot read the free space of "+probe+": "+doctorErr(err)
		return c
	}
	need := max(maxBytes-used, 0)
	c.Detail = fmt.Sprintf("%s free for %s (cap %s, %s used)", store.FormatBytes(int64(min(free, math.MaxInt64))), dir,
		store.FormatBytes(maxBytes), store.FormatBytes(used))
	if free < uint64(need) {
		c.Verdict = VerdictWarn
		c.Detail += ": the disk fills before the oldest data is overwritten"
		name := ct.Cluster
		if name == "" {
			name = "NAME"
		}
		c.Fix = fmt.Sprintf("free %s on that volume, or move the cache or lower its cap: `outpost cluster policy %s --cache-dir DIR --cache-max %s`",
			store.FormatBytes(need-int64(free)), name, doctorSizeArg(used+int64(free)))
		return c
	}
	c.Verdict = VerdictOK
	return c
}

// doctorSizeArg renders a cap that fits as a --cache-max value (whole MB).
func doctorSizeArg(n int64) string {
	mb := n / 1_000_000
	if mb >= 1000 && mb%1000 == 0 {
		return fmt.Sprintf("%dGB", mb/1000)
	}
	return fmt.Sprintf("%dMB", max(mb, 1))
}

func doctorDirSize(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, e fs.DirEntry, err error) error {
		if err == nil && e.Type().IsRegular() {
			if info, err := e.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}

// doctorDiskFree is the space available to this user on dir's volume.
func doctorDiskFree(dir string) (uint64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return st.Bavail * uint64(st.Bsize), nil
}

// CheckClusterLimits reports a cluster's seed 000 warnings (store.Warnings):
// limits above 60 % of the proxy host's link, 10 Kbit/s reserved per host,
// 6,000 hosts per proxy. all is every cluster, to name the account when a
// cluster name is used by several.
func CheckClusterLimits(cl store.Cluster, all []store.Cluster) Check {
	c := Check{Name: CheckLink, Target: cl.Name}
	p := cl.Policy
	w := store.Warnings(p, cl.Agents, cl.Proxies, cl.ProxiesOnline)
	name := cl.Name
	for _, o := range all {
		if o.Name == cl.Name && o.ID != cl.ID {
			name += " --account " + cl.Account
			break
		}
	}
	if len(w) == 0 {
		if p.LinkBps == 0 {
			c.Verdict = VerdictSkip
			c.Detail = "link capacity unknown: set it to check the 60 % rule (`outpost cluster policy " + name + " --link 100Mbit`)"
			return c
		}
		c.Verdict = VerdictOK
		if p.Mode == store.ModeForward {
			c.Detail = fmt.Sprintf("bandwidth %s within 60 %% of the %s link, %d agent(s)", store.FormatBandwidth(p.BandwidthBps),
				doctorBits(p.LinkBps), cl.Agents)
		} else {
			c.Detail = fmt.Sprintf("%d agent(s) within 60 %% of the %s link", cl.Agents, doctorBits(p.LinkBps))
		}
		return c
	}
	need := int64(cl.Agents) * store.ReservedBpsPerHost
	share := int64(store.LinkShareWarn * float64(p.LinkBps))
	var fixes []string
	if p.Mode == store.ModeForward && p.LinkBps > 0 && (p.BandwidthBps == 0 || float64(p.BandwidthBps*8) > store.LinkShareWarn*float64(p.LinkBps)) {
		fixes = append(fixes, fmt.Sprintf("lower the bandwidth limit to 60 %% of the link: `outpost cluster policy %s --bandwidth %s`", name, doctorBitsArg(share)))
	}
	if p.LinkBps > 0 && float64(need) > store.LinkShareWarn*float64(p.LinkBps) {
		fixes = append(fixes, "move hosts to another cluster or give the proxy host a faster link (10 Kbit/s per host)")
	}
	if p.Mode == store.ModeForward && p.BandwidthBps > 0 && need > p.BandwidthBps*8 {
		fixes = append(fixes, fmt.Sprintf("raise the bandwidth limit to at least %s: `outpost cluster policy %s --bandwidth %s`", doctorBits(need), name, doctorBitsArg(need)))
	}
	if cl.Agents > 0 && cl.Agents > cl.ProxiesOnline*store.HostsPerProxy {
		fixes = append(fixes, "add or start proxy servers (6,000 hosts each): `outpost proxy deploy --cluster "+name+" --manual`")
	}
	c.Verdict = VerdictWarn
	c.Detail = strings.Join(w, "; ")
	c.Fix = strings.Join(fixes, "; ")
	return c
}

func doctorBits(bits int64) string { return store.FormatBandwidth(bits / 8) }

// doctorBitsArg renders bits/s as a --bandwidth value (60Mbit, 480Kbit),
// rounded down so it stays within the share.
func doctorBitsArg(bits int64) string {
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

// ---------------------------------------------------------------------------

// doctorErr shortens network errors to their cause ("connection refused").
func doctorErr(err error) string {
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		if dnsErr.IsNotFound {
			return "no such host"
		}
		return dnsErr.Err
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Err != nil {
		msg := opErr.Err.Error()
		if i := strings.LastIndex(msg, ": "); i >= 0 {
			msg = msg[i+2:]
		}
		return msg
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "timed out"
	}
	return doctorTrim(err.Error(), 160)
}

func doctorTrim(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
