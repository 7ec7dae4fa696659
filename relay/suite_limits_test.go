package relay_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"outpost/agentsim"
	"outpost/relay/wire"
	"outpost/store"
)

// Criterion 4: with a small cache cap the cache directory never grows past
// the cap by more than one segment, and the newest data is what is kept.
func TestCacheCapKeepsNewest(t *testing.T) {
	t.Parallel()
	const (
		capBytes = 128 << 10
		total    = 2000 // records; about 4 caps' worth
		batch    = 20   // one batch is smaller than a segment
		pad      = 150
	)
	seg := int64(max(capBytes/20, 4<<10)) // cachering's segment size for this cap
	ctx := context.Background()
	m := startManager(t)
	f, cl := clusterFleet(t, m, "acme", "dc1", "relay.dc1.example")
	cacheDir := filepath.Join(t.TempDir(), "siem")
	// Set before the join: the relay gets it with its join answer.
	if _, err := m.DB.SetPolicy(ctx, cl.ID, store.Policy{Mode: wire.ModeCache, CacheDir: cacheDir, CacheMax: capBytes}); err != nil {
		t.Fatal(err)
	}
	_, url, err := joinRelay(t, m, cl.ID)
	if err != nil {
		t.Fatalf("join: %v", err)
	}
	if got := health(httpClient(m), url)["mode"]; got != string(wire.ModeCache) {
		t.Fatalf("relay mode %v right after the join, want cache", got)
	}
	c := agentClient(t, m, url)
	en := enrolLinux(t, c, f.Key, 1)

	// Watch the directory while writing, and check after every batch.
	var peak atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			peak.Store(max(peak.Load(), dirSize(cacheDir, "export.log")))
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
		}
	}()
	s := &sender{C: c, Agent: en.AgentID, Batch: batch, Pad: pad}
	var worst int64
	for s.Acked() < total {
		if err := s.step(ctx); err != nil {
			t.Fatalf("events: %v", err)
		}
		worst = max(worst, dirSize(cacheDir, "export.log"))
	}
	close(stop)
	wg.Wait()

	if worst > capBytes {
		t.Errorf("between batches the cache held %d bytes, want at most the cap %d", worst, capBytes)
	}
	if got, want := peak.Load(), int64(capBytes)+seg; got > want {
		t.Errorf("the cache peaked at %d bytes, want at most cap+segment = %d", got, want)
	}

	recs, bad := readRecords(t, cacheDir, "export.log")
	if bad != 0 {
		t.Errorf("got %d unparsable lines, want 0", bad)
	}
	var seqs []uint64
	for _, r := range recs {
		if r.Agent != en.AgentID {
			t.Fatalf("got a record of agent %q, want %q", r.Agent, en.AgentID)
		}
		seqs = append(seqs, r.Seq)
	}
	slices.Sort(seqs)
	if len(seqs) == 0 {
		t.Fatal("the cache is empty")
	}
	first, last := seqs[0], seqs[len(seqs)-1]
	if last != total {
		t.Errorf("newest cached seq %d, want %d", last, total)
	}
	if first == 1 {
		t.Errorf("oldest cached seq is 1, want the oldest data overwritten")
	}
	if got, want := uint64(len(seqs)), last-first+1; got != want {
		t.Errorf("cache holds %d records for seqs %d..%d, want a contiguous newest run", got, first, last)
	}
	// The kept run fills the cap, less at most one segment.
	lineBytes := dirSize(cacheDir, "export.log") / int64(len(seqs))
	if minKept := (capBytes - 2*seg) / lineBytes; int64(len(seqs)) < minKept {
		t.Errorf("kept %d records (%d bytes each), want at least %d", len(seqs), lineBytes, minKept)
	}
	t.Logf("cap %d, segment %d: kept seqs %d..%d (%d records), peak %d bytes, after-batch max %d bytes",
		capBytes, seg, first, last, len(seqs), peak.Load(), worst)
}

// Criterion 5a: with a bandwidth limit of N bytes/s the relay sends about N
// bytes/s upstream, measured on its forwarded-bytes counter.
func TestBandwidthLimit(t *testing.T) {
	t.Parallel()
	const (
		limit  = 20000 // bytes/s
		window = 3 * time.Second
	)
	ctx := context.Background()
	m := startManager(t)
	f, cl := clusterFleet(t, m, "acme", "dc1", "relay.dc1.example")
	if _, err := m.DB.SetPolicy(ctx, cl.ID, store.Policy{Mode: wire.ModeForward, BandwidthBps: limit}); err != nil {
		t.Fatal(err)
	}
	_, url, err := joinRelay(t, m, cl.ID)
	if err != nil {
		t.Fatalf("join: %v", err)
	}
	hc := httpClient(m)
	t.Cleanup(hc.CloseIdleConnections)
	c := agentClient(t, m, url)
	en := enrolLinux(t, c, f.Key, 1)

	// Push about 150 KB at once: far more than the window can carry.
	s := &sender{C: c, Agent: en.AgentID, Batch: 50, Pad: 400}
	start := time.Now()
	for s.Acked() < 300 {
		if err := s.step(ctx); err != nil {
			t.Fatalf("events: %v", err)
		}
	}
	pushed := time.Since(start)
	time.Sleep(500 * time.Millisecond) // past the initial burst
	b0, t0 := metric(t, hc, url, "outpost_forwarded_bytes_total"), time.Now()
	time.Sleep(window)
	b1, t1 := metric(t, hc, url, "outpost_forwarded_bytes_total"), time.Now()
	backlog := metric(t, hc, url, "outpost_spool_records")
	rate := float64(b1-b0) / t1.Sub(t0).Seconds()
	overall := float64(b1) / t1.Sub(start).Seconds()
	t.Logf("pushed 300 records in %s; forwarded %.0f B/s over %s (limit %d B/s), %.0f B/s since the start; %d records still spooled",
		pushed.Round(time.Millisecond), rate, t1.Sub(t0).Round(time.Millisecond), limit, overall, backlog)
	if rate > 1.3*limit {
		t.Errorf("forwarded %.0f B/s, want at most 1.3 x %d", rate, limit)
	}
	if rate < 0.5*limit {
		t.Errorf("forwarded %.0f B/s, want more than 0.5 x %d", rate, limit)
	}
	if backlog == 0 {
		t.Errorf("the spool drained within the window, want a backlog (the limit was not what held it back)")
	}
	if got := m.Collector.Received(en.AgentID); got == 0 || got >= 300 {
		t.Errorf("collector has %d of 300 records, want some but not all", got)
	}
}

// Criterion 5b: with a frequency limit agents that post fast get 429 with
// Retry-After, retry, and nothing is lost or duplicated.
func TestFrequencyLimit(t *testing.T) {
	t.Parallel()
	const (
		rps     = 5
		agents  = 2
		batches = 8
		batch   = 10
	)
	ctx := context.Background()
	m := startManager(t)
	f, cl := clusterFleet(t, m, "acme", "dc1", "relay.dc1.example")
	if _, err := m.DB.SetPolicy(ctx, cl.ID, store.Policy{Mode: wire.ModeForward, FrequencyRPS: rps}); err != nil {
		t.Fatal(err)
	}
	_, url, err := joinRelay(t, m, cl.ID)
	if err != nil {
		t.Fatalf("join: %v", err)
	}
	hc := httpClient(m)
	t.Cleanup(hc.CloseIdleConnections)

	var senders []*sender
	for i := range agents {
		c := agentClient(t, m, url)
		en := enrolLinux(t, c, f.Key, i+1)
		senders = append(senders, &sender{C: c, Agent: en.AgentID, Batch: batch})
	}
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		refusals []*agentsim.StatusError
		errs     []error
	)
	start := time.Now()
	for _, s := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for s.Acked() < batches*batch {
				err := s.step(ctx)
				if err == nil {
					continue
				}
				se, ok := err.(*agentsim.StatusError)
				mu.Lock()
				if !ok || se.Status != 429 {
					errs = append(errs, err)
					mu.Unlock()
					return
				}
				refusals = append(refusals, se)
				mu.Unlock()
				time.Sleep(se.RetryAfter)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if len(errs) > 0 {
		t.Fatalf("got %d unexpected errors, first %v", len(errs), errs[0])
	}
	if len(refusals) == 0 {
		t.Fatalf("got no 429 for %d requests in %s, want the %d/s limit to refuse some", agents*batches, elapsed, rps)
	}
	for _, se := range refusals {
		if se.RetryAfter <= 0 {
			t.Fatalf("429 without Retry-After: %+v", se)
		}
	}
	if got, want := metric(t, hc, url, "outpost_throttled_total"), int64(len(refusals)); got != want {
		t.Errorf("relay counted %d throttled requests, want %d", got, want)
	}
	// Admitted requests stay within the limit (plus the burst).
	if maxOK := rps*elapsed.Seconds() + rps + 1; float64(agents*batches) > maxOK {
		t.Errorf("%d requests admitted in %s, want at most %.0f at %d/s", agents*batches, elapsed, maxOK, rps)
	}
	want := uint64(batches * batch)
	for _, s := range senders {
		waitFor(t, 10*time.Second, fmt.Sprintf("collector to receive %d records of %s", want, s.Agent), func() bool {
			return m.Collector.Received(s.Agent) >= want
		})
	}
	recs, bad := readRecords(t, filepath.Join(m.Dir, "collector"), "ingest-")
	sets := seqSets(recs)
	for _, s := range senders {
		got := sets[s.Agent]
		if len(got) != int(want) || bad != 0 {
			t.Errorf("agent %s: collector holds %d distinct seqs (%d bad lines), want %d", s.Agent, len(got), bad, want)
		}
		for seq := uint64(1); seq <= want; seq++ {
			if got[seq] != 1 {
				t.Errorf("agent %s seq %d stored %d times, want exactly once", s.Agent, seq, got[seq])
				break
			}
		}
	}
	if d := m.Collector.Stats().Duplicates; d != 0 {
		t.Errorf("collector counted %d duplicates, want 0", d)
	}
	t.Logf("%d requests in %s at %d/s: %d answered 429 (Retry-After %s), all %d records delivered once",
		agents*batches, elapsed.Round(time.Millisecond), rps, len(refusals), refusals[0].RetryAfter, agents*int(want))
}
