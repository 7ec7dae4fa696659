package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"outpost/relay"
	"outpost/relay/collector"
	"outpost/relay/selfupdate"
	"outpost/store"
)

func init() {
	register("", newRelayCmd)
	register("", newUpCmd)
	register("", newCenterCmd)
}

// listenSpec is one --listen value: "https://HOST:PORT", "http://HOST:PORT"
// or a bare "HOST:PORT" (plain HTTP on ports 80 and 8080, TLS otherwise).
type listenSpec struct {
	addr string
	tls  bool
}

func parseListen(v string) (listenSpec, error) {
	switch {
	case strings.HasPrefix(v, "https://"):
		return listenSpec{strings.TrimPrefix(v, "https://"), true}, nil
	case strings.HasPrefix(v, "http://"):
		return listenSpec{strings.TrimPrefix(v, "http://"), false}, nil
	}
	_, port, err := net.SplitHostPort(v)
	if err != nil {
		return listenSpec{}, usageErrorf("invalid --listen %q: want [http://|https://]HOST:PORT", v)
	}
	return listenSpec{v, port != "80" && port != "8080"}, nil
}

// relayRun is the shared body of `relay` and `up`, its flags in the
// struct as Litestream's commands keep theirs: flags declares them, config
// parses them into a relay.Config, open and startLocal or startJoined bring
// the relay up, serveUntilDone serves until the context ends, Close shuts
// down gracefully.
type relayRun struct {
	a          *app
	listen     []string
	public     []string
	allowPlain bool
	manager    string
	join       string
	caPin      string
	upstream   string
	poll       time.Duration
	spoolMax   string
	fwdLag     string
	hostname   string
	cpuProfile string
	memProfile string
	heartbeat  time.Duration
	upTokFile  string
	metricsTok string
	upGrace    time.Duration

	srv        *relay.Server
	col        *collector.Collector
	urls       []string // listeners (or --public): the run file's URLs
	advertised []string // what agents are handed (advertisedURLs)
	runName    string
	listeners  []net.Listener

	stopProfile func()
}

func (r *relayRun) flags(cmd *cobra.Command, defaults []string) {
	f := cmd.Flags()
	f.StringArrayVar(&r.listen, "listen", defaults, "listener, repeatable: https://HOST:PORT or http://HOST:PORT")
	f.StringArrayVar(&r.public, "public", nil, "URL agents use to reach this relay, repeatable (default: from --listen)")
	f.BoolVar(&r.allowPlain, "allow-plain", false, "accept authenticated agent calls on plain HTTP listeners")
	f.StringVar(&r.upstream, "upstream", "", "forward-mode upstream URL (default: the built-in collector)")
	f.DurationVar(&r.poll, "poll-timeout", 30*time.Second, "longest a check-in is held open")
	f.StringVar(&r.spoolMax, "spool-max", "1GiB", "forward-mode spool cap; agents get 429 beyond it")
	f.StringVar(&r.fwdLag, "forward-lag", "64MiB", "forward mode: spool backlog beyond which agents' event batches wait (up to 1s each) for forwarding to catch up while upstream answers; 0 never waits")
	f.StringVar(&r.cpuProfile, "cpuprofile", "", "write a CPU profile to this file until the relay stops")
	f.StringVar(&r.memProfile, "memprofile", "", "write a heap profile to this file when the relay stops (taken before held check-ins are released)")
	f.DurationVar(&r.heartbeat, "heartbeat", 10*time.Second, "joined relay: heartbeat interval")
	f.StringVar(&r.upTokFile, "upstream-token-file", "", "file holding the token sent to --upstream (outpost center's DATA/center.token)")
	f.StringVar(&r.metricsTok, "metrics-token-file", "", "file holding a token /metrics then requires (Authorization: Bearer); default: open")
	f.DurationVar(&r.upGrace, "upgrade-grace", selfupdate.DefaultGrace, "joined relay: how long a new version has to report healthy before it is rolled back")
	r.a.logFlag(cmd)
	f.MarkHidden("cpuprofile")
	f.MarkHidden("memprofile")
	f.MarkHidden("heartbeat")
	f.MarkHidden("upgrade-grace")
}

func (r *relayRun) config() (relay.Config, error) {
	cfg := relay.DefaultConfig()
	cfg.DataDir = r.a.dataDir()
	cfg.Version = version
	cfg.AllowPlain = r.allowPlain
	cfg.Upstream = r.upstream
	cfg.PollTimeout = r.poll
	cfg.Hostname = r.hostname
	if r.heartbeat <= 0 {
		return cfg, usageErrorf("invalid --heartbeat %s: must be positive", r.heartbeat)
	}
	cfg.HeartbeatInterval = r.heartbeat
	for _, t := range []struct {
		flag, file string
		to         *string
	}{{"--upstream-token-file", r.upTokFile, &cfg.UpstreamToken}, {"--metrics-token-file", r.metricsTok, &cfg.MetricsToken}} {
		if t.file == "" {
			continue
		}
		b, err := os.ReadFile(t.file)
		if err != nil {
			return cfg, fmt.Errorf("%s: %w", t.flag, err)
		}
		if *t.to = strings.TrimSpace(string(b)); *t.to == "" {
			return cfg, fmt.Errorf("%s: %s is empty", t.flag, t.file)
		}
	}
	cfg.Log = r.a.logger()
	n, err := store.ParseSize(r.spoolMax)
	if err != nil {
		return cfg, usageErrorf("--spool-max: %s", store.ErrorMessage(err))
	}
	cfg.SpoolMax = n
	if cfg.ForwardLag, err = store.ParseSize(r.fwdLag); err != nil {
		return cfg, usageErrorf("--forward-lag: %s", store.ErrorMessage(err))
	}
	return cfg, nil
}

// open binds every listener first, so the relay knows its URLs before it
// joins (a joined relay reports them to the management host).
func (r *relayRun) open() error {
	host, _ := os.Hostname()
	for _, v := range r.listen {
		spec, err := parseListen(v)
		if err != nil {
			return err
		}
		ln, err := net.Listen("tcp", spec.addr)
		if err != nil {
			r.closeListeners()
			return fmt.Errorf("listen %s: %w", spec.addr, err)
		}
		r.listeners = append(r.listeners, tlsListener{ln, spec.tls})
		a := ln.Addr().(*net.TCPAddr)
		h := a.IP.String()
		if a.IP.IsUnspecified() {
			h = host
		}
		scheme := "http"
		if spec.tls {
			scheme = "https"
		}
		r.urls = append(r.urls, scheme+"://"+net.JoinHostPort(h, fmt.Sprint(a.Port)))
	}
	adv, err := advertisedURLs(r.urls, r.public, r.allowPlain)
	if err != nil {
		r.closeListeners()
		return err
	}
	if len(adv) == 0 {
		r.a.logger().Warn("note: agents get no URL of this relay: every listener is plain HTTP and --allow-plain is off")
	}
	if len(r.public) > 0 {
		r.urls = r.public
	}
	r.advertised = adv
	return nil
}

type tlsListener struct {
	net.Listener
	tls bool
}

func (r *relayRun) closeListeners() {
	for _, ln := range r.listeners {
		ln.Close()
	}
}

// startLocal runs the relay on the management host: store, relay and the
// built-in collector in this process.
func (r *relayRun) startLocal(cmd *cobra.Command) error {
	cfg, err := r.config()
	if err != nil {
		return err
	}
	if err := r.open(); err != nil {
		return err
	}
	db, err := r.a.store()
	if err != nil {
		r.closeListeners()
		return err
	}
	col, err := collector.New(filepath.Join(cfg.DataDir, "collector"), r.a.logger())
	if err != nil {
		r.closeListeners()
		return err
	}
	r.col = col
	cfg.Store = db
	cfg.Collector = col.Handler()
	cfg.PublicURLs = r.advertised
	return r.start(cfg)
}

// startJoined runs a relay on another host that joined the management host.
func (r *relayRun) startJoined(cmd *cobra.Command) error {
	cfg, err := r.config()
	if err != nil {
		return err
	}
	cfg.Manager, cfg.JoinToken, cfg.ManagerCA = r.manager, r.join, r.caPin
	// This process can replace its binary and restart (serveUntilDone).
	if cfg.Binary, err = os.Executable(); err != nil {
		return fmt.Errorf("find this binary (upgrades replace it): %w", err)
	}
	cfg.Argv, cfg.Unit, cfg.UpgradeGrace = withoutJoin(os.Args), selfupdate.Unit(), r.upGrace
	if err := r.open(); err != nil {
		return err
	}
	cfg.PublicURLs = r.advertised
	return r.start(cfg)
}

func (r *relayRun) start(cfg relay.Config) error {
	if r.cpuProfile != "" {
		stop, err := startCPUProfile(r.cpuProfile)
		if err != nil {
			return err
		}
		r.stopProfile = stop
	}
	srv, err := relay.New(cfg)
	if err != nil {
		r.closeListeners()
		if r.col != nil {
			r.col.Close()
		}
		return err
	}
	r.srv = srv
	log := r.a.logger()
	for _, ln := range r.listeners {
		tl := ln.(tlsListener)
		go func() {
			if err := srv.Serve(tl.Listener, tl.tls); err != nil {
				log.Error("relay: serve", "addr", tl.Addr().String(), "err", err)
			}
		}()
	}
	if err := relay.WriteRunFile(cfg.DataDir, r.runName, relay.RunInfo{URLs: r.urls, CASHA256: srv.CAFingerprint()}); err != nil {
		log.Warn("relay: run file not written", "err", err)
	}
	log.Info("relay listening", "urls", r.urls, "ca_sha256", srv.CAFingerprint())
	return nil
}

// Close shuts the relay down gracefully within 20 s; a second signal (the
// default handler is restored after the first) exits at once.
func (r *relayRun) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var errs []error
	if r.memProfile != "" {
		errs = append(errs, writeHeapProfile(r.memProfile))
	}
	if r.srv != nil {
		errs = append(errs, r.srv.Close(ctx))
	}
	if r.col != nil {
		errs = append(errs, r.col.Close())
	}
	relay.RemoveRunFile(r.a.dataDir(), r.runName)
	if r.stopProfile != nil {
		r.stopProfile()
	}
	return errors.Join(errs...)
}

// writeHeapProfile writes the live heap as of a fresh GC: called before
// Close, so held check-ins and their connections are still in it.
func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("memprofile: %w", err)
	}
	runtime.GC()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		f.Close()
		return fmt.Errorf("memprofile: %w", err)
	}
	return f.Close()
}

// withoutJoin is argv without --join TOKEN: the restarted relay runs from
// its saved identity, and the spent token stays out of DATA/upgrade.
func withoutJoin(argv []string) []string {
	var out []string
	for i := 0; i < len(argv); i++ {
		switch {
		case argv[i] == "--join" && i+1 < len(argv):
			i++
		case strings.HasPrefix(argv[i], "--join="):
		default:
			out = append(out, argv[i])
		}
	}
	return out
}

// serveUntilDone serves until the context ends (a signal: graceful
// Close) or an upgrade asks for the restart into its new binary: Close
// (listeners stop, in-flight requests finish, the spool is synced), then
// exec, same PID and argv. A signal during that Close stops the relay
// instead, the previous binary put back; the second one still kills at
// once. A failed exec leaves the new binary to the watcher, which starts
// it again or rolls back.
func (r *relayRun) serveUntilDone(ctx context.Context) error {
	select {
	case <-ctx.Done():
		err := r.Close()
		select {
		case p := <-r.srv.RestartRequested(): // asked while closing
			r.srv.AbandonRestart(p, "the relay was stopped before the restart")
		default:
		}
		return err
	case p := <-r.srv.RestartRequested():
		if err := r.Close(); err != nil {
			r.a.logger().Warn("relay: closing before the restart", "err", err)
		}
		if ctx.Err() != nil {
			r.srv.AbandonRestart(p, "the relay was stopped before the restart")
			return nil
		}
		r.a.close()
		r.a.logger().Info("relay: restarting into the new version", "version", p.To)
		return selfupdate.Exec(p)
	}
}

func newRelayCmd(a *app) *cobra.Command {
	r := &relayRun{a: a, runName: "relay"}
	cmd := &cobra.Command{
		Use:   "relay",
		Short: "Run the relay headless (on the management host, or joined with --manager/--join)",
		Long: "Run the relay headless. On the management host it serves agents with the local store and\n" +
			"the built-in collector. On another proxy host, --manager URL --join TOKEN (from\n" +
			"'outpost proxy deploy --manual') registers it as a proxy server of a cluster. The identity,\n" +
			"the management host's URL and its CA pin are kept in DATA/relay.json, so later starts need\n" +
			"only --data DIR (--manager or --ca-sha256 given again replace the saved values).",
		Args: nargs(0, 0, ""),
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			if r.manager != "" || relay.Joined(a.dataDir()) {
				err = r.startJoined(cmd)
			} else {
				if r.join != "" {
					return usageErrorf("--join needs --manager URL")
				}
				err = r.startLocal(cmd)
			}
			if err != nil {
				return err
			}
			return r.serveUntilDone(cmd.Context())
		},
	}
	r.flags(cmd, []string{"https://:8443", "http://:8080"})
	cmd.Flags().StringVar(&r.manager, "manager", "", "management host URL (relay on another host)")
	cmd.Flags().StringVar(&r.join, "join", "", "one-time join token (first start of a joined relay)")
	cmd.Flags().StringVar(&r.caPin, "ca-sha256", "", "management host CA fingerprint to pin")
	cmd.Flags().StringVar(&r.hostname, "hostname", "", "host name reported at join (default: this host's)")
	return cmd
}

func newUpCmd(a *app) *cobra.Command {
	r := &relayRun{a: a, runName: "relay"}
	var demo, noTUI bool
	var demoAgents int
	cmd := &cobra.Command{
		Use:   "up",
		Short: "All-in-one: store, relay and collector (+ dashboard on a terminal, + demo fleet)",
		Args:  nargs(0, 0, ""),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if demo {
				r.allowPlain = true
			}
			if err := r.startLocal(cmd); err != nil {
				return err
			}
			defer r.Close()
			ctx := cmd.Context()
			if demo {
				stop, err := startDemo(ctx, a, r, demoAgents)
				if err != nil {
					return err
				}
				defer stop()
			}
			return runFront(ctx, a, r, noTUI)
		},
	}
	r.flags(cmd, []string{"https://:8443", "http://:8080"})
	cmd.Flags().BoolVar(&demo, "demo", false, "create a demo fleet with live simulated agents")
	cmd.Flags().IntVar(&demoAgents, "demo-agents", 300, "simulated agents in the demo fleet")
	cmd.Flags().BoolVar(&noTUI, "no-tui", false, "print a live summary instead of the dashboard")
	return cmd
}

// startCPUProfile profiles the process into path until stop is called.
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}
