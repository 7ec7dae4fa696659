package agentsim

import (
	"context"
	"encoding/json"
	"errors"
	"hash/fnv"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"outpost/relay/wire"
)

// Identity is what an agent keeps after enrolment.
type Identity struct {
	AgentID string   `json:"agent_id"`
	Secret  string   `json:"secret"`
	Proxies []string `json:"proxies,omitempty"`
	Cluster string   `json:"cluster,omitempty"`
	// CASHA256 is the CA pin the agent enrolled with, so later starts need
	// no --ca-sha256.
	CASHA256 string `json:"ca_sha256,omitempty"`
	// Fingerprint is the one the agent enrolled with and checks in with;
	// Machine (the machine's fingerprint) and the directory's path, device
	// and inode say where this identity was written, so a copy of the
	// directory is told apart (identitystamp.go).
	Fingerprint string `json:"fingerprint,omitempty"`
	Machine     string `json:"machine,omitempty"`
	DirPath     string `json:"dir_path,omitempty"`
	DirDev      uint64 `json:"dir_dev,omitempty"`
	DirIno      uint64 `json:"dir_inode,omitempty"`
}

// IdentityStore persists the identity: in memory for simulated agents, in
// the agent's data directory for the reference agent.
type IdentityStore interface {
	Load() (Identity, bool, error)
	Save(Identity) error
}

// EventBuffer holds events until the relay acknowledged them. The
// simulator keeps them in memory; the reference agent on disk.
type EventBuffer interface {
	Add(wire.Record) error
	Peek(max int) ([]wire.Record, error)
	Ack(seqs []uint64) error
	Len() int
	NextSeq() uint64
}

// MemIdentity is an in-memory IdentityStore.
type MemIdentity struct {
	mu sync.Mutex
	id Identity
	ok bool
}

// Load implements IdentityStore.
func (m *MemIdentity) Load() (Identity, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.id, m.ok, nil
}

// Save implements IdentityStore.
func (m *MemIdentity) Save(id Identity) error {
	m.mu.Lock()
	m.id, m.ok = id, true
	m.mu.Unlock()
	return nil
}

// MemBuffer is an in-memory EventBuffer.
type MemBuffer struct {
	mu   sync.Mutex
	recs []wire.Record
	next uint64
}

// Add implements EventBuffer.
func (b *MemBuffer) Add(r wire.Record) error {
	b.mu.Lock()
	b.recs = append(b.recs, r)
	b.mu.Unlock()
	return nil
}

// Peek implements EventBuffer.
func (b *MemBuffer) Peek(max int) ([]wire.Record, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := min(max, len(b.recs))
	return append([]wire.Record(nil), b.recs[:n]...), nil
}

// Ack implements EventBuffer.
func (b *MemBuffer) Ack(seqs []uint64) error {
	done := make(map[uint64]bool, len(seqs))
	for _, s := range seqs {
		done[s] = true
	}
	b.mu.Lock()
	kept := b.recs[:0]
	for _, r := range b.recs {
		if !done[r.Seq] {
			kept = append(kept, r)
		}
	}
	b.recs = kept
	b.mu.Unlock()
	return nil
}

// Len implements EventBuffer.
func (b *MemBuffer) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.recs)
}

// NextSeq implements EventBuffer: sequence numbers start at 1.
func (b *MemBuffer) NextSeq() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.next++
	return b.next
}

// Stats are counters shared by all agents of a process.
type Stats struct {
	Enrolled, EnrolFailures                    atomic.Int64
	Checkins, CheckinErrors                    atomic.Int64
	Held                                       atomic.Int64 // check-ins in flight now
	MaxHeld                                    atomic.Int64
	EventsGenerated, EventsAcked               atomic.Int64
	Throttled, SendErrors                      atomic.Int64
	Commands                                   atomic.Int64
	CheckinLatency, EventLatency, EnrolLatency Samples
}

// Samples collects latencies for percentiles; past a million samples the
// newest replace the oldest, so memory stays bounded on long runs.
type Samples struct {
	mu sync.Mutex
	d  []time.Duration
	n  int64
}

const maxSamples = 1 << 20

// Add records one latency.
func (s *Samples) Add(d time.Duration) {
	s.mu.Lock()
	s.n++
	if len(s.d) < maxSamples {
		s.d = append(s.d, d)
	} else {
		s.d[s.n%maxSamples] = d
	}
	s.mu.Unlock()
}

// ErrUninstalled ends Run after the agent obeyed an uninstall command.
var ErrUninstalled = errors.New("agent uninstalled by command")

// Agent runs one agent: enrolment, the long-poll check-in with inventory on
// its interval, commands, and events with at-least-once delivery.
type Agent struct {
	Client    *Client
	Key       string
	Host      wire.Host
	Inventory func() wire.Inventory
	Identity  IdentityStore
	Buffer    EventBuffer
	// EventEvery is the gap between generated events (0 = none).
	EventEvery time.Duration
	EventData  func(seq uint64) json.RawMessage
	// Linger is the pause after each delivered batch so events accumulate
	// into fewer, larger requests (0 = send as soon as generated).
	Linger time.Duration
	// Wait is the long-poll hold asked for (the relay caps it).
	Wait time.Duration
	// InventoryEvery overrides the interval the relay sends (simulator).
	InventoryEvery time.Duration
	// Load reports CPU and memory use in percent with each check-in (nil =
	// not reported); the doctor's 95 % rule reads it.
	Load func() (cpu, mem float64)
	// CloneBackoff is how long an agent the management host calls a clone
	// (wire.CheckinResponse.Clone) waits before it checks in again, with
	// jitter (0 = 5 minutes).
	CloneBackoff time.Duration
	// OnCommand is called for commands other than bind/unbind/uninstall.
	// nil means done; ErrCommandRunning means started, its outcome to come
	// through Report; any other error is reported as the failure's reason.
	OnCommand func(context.Context, wire.Command) error
	// OnUninstall, when set, runs before an uninstall command is
	// acknowledged (the reference agent stops the relay it deployed): an
	// error is reported as the failure's reason and the agent goes on.
	OnUninstall func(context.Context) error
	// OnReleaseKeys receives the release key chain of an enrolment or
	// check-in answer that carries one; the reference agent verifies it
	// from the key it trusts (agentsim does not check signatures).
	OnReleaseKeys func([]wire.ReleaseKeyLink)
	// OnCheckin is called after each successful check-in, before its
	// commands; what it reports goes with the next check-in (a new version
	// on trial marks itself healthy here).
	OnCheckin func()
	Stats     *Stats
	// Log receives the agent's reports (nil: none); Run adds host=NAME.
	Log *slog.Logger

	log *slog.Logger // Log with the host name, set by Run

	kick     chan struct{}
	maxBatch atomic.Int64 // records per events request, from the relay's settings
	results  resultQueue  // command results for the next check-in

	errMu   sync.Mutex
	lastErr error // what the last failed check-in got (nil after a success)

	pollTimeout atomic.Int64 // poll_timeout from the relay's settings (ns)

	clone clonePlace // where the identity lives and whether this is a copy (clone.go)

	// Records a relay refused with 413 when sent alone (larger than it can
	// store): kept in the buffer, reported, and left out of batches so they
	// do not hold back the rest; tried again after refusedRetry. Owned by
	// the send loop.
	refused    map[uint64]bool
	refusedAt  time.Time
	singleLeft int // after a 413 for a batch: records to send one by one
}

// refusedRetry is how long a refused record waits before it is offered
// again (the relay's limits may have changed).
const refusedRetry = 5 * time.Minute

// LastError is what the last failed check-in got, nil once one succeeded;
// Describe turns it into a log line.
func (a *Agent) LastError() error { return locked(&a.errMu, &a.lastErr) }

func (a *Agent) setLastError(err error) {
	a.errMu.Lock()
	a.lastErr = err
	a.errMu.Unlock()
}

// applySettings takes the settings of a check-in answer: events batch size
// and long-poll hold (the inventory interval is read per answer).
func (a *Agent) applySettings(st wire.Settings) {
	a.maxBatch.Store(int64(st.MaxBatch))
	a.pollTimeout.Store(int64(st.PollTimeout))
}

// inventoryInterval is InventoryEvery when set, else the management host's
// setting (5 h when it sent none).
func (a *Agent) inventoryInterval(st wire.Settings) time.Duration {
	switch {
	case a.InventoryEvery > 0:
		return a.InventoryEvery
	case st.InventoryInterval > 0:
		return st.InventoryInterval
	}
	return 5 * time.Hour
}

// wait is the long-poll hold to ask for: Wait, shortened to the management
// host's poll_timeout setting, and to hurryWait while Hurry is on.
func (a *Agent) wait() time.Duration {
	if a.results.hurrying() && (a.Wait <= 0 || hurryWait < a.Wait) {
		return hurryWait
	}
	if p := time.Duration(a.pollTimeout.Load()); p > 0 && (a.Wait <= 0 || p < a.Wait) {
		return p
	}
	return a.Wait
}

// batch is how many records one events request carries.
func (a *Agent) batch() int {
	if n := a.maxBatch.Load(); n > 0 {
		return int(n)
	}
	return 500
}

// Run enrols if needed and serves until ctx ends or the agent is
// uninstalled by command.
func (a *Agent) Run(ctx context.Context) error {
	if a.Stats == nil {
		a.Stats = &Stats{}
	}
	if a.log = a.Log; a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	a.log = a.log.With("host", a.Host.Hostname)
	a.kick = make(chan struct{}, 1)
	if err := a.locate(); err != nil {
		return err
	}
	if err := a.ensureIdentity(ctx); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	if a.EventEvery > 0 {
		wg.Add(2)
		go func() { defer wg.Done(); a.generate(ctx) }()
		go func() { defer wg.Done(); a.send(ctx) }()
	}
	err := a.checkinLoop(ctx)
	cancel()
	wg.Wait()
	return err
}

func (a *Agent) ensureIdentity(ctx context.Context) error {
	id, ok, err := a.Identity.Load()
	if err != nil {
		return err
	}
	if ok {
		a.Client.SetCredentials(id.AgentID, id.Secret)
		a.Client.SetProxies(id.Proxies)
		return nil
	}
	backoff := time.Second
	for {
		inv := a.Inventory()
		start := time.Now()
		resp, err := a.Client.Enrol(ctx, a.Key, a.Host, &inv)
		if err == nil {
			a.Stats.Enrolled.Add(1)
			a.Stats.EnrolLatency.Add(time.Since(start))
			a.Client.SetProxies(Spread(resp.Proxies, a.Host.Fingerprint))
			id := Identity{AgentID: resp.AgentID, Secret: resp.Secret, Proxies: a.Client.Proxies(), Cluster: resp.Cluster}
			a.stampEnrolled(&id)
			if err := a.Identity.Save(id); err != nil {
				return err
			}
			if a.OnReleaseKeys != nil && len(resp.ReleaseKeys) > 0 {
				a.OnReleaseKeys(resp.ReleaseKeys)
			}
			return nil
		}
		a.Stats.EnrolFailures.Add(1)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		final, wait := enrolVerdict(err)
		if final {
			return err // refused for good: the caller reports it
		}
		wait = max(wait, backoff)
		a.log.Warn("agent: enrol failed", "err", Describe(err), "retry_in", wait)
		if !sleepCtx(ctx, jitter(wait)) {
			return ctx.Err()
		}
		backoff = min(backoff*2, 30*time.Second)
	}
}

// enrolVerdict says whether an enrolment error is final and, if not, how
// long to wait at least. Final: a key refusal (unknown, expired or revoked
// key, another account's relay, wrong OS) from any relay, since every relay
// of the fleet asks the same management host, and a list in which every
// URL answered "not here" (needs TLS, not a relay): retrying cannot help
// until the operator gives other URLs. Not final: 429 and 5xx answers and
// relays that did not answer at all.
func enrolVerdict(err error) (final bool, wait time.Duration) {
	var nr *NoRelayError
	var se *StatusError
	switch {
	case errors.As(err, &nr):
		if nr.Refusal() != nil {
			return true, 0
		}
		answered := 0
		for _, t := range nr.Attempts {
			if errors.As(t.Err, &se) && se.Status < 500 {
				answered++
			}
		}
		return answered == len(nr.Attempts), nr.RetryAfter()
	case errors.As(err, &se):
		if se.Status != http.StatusTooManyRequests && se.Status < 500 {
			return true, 0
		}
		return false, max(se.RetryAfter, time.Second)
	}
	return false, 0
}

// Spread keeps the first URL of a cluster's relay list (the cluster
// address: a load balancer, a VIP or a domain resolving to the proxies
// spreads agents itself) and rotates the relays' own URLs after it by a
// hash of the agent's identity, so when the address is unreachable the
// agents of a domain cluster spread over its proxies instead of all
// falling back to the same one (the others stay as failover, in order).
func Spread(urls []string, key string) []string {
	if len(urls) < 3 {
		return urls
	}
	rest := urls[1:]
	h := fnv.New32a()
	h.Write([]byte(key))
	k := int(h.Sum32() % uint32(len(rest)))
	return append(append([]string{urls[0]}, rest[k:]...), rest[:k]...)
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// reconnectSpread is the first window over which an agent that reached no
// relay picks its retry time at random (it doubles up to a minute).
const reconnectSpread = 5 * time.Second

// spread picks a retry time uniformly in (0, d]: full jitter.
func spread(d time.Duration) time.Duration {
	return time.Duration(rand.Int64N(int64(d))) + time.Millisecond
}

var jitterSeq atomic.Uint64

// jitter spreads retries of many agents over +-25 % so they do not
// stampede a relay that comes back.
func jitter(d time.Duration) time.Duration {
	n := jitterSeq.Add(0x9E3779B97F4A7C15)
	f := 0.75 + float64(n%1000)/2000
	return time.Duration(float64(d) * f)
}
