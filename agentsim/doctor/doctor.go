package doctor

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"outpost/agentsim"
)

// Verdict is how a check came out.
type Verdict string

// Verdicts of a check.
const (
	VerdictOK   Verdict = "ok"
	VerdictWarn Verdict = "warn"
	VerdictFail Verdict = "fail"
	VerdictSkip Verdict = "skip"
)

// Check names: stable identifiers for --skip and JSON consumers.
const (
	CheckDNS      = "dns"         // seed 002 ch.4 step 4a
	CheckPort     = "port"        // seed 002 ch.4 step 4b, seed 000 ports 80/443/8080
	CheckTLS      = "tls-pin"     // the relay's CA against --ca-sha256
	CheckHealth   = "health"      // GET /healthz
	CheckClock    = "clock"       // the relay's Date header against this host
	CheckLoad     = "load"        // seed 002 ch.4 step 5: CPU or memory at 95 %
	CheckIdentity = "identity"    // seed 002 ch.1: cloned agent directory
	CheckKey      = "install-key" // expired or revoked install command
	CheckUpstream = "upstream"    // proxy host: the management host / collector
	CheckCache    = "cache-space" // seed 000: cache directory, 10 GB at most
	CheckLink     = "link-limits" // seed 000: limits within 60 % of the link
	loadMax       = 95.0          // percent (seed 002 ch.4 step 5)
	skewWarn      = 5 * time.Second
	skewFail      = 60 * time.Second
)

// CheckNames lists every check in the order Run reports them.
var CheckNames = []string{CheckDNS, CheckPort, CheckTLS, CheckHealth, CheckClock, CheckLoad, CheckIdentity,
	CheckKey, CheckUpstream, CheckCache, CheckLink}

// Check is one verdict of the doctor.
type Check struct {
	Name    string  `json:"name"`             // one of CheckNames
	Target  string  `json:"target,omitempty"` // host, URL, cluster... the check is about
	Verdict Verdict `json:"verdict"`          // ok | warn | fail | skip
	Detail  string  `json:"detail"`
	Fix     string  `json:"fix,omitempty"` // one line, when the verdict is warn or fail
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
	Identity    *agentsim.Identity // from the agent directory (--dir), nil when none
	IdentityDir string             // where Identity was read, for messages
	IdentityErr error              // the identity file exists but cannot be used

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
	Load        func() (cpu, mem float64) // percent; default hostfacts.HostFS{}.Load
	LoadSamples int                       // Load readings, all at 95 % or more to fail; 0 = 5
	LoadEvery   time.Duration             // gap between readings; 0 = 200 ms
	FreeBytes   func(dir string) (uint64, error)
	Fingerprint func() (string, error) // this machine's identity; default hostfacts.HostFS{}.Host

	// What the management store says, computed by the caller where DATA
	// holds one; nil elsewhere. Agent returns ErrUnknownAgent for an agent
	// the store does not have.
	Agent           func(ctx context.Context, id string) (Agent, error)
	Duplicates      func(ctx context.Context) (agents []Agent, total int, err error)
	InstallCommands func(ctx context.Context) ([]InstallCommand, error)
	Clusters        func(ctx context.Context) ([]Cluster, error)
}

// Summary counts verdicts.
type Summary struct {
	Checks   int `json:"checks"` // checks that ran (skipped ones are not counted)
	OK       int `json:"ok"`
	Warnings int `json:"warnings"`
	Failures int `json:"failures"`
	Skipped  int `json:"skipped"`
}

// Summarize counts the verdicts of checks.
func Summarize(checks []Check) Summary {
	var s Summary
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
func (s Summary) String() string {
	return fmt.Sprintf("%d checks: %d ok, %d warnings, %d failures", s.Checks, s.OK, s.Warnings, s.Failures)
}

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

// errText shortens network errors to their cause ("connection refused").
func errText(err error) string {
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
	return trim(err.Error(), 160)
}

func trim(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
