package main

// `outpost agent run`: the reference agent. It enrols once with an install
// key, keeps its identity and its undelivered events in its own directory,
// holds the long-poll check-in through the relays it is given, reports the
// real facts of this machine, and obeys the management host's commands
// (bind, unbind, uninstall, deploy-proxy).

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"outpost/agentsim"
	"outpost/agentsim/hostfacts"
	"outpost/relay/logs"
	"outpost/relay/selfupdate"
	"outpost/relay/wire"
)

func init() { register("agent", newAgentRunCmd) }

const (
	agentDefaultDir  = "/var/lib/outpost-agent"
	agentHomeDirName = ".outpost-agent"
	agentBufferDir   = "buffer"
	agentRelayDir    = "relay"
	agentUpgradeDir  = "upgrade"           // selfupdate's trial state
	agentKeysFile    = "release-keys.json" // the release keys this agent trusts
)

// agentRun holds the flags of `agent run`.
type agentRun struct {
	a *app

	proxies        []string
	key            string
	caPin          string
	dir            string
	machineIDFile  string
	inventoryEvery time.Duration
	eventEvery     time.Duration
	pollWait       time.Duration
	deployListen   []string
	unitDir        string // where 'service install agent' wrote the unit
	systemdDir     string

	up *agentUpgrader

	log      *slog.Logger // stderr and, during a trial, trialLog; set by run
	trialLog logs.Switch  // the trial log of a new version (selfupdate)
}

// agentLogTime dates the agent's lines: it runs for months.
const agentLogTime = "2006-01-02 15:04:05"

func newAgentRunCmd(a *app) *cobra.Command {
	r := &agentRun{a: a}
	cmd := &cobra.Command{
		Use:   "run [--proxy URL[,URL] --key KEY --ca-sha256 H] [--dir DIR]",
		Short: "Run the reference agent on this machine",
		Long:  agentRunLong,
		Args:  nargs(0, 0, ""),
		RunE:  func(cmd *cobra.Command, _ []string) error { return r.run(cmd) },
	}
	f := cmd.Flags()
	f.StringSliceVar(&r.proxies, "proxy", nil, "relay URL(s), comma-separated or repeated, tried in turn")
	f.StringVar(&r.key, "key", "", "install key (verification key) for the first enrolment")
	f.StringVar(&r.caPin, "ca-sha256", "", "SHA-256 fingerprint of the management host's CA to pin")
	f.StringVar(&r.dir, "dir", "", "agent directory (default $OUTPOST_AGENT_DIR, else /var/lib/outpost-agent if writable, else ~/.outpost-agent)")
	// Test and simulation knobs.
	f.StringVar(&r.machineIDFile, "machine-id-file", "", "read the machine id from this file instead of /etc/machine-id (env OUTPOST_MACHINE_ID_FILE)")
	f.DurationVar(&r.inventoryEvery, "inventory-every", 0, "inventory interval (0 = the management host's setting)")
	f.DurationVar(&r.eventEvery, "event-every", time.Minute, "gap between status events (0 = none)")
	f.DurationVar(&r.pollWait, "poll-wait", 30*time.Second, "long-poll hold asked for (the relay caps it)")
	f.StringArrayVar(&r.deployListen, "deploy-listen", nil, "--listen values for a relay started by deploy-proxy (default the relay's)")
	f.StringVar(&r.unitDir, "unit-dir", defaultUnitDir, "directory of the unit 'service install agent' wrote (removed on uninstall)")
	f.StringVar(&r.systemdDir, "systemd-dir", defaultSystemdDir, "directory whose presence means systemd runs this host")
	a.logFlag(cmd)
	for _, name := range []string{"machine-id-file", "inventory-every", "event-every", "poll-wait", "deploy-listen", "unit-dir", "systemd-dir"} {
		f.MarkHidden(name)
	}
	return cmd
}

// agentDir resolves the agent directory: --dir, $OUTPOST_AGENT_DIR,
// /var/lib/outpost-agent when writable, ~/.outpost-agent.
func agentDir(flag string) string {
	return pickDir(flag, "OUTPOST_AGENT_DIR", agentDefaultDir, agentHomeDirName, "outpost-agent")
}

// clusterAttr names the cluster an identity belongs to, or says the agent
// connects directly.
func clusterAttr(cluster string) slog.Attr {
	if cluster == "" {
		return slog.String("connection", "direct")
	}
	return slog.String("cluster", cluster)
}

// proxyList validates --proxy.
func (r *agentRun) proxyList() ([]string, error) {
	var out []string
	for _, p := range r.proxies {
		p = strings.TrimRight(strings.TrimSpace(p), "/")
		if p == "" {
			continue
		}
		u, err := url.Parse(p)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return nil, usageErrorf("invalid --proxy %q: want an https:// or http:// URL", p)
		}
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		return nil, usageErrorf("missing --proxy URL")
	}
	return out, nil
}

// agentSession is what one `agent run` opened in its directory.
type agentSession struct {
	dir      string
	ids      *agentsim.DiskIdentity
	buf      *agentsim.DiskBuffer
	closeBuf func() error
	client   *agentsim.Client
	ag       *agentsim.Agent
}

func (r *agentRun) run(cmd *cobra.Command) error {
	switch {
	case r.inventoryEvery < 0:
		return usageErrorf("invalid --inventory-every %s: must not be negative", r.inventoryEvery)
	case r.eventEvery < 0:
		return usageErrorf("invalid --event-every %s: must not be negative", r.eventEvery)
	case r.pollWait <= 0:
		return usageErrorf("invalid --poll-wait %s: must be positive", r.pollWait)
	}
	if r.machineIDFile == "" {
		r.machineIDFile = os.Getenv("OUTPOST_MACHINE_ID_FILE")
	}
	r.log = logs.Also(r.a.loggerTo(r.a.stderr, agentLogTime), &r.trialLog, logs.Options{TimeLayout: agentLogTime})
	s, err := r.open(agentDir(r.dir))
	if err != nil {
		return err
	}
	defer s.closeBuf()

	ctx := cmd.Context()
	mctx, stopMonitor := context.WithCancel(ctx)
	var mwg sync.WaitGroup
	mwg.Add(1)
	go func() { defer mwg.Done(); r.monitor(mctx, s.ag, s.client, s.buf) }()
	defer func() { stopMonitor(); mwg.Wait() }()

	r.up.begin()
	defer r.trialLog.Set(nil)
	r.restartDeployedRelay(s.dir)
	return r.loop(ctx, s)
}

// open settles the relay list, reads this machine's facts, opens the
// identity and the event buffer in dir and builds the agent.
func (r *agentRun) open(dir string) (*agentSession, error) {
	proxies, err := r.settle(dir)
	if err != nil {
		return nil, err
	}
	host, err := r.host()
	if err != nil {
		return nil, err
	}
	ids, err := agentsim.OpenDiskIdentity(dir)
	if err != nil {
		return nil, err
	}
	buf, err := agentsim.OpenDiskBuffer(filepath.Join(dir, agentBufferDir))
	if err != nil {
		return nil, err
	}
	s := &agentSession{dir: dir, ids: ids, buf: buf, closeBuf: sync.OnceValue(buf.Close)}
	s.client = agentsim.NewClient(agentsim.ClientOptions{Proxies: proxies, CASHA256: r.caPin})
	s.ag = &agentsim.Agent{
		Client:         s.client,
		Key:            r.key,
		Host:           host,
		Inventory:      r.inventory,
		Identity:       &agentIdentity{DiskIdentity: ids, pin: r.caPin, log: r.log},
		Buffer:         buf,
		EventEvery:     r.eventEvery,
		EventData:      statusEvent,
		Wait:           r.pollWait,
		InventoryEvery: r.inventoryEvery,
		Stats:          &agentsim.Stats{},
		Log:            r.log,
		Load:           hostfacts.HostFS{}.Load,
	}
	if err := r.hook(s.ag, s.client, dir); err != nil {
		s.closeBuf()
		return nil, err
	}
	// A first start stays quiet until it enrolled, so a refused key is the
	// one error line.
	if id, ok, err := ids.Load(); err != nil {
		s.closeBuf()
		return nil, err
	} else if ok {
		r.log.Info("agent starting", "agent", id.AgentID, "host", host.Hostname, "dir", dir, "relays", id.Proxies, "events_on_disk", buf.Len())
	}
	return s, nil
}

// loop runs the agent until it stops, is uninstalled or refused; an
// upgrade restarts into the new binary from here, and an identity the
// management host no longer knows enrols again once with the install key.
func (r *agentRun) loop(ctx context.Context, s *agentSession) error {
	ids, buf := s.ids, s.buf
	var err error
	for reenrolled := false; ; {
		_, hadID, _ := ids.Load()
		var plan *selfupdate.Plan
		if plan, err = r.up.run(ctx); plan != nil {
			r.up.execRestart(ctx, *plan) // returns only when it did not happen
			continue
		}
		var se *agentsim.StatusError
		var nr *agentsim.NoRelayError
		switch {
		case err == nil || ctx.Err() != nil:
			r.log.Info("agent stopped", "events_on_disk", buf.Len())
			return s.closeBuf()
		case errors.Is(err, agentsim.ErrUninstalled):
			return r.uninstall(s.closeBuf, s.dir)
		case errors.As(err, &nr):
			if rf := nr.Refusal(); rf != nil {
				return failf("%s", rf.Message)
			}
			return failf("%s", agentsim.Describe(err))
		case errors.As(err, &se) && hadID && se.Status == http.StatusUnauthorized && r.key == "":
			return failf("the management host no longer knows this agent (%s): run it once with --key KEY (an install key) to enrol again", se.Message)
		case errors.As(err, &se) && hadID && se.Status == http.StatusUnauthorized && !reenrolled:
			// The management host no longer knows this identity (the
			// asset was deleted): enrol again with the install key.
			r.log.Warn("the management host refused this agent's identity: enrolling again with the install key", "reason", se.Message)
			if err := ids.Remove(); err != nil {
				return err
			}
			reenrolled = true
			continue
		case errors.As(err, &se):
			return failf("%s", se.Message)
		}
		return err
	}
}

// hook gives the agent this process's handlers: commands (deploy-proxy,
// upgrade), the release keys, the trial of a new version, uninstall.
func (r *agentRun) hook(ag *agentsim.Agent, client *agentsim.Client, dir string) error {
	ag.OnCommand = func(ctx context.Context, c wire.Command) error { return r.command(ctx, ag, client, dir, c) }
	r.up = &agentUpgrader{r: r, dir: dir, ag: ag, client: client, restart: make(chan selfupdate.Plan, 1)}
	if err := r.up.loadKeys(); err != nil {
		return err
	}
	ag.OnReleaseKeys, ag.OnCheckin = r.up.takeChain, r.up.checkedIn
	ag.OnUninstall = func(context.Context) error { return r.beforeUninstall(dir) }
	return nil
}

// uninstall removes the agent directory and, under systemd, the unit; the
// deployed relay was stopped and the uninstall reported before (OnUninstall).
func (r *agentRun) uninstall(closeBuf func() error, dir string) error {
	closeBuf()
	did, err := removeAgentDir(dir)
	for _, d := range did {
		r.log.Info("uninstall", "did", d)
	}
	if ctl, ok := r.systemdUnit(dir); ok {
		r.removeOwnUnit(ctl, dir)
	} else if err != nil {
		return fmt.Errorf("uninstall: %w", err)
	}
	r.log.Info("uninstalled by the management host")
	r.a.printf("uninstalled by the management host\n")
	return nil
}

// settle decides the relay list and CA pin of this start. A first start
// needs --proxy and --key. An enrolled agent runs from what it saved (relay
// list, CA pin, identity): --key is ignored, --proxy and --ca-sha256
// replace the saved values, each with a note.
func (r *agentRun) settle(dir string) ([]string, error) {
	var proxies []string
	var err error
	if len(r.proxies) > 0 {
		if proxies, err = r.proxyList(); err != nil {
			return nil, err
		}
	}
	ids := &agentsim.DiskIdentity{Dir: dir}
	saved, enrolled, err := ids.Load()
	if err != nil {
		return nil, err
	}
	if !enrolled {
		if len(proxies) == 0 {
			return nil, usageErrorf("missing --proxy URL (this agent in %s has not enrolled yet)", dir)
		}
		if strings.TrimSpace(r.key) == "" {
			return nil, usageErrorf("missing --key KEY (the install key from 'outpost installcmd create')")
		}
		return proxies, nil
	}
	changed := false
	if r.key != "" {
		r.log.Info("note: --key ignored: this agent is already enrolled; the key is used only if the management host no longer knows its identity",
			"agent", saved.AgentID, "identity", ids.Path())
	}
	if len(proxies) > 0 && !slices.Equal(proxies, saved.Proxies) {
		r.log.Info("note: --proxy replaces the saved relay list; run with --dir alone to keep the list the management host sets",
			"saved", saved.Proxies, "relays", proxies)
		saved.Proxies, changed = proxies, true
	}
	if len(saved.Proxies) == 0 {
		return nil, usageErrorf("missing --proxy URL: %s names no relay", ids.Path())
	}
	switch {
	case r.caPin == "":
		r.caPin = saved.CASHA256
	case !strings.EqualFold(r.caPin, saved.CASHA256):
		if saved.CASHA256 != "" {
			r.log.Info("note: --ca-sha256 replaces the saved CA pin")
		}
		saved.CASHA256, changed = r.caPin, true
	}
	if changed {
		if err := ids.Save(saved); err != nil {
			return nil, err
		}
	}
	return saved.Proxies, nil
}

// monitor logs connection changes (relay unreachable, connected again,
// failover to another relay) and the events waiting on disk.
func (r *agentRun) monitor(ctx context.Context, ag *agentsim.Agent, client *agentsim.Client, buf *agentsim.DiskBuffer) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var lastOK, lastErr, lastSendErr int64
	const unknown, up, down = 0, 1, 2
	state, current, why := unknown, "", ""
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		ok, cerr := ag.Stats.Checkins.Load(), ag.Stats.CheckinErrors.Load()
		serr := ag.Stats.SendErrors.Load()
		via := ""
		if p := client.Proxies(); len(p) > 0 {
			via = p[0]
		}
		switch {
		case ok > lastOK && (state != up || via != current):
			r.log.Info("connected through relay", "url", via, "events_on_disk", buf.Len())
			state, current = up, via
		case cerr > lastErr && ok == lastOK && (state != down || agentsim.Describe(ag.LastError()) != why):
			// Say what each relay URL did (refused: needs TLS, refused:
			// another account, relay unreachable: dial tcp ...), again
			// whenever that changes.
			why = agentsim.Describe(ag.LastError())
			r.log.Warn("no check-in: retrying; events are kept on disk", "err", why, "events_on_disk", buf.Len())
			state = down
		case serr > lastSendErr+10:
			r.log.Warn("events not delivered yet", "events_on_disk", buf.Len())
			lastSendErr = serr
		}
		lastOK, lastErr = ok, cerr
	}
}

// agentIdentity is the disk identity with logging; it records the CA pin
// with the identity so later starts need no --ca-sha256.
type agentIdentity struct {
	*agentsim.DiskIdentity
	pin string
	log *slog.Logger
}

func (s *agentIdentity) Save(id agentsim.Identity) error {
	if id.CASHA256 == "" {
		id.CASHA256 = s.pin
	}
	old, had, _ := s.DiskIdentity.Load()
	if err := s.DiskIdentity.Save(id); err != nil {
		return err
	}
	switch {
	case !had:
		s.log.Info("enrolled", "agent", id.AgentID, clusterAttr(id.Cluster), "relays", id.Proxies, "identity", s.Path())
	case !slices.Equal(old.Proxies, id.Proxies) || old.Cluster != id.Cluster:
		s.log.Info("relays changed by the management host", clusterAttr(id.Cluster), "relays", id.Proxies)
	}
	return nil
}

// command carries out commands the Agent does not handle itself.
func (r *agentRun) command(ctx context.Context, ag *agentsim.Agent, client *agentsim.Client, dir string, c wire.Command) error {
	switch c.Type {
	case wire.CmdDeployProxy:
		return r.deployProxy(ag, client, dir, c)
	case wire.CmdUpgrade:
		return r.up.command(ctx, c)
	}
	return fmt.Errorf("command %q is not supported by this agent", c.Type)
}
