package agentsim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"regexp"
	"slices"
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
	// Keys are the install keys by OS ("linux", "windows"; "" for a key
	// given without its OS). Install commands are per OS, so the fleet's
	// hosts take the OS of the keys given: both keys, the usual mix (about
	// 20 % Windows); one OS's key, every host that OS; a key without its
	// OS, Linux hosts until the relay's refusal ("install command is for
	// windows") tells the key's OS, which every host then takes. Nil uses
	// Key and WindowsKey.
	Keys map[string]string
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
	Agents        int   `json:"agents"`
	Enrolled      int64 `json:"enrolled"`
	EnrolFailures int64 `json:"enrol_failures"`
	MaxConnected  int64 `json:"max_connected"`
	Checkins      int64 `json:"checkins"`
	CheckinErrors int64 `json:"checkin_errors"`
	Commands      int64 `json:"commands"`
	EventsSent    int64 `json:"events_sent"`
	EventsAcked   int64 `json:"events_acked"`
	Unacked       int64 `json:"events_unacked"`
	Throttled     int64 `json:"throttled_429"`
	SendErrors    int64 `json:"send_errors"`
	// Received, Lost and Duplicates come from the collector's counts: nil
	// (null) when no collector was asked, so nothing was checked.
	Received       *int64      `json:"received_by_collector"`
	Lost           *int64      `json:"lost"`
	Duplicates     *int64      `json:"duplicates"`
	EnrolLatency   Percentiles `json:"enrol_latency"`
	CheckinLatency Percentiles `json:"checkin_latency"`
	EventLatency   Percentiles `json:"event_latency"`
	Elapsed        string      `json:"elapsed"`
	Churned        int         `json:"churned"`
	Returns        int64       `json:"churn_returns"`         // times a churned agent came back
	AgentsFailed   int64       `json:"agents_failed"`         // ended by a refusal before the run did
	FirstError     string      `json:"first_error,omitempty"` // the first such refusal
	// FailedBy counts the failed agents by reason ("refused: install key
	// not recognised", "no relay usable: refused: needs TLS", ...).
	FailedBy map[string]int64 `json:"agents_failed_by_reason,omitempty"`
	// Problems are why the run failed (the command exits 1): acknowledged
	// events lost, agents failed for good, events left unacknowledged.
	Problems []string `json:"problems,omitempty"`
}

// problems lists what makes the run a failure, each with its count.
func (r Report) problems() []string {
	var out []string
	if r.Lost != nil && *r.Lost > 0 {
		out = append(out, fmt.Sprintf("%d acknowledged events did not reach the collector", *r.Lost))
	}
	if r.AgentsFailed > 0 {
		reasons := make([]string, 0, len(r.FailedBy))
		for why, n := range r.FailedBy {
			reasons = append(reasons, fmt.Sprintf("%d %s", n, why))
		}
		sort.Strings(reasons)
		out = append(out, fmt.Sprintf("%d agents failed for good (%s)", r.AgentsFailed, strings.Join(reasons, "; ")))
	}
	if r.Unacked > 0 {
		out = append(out, fmt.Sprintf("%d events still unacknowledged at the end", r.Unacked))
	}
	return out
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
	row("churned", fmt.Sprintf("%d (came back %d times)", r.Churned, r.Returns))
	row("agents failed", r.AgentsFailed)
	reasons := make([]string, 0, len(r.FailedBy))
	for why := range r.FailedBy {
		reasons = append(reasons, why)
	}
	sort.Strings(reasons)
	for _, why := range reasons {
		row("", fmt.Sprintf("%d %s", r.FailedBy[why], why))
	}
	row("events sent", r.EventsSent)
	row("events acknowledged", r.EventsAcked)
	row("events unacknowledged", r.Unacked)
	row("429 answers", r.Throttled)
	row("send errors", r.SendErrors)
	checked := func(v *int64) any {
		if v == nil {
			return "not checked (no --collector)"
		}
		return *v
	}
	row("received by collector", checked(r.Received))
	row("lost", checked(r.Lost))
	row("duplicates", checked(r.Duplicates))
	p := func(x Percentiles) string {
		return fmt.Sprintf("p50 %.1f ms  p90 %.1f ms  p99 %.1f ms  max %.1f ms  (n=%d)", x.P50, x.P90, x.P99, x.Max, x.N)
	}
	row("enrol latency", p(r.EnrolLatency))
	row("check-in latency", p(r.CheckinLatency))
	row("event ack latency", p(r.EventLatency))
	row("elapsed", r.Elapsed)
	for _, p := range r.Problems {
		row("FAILED", p)
	}
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
	if cfg.Keys == nil && cfg.Key != "" {
		cfg.Keys = map[string]string{"": cfg.Key}
		if cfg.WindowsKey != "" {
			cfg.Keys = map[string]string{"linux": cfg.Key, "windows": cfg.WindowsKey}
		}
	}
	if len(cfg.Proxies) == 0 || len(cfg.Keys) == 0 {
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
	keys := newFleetKeys(cfg.Keys)
	for i := range agents {
		h, inv := keys.host(cfg.Seed, cfg.FirstIndex+i, cfg.Version)
		key := keys.key(h.OS)
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
	var failed, returns atomic.Int64
	var failMu sync.Mutex
	var firstErr error
	failedBy := map[string]int64{}
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
			if err := runAgent(runCtx, a, churn, cfg, keys, cfg.FirstIndex+i, &returns); err != nil {
				failMu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				failedBy[failureKind(err)]++
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
		Throttled: stats.Throttled.Load(), SendErrors: stats.SendErrors.Load(), Churned: churned, Returns: returns.Load(),
		EnrolLatency: stats.EnrolLatency.percentiles(), CheckinLatency: stats.CheckinLatency.percentiles(),
		EventLatency: stats.EventLatency.percentiles()}
	for _, a := range agents {
		rep.Unacked += int64(a.Buffer.Len())
	}
	rep.AgentsFailed = failed.Load()
	if firstErr != nil {
		rep.FirstError = firstErr.Error()
	}
	if len(failedBy) > 0 {
		rep.FailedBy = failedBy
	}
	if cfg.CollectorURL != "" {
		if err := lossCheck(ctx, cfg, agents, &rep); err != nil {
			return rep, err
		}
	}
	rep.Problems = rep.problems()
	rep.Elapsed = time.Since(start).Round(time.Millisecond).String()
	for _, t := range transports {
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
			h, _ := FakeHostOS(cfg.Seed, i, cfg.Version, os)
			a.Host, a.Key = h, keys.key(os)
			err = a.Run(ctx)
		}
		if err != nil && ctx.Err() == nil {
			cfg.Logf("agent %s: %s", a.Host.Hostname, Describe(err))
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
	byOS    map[string]string
	learned atomic.Value // string: the OS of the bare key, once a refusal told it
}

func newFleetKeys(keys map[string]string) *fleetKeys {
	return &fleetKeys{byOS: keys}
}

// host draws host i with an OS that one of the keys enrols.
func (k *fleetKeys) host(seed int64, i int, version string) (wire.Host, wire.Inventory) {
	_, lin := k.byOS["linux"]
	_, win := k.byOS["windows"]
	_, bare := k.byOS[""]
	switch {
	case win && (lin || bare):
		return FakeHost(seed, i, version)
	case win:
		return FakeHostOS(seed, i, version, "windows")
	case lin:
		return FakeHostOS(seed, i, version, "linux")
	}
	os, _ := k.learned.Load().(string)
	if os == "" {
		os = "linux"
	}
	return FakeHostOS(seed, i, version, os)
}

func (k *fleetKeys) key(os string) string {
	if key, ok := k.byOS[os]; ok {
		return key
	}
	return k.byOS[""]
}

var wrongOS = regexp.MustCompile(`install command is for (linux|windows), this host runs`)

// learn returns the OS to retry with when err refuses a host of another OS
// than the bare key's; "" otherwise.
func (k *fleetKeys) learn(err error, hostOS string) string {
	if _, bare := k.byOS[""]; !bare || k.byOS[hostOS] != "" {
		return ""
	}
	var se *StatusError
	if !errors.As(err, &se) || se.Status != http.StatusBadRequest {
		return ""
	}
	m := wrongOS.FindStringSubmatch(se.Message)
	if m == nil || m[1] == hostOS {
		return ""
	}
	k.learned.Store(m[1])
	return m[1]
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
		dups := int64(st.Duplicates)
		rep.Received, rep.Lost, rep.Duplicates = &received, &lost, &dups
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
	if cfg.CollectorToken != "" {
		req.Header.Set("Authorization", "Bearer "+cfg.CollectorToken)
	}
	c := &http.Client{Timeout: 30 * time.Second, Transport: wire.PinTransport(&http.Transport{}, cfg.CASHA256)}
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
