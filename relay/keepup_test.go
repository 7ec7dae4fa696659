package relay_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"outpost/relay"
)

const testLag = 1 << 20 // the smallest Validate takes

// blast runs n senders (one agent each) until ctx ends.
func blast(t *testing.T, m *manager, n int) ([]*sender, func()) {
	t.Helper()
	f := newFleet(t, m, "acme", 0)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var senders []*sender
	for i := range n {
		c := agentClient(t, m, m.TLSURL)
		en := enrolLinux(t, c, f.Key, i+1)
		s := &sender{C: c, Agent: en.AgentID, Batch: 200, Pad: 50}
		senders = append(senders, s)
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.run(ctx, 50*time.Millisecond)
		}()
	}
	return senders, func() { cancel(); wg.Wait() }
}

// maxSpool samples the relay's spool backlog for d and returns the most.
func maxSpool(t *testing.T, m *manager, d time.Duration) int64 {
	t.Helper()
	hc := httpClient(m)
	defer hc.CloseIdleConnections()
	var most int64
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		most = max(most, metric(t, hc, m.TLSURL, "outpost_spool_bytes"))
	}
	return most
}

// checkArrived waits until the upstream holds, for each sender, every seq
// it had acknowledged.
func checkArrived(t *testing.T, u *upstream, senders []*sender) {
	t.Helper()
	for _, s := range senders {
		waitFor(t, 30*time.Second, "agent "+s.Agent+"'s records upstream", func() bool { return u.Col.Received(s.Agent) >= s.Acked() })
	}
	recs, bad := readRecords(t, u.Dir, "ingest-")
	sets := seqSets(recs)
	for _, s := range senders {
		if s.Acked() == 0 {
			t.Errorf("agent %s: nothing acknowledged", s.Agent)
		}
		for seq := uint64(1); seq <= s.Acked(); seq++ {
			if sets[s.Agent][seq] != 1 {
				t.Fatalf("agent %s seq %d: stored %d times upstream, want once (%d acked, %d unreadable lines)", s.Agent, seq, sets[s.Agent][seq], s.Acked(), bad)
			}
		}
	}
}

// With upstream answering but slower than intake, the lag gate holds the
// spool backlog near the forward lag (the agents wait instead) and every
// acknowledged record still arrives. With ForwardLag 0 (gate off) the
// same run peaked at a backlog of 21.4 MB (147800 records
// acknowledged in 3 s; the gate on, at a 256 KiB lag: about 0.3 MB), far
// past the bound.
func TestLagGateBoundsSpool(t *testing.T) {
	u := startUpstream(t, false, 50*time.Millisecond)
	m := startManager(t, func(c *relay.Config) {
		c.Upstream = u.URL
		c.ForwardLag = testLag
		c.SpoolMax = 4 << 30
	})
	senders, stop := blast(t, m, 4)
	most := maxSpool(t, m, 3*time.Second)
	stop()
	hc := httpClient(m)
	defer hc.CloseIdleConnections()
	waits := metric(t, hc, m.TLSURL, "outpost_forward_lag_waits_total")
	var acked uint64
	for _, s := range senders {
		acked += s.Acked()
	}
	t.Logf("spool backlog peaked at %d bytes; %d lag waits; %d records acknowledged", most, waits, acked)
	if bound := int64(testLag + 4<<20); most > bound {
		t.Errorf("spool backlog: got a peak of %d bytes, want at most %d (forward lag + 4 MiB)", most, bound)
	}
	if waits == 0 {
		t.Errorf("outpost_forward_lag_waits_total: got 0, want > 0")
	}
	checkArrived(t, u, senders)
}

// While upstream fails the gate is open: once the upstream that held
// intake back goes away, the spool takes the outage in at intake speed,
// well past what the gate lets through.
func TestLagGateOpenWhileUpstreamDown(t *testing.T) {
	u := startUpstream(t, false, 50*time.Millisecond)
	m := startManager(t, func(c *relay.Config) {
		c.Upstream = u.URL
		c.ForwardLag = testLag
	})
	senders, stop := blast(t, m, 4)
	defer stop()
	hc := httpClient(m)
	defer hc.CloseIdleConnections()
	waitFor(t, 10*time.Second, "the lag gate to hold a batch", func() bool {
		return metric(t, hc, m.TLSURL, "outpost_forward_lag_waits_total") > 0
	})
	u.hs.Close()                   // upstream down from now on
	want := int64(testLag + 8<<20) // twice what the gate lets through
	waitFor(t, 10*time.Second, fmt.Sprintf("a spool backlog of %d bytes", want), func() bool {
		return metric(t, hc, m.TLSURL, "outpost_spool_bytes") >= want
	})
	for _, s := range senders {
		if s.Throttled() != 0 {
			t.Errorf("agent %s: throttled %d times, want none", s.Agent, s.Throttled())
		}
	}
}
