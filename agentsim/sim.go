package agentsim

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"outpost/relay/wire"
)

// SimConfig configures a fleet of simulated agents in one process.
type SimConfig struct {
	Proxies  []string
	CASHA256 string
	Key      string
	// WindowsKey enrols the simulated Windows hosts (install commands are
	// per OS); "" uses Key for them too.
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
	// back during a run (0..1).
	Churn float64
	// SourceIPs spreads connections over 127.0.0.2.. so N agents are not
	// limited by one source address's ephemeral ports; 0 = automatic when
	// the relay is on loopback.
	SourceIPs int
	// CollectorURL (a relay with the built-in collector, or outpost center)
	// is asked for per-agent received counts at the end, for the loss check.
	CollectorURL string
	// DrainTimeout bounds the end-of-run delivery of buffered events.
	DrainTimeout time.Duration
	// Linger batches each agent's events: at most one events request per
	// Linger (0 = 2 s).
	Linger time.Duration
	// EnrolRate paces enrolments (per second, 0 = 500).
	EnrolRate float64
	Logf      func(string, ...any)
}

// Percentiles summarise a latency distribution in milliseconds.
type Percentiles struct {
	N   int64   `json:"n"`
	P50 float64 `json:"p50_ms"`
	P90 float64 `json:"p90_ms"`
	P99 float64 `json:"p99_ms"`
	Max float64 `json:"max_ms"`
}

// Report is the end-of-run summary (also printed as JSON with --json).
type Report struct {
	Agents         int         `json:"agents"`
	Enrolled       int64       `json:"enrolled"`
	EnrolFailures  int64       `json:"enrol_failures"`
	MaxConnected   int64       `json:"max_connected"`
	Checkins       int64       `json:"checkins"`
	CheckinErrors  int64       `json:"checkin_errors"`
	Commands       int64       `json:"commands"`
	EventsSent     int64       `json:"events_sent"`
	EventsAcked    int64       `json:"events_acked"`
	Unacked        int64       `json:"events_unacked"`
	Throttled      int64       `json:"throttled_429"`
	SendErrors     int64       `json:"send_errors"`
	Received       int64       `json:"received_by_collector"`
	Lost           int64       `json:"lost"`
	Duplicates     int64       `json:"duplicates"`
	EnrolLatency   Percentiles `json:"enrol_latency"`
	CheckinLatency Percentiles `json:"checkin_latency"`
	EventLatency   Percentiles `json:"event_latency"`
	Elapsed        string      `json:"elapsed"`
	Churned        int         `json:"churned"`
	AgentsFailed   int64       `json:"agents_failed"`         // ended by a refusal before the run did
	FirstError     string      `json:"first_error,omitempty"` // the first such refusal
}

// String renders the report as a table.
func (r Report) String() string {
	var b strings.Builder
	row := func(k string, v any) { fmt.Fprintf(&b, "%-24s %v\n", k, v) }
	row("agents", r.Agents)
	row("enrolled", r.Enrolled)
	row("enrol failures", r.EnrolFailures)
	row("max connected", r.MaxConnected)
	row("check-ins", r.Checkins)
	row("check-in errors", r.CheckinErrors)
	row("commands", r.Commands)
	row("churned", r.Churned)
	row("agents failed", r.AgentsFailed)
	if r.FirstError != "" {
		row("first failure", r.FirstError)
	}
	row("events sent", r.EventsSent)
	row("events acknowledged", r.EventsAcked)
	row("events unacknowledged", r.Unacked)
	row("429 answers", r.Throttled)
	row("send errors", r.SendErrors)
	row("received by collector", r.Received)
	row("lost", r.Lost)
	row("duplicates", r.Duplicates)
	p := func(x Percentiles) string {
		return fmt.Sprintf("p50 %.1f ms  p90 %.1f ms  p99 %.1f ms  max %.1f ms  (n=%d)", x.P50, x.P90, x.P99, x.Max, x.N)
	}
	row("enrol latency", p(r.EnrolLatency))
	row("check-in latency", p(r.CheckinLatency))
	row("event ack latency", p(r.EventLatency))
	row("elapsed", r.Elapsed)
	return b.String()
}

// RaiseFileLimit lifts the soft RLIMIT_NOFILE to the hard limit; a fleet of
// agents needs two sockets each.
func RaiseFileLimit() (uint64, error) {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0, err
	}
	if l.Cur < l.Max {
		l.Cur = l.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
			return 0, err
		}
	}
	return l.Cur, nil
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

// RunSim runs the fleet and returns its report.
func RunSim(ctx context.Context, cfg SimConfig) (Report, error) {
	if cfg.Agents <= 0 {
		return Report{}, fmt.Errorf("agents: must be positive")
	}
	if len(cfg.Proxies) == 0 || cfg.Key == "" {
		return Report{}, fmt.Errorf("proxy and key are required")
	}
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
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
	RaiseFileLimit()
	nIPs := cfg.SourceIPs
	if nIPs == 0 && loopbackTarget(cfg.Proxies) {
		nIPs = cfg.Agents/10000 + 1
	}
	// Over TLS each agent has its own transport (one HTTP/2 connection, as
	// a real agent); over plain HTTP agents share one transport per source
	// address (HTTP/1.1: a held check-in and event posts use two sockets).
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
	stats := &Stats{}
	start := time.Now()
	runCtx := ctx
	var cancel context.CancelFunc
	if cfg.Duration > 0 {
		runCtx, cancel = context.WithTimeout(ctx, cfg.Duration)
	} else {
		runCtx, cancel = context.WithCancel(ctx)
	}
	defer cancel()

	agents := make([]*Agent, cfg.Agents)
	var every time.Duration
	if cfg.EventsPerSec > 0 {
		every = time.Duration(float64(time.Second) / cfg.EventsPerSec)
	}
	rng := rand.New(rand.NewPCG(uint64(cfg.Seed), 7))
	for i := range agents {
		h, inv := FakeHost(cfg.Seed, cfg.FirstIndex+i, cfg.Version)
		key := cfg.Key
		if h.OS == "windows" && cfg.WindowsKey != "" {
			key = cfg.WindowsKey
		}
		cur := inv
		r := rand.New(rand.NewPCG(uint64(cfg.Seed), uint64(i)))
		var mu sync.Mutex
		agents[i] = &Agent{
			Client: NewClient(ClientOptions{Proxies: cfg.Proxies, Transport: transports[i%len(transports)]}),
			Key:    key, Host: h, Identity: &MemIdentity{}, Buffer: &MemBuffer{},
			Inventory: func() wire.Inventory {
				mu.Lock()
				defer mu.Unlock()
				cur = FakeInventoryDrift(cur, r)
				return cur
			},
			EventEvery: every, Linger: cfg.Linger, Wait: cfg.Wait, InventoryEvery: cfg.InventoryEvery, Stats: stats, Logf: cfg.Logf,
			EventData: func(seq uint64) json.RawMessage {
				return json.RawMessage(fmt.Sprintf(`{"kind":"process_start","host":%q,"pid":%d}`, h.Hostname, 1000+seq%30000))
			},
		}
	}
	churned := 0
	var failed atomic.Int64
	var failMu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	pace := time.Duration(float64(time.Second) / cfg.EnrolRate)
	for i, a := range agents {
		churn := rng.Float64() < cfg.Churn
		if churn {
			churned++
		}
		wg.Add(1)
		go func(i int, a *Agent, churn bool) {
			defer wg.Done()
			if !sleepCtx(runCtx, time.Duration(i)*pace) {
				return
			}
			if err := runAgent(runCtx, a, churn, cfg); err != nil {
				failMu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				failMu.Unlock()
				if failed.Add(1) == int64(cfg.Agents) {
					cancel() // every agent gave up: nothing left to simulate
				}
			}
		}(i, a, churn)
	}
	<-runCtx.Done()
	wg.Wait()
	// Deliver what is still buffered so the loss check sees every event.
	dctx, dcancel := context.WithTimeout(ctx, cfg.DrainTimeout)
	var dwg sync.WaitGroup
	sem := make(chan struct{}, 256)
	for _, a := range agents {
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
	dcancel()

	rep := Report{Agents: cfg.Agents, Enrolled: stats.Enrolled.Load(), EnrolFailures: stats.EnrolFailures.Load(),
		MaxConnected: stats.MaxHeld.Load(), Checkins: stats.Checkins.Load(), CheckinErrors: stats.CheckinErrors.Load(),
		Commands: stats.Commands.Load(), EventsSent: stats.EventsGenerated.Load(), EventsAcked: stats.EventsAcked.Load(),
		Throttled: stats.Throttled.Load(), SendErrors: stats.SendErrors.Load(), Churned: churned,
		EnrolLatency: stats.EnrolLatency.percentiles(), CheckinLatency: stats.CheckinLatency.percentiles(),
		EventLatency: stats.EventLatency.percentiles()}
	for _, a := range agents {
		rep.Unacked += int64(a.Buffer.Len())
	}
	rep.AgentsFailed = failed.Load()
	if firstErr != nil {
		rep.FirstError = firstErr.Error()
	}
	if cfg.CollectorURL != "" {
		if err := lossCheck(ctx, cfg, agents, &rep); err != nil {
			return rep, err
		}
	}
	rep.Elapsed = time.Since(start).Round(time.Millisecond).String()
	for _, t := range transports {
		t.CloseIdleConnections()
	}
	return rep, nil
}

// runAgent runs one agent; a churning agent goes away once for a while
// (its connections closed) and comes back with the same identity. It
// returns the error that ended the agent before the run did (a refused
// enrolment, an identity no longer recognised), nil otherwise.
func runAgent(ctx context.Context, a *Agent, churn bool, cfg SimConfig) error {
	run := func(ctx context.Context) error {
		if err := a.Run(ctx); err != nil && ctx.Err() == nil {
			cfg.Logf("agent %s: %v", a.Host.Hostname, err)
			return err
		}
		return nil
	}
	if !churn || cfg.Duration <= 0 {
		return run(ctx)
	}
	c1, cancel := context.WithTimeout(ctx, cfg.Duration/3)
	err := run(c1)
	cancel()
	if err != nil || !sleepCtx(ctx, cfg.Duration/4) {
		return err
	}
	return run(ctx)
}

// lossCheck compares what each agent had acknowledged with what the
// collector received; sequence numbers are contiguous per agent, so the
// collector's distinct count must reach the agent's last sequence.
func lossCheck(ctx context.Context, cfg SimConfig, agents []*Agent, rep *Report) error {
	want := map[string]uint64{}
	for _, a := range agents {
		id, ok, _ := a.Identity.Load()
		if !ok {
			continue
		}
		mb := a.Buffer.(interface{ acked() uint64 })
		if n := mb.acked(); n > 0 {
			want[id.AgentID] = n
		}
	}
	deadline := time.Now().Add(cfg.DrainTimeout)
	for {
		st, err := fetchStats(ctx, cfg)
		if err != nil {
			return fmt.Errorf("collector stats: %w", err)
		}
		var lost, received int64
		for id, n := range want {
			got := st.Received[id]
			received += int64(min(got, n))
			if got < n {
				lost += int64(n - got)
			}
		}
		rep.Received, rep.Lost, rep.Duplicates = received, lost, int64(st.Duplicates)
		if lost == 0 || time.Now().After(deadline) || ctx.Err() != nil {
			return nil
		}
		sleepCtx(ctx, 500*time.Millisecond)
	}
}

func fetchStats(ctx context.Context, cfg SimConfig) (wire.CollectorStats, error) {
	var st wire.CollectorStats
	u := strings.TrimRight(cfg.CollectorURL, "/")
	if !strings.HasSuffix(u, wire.PathCollStats) {
		u += wire.PathCollStats
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return st, err
	}
	c := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: PinnedTLS(cfg.CASHA256)}}
	resp, err := c.Do(req)
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return st, fmt.Errorf("%s: %s", resp.Status, b)
	}
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

// acked is the highest sequence the agent generated and no longer holds:
// everything up to it was acknowledged by a relay.
func (b *MemBuffer) acked() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.recs) > 0 {
		return b.recs[0].Seq - 1
	}
	return b.next
}

func (s *Samples) percentiles() Percentiles {
	s.mu.Lock()
	d := append([]time.Duration(nil), s.d...)
	n := s.n
	s.mu.Unlock()
	if len(d) == 0 {
		return Percentiles{}
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	at := func(q float64) float64 {
		return float64(d[min(int(q*float64(len(d))), len(d)-1)]) / float64(time.Millisecond)
	}
	return Percentiles{N: n, P50: at(0.50), P90: at(0.90), P99: at(0.99), Max: at(1)}
}
