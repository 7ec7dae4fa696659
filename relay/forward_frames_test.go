package relay_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"outpost/relay"
	"outpost/relay/collector"
	"outpost/relay/logs/logstest"
	"outpost/relay/wire"
	"outpost/store"
)

// upstream is a real collector on 127.0.0.1:0 behind a handler that
// notes each ingest request's Content-Type, and may refuse record frames
// (as a collector that does not know them) or answer slowly.
type upstream struct {
	Col          *collector.Collector
	Dir          string // the collector's
	URL          string
	refuseFrames bool
	delay        time.Duration // each request, one at a time
	hs           *http.Server

	slow sync.Mutex
	mu   sync.Mutex
	cts  []string
}

func startUpstream(t *testing.T, refuseFrames bool, delay time.Duration) *upstream {
	t.Helper()
	dir := t.TempDir()
	col, err := collector.New(dir, logstest.New(t))
	if err != nil {
		t.Fatal(err)
	}
	u := &upstream{Col: col, Dir: dir, refuseFrames: refuseFrames, delay: delay}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u.URL = "http://" + ln.Addr().String()
	inner := col.Handler()
	u.hs = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == wire.PathIngest {
			ct := r.Header.Get("Content-Type")
			u.mu.Lock()
			u.cts = append(u.cts, ct)
			u.mu.Unlock()
			if u.delay > 0 {
				u.slow.Lock()
				defer u.slow.Unlock()
				time.Sleep(u.delay)
			}
			if u.refuseFrames && wire.IsRecordFrames(ct) {
				http.Error(w, "unsupported media type", http.StatusUnsupportedMediaType)
				return
			}
		}
		inner.ServeHTTP(w, r)
	})}
	go u.hs.Serve(ln)
	t.Cleanup(func() {
		u.hs.Close()
		col.Close()
	})
	return u
}

// requests counts the ingest requests so far, framed and JSON.
func (u *upstream) requests() (framed, json int) {
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, ct := range u.cts {
		if wire.IsRecordFrames(ct) {
			framed++
		} else {
			json++
		}
	}
	return framed, json
}

// sendAndWait sends n batches of 10 events as one agent and waits until
// the upstream collector holds every acknowledged one.
func sendAndWait(t *testing.T, s *sender, u *upstream, n int) {
	t.Helper()
	for range n {
		if err := s.step(context.Background()); err != nil {
			t.Fatalf("send: %v", err)
		}
	}
	waitFor(t, 20*time.Second, "every acknowledged record upstream", func() bool { return u.Col.Received(s.Agent) == s.Acked() })
}

// The forwarder sends record frames to an upstream that takes them, and
// every acknowledged record arrives.
func TestForwardSendsRecordFrames(t *testing.T) {
	u := startUpstream(t, false, 0)
	m := startManager(t, func(c *relay.Config) { c.Upstream = u.URL })
	f := newFleet(t, m, "acme", 0)
	c := agentClient(t, m, m.TLSURL)
	en := enrolLinux(t, c, f.Key, 1)
	s := &sender{C: c, Agent: en.AgentID, Batch: 10, Pad: 200}
	sendAndWait(t, s, u, 20)
	if framed, js := u.requests(); framed == 0 || js != 0 {
		t.Errorf("requests: got %d framed, %d JSON, want only framed", framed, js)
	}
	if got, want := u.Col.Received(en.AgentID), uint64(200); got != want {
		t.Errorf("received: got %d, want %d", got, want)
	}
}

// An upstream that answers 415 to frames gets the same records as JSON,
// and only JSON after that: nothing acknowledged is lost.
func TestForwardFallsBackToJSON(t *testing.T) {
	u := startUpstream(t, true, 0)
	m := startManager(t, func(c *relay.Config) { c.Upstream = u.URL })
	f := newFleet(t, m, "acme", 0)
	c := agentClient(t, m, m.TLSURL)
	en := enrolLinux(t, c, f.Key, 1)
	s := &sender{C: c, Agent: en.AgentID, Batch: 10, Pad: 200}
	sendAndWait(t, s, u, 10)
	framed, js := u.requests()
	const forwardDepth = 4 // batches in flight, each framed at most once
	if framed == 0 || framed > forwardDepth || js == 0 {
		t.Fatalf("first requests: got %d framed, %d JSON, want 1..%d framed then JSON", framed, js, forwardDepth)
	}
	sendAndWait(t, s, u, 10)
	if framed2, js2 := u.requests(); framed2 != framed || js2 <= js {
		t.Errorf("later requests: got %d framed, %d JSON more, want only JSON", framed2-framed, js2-js)
	}
	if got, want := u.Col.Received(en.AgentID), uint64(200); got != want {
		t.Errorf("received: got %d, want %d", got, want)
	}
}

// ingestFrames posts recs to the management host's /v1/ingest as record
// frames with a joined relay's credentials.
func ingestFrames(t *testing.T, m *manager, relayCreds string, recs []string) (int, wire.IngestAck, string) {
	t.Helper()
	var body []byte
	for _, r := range recs {
		body = wire.AppendRecordFrame(body, []byte(r))
	}
	req, _ := http.NewRequest(http.MethodPost, m.TLSURL+wire.PathIngest, bytes.NewReader(body))
	req.Header.Set("Content-Type", wire.ContentTypeRecords)
	req.Header.Set(wire.HeaderRelay, relayCreds)
	hc := httpClient(m)
	defer hc.CloseIdleConnections()
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var ack wire.IngestAck
	b, _ := io.ReadAll(resp.Body)
	json.Unmarshal(b, &ack)
	return resp.StatusCode, ack, string(b)
}

// encoded is records(from, to) of agent as the relay encodes them.
func encoded(t *testing.T, agent string, from, to uint64) []string {
	t.Helper()
	var out []string
	for _, r := range records(from, to) {
		r.Agent = agent
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(b))
	}
	return out
}

// The management host's per-record account check reads framed batches as
// it reads JSON ones (see TestIngestOnlyForAgentsOfTheRelaysAccount): a
// relay of account B naming an agent of account A is refused whole.
func TestFramedIngestOnlyForAgentsOfTheRelaysAccount(t *testing.T) {
	ctx := context.Background()
	m := startManager(t)
	fa, clA := clusterFleet(t, m, "acme", "dc-a", "relay.a.example")
	fb, clB := clusterFleet(t, m, "globex", "dc-b", "relay.b.example")
	creds := map[string]string{}
	for name, cl := range map[string]store.Cluster{"A": clA, "B": clB} {
		jt, err := m.DB.CreateJoinToken(ctx, cl.ID, store.DeployManual, "", time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		if _, _, err := startJoined(t, m, jt.Token, dir); err != nil {
			t.Fatalf("join %s: %v", name, err)
		}
		creds[name] = relayHeader(t, dir)
	}
	victim := enrolLinux(t, agentClient(t, m, m.TLSURL), fa.Key, 1)
	own := enrolLinux(t, agentClient(t, m, m.TLSURL), fb.Key, 2)
	mixed := append(encoded(t, own.AgentID, 1, 50), encoded(t, victim.AgentID, 51, 100)...)
	// Its own agent in the head, the victim's in a second "agent" key: the
	// collector's reload and every reader of the segments (encoding/json:
	// last key wins) see the victim's. The management host reads a joined
	// relay's frames as a JSON batch, as they do, and refuses it (the first
	// frames.go took the head's agent and stored it: 200).
	twice := encoded(t, own.AgentID, 1, 1)
	twice[0] = twice[0][:len(twice[0])-1] + `,"agent":"` + victim.AgentID + `"}`

	for _, tc := range []struct {
		name  string
		relay string
		recs  []string
		want  int
		ack   wire.IngestAck
		total uint64 // records in the collector after the call
	}{
		{"relay of account B as an agent of A", "B", encoded(t, victim.AgentID, 1, 100), http.StatusForbidden, wire.IngestAck{}, 0},
		{"one agent of A in relay B's batch", "B", mixed, http.StatusForbidden, wire.IngestAck{}, 0},
		{"relay of account A, agent not bound to its cluster", "A", encoded(t, victim.AgentID, 1, 100), http.StatusOK, wire.IngestAck{Accepted: 100}, 100},
		{"agent key twice in relay B's record", "B", twice, http.StatusForbidden, wire.IngestAck{}, 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, ack, body := ingestFrames(t, m, creds[tc.relay], tc.recs)
			if code != tc.want || ack != tc.ack {
				t.Errorf("got %d %+v (%s), want %d %+v", code, ack, body, tc.want, tc.ack)
			}
			if got := m.Collector.Stats().Total; got != tc.total {
				t.Errorf("collector total: got %d, want %d", got, tc.total)
			}
		})
	}
}
