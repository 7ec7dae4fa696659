package relay_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"outpost/agentsim"
	"outpost/relay"
	"outpost/relay/relaytest"
	"outpost/relay/spool"
	"outpost/relay/wire"
)

// deadUpstream returns an http URL on which nothing listens.
func deadUpstream(t *testing.T) string {
	t.Helper()
	return "http://" + relaytest.FreeAddr(t)
}

// Criterion 7: Close on a relay with held check-ins returns quickly, the
// held check-ins get a 200 answer, and what was acknowledged is synced in
// the spool (the upstream is down, so it all stays there).
func TestGracefulShutdown(t *testing.T) {
	const agents = 5
	ctx := context.Background()
	upstream := deadUpstream(t)
	m := startManager(t, func(c *relay.Config) { c.Upstream = upstream })
	f := newFleet(t, m, "acme", 0)
	hc := httpClient(m)
	t.Cleanup(hc.CloseIdleConnections)

	type result struct {
		err error
		at  time.Time
	}
	results := make(chan result, agents)
	var clients []*agentsim.Client
	for i := range agents {
		c := agentClient(t, m, m.TLSURL)
		enrolLinux(t, c, f.Key, i+1)
		clients = append(clients, c)
	}
	s := &sender{C: clients[0], Batch: 50}
	for range 2 {
		if err := s.step(ctx); err != nil {
			t.Fatalf("events: %v", err)
		}
	}
	for i, c := range clients {
		h, _ := linuxHost(i + 1)
		go func() {
			_, err := c.Checkin(ctx, wire.CheckinRequest{Fingerprint: h.Fingerprint, Wait: wire.Duration(time.Minute)})
			results <- result{err, time.Now()}
		}()
	}
	waitFor(t, 5*time.Second, "check-ins to be held", func() bool {
		return metric(t, hc, m.TLSURL, "outpost_checkins_held") == agents
	})
	hc.CloseIdleConnections()

	start := time.Now()
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := m.Relay.Close(cctx); err != nil {
		t.Errorf("close: %v", err)
	}
	if got, want := time.Since(start), 2*time.Second; got > want {
		t.Errorf("Close took %s, want under %s", got, want)
	}
	t.Logf("Close with %d held check-ins took %s", agents, time.Since(start))
	for range agents {
		select {
		case r := <-results:
			if r.err != nil {
				t.Errorf("held check-in got %v, want a 200 answer", r.err)
			}
			if got := r.at.Sub(start); got > 2*time.Second {
				t.Errorf("held check-in answered %s after Close began, want under 2s", got)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("a held check-in got no answer")
		}
	}
	if _, err := clients[1].Checkin(ctx, wire.CheckinRequest{}); !errors.Is(err, agentsim.ErrNoRelay) {
		t.Errorf("check-in after Close: got %v, want %v", err, agentsim.ErrNoRelay)
	}

	// The spool is closed (its lock released) and holds every acked record.
	sp, err := spool.Open(filepath.Join(m.Dir, "spool"), spool.Options{})
	if err != nil {
		t.Fatalf("reopen spool: %v", err)
	}
	defer sp.Close()
	if got, want := sp.Stats().Pending, int64(s.Acked()); got != want {
		t.Errorf("spool holds %d records, want the %d acknowledged", got, want)
	}
	entries, err := sp.Peek(1000, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range entries {
		var r wire.Record
		if err := json.Unmarshal(e.Payload, &r); err != nil || r.Seq != uint64(i+1) || r.Agent == "" {
			t.Fatalf("spool entry %d: got %s (%v), want seq %d with the agent id", i, e.Payload, err, i+1)
		}
	}
	// The upstream is another host: the built-in collector got nothing.
	if got := m.Collector.Stats().Total; got != 0 {
		t.Errorf("built-in collector got %d records, want 0 (the upstream is %s)", got, upstream)
	}
}

// A joined relay forwards held check-ins to the management host; closing
// it must not wait for the management host to answer them.
func TestGracefulShutdownJoinedRelay(t *testing.T) {
	ctx := context.Background()
	m := startManager(t)
	f, cl := clusterFleet(t, m, "acme", "dc1", "relay.dc1.example")
	srvURL, closeRelay := startJoinedAt(t, m, cl.ID, t.TempDir())
	c := agentClient(t, m, srvURL)
	enrolLinux(t, c, f.Key, 1)
	h, _ := linuxHost(1)
	hc := httpClient(m)
	t.Cleanup(hc.CloseIdleConnections)
	done := make(chan error, 1)
	go func() {
		_, err := c.Checkin(ctx, wire.CheckinRequest{Fingerprint: h.Fingerprint, Wait: wire.Duration(time.Minute)})
		done <- err
	}()
	waitFor(t, 5*time.Second, "check-in to be held", func() bool {
		return metric(t, hc, srvURL, "outpost_checkins_held") == 1
	})
	hc.CloseIdleConnections()
	start := time.Now()
	closeRelay()
	if got, want := time.Since(start), 2*time.Second; got > want {
		t.Errorf("Close took %s, want under %s", got, want)
	}
	select {
	case err := <-done:
		// The management host alone knows the agent's settings, so the
		// relay answers "retry" rather than an empty 200.
		var se *agentsim.StatusError
		if !errors.As(err, &se) || se.Status != 503 || se.RetryAfter <= 0 {
			t.Errorf("held check-in got %v, want a 503 answer with Retry-After", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the held check-in got no answer")
	}
}

// Criterion 8: a client that trickles its request header is cut off by
// the header timeout (10 s) instead of holding a connection forever.
func TestSlowHeaderCutOff(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the 10 s header timeout")
	}
	t.Parallel()
	m := startManager(t)
	conn, err := net.Dial("tcp", strings.TrimPrefix(m.PlainURL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	if _, err := io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: relay\r\n"); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() { // one more header byte a second, never the end of the header
		defer wg.Done()
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if _, err := conn.Write([]byte("X")); err != nil {
					return
				}
			}
		}
	}()
	conn.SetReadDeadline(time.Now().Add(15 * time.Second))
	got, err := io.ReadAll(conn) // until the server hangs up
	close(stop)
	wg.Wait()
	elapsed := time.Since(start)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("connection still open after %s, want it closed by the header timeout", elapsed)
	}
	// The server hangs up, at most with an error status first.
	if len(got) > 0 && !strings.HasPrefix(string(got), "HTTP/1.1 4") {
		t.Errorf("got %q before the hang-up, want nothing or a 4xx answer", got)
	}
	t.Logf("connection closed after %s (answer %q)", elapsed.Round(time.Millisecond), strings.SplitN(string(got), "\r\n", 2)[0])
	if elapsed < 9*time.Second || elapsed > 15*time.Second {
		t.Errorf("connection closed after %s, want about 10s (the header timeout)", elapsed)
	}
}
