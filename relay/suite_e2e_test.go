package relay_test

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"outpost/agentsim"
	"outpost/relay/spool"
	"outpost/relay/wire"
	"outpost/store"
)

// Criterion 1: enrol -> check-in -> events through a joined relay of a
// domain cluster, in forward mode (records reach the management host's
// collector) and in cache mode (records land as NDJSON in the cluster's
// cache directory with the agent id filled in by the relay).
func TestJoinedRelayEndToEnd(t *testing.T) {
	cases := []struct {
		name string
		mode wire.Mode
	}{
		{"forward", wire.ModeForward},
		{"cache", wire.ModeCache},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			m := startManager(t)
			f, cl := clusterFleet(t, m, "acme", "dc1", "relay.dc1.example")
			_, url, err := joinRelay(t, m, cl.ID)
			if err != nil {
				t.Fatalf("join: %v", err)
			}
			hc := httpClient(m)
			cacheDir := t.TempDir()
			if tc.mode == wire.ModeCache {
				// Set after the join: the relay must pick it up from its heartbeat.
				if _, err := m.DB.SetPolicy(ctx, cl.ID, store.Policy{Mode: wire.ModeCache, CacheDir: cacheDir, CacheMax: 256 << 10}); err != nil {
					t.Fatal(err)
				}
				waitFor(t, 5*time.Second, "relay to apply the cache policy", func() bool {
					h := health(hc, url)
					return h != nil && h["mode"] == string(wire.ModeCache)
				})
			}

			c := agentClient(t, m, url)
			en := enrolLinux(t, c, f.Key, 1)
			if got, want := en.Cluster, "dc1"; got != want {
				t.Errorf("enrolled into cluster %q, want %q", got, want)
			}
			if !slices.Contains(en.Proxies, url) {
				t.Errorf("got proxies %v, want them to include %s", en.Proxies, url)
			}
			h, _ := linuxHost(1)
			if _, err := c.Checkin(ctx, wire.CheckinRequest{Fingerprint: h.Fingerprint}); err != nil {
				t.Fatalf("checkin: %v", err)
			}
			acked, err := c.SendEvents(ctx, records(1, 100))
			if err != nil {
				t.Fatalf("events: %v", err)
			}
			if got, want := len(acked), 100; got != want {
				t.Fatalf("acked %d, want %d", got, want)
			}

			a, err := m.DB.GetAgent(ctx, en.AgentID)
			if err != nil {
				t.Fatal(err)
			}
			proxies, err := m.DB.ListProxies(ctx, cl.ID)
			if err != nil || len(proxies) != 1 {
				t.Fatalf("got proxies %v (%v), want 1", proxies, err)
			}
			if got, want := a.ViaProxyID, proxies[0].ID; got != want {
				t.Errorf("agent came via proxy %d, want %d", got, want)
			}
			if got, want := a.ClusterID, cl.ID; got != want {
				t.Errorf("agent cluster %d, want %d", got, want)
			}

			switch tc.mode {
			case wire.ModeForward:
				waitFor(t, 10*time.Second, "collector to receive 100 records", func() bool { return m.Collector.Received(en.AgentID) == 100 })
			case wire.ModeCache:
				var recs []wire.Record
				waitFor(t, 5*time.Second, "100 records in the cache", func() bool {
					recs, _ = readRecords(t, cacheDir, "export.log")
					return len(recs) >= 100
				})
				recs, bad := readRecords(t, cacheDir, "export.log")
				if bad != 0 {
					t.Errorf("got %d unparsable cache lines, want 0", bad)
				}
				if got, want := len(recs), 100; got != want {
					t.Fatalf("got %d cached records, want %d", got, want)
				}
				for i, r := range recs {
					if r.Agent != en.AgentID || r.Seq != uint64(i+1) {
						t.Fatalf("cache line %d: got agent %q seq %d, want %q seq %d", i, r.Agent, r.Seq, en.AgentID, i+1)
					}
				}
				if got := m.Collector.Received(en.AgentID); got != 0 {
					t.Errorf("collector received %d records in cache mode, want 0", got)
				}
			}
		})
	}
}

// Criterion 2a: an IP-address cluster holds one proxy server, a domain
// cluster several.
func TestClusterProxyLimit(t *testing.T) {
	cases := []struct {
		name    string
		address string
		max     int // proxies the cluster takes
	}{
		{"ip address holds one", "10.20.30.40", 1},
		{"domain name holds several", "relay.dc1.example", 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			m := startManager(t)
			_, cl := clusterFleet(t, m, "acme", "dc1", tc.address)
			// A token created while the cluster is still empty.
			early, err := m.DB.CreateJoinToken(ctx, cl.ID, store.DeployManual, "", time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := joinRelay(t, m, cl.ID); err != nil {
				t.Fatalf("first relay: %v", err)
			}
			_, err = m.DB.CreateJoinToken(ctx, cl.ID, store.DeployManual, "", time.Hour)
			_, _, joinErr := startJoined(t, m, early.Token, t.TempDir())
			proxies, lerr := m.DB.ListProxies(ctx, cl.ID)
			if lerr != nil {
				t.Fatal(lerr)
			}
			if got, want := len(proxies), tc.max; got != want {
				t.Errorf("cluster has %d proxies, want %d", got, want)
			}
			if tc.max == 1 {
				if got, want := store.ErrorCode(err), store.ELimit; got != want {
					t.Errorf("second join token: got code %q (%v), want %q", got, err, want)
				}
				if joinErr == nil || !strings.Contains(joinErr.Error(), "one proxy server") {
					t.Errorf("second relay with an early token: got %v, want a refusal naming the one-proxy rule", joinErr)
				}
				return
			}
			if err != nil {
				t.Errorf("second join token: %v, want ok", err)
			}
			if joinErr != nil {
				t.Errorf("second relay: %v, want joined", joinErr)
			}
		})
	}
}

// Criterion 2b: an agent given both proxies of a domain cluster keeps
// checking in and sending through B once A is stopped, and every event it
// got acknowledged reaches the collector.
func TestFailoverBetweenProxies(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m := startManager(t)
	f, cl := clusterFleet(t, m, "acme", "dc1", "relay.dc1.example")
	dirA := t.TempDir()
	urlA, closeA := startJoinedAt(t, m, cl.ID, dirA)
	urlB, _ := startJoinedAt(t, m, cl.ID, t.TempDir())
	hc := httpClient(m)

	c := agentClient(t, m, urlA, urlB)
	en := enrolLinux(t, c, f.Key, 1)
	h, _ := linuxHost(1)
	s := &sender{C: c, Agent: en.AgentID, Batch: 10}

	var (
		mu             sync.Mutex
		checkins       int
		checkinsAfter  int
		checkinErrs    []error
		released       int
		stopped        bool
		runCtx, cancel = context.WithCancel(ctx)
		wg             sync.WaitGroup
	)
	wg.Add(2)
	go func() {
		defer wg.Done()
		s.run(runCtx, 20*time.Millisecond)
	}()
	go func() {
		defer wg.Done()
		for runCtx.Err() == nil {
			_, err := c.Checkin(runCtx, wire.CheckinRequest{Fingerprint: h.Fingerprint, Wait: wire.Duration(200 * time.Millisecond)})
			mu.Lock()
			var se *agentsim.StatusError
			switch {
			case err != nil && errors.As(err, &se) && se.Status == 503 && se.RetryAfter > 0:
				// A held check-in released by A's shutdown: retry (through B).
				released++
			case err != nil && runCtx.Err() == nil:
				checkinErrs = append(checkinErrs, err)
			case err == nil:
				checkins++
				if stopped {
					checkinsAfter++
				}
			}
			mu.Unlock()
		}
	}()
	waitFor(t, 10*time.Second, "events acked through A", func() bool { return s.Acked() >= 100 })
	beforeStop := s.Acked()
	closeA()
	mu.Lock()
	stopped = true
	mu.Unlock()
	t.Logf("relay A stopped after %d acked events", beforeStop)
	waitFor(t, 15*time.Second, "events and check-ins through B", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return s.Acked() >= beforeStop+200 && checkinsAfter >= 3
	})
	cancel()
	wg.Wait()

	if got := c.Proxies()[0]; got != urlB {
		t.Errorf("client uses %s, want B %s", got, urlB)
	}
	if got := metric(t, hc, urlB, "outpost_events_acked_total"); got == 0 {
		t.Errorf("B acknowledged %d events, want > 0", got)
	}
	if len(checkinErrs) > 0 {
		t.Errorf("got %d failed check-ins (first: %v), want the client to fail over", len(checkinErrs), checkinErrs[0])
	}
	if released > 1 {
		t.Errorf("%d check-ins released by A's shutdown, want at most the one held", released)
	}
	// What A acknowledged but had not forwarded when it stopped is still in
	// its spool; restarting A from its data directory delivers it.
	acked := s.Acked()
	colDir := filepath.Join(m.Dir, "collector")
	missing := func() (n int) {
		recs, _ := readRecords(t, colDir, "ingest-")
		got := seqSets(recs)[en.AgentID]
		for seq := uint64(1); seq <= acked; seq++ {
			if got[seq] == 0 {
				n++
			}
		}
		return n
	}
	// B forwards what it acked within moments.
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline) && missing() > 0; {
		time.Sleep(50 * time.Millisecond)
	}
	inSpoolA := 0
	if n := missing(); n > 0 {
		sp, err := spool.Open(filepath.Join(dirA, "spool"), spool.Options{})
		if err != nil {
			t.Fatalf("open A's spool: %v", err)
		}
		inSpoolA = int(sp.Stats().Pending)
		sp.Close()
		t.Logf("collector misses %d acked events, A's spool holds %d: restarting A to deliver them", n, inSpoolA)
		if inSpoolA < n {
			t.Errorf("A's spool holds %d records, want at least the %d missing", inSpoolA, n)
		}
		if _, _, err := startJoined(t, m, "", dirA); err != nil {
			t.Fatalf("restart A: %v", err)
		}
		waitFor(t, 10*time.Second, "restarted A to deliver its spool", func() bool { return missing() == 0 })
	}
	_, bad := readRecords(t, colDir, "ingest-")
	if lost := missing(); lost != 0 || bad != 0 {
		t.Errorf("lost %d of %d acked events (%d bad lines), want 0", lost, acked, bad)
	}
	t.Logf("acked %d events (%d before A stopped, %d left in A's spool), %d check-ins (%d after, %d released by the shutdown), collector duplicates %d",
		acked, beforeStop, inSpoolA, checkins, checkinsAfter, released, m.Collector.Stats().Duplicates)
}

// TestAgentLeavingIsNotAnUpstreamError: an agent that gives up a check-in
// held through a joined relay is not counted as the management host
// failing (outpost_upstream_errors_total counted every such agent: 300
// after a 300-agent agentsim run with no upstream trouble at all).
func TestAgentLeavingIsNotAnUpstreamError(t *testing.T) {
	m := startManager(t)
	f, cl := clusterFleet(t, m, "acme", "dc1", "relay.dc1.example")
	_, url, err := joinRelay(t, m, cl.ID)
	if err != nil {
		t.Fatalf("join: %v", err)
	}
	c := agentClient(t, m, url)
	enrolLinux(t, c, f.Key, 1)
	h, _ := linuxHost(1)
	hc := httpClient(m)
	defer hc.CloseIdleConnections()
	for i := range 3 {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		_, err := c.Checkin(ctx, wire.CheckinRequest{Fingerprint: h.Fingerprint, Wait: wire.Duration(30 * time.Second)})
		cancel()
		if err == nil {
			t.Fatalf("check-in %d: answered within 300 ms, want it held until the agent gave up", i)
		}
	}
	waitFor(t, 5*time.Second, "the relay to see the agents leave", func() bool { return metric(t, hc, url, "outpost_checkins_held") == 0 })
	if got := metric(t, hc, url, "outpost_upstream_errors_total"); got != 0 {
		t.Errorf("outpost_upstream_errors_total: got %d, want 0 (no upstream failed)", got)
	}
}
