package relay_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"outpost/agentsim"
	"outpost/relay/wire"
	"outpost/store"
)

// Helpers shared by the integration suite (suite_*_test.go, bench_test.go).

// linuxHost is host(i) forced to Linux: install commands default to Linux
// and refuse other hosts.
func linuxHost(i int) (wire.Host, *wire.Inventory) {
	h, inv := host(i)
	h.OS, h.Arch, h.OSName = "linux", "amd64", "Ubuntu 22.04.4 LTS"
	return h, inv
}

func enrolLinux(t testing.TB, c *agentsim.Client, key string, i int) wire.EnrolResponse {
	t.Helper()
	h, inv := linuxHost(i)
	resp, err := c.Enrol(context.Background(), key, h, inv)
	if err != nil {
		t.Fatalf("enrol agent %d: %v", i, err)
	}
	return resp
}

// newCluster creates a cluster of the fleet's account.
func newCluster(t testing.TB, m *manager, accountID int64, name, address string) store.Cluster {
	t.Helper()
	c, err := m.DB.CreateCluster(context.Background(), store.ClusterInput{AccountID: accountID, Name: name, Address: address})
	if err != nil {
		t.Fatalf("create cluster %s: %v", name, err)
	}
	return c
}

// clusterFleet creates account name, a cluster of it and an install key
// that enrols into the cluster.
func clusterFleet(t *testing.T, m *manager, name, cluster, address string) (fleet, store.Cluster) {
	t.Helper()
	f0 := newFleet(t, m, name, 0)
	cl := newCluster(t, m, f0.Account.ID, cluster, address)
	return newFleet(t, m, name, cl.ID), cl
}

// startJoinedAt joins a relay with a fresh token, keeping its data in dir
// so the test can restart it there.
func startJoinedAt(t *testing.T, m *manager, clusterID int64, dir string) (string, func()) {
	t.Helper()
	jt, err := m.DB.CreateJoinToken(context.Background(), clusterID, store.DeployManual, "", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	srv, url, err := startJoined(t, m, jt.Token, dir)
	if err != nil {
		t.Fatalf("join: %v", err)
	}
	return url, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Close(ctx)
	}
}

// httpClient is a raw client that pins the fleet CA (and speaks plain
// HTTP to http:// URLs).
func httpClient(m *manager) *http.Client {
	return &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{
		TLSClientConfig: agentsim.PinnedTLS(m.Relay.CAFingerprint()), MaxIdleConnsPerHost: 16,
	}}
}

// metrics reads a relay's /metrics into name -> value. Values are floats
// in the exposition format (1.234567e+06), so they are parsed as such.
func metrics(t testing.TB, hc *http.Client, base string) map[string]int64 {
	t.Helper()
	resp, err := hc.Get(strings.TrimRight(base, "/") + wire.PathMetrics)
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("metrics: status %d", resp.StatusCode)
	}
	out := map[string]int64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, v, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err == nil {
			out[name] = int64(f)
		}
	}
	return out
}

func metric(t testing.TB, hc *http.Client, base, name string) int64 {
	t.Helper()
	v, ok := metrics(t, hc, base)[name]
	if !ok {
		t.Fatalf("metric %s not exported by %s", name, base)
	}
	return v
}

// health returns a relay's /healthz document (nil when unreachable).
func health(hc *http.Client, base string) map[string]any {
	resp, err := hc.Get(strings.TrimRight(base, "/") + wire.PathHealth)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var out map[string]any
	if json.NewDecoder(resp.Body).Decode(&out) != nil {
		return nil
	}
	return out
}

// paddedRecords are like records but each carries pad bytes of data.
func paddedRecords(from, to uint64, pad int) []wire.Record {
	data, _ := json.Marshal(map[string]string{"msg": strings.Repeat("x", pad)})
	out := make([]wire.Record, 0, to-from+1)
	for s := from; s <= to; s++ {
		out = append(out, wire.Record{Seq: s, Time: time.Now().UTC(), Type: "alert", Data: data})
	}
	return out
}

// readRecords parses every NDJSON file in dir whose name starts with
// prefix, returning the records and the number of unparsable lines.
func readRecords(t testing.TB, dir, prefix string) ([]wire.Record, int) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []wire.Record
	bad := 0
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), prefix) || !e.Type().IsRegular() {
			continue
		}
		f, err := os.Open(filepath.Join(dir, e.Name()))
		if err != nil {
			if os.IsNotExist(err) {
				continue
			}
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		for sc.Scan() {
			var r wire.Record
			if json.Unmarshal(sc.Bytes(), &r) != nil {
				bad++
				continue
			}
			out = append(out, r)
		}
		f.Close()
	}
	return out, bad
}

// dirSize sums the sizes of the files in dir whose names start with prefix.
func dirSize(dir, prefix string) int64 {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	var n int64
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), prefix) {
			continue
		}
		if fi, err := e.Info(); err == nil {
			n += fi.Size()
		}
	}
	return n
}

// seqSets groups records by agent.
func seqSets(recs []wire.Record) map[string]map[uint64]int {
	out := map[string]map[uint64]int{}
	for _, r := range recs {
		if out[r.Agent] == nil {
			out[r.Agent] = map[uint64]int{}
		}
		out[r.Agent][r.Seq]++
	}
	return out
}

// sender is an agent that sends numbered events in order, keeps what was
// not acknowledged and retries it, as the reference agent does. acked is
// the highest acknowledged seq; acknowledged seqs are 1..acked.
type sender struct {
	C     *agentsim.Client
	Agent string
	Batch int
	Pad   int

	mu        sync.Mutex
	acked     uint64
	sent      uint64 // highest seq ever sent
	throttled int
	failures  int
	lastErr   error
}

// step sends the next batch once; it returns the error of the call.
func (s *sender) step(ctx context.Context) error {
	s.mu.Lock()
	from := s.acked + 1
	s.mu.Unlock()
	to := from + uint64(max(s.Batch, 1)) - 1
	s.mu.Lock()
	s.sent = max(s.sent, to)
	s.mu.Unlock()
	acked, err := s.C.SendEvents(ctx, paddedRecords(from, to, s.Pad))
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.lastErr = err
		if agentsim.IsStatus(err, http.StatusTooManyRequests) {
			s.throttled++
		} else {
			s.failures++
		}
		return err
	}
	if len(acked) != int(to-from+1) || acked[0] != from || acked[len(acked)-1] != to {
		return fmt.Errorf("agent %s: acked %v, want %d..%d", s.Agent, acked, from, to)
	}
	s.acked = to
	return nil
}

// run sends until ctx ends; on a refusal it waits Retry-After (or pause).
func (s *sender) run(ctx context.Context, pause time.Duration) {
	for ctx.Err() == nil {
		err := s.step(ctx)
		if err == nil {
			continue
		}
		wait := pause
		var se *agentsim.StatusError
		if errors.As(err, &se) && se.RetryAfter > 0 {
			wait = se.RetryAfter
		}
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
	}
}

func (s *sender) Acked() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.acked
}

func (s *sender) Sent() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sent
}

func (s *sender) Throttled() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.throttled
}

// drainBody reads and closes a response body.
func drainBody(resp *http.Response) string {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	return string(b)
}

// agentClient is newClient with a transport whose idle connections are
// closed before the relays shut down, so that no unused keep-alive
// connection holds a relay's graceful shutdown open.
func agentClient(t testing.TB, m *manager, urls ...string) *agentsim.Client {
	o := agentsim.ClientOptions{Proxies: urls, CASHA256: m.Relay.CAFingerprint(), Timeout: 5 * time.Second}
	o.Transport = agentsim.NewTransport(o)
	t.Cleanup(o.Transport.CloseIdleConnections)
	return agentsim.NewClient(o)
}
