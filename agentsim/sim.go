package agentsim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"outpost/agentsim/fleet"
	"outpost/relay/wire"
)

// SimConfig configures a fleet of simulated agents in one process.
type SimConfig struct {
	Proxies  []string
	CASHA256 string
	// Keys are the install keys by OS ("linux", "windows"; "" for a key
	// given without its OS). Install commands are per OS, so the fleet's
	// hosts take the OS of the keys given: both keys, the usual mix (about
	// 20 % Windows); one OS's key, every host that OS; a key without its
	// OS, Linux hosts until the relay's refusal ("install command is for
	// windows") tells the key's OS, which every host then takes. Nil uses
	// Key and WindowsKey.
	Keys map[wire.OS]string
	Key  string
	// WindowsKey enrols the simulated Windows hosts; with Key it is
	// Keys{"linux": Key, "windows": WindowsKey}.
	WindowsKey   string
	Agents       int
	FirstIndex   int           // offset of host numbering, so several fleets do not collide
	EventsPerSec float64       // per agent
	Duration     time.Duration // 0 = until ctx ends
	Seed         int64
	Version      string
	Wait         time.Duration // long-poll hold asked for
	// InventoryEvery compresses the 5 h inventory interval (seconds, not
	// hours, in simulations); 0 uses the relay's setting.
	InventoryEvery time.Duration
	// Churn is the fraction of agents that go away for a while and come
	// back during a run (0..1): once in a run with a Duration, every few
	// minutes in a run until ctx ends (the demo).
	Churn float64
	// SourceIPs spreads connections over 127.0.0.2.. so N agents are not
	// limited by one source address's ephemeral ports; 0 = automatic when
	// the relay is on loopback.
	SourceIPs int
	// CollectorURL (a relay with the built-in collector, or outpost center)
	// is asked for per-agent received counts at the end, for the loss check.
	CollectorURL string
	// CollectorToken is sent as a bearer token to read the collector's
	// stats (the stats token, or outpost center's ingest token).
	CollectorToken string
	// DrainTimeout bounds the end-of-run delivery of buffered events.
	DrainTimeout time.Duration
	// Linger batches each agent's events: at most one events request per
	// Linger (0 = 2 s).
	Linger time.Duration
	// EnrolRate paces enrolments (per second, 0 = 500).
	EnrolRate float64
	Log       *slog.Logger // nil: none
}

func loopbackTarget(urls []string) bool {
	for _, u := range urls {
		h := u
		if i := strings.Index(h, "://"); i >= 0 {
			h = h[i+3:]
		}
		if hh, _, err := net.SplitHostPort(strings.SplitN(h, "/", 2)[0]); err == nil {
			h = hh
		}
		ip := net.ParseIP(h)
		if !(h == "localhost" || (ip != nil && ip.IsLoopback())) {
			return false
		}
	}
	return len(urls) > 0
}

// RunSim runs the fleet and returns its report: setup (defaults,
// transports, agents), run (until Duration or ctx ends, or every agent
// gave up), drain (deliver what is still buffered) and report.
func RunSim(ctx context.Context, cfg SimConfig) (Report, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return Report{}, err
	}
	RaiseFileLimit()
	s := newSim(cfg)
	s.run(ctx)
	s.drain(ctx)
	return s.report(ctx)
}

// withDefaults checks cfg and fills in what was left zero.
func (cfg SimConfig) withDefaults() (SimConfig, error) {
	if cfg.Agents <= 0 {
		return cfg, fmt.Errorf("agents: must be positive")
	}
	if cfg.Keys == nil && cfg.Key != "" {
		cfg.Keys = map[wire.OS]string{"": cfg.Key}
		if cfg.WindowsKey != "" {
			cfg.Keys = map[wire.OS]string{wire.OSLinux: cfg.Key, wire.OSWindows: cfg.WindowsKey}
		}
	}
	if len(cfg.Proxies) == 0 || len(cfg.Keys) == 0 {
		return cfg, fmt.Errorf("proxy and key are required")
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Wait == 0 {
		cfg.Wait = 30 * time.Second
	}
	if cfg.DrainTimeout == 0 {
		cfg.DrainTimeout = 60 * time.Second
	}
	if cfg.Linger == 0 {
		cfg.Linger = 2 * time.Second
	}
	if cfg.EnrolRate == 0 {
		cfg.EnrolRate = 500
	}
	return cfg, nil
}

// sim is one RunSim: its fleet and what the run counted beside Stats.
type sim struct {
	cfg        SimConfig
	transports []*http.Transport
	agents     []*Agent
	keys       *fleetKeys
	stats      *Stats
	start      time.Time

	churned         int
	failed, returns atomic.Int64
	failMu          sync.Mutex
	firstErr        error
	failedBy        map[string]int64
}

func newSim(cfg SimConfig) *sim {
	s := &sim{cfg: cfg, keys: newFleetKeys(cfg.Keys), stats: &Stats{}, failedBy: map[string]int64{}}
	s.transports = simTransports(cfg)
	s.start = time.Now()
	s.agents = make([]*Agent, cfg.Agents)
	for i := range s.agents {
		s.agents[i] = s.newAgent(i)
	}
	return s
}

// simTransports: over TLS each agent has its own transport (one HTTP/2
// connection, as a real agent); over plain HTTP agents share one transport
// per source address (HTTP/1.1: a held check-in and event posts use two
// sockets).
func simTransports(cfg SimConfig) []*http.Transport {
	nIPs := cfg.SourceIPs
	if nIPs == 0 && loopbackTarget(cfg.Proxies) {
		nIPs = cfg.Agents/10000 + 1
	}
	perAgent := false
	for _, u := range cfg.Proxies {
		perAgent = perAgent || strings.HasPrefix(u, "https://")
	}
	sourceIP := func(i int) net.IP {
		if nIPs == 0 {
			return nil
		}
		k := i % nIPs
		return net.IPv4(127, 0, byte(k/250), byte(k%250+2))
	}
	transports := make([]*http.Transport, max(nIPs, 1))
	if perAgent {
		transports = make([]*http.Transport, cfg.Agents)
	}
	for i := range transports {
		transports[i] = NewTransport(ClientOptions{Proxies: cfg.Proxies, CASHA256: cfg.CASHA256, LocalIP: sourceIP(i)})
	}
	return transports
}

// newAgent is the fleet's agent i, its host and inventory drawn from the
// seed, its inventory drifting between reports.
func (s *sim) newAgent(i int) *Agent {
	cfg := s.cfg
	var every time.Duration
	if cfg.EventsPerSec > 0 {
		every = time.Duration(float64(time.Second) / cfg.EventsPerSec)
	}
	h, inv := s.keys.host(cfg.Seed, cfg.FirstIndex+i, cfg.Version)
	key := s.keys.key(h.OS)
	cur := inv
	r := rand.New(rand.NewPCG(uint64(cfg.Seed), uint64(i)))
	var mu sync.Mutex
	return &Agent{
		Client: NewClient(ClientOptions{Proxies: cfg.Proxies, Transport: s.transports[i%len(s.transports)]}),
		Key:    key, Host: h, Identity: &MemIdentity{}, Buffer: &MemBuffer{},
		Inventory: func() wire.Inventory {
			mu.Lock()
			defer mu.Unlock()
			cur = fleet.InventoryDrift(cur, r)
			return cur
		},
		EventEvery: every, Linger: cfg.Linger, Wait: cfg.Wait, InventoryEvery: cfg.InventoryEvery, Stats: s.stats, Log: cfg.Log,
		EventData: func(seq uint64) json.RawMessage {
			return json.RawMessage(fmt.Sprintf(`{"kind":"process_start","host":%q,"pid":%d}`, h.Hostname, 1000+seq%30000))
		},
	}
}

// run starts the agents at EnrolRate and returns when the run ended: its
// Duration passed, ctx ended or every agent gave up.
func (s *sim) run(ctx context.Context) {
	cfg := s.cfg
	var runCtx context.Context
	var cancel context.CancelFunc
	if cfg.Duration > 0 {
		runCtx, cancel = context.WithTimeout(ctx, cfg.Duration)
	} else {
		runCtx, cancel = context.WithCancel(ctx)
	}
	defer cancel()
	rng := rand.New(rand.NewPCG(uint64(cfg.Seed), 7))
	var wg sync.WaitGroup
	pace := time.Duration(float64(time.Second) / cfg.EnrolRate)
	for i, a := range s.agents {
		churn := rng.Float64() < cfg.Churn
		if churn {
			s.churned++
		}
		wg.Add(1)
		go func(i int, a *Agent, churn bool) {
			defer wg.Done()
			if !sleepCtx(runCtx, time.Duration(i)*pace) {
				return
			}
			if err := runAgent(runCtx, a, churn, cfg, s.keys, cfg.FirstIndex+i, &s.returns); err != nil {
				s.fail(err, cancel)
			}
		}(i, a, churn)
	}
	<-runCtx.Done()
	wg.Wait()
}

// fail counts an agent that gave up; the last one ends the run.
func (s *sim) fail(err error, cancel context.CancelFunc) {
	s.failMu.Lock()
	if s.firstErr == nil {
		s.firstErr = err
	}
	s.failedBy[failureKind(err)]++
	s.failMu.Unlock()
	if s.failed.Add(1) == int64(s.cfg.Agents) {
		cancel() // every agent gave up: nothing left to simulate
	}
}

// drain delivers what is still buffered so the loss check sees every
// event, 256 agents at a time, for at most DrainTimeout.
func (s *sim) drain(ctx context.Context) {
	dctx, dcancel := context.WithTimeout(ctx, s.cfg.DrainTimeout)
	defer dcancel()
	var dwg sync.WaitGroup
	sem := make(chan struct{}, 256)
	for _, a := range s.agents {
		if a.Buffer.Len() == 0 {
			continue
		}
		dwg.Add(1)
		sem <- struct{}{}
		go func(a *Agent) {
			defer dwg.Done()
			defer func() { <-sem }()
			a.Drain(dctx)
		}(a)
	}
	dwg.Wait()
}

// report gathers the run's figures, checks for loss against the collector
// when there is one, and closes the idle connections.
func (s *sim) report(ctx context.Context) (Report, error) {
	stats := s.stats
	rep := Report{Agents: s.cfg.Agents, Enrolled: stats.Enrolled.Load(), EnrolFailures: stats.EnrolFailures.Load(),
		MaxConnected: stats.MaxHeld.Load(), Checkins: stats.Checkins.Load(), CheckinErrors: stats.CheckinErrors.Load(),
		Commands: stats.Commands.Load(), EventsSent: stats.EventsGenerated.Load(), EventsAcked: stats.EventsAcked.Load(),
		Throttled: stats.Throttled.Load(), SendErrors: stats.SendErrors.Load(), Churned: s.churned, Returns: s.returns.Load(),
		EnrolLatency: stats.EnrolLatency.percentiles(), CheckinLatency: stats.CheckinLatency.percentiles(),
		EventLatency: stats.EventLatency.percentiles()}
	for _, a := range s.agents {
		rep.Unacked += int64(a.Buffer.Len())
	}
	rep.AgentsFailed = s.failed.Load()
	if s.firstErr != nil {
		rep.FirstError = s.firstErr.Error()
	}
	if len(s.failedBy) > 0 {
		rep.FailedBy = s.failedBy
	}
	if s.cfg.CollectorURL != "" {
		if err := lossCheck(ctx, s.cfg, s.agents, &rep); err != nil {
			return rep, err
		}
	}
	rep.Problems = rep.problems()
	rep.Elapsed = time.Since(s.start).Round(time.Millisecond).String()
	for _, t := range s.transports {
		t.CloseIdleConnections()
	}
	return rep, nil
}

// runAgent runs one agent; a churning agent goes away for a while (its
// connections closed) and comes back with the same identity: once, a
// third into a run with a Duration; else every 1-3 minutes for 20-60 s. It
// returns the error that ended the agent before the run did (a refused
// enrolment, an identity no longer recognised), nil otherwise. An agent
// enrolling with a key given without its OS takes the OS the relay's
// refusal names and tries once more.
func runAgent(ctx context.Context, a *Agent, churn bool, cfg SimConfig, keys *fleetKeys, i int, returns *atomic.Int64) error {
	run := func(ctx context.Context) error {
		err := a.Run(ctx)
		if os := keys.learn(err, a.Host.OS); os != "" && ctx.Err() == nil {
			h, _ := fleet.HostOS(cfg.Seed, i, cfg.Version, os)
			a.Host, a.Key = h, keys.key(os)
			err = a.Run(ctx)
		}
		if err != nil && ctx.Err() == nil {
			cfg.Log.Warn("agent: stopped", "host", a.Host.Hostname, "err", Describe(err))
			return err
		}
		return nil
	}
	if !churn {
		return run(ctx)
	}
	r := rand.New(rand.NewPCG(uint64(cfg.Seed), uint64(i)+1))
	on, off := func() time.Duration { return time.Minute + time.Duration(r.Int64N(int64(2*time.Minute))) },
		func() time.Duration { return 20*time.Second + time.Duration(r.Int64N(int64(40*time.Second))) }
	if cfg.Duration > 0 {
		on = func() time.Duration { return cfg.Duration / 3 }
		off = func() time.Duration { return cfg.Duration / 4 }
	}
	for n := 0; ; n++ {
		if cfg.Duration > 0 && n == 1 {
			return run(ctx) // the rest of a bounded run
		}
		c1, cancel := context.WithTimeout(ctx, on())
		err := run(c1)
		cancel()
		if err != nil || !sleepCtx(ctx, off()) {
			return err
		}
		returns.Add(1)
	}
}

// failureKind is the reason an agent failed, for counting by kind: the
// relay's refusal without the URLs it came from.
func failureKind(err error) string {
	var nr *NoRelayError
	if errors.As(err, &nr) {
		if rf := nr.Refusal(); rf != nil {
			return Describe(rf)
		}
		kinds := []string{}
		for _, t := range nr.Attempts {
			if k := Describe(t.Err); !slices.Contains(kinds, k) && !strings.HasPrefix(k, "relay unreachable") {
				kinds = append(kinds, k)
			}
		}
		if len(kinds) == 0 {
			return "no relay reachable"
		}
		return "no relay usable: " + strings.Join(kinds, ", ")
	}
	return Describe(err)
}

// fleetKeys hands out install keys by OS and learns the OS of a key given
// without one.
type fleetKeys struct {
	byOS    map[wire.OS]string
	learned atomic.Value // wire.OS: the OS of the bare key, once a refusal told it
}

func newFleetKeys(keys map[wire.OS]string) *fleetKeys {
	return &fleetKeys{byOS: keys}
}

// host draws host i with an OS that one of the keys enrols.
func (k *fleetKeys) host(seed int64, i int, version string) (wire.Host, wire.Inventory) {
	_, lin := k.byOS[wire.OSLinux]
	_, win := k.byOS[wire.OSWindows]
	_, bare := k.byOS[""]
	switch {
	case win && (lin || bare):
		return fleet.Host(seed, i, version)
	case win:
		return fleet.HostOS(seed, i, version, wire.OSWindows)
	case lin:
		return fleet.HostOS(seed, i, version, wire.OSLinux)
	}
	os, _ := k.learned.Load().(wire.OS)
	if os == "" {
		os = wire.OSLinux
	}
	return fleet.HostOS(seed, i, version, os)
}

func (k *fleetKeys) key(os wire.OS) string {
	if key, ok := k.byOS[os]; ok {
		return key
	}
	return k.byOS[""]
}

var wrongOS = regexp.MustCompile(`install command is for (linux|windows), this host runs`)

// learn returns the OS to retry with when err refuses a host of another OS
// than the bare key's; "" otherwise.
func (k *fleetKeys) learn(err error, hostOS wire.OS) wire.OS {
	if _, bare := k.byOS[""]; !bare || k.byOS[hostOS] != "" {
		return ""
	}
	var se *StatusError
	if !errors.As(err, &se) || se.Status != http.StatusBadRequest {
		return ""
	}
	m := wrongOS.FindStringSubmatch(se.Message)
	if m == nil || wire.OS(m[1]) == hostOS {
		return ""
	}
	k.learned.Store(wire.OS(m[1]))
	return wire.OS(m[1])
}
