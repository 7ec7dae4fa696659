package main

// `outpost doctor`: the troubleshooting steps of seed 002 chapter 4 (agent
// offline) and the proxy-host prerequisites of seed 000, run as checks with
// a verdict and a one-line fix each. The checks live in agentsim/doctor,
// which does not import the store; this file finds what to check on this
// host (the relay URLs and CA pin, the agent identity, a joined relay's
// identity) and, where DATA holds the management store, reads it into the
// doctor's plain types (doctorstore.go).

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"outpost/agentsim"
	"outpost/agentsim/doctor"
	"outpost/relay"
	"outpost/relay/wire"
)

func init() { register("", newDoctorCmd) }

// doctorOpts are the command's flags.
type doctorOpts struct {
	proxies   []string
	caPin     string
	key       string
	dir       string
	upstreams []string
	skip      []string
	timeout   time.Duration
}

// doctorJoined is the part of a joined relay's DATA/relay.json the doctor
// reads (the file also holds the relay's secret, which is not used).
type doctorJoined struct {
	Manager string      `json:"manager"`
	Cluster string      `json:"cluster"`
	Policy  wire.Policy `json:"policy"`
}

func newDoctorCmd(a *app) *cobra.Command {
	var o doctorOpts
	cmd := &cobra.Command{
		Use:   "doctor [--proxy URL[,URL]] [--ca-sha256 H] [--key KEY] [--dir AGENTDIR] [--upstream URL] [--skip CHECK]",
		Short: "Check why an agent or proxy server is offline, with a fix for each problem",
		Long: `Run the troubleshooting steps for an agent that goes offline (seed 002,
chapter 4) and the proxy-host prerequisites (seed 000) as checks. Each check
gets a verdict (ok, warn, fail, skip) and, when not ok, a one-line fix.

On an agent host:
  dns          each relay host name resolves (else: DNS service, hosts file, IP)
  port         each relay port answers TCP (else: firewall ACL / security group)
  tls-pin      the relay's CA matches --ca-sha256
  health       GET /healthz answers 200 "ok"
  clock        the relay's clock is within 5 s (warn) / 60 s (fail) of this host
  load         CPU or memory does not stay at 95 % or more (5 readings over about 1.5 s)
  identity     the agent in --dir is not a duplicated identity (copied directory or image):
               one check-in through the relay with this machine's fingerprint, so run
               it on the agent's own machine
On the management host (DATA holds the store):
  install-key  --key is neither expired nor revoked
  identity     no agent of the fleet is flagged as a duplicate identity
  link-limits  cluster limits within 60 % of the link, 10 Kbit/s per host, 6,000 hosts per proxy
On a proxy host (a relay runs from DATA):
  upstream     the management host (or collector) answers TCP
  cache-space  a cache-mode directory's volume has room for its cap (10 GB at most)

Without --proxy the relays come from the agent identity (--dir, default the
agent directory of 'outpost agent run'), else from the relay running from
DATA (DATA/run/relay.json). Without --ca-sha256 the pin is the running
relay's, else DATA/tls/ca.pem's. The last line reads
"N checks: X ok, Y warnings, Z failures" (skipped checks are not counted).
Exit status 1 when a check failed, 0 otherwise (warnings included).`,
		Args: nargs(0, 0, ""),
		RunE: func(cmd *cobra.Command, _ []string) error { return runDoctor(cmd, a, o) },
	}
	f := cmd.Flags()
	f.StringSliceVar(&o.proxies, "proxy", nil, "relay URL(s) to check, comma-separated or repeated")
	f.StringVar(&o.caPin, "ca-sha256", "", "expected SHA-256 fingerprint of the fleet CA (from the install command)")
	f.StringVar(&o.key, "key", "", "install key to look up (on the management host)")
	f.StringVar(&o.dir, "dir", "", "agent directory holding identity.json (default that of 'outpost agent run')")
	f.StringSliceVar(&o.upstreams, "upstream", nil, "upstream URL(s) this proxy host sends to (default the joined management host)")
	f.StringSliceVar(&o.skip, "skip", nil, "checks not to run, comma-separated: "+strings.Join(doctor.CheckNames, ", "))
	f.DurationVar(&o.timeout, "timeout", 3*time.Second, "time limit of each network operation")
	return cmd
}

func runDoctor(cmd *cobra.Command, a *app, o doctorOpts) error {
	// Flags first: bad usage is exit 2 before anything is touched.
	if err := o.check(); err != nil {
		return err
	}
	data := a.dataDir()
	d := &doctor.Doctor{
		Proxies:  o.proxies,
		CASHA256: o.caPin,
		Key:      strings.TrimSpace(o.key),
		DataDir:  data,
		Skip:     o.skip,
		Timeout:  o.timeout,
	}
	findIdentity(d, o.dir)
	if path := os.Getenv("OUTPOST_MACHINE_ID_FILE"); path != "" {
		d.Fingerprint = func() (string, error) { return fingerprintFromFile(path) }
	}
	findRelay(a, d)
	if err := findJoined(d, o.upstreams); err != nil {
		return err
	}

	// The management store, only where one exists: the doctor never
	// creates a data directory or a database.
	if _, err := os.Stat(filepath.Join(data, dbFileName)); err == nil {
		db, err := a.store()
		if err != nil {
			return err
		}
		readStore(d, db)
	}

	checks := d.Run(cmd.Context())
	sum := doctor.Summarize(checks)
	if a.jsonOut {
		if err := a.printJSON(struct {
			Checks  []doctor.Check `json:"checks"`
			Summary doctor.Summary `json:"summary"`
		}{nonNil(checks), sum}); err != nil {
			return err
		}
	} else {
		printDoctor(a, checks, sum)
	}
	if sum.Failures > 0 {
		return failf("%d of %d checks failed", sum.Failures, sum.Checks)
	}
	return nil
}

// check validates and normalises the flags.
func (o *doctorOpts) check() error {
	var proxies []string
	for _, p := range o.proxies {
		p = strings.TrimRight(strings.TrimSpace(p), "/")
		if p == "" || slices.Contains(proxies, p) {
			continue
		}
		if _, err := doctorURL(p); err != nil {
			return usageErrorf("invalid --proxy %q: want an https:// or http:// URL", p)
		}
		proxies = append(proxies, p)
	}
	o.proxies = proxies
	for _, u := range o.upstreams {
		if _, err := doctorURL(u); err != nil {
			return usageErrorf("invalid --upstream %q: want an https:// or http:// URL", u)
		}
	}
	o.caPin = strings.ToLower(strings.TrimSpace(o.caPin))
	if b, err := hex.DecodeString(o.caPin); o.caPin != "" && (err != nil || len(b) != 32) {
		return usageErrorf("invalid --ca-sha256 %q: want 64 hex characters", o.caPin)
	}
	for _, s := range o.skip {
		if !slices.Contains(doctor.CheckNames, s) {
			return usageErrorf("invalid --skip %q: want %s", s, strings.Join(doctor.CheckNames, ", "))
		}
	}
	if o.timeout <= 0 {
		return usageErrorf("invalid --timeout %s: must be positive", o.timeout)
	}
	return nil
}

// findIdentity reads the agent identity: --dir, else the reference
// agent's default directory when it holds one.
func findIdentity(d *doctor.Doctor, flagDir string) {
	dir := agentDir(flagDir)
	if _, err := os.Stat(filepath.Join(dir, agentsim.IdentityFile)); err == nil || flagDir != "" {
		d.IdentityDir = dir
		id, ok, err := (&agentsim.DiskIdentity{Dir: dir}).Load()
		switch {
		case err != nil:
			d.IdentityErr = err
		case !ok:
			d.IdentityErr = fmt.Errorf("no %s in %s: the agent never enrolled", agentsim.IdentityFile, dir)
		default:
			d.Identity = &id
		}
	}
}

// findRelay fills the relay URLs and the pin from a relay running from
// DATA (management host or proxy host) where the flags and the identity
// gave none.
func findRelay(a *app, d *doctor.Doctor) {
	run, runErr := relay.ReadRunFile(d.DataDir, "relay")
	if len(d.Proxies) == 0 && d.Identity != nil {
		d.Proxies = d.Identity.Proxies
	}
	if len(d.Proxies) == 0 && runErr == nil {
		d.Proxies = run.URLs
	}
	if d.CASHA256 == "" && runErr == nil {
		d.CASHA256 = run.CASHA256
	}
	if d.CASHA256 == "" {
		if pin, err := a.caPin(); err == nil {
			d.CASHA256 = pin
		}
	}
}

// findJoined reads a joined relay's identity (DATA/relay.json): its
// upstream and cache directory.
func findJoined(d *doctor.Doctor, upstreams []string) error {
	data := d.DataDir
	d.Upstreams = upstreams
	if b, err := os.ReadFile(filepath.Join(data, "relay.json")); err == nil {
		var j doctorJoined
		if err := json.Unmarshal(b, &j); err != nil {
			return fmt.Errorf("read %s: %w", filepath.Join(data, "relay.json"), err)
		}
		if len(upstreams) == 0 {
			for _, u := range []string{j.Manager, j.Policy.Upstream} {
				if u != "" && !slices.Contains(d.Upstreams, u) {
					d.Upstreams = append(d.Upstreams, u)
				}
			}
		}
		if j.Policy.Mode == wire.ModeCache {
			d.Caches = append(d.Caches, doctorCache(j.Cluster, j.Policy.CacheDir, j.Policy.CacheMax))
		}
	}
	return nil
}

// doctorURL checks an http(s) URL with a host.
func doctorURL(s string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Hostname() == "" {
		return nil, fmt.Errorf("%q is not an http(s) URL", s)
	}
	return u, nil
}

// printDoctor writes the table, the fixes of what is not ok, and the
// summary line.
func printDoctor(a *app, checks []doctor.Check, sum doctor.Summary) {
	label := func(c doctor.Check) string {
		if c.Target == "" {
			return c.Name
		}
		return c.Name + " " + c.Target
	}
	rows := make([][]string, 0, len(checks))
	for _, c := range checks {
		rows = append(rows, []string{label(c), string(c.Verdict), c.Detail})
	}
	a.printTable([]string{"CHECK", "VERDICT", "DETAIL"}, rows)
	var fixes []string
	for _, c := range checks {
		if c.Fix != "" {
			fixes = append(fixes, "  "+clean(label(c))+": "+clean(c.Fix))
		}
	}
	if len(fixes) > 0 {
		a.printf("\nFixes:\n%s\n", strings.Join(fixes, "\n"))
	}
	a.printf("\n%s\n", sum)
}
