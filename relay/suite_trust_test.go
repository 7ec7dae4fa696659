package relay_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"outpost/relay"
	"outpost/relay/wire"
	"outpost/store"
)

// Join answers the relay's secret and private key: never on plain HTTP,
// even on a management host started with --allow-plain (which is for
// agents only).
func TestJoinNeedsTLSEvenWithAllowPlain(t *testing.T) {
	ctx := context.Background()
	m := startManager(t, func(c *relay.Config) { c.AllowPlain = true })
	_, cl := clusterFleet(t, m, "acme", "dc-a", "relay.a.example")
	jt, err := m.DB.CreateJoinToken(ctx, cl.ID, store.DeployManual, "", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(wire.JoinRequest{Token: jt.Token, Hostname: "vm-2", IP: "10.9.9.8"})
	resp, err := http.Post(m.PlainURL+wire.PathJoin, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var e wire.Error
	json.NewDecoder(resp.Body).Decode(&e)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || e.Code != wire.CodeNeedsTLS {
		t.Errorf("got %d %q (%s), want 403 %q", resp.StatusCode, e.Code, e.Message, wire.CodeNeedsTLS)
	}
	if px, err := m.DB.ListProxies(ctx, 0); err != nil || len(px) != 0 {
		t.Errorf("got %d proxy servers (%v), want none", len(px), err)
	}
}

// ingest posts a batch to the management host's /v1/ingest with a joined
// relay's credentials.
func ingest(t *testing.T, m *manager, relayCreds string, recs []wire.Record) (int, wire.IngestAck, string) {
	t.Helper()
	body, _ := json.Marshal(wire.IngestBatch{Relay: "test", Records: recs})
	req, _ := http.NewRequest(http.MethodPost, m.TLSURL+wire.PathIngest, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
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

// A joined relay writes events only for agents of its own account: a
// relay of account B posting as an agent of account A is refused whole
// (403, nothing stored), and that agent's real events are then accepted,
// not dropped as duplicates. Same account is the rule, not the binding:
// records of an agent not bound to the relay's cluster are accepted.
func TestIngestOnlyForAgentsOfTheRelaysAccount(t *testing.T) {
	ctx := context.Background()
	m := startManager(t)
	fa, clA := clusterFleet(t, m, "acme", "dc-a", "relay.a.example")
	_, clB := clusterFleet(t, m, "globex", "dc-b", "relay.b.example")
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
	victim := enrolLinux(t, agentClient(t, m, m.TLSURL), fa.Key, 1) // direct: bound to no cluster of relay A
	recs := func(agent string) []wire.Record {
		rs := records(1, 100)
		for i := range rs {
			rs[i].Agent = agent
		}
		return rs
	}
	mixed := append(recs(victim.AgentID)[:50:50], recs("ag_unknown")[50:]...)

	for _, tc := range []struct {
		name  string
		relay string
		recs  []wire.Record
		want  int
		ack   wire.IngestAck
		total uint64 // records in the collector after the call
	}{
		{"relay of account B as an agent of A", "B", recs(victim.AgentID), http.StatusForbidden, wire.IngestAck{}, 0},
		{"one unknown agent in the batch", "A", mixed, http.StatusForbidden, wire.IngestAck{}, 0},
		{"relay of account A, agent not bound to its cluster", "A", recs(victim.AgentID), http.StatusOK, wire.IngestAck{Accepted: 100}, 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, ack, body := ingest(t, m, creds[tc.relay], tc.recs)
			if code != tc.want || ack != tc.ack {
				t.Errorf("got %d %+v (%s), want %d %+v", code, ack, body, tc.want, tc.ack)
			}
			if got := m.Collector.Stats().Total; got != tc.total {
				t.Errorf("collector total: got %d, want %d", got, tc.total)
			}
		})
	}
}

// A joined relay forwards exactly its agent paths: a package name that
// decodes to another path (or is no release version) is refused, never
// passed on to the management host.
func TestForwarderSendsOnlyAllowedPaths(t *testing.T) {
	m := startManager(t)
	_, cl := clusterFleet(t, m, "acme", "dc-a", "relay.a.example")
	relayURL, _ := startJoinedAt(t, m, cl.ID, t.TempDir())
	hc := httpClient(m)
	t.Cleanup(hc.CloseIdleConnections)
	for _, tc := range []struct {
		name, path string
		want       int
	}{
		{"encoded dot-dot to metrics", wire.PathPackage + "..%2f..%2f..%2fmetrics", http.StatusBadRequest},
		{"version then encoded dot-dot", wire.PathPackage + "1.2.3%2f..%2f..%2f..%2fmetrics", http.StatusBadRequest},
		{"encoded dot-dot to healthz", wire.PathPackage + "..%2F..%2F..%2Fhealthz", http.StatusBadRequest},
		{"not a release version", wire.PathPackage + "latest", http.StatusBadRequest},
		{"valid version not released", wire.PathPackage + "9.9.9", http.StatusNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := hc.Get(relayURL + tc.path)
			if err != nil {
				t.Fatal(err)
			}
			body := drainBody(resp)
			if resp.StatusCode != tc.want || strings.Contains(body, "outpost_") {
				t.Errorf("GET %s: got %d %.120q, want %d and no management host answer", tc.path, resp.StatusCode, body, tc.want)
			}
		})
	}
}

// /v1/stats lists every agent id of every account: it needs the stats
// token (a joined relay's credentials do not do). /metrics carries no
// identity, and needs a token only when the operator set one.
func TestStatsNeedTheStatsToken(t *testing.T) {
	m := startManager(t, func(c *relay.Config) { c.MetricsToken = "mt_secret" })
	fa, cl := clusterFleet(t, m, "acme", "dc-a", "relay.a.example")
	dir := t.TempDir()
	startJoinedAt(t, m, cl.ID, dir)
	ag := enrolLinux(t, agentClient(t, m, m.TLSURL), fa.Key, 1)
	hc := httpClient(m)
	t.Cleanup(hc.CloseIdleConnections)
	for _, tc := range []struct {
		name, path, auth, relay string
		want                    int
	}{
		{"stats without credentials", wire.PathCollStats, "", "", http.StatusUnauthorized},
		{"stats with relay credentials", wire.PathCollStats, "", relayHeader(t, dir), http.StatusUnauthorized},
		{"stats with a wrong token", wire.PathCollStats, "Bearer st_wrong", "", http.StatusUnauthorized},
		{"stats with the stats token", wire.PathCollStats, "Bearer " + m.Relay.StatsToken(), "", http.StatusOK},
		{"metrics without the metrics token", wire.PathMetrics, "", "", http.StatusUnauthorized},
		{"metrics with the metrics token", wire.PathMetrics, "Bearer mt_secret", "", http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, m.TLSURL+tc.path, nil)
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			if tc.relay != "" {
				req.Header.Set(wire.HeaderRelay, tc.relay)
			}
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body := drainBody(resp)
			if resp.StatusCode != tc.want {
				t.Errorf("got %d %.100q, want %d", resp.StatusCode, body, tc.want)
			}
			if tc.path == wire.PathMetrics && strings.Contains(body, ag.AgentID) {
				t.Errorf("metrics name agent %s", ag.AgentID)
			}
		})
	}
}

// A relay certificate carries the cluster address, the relay's own
// advertised hosts and its IP, never a wildcard or the management host's
// names; a refused join leaves its token usable.
func TestJoinIssuesCertificatesOnlyForTheRelaysNames(t *testing.T) {
	ctx := context.Background()
	m := startManager(t)
	m.Relay.SetPublicURLs([]string{m.TLSURL, "https://mgr.example.com:8443"})
	_, cl := clusterFleet(t, m, "acme", "dc-a", "relay.a.example")
	me, _ := os.Hostname()
	jt, err := m.DB.CreateJoinToken(ctx, cl.ID, store.DeployManual, "", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	hc := httpClient(m)
	t.Cleanup(hc.CloseIdleConnections)
	for _, tc := range []struct {
		name   string
		listen []string
		want   int
		dns    []string // certificate DNS names on success
	}{
		{"wildcard", []string{"https://*.evil.example:8443"}, http.StatusBadRequest, nil},
		{"the management host's hostname", []string{"https://" + me + ":8443"}, http.StatusBadRequest, nil},
		{"the management host's public name", []string{"https://MGR.example.com:9443"}, http.StatusBadRequest, nil},
		{"its own name", []string{"https://relay-1.a.example:8443", "https://127.0.0.1:8443"}, http.StatusOK, []string{"relay.a.example", "relay-1.a.example"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body, _ := json.Marshal(wire.JoinRequest{Token: jt.Token, Hostname: "relay-1", IP: "127.0.0.1", Listen: tc.listen})
			resp, err := hc.Post(m.TLSURL+wire.PathJoin, "application/json", bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			b := drainBody(resp)
			if resp.StatusCode != tc.want {
				t.Fatalf("got %d %.200q, want %d", resp.StatusCode, b, tc.want)
			}
			if tc.want != http.StatusOK {
				return
			}
			var jr wire.JoinResponse
			if err := json.Unmarshal([]byte(b), &jr); err != nil {
				t.Fatal(err)
			}
			blk, _ := pem.Decode([]byte(jr.Cert))
			cert, err := x509.ParseCertificate(blk.Bytes)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(cert.DNSNames, tc.dns) {
				t.Errorf("certificate DNS names: got %v, want %v", cert.DNSNames, tc.dns)
			}
			if len(cert.IPAddresses) != 1 || !cert.IPAddresses[0].Equal(net.ParseIP("127.0.0.1")) {
				t.Errorf("certificate IPs: got %v, want [127.0.0.1]", cert.IPAddresses)
			}
		})
	}
}

// Pinned clients check names, so the management host's certificate must
// name its --public hosts: it is re-issued at start when it does not.
func TestManagementCertificateNamesItsPublicHosts(t *testing.T) {
	m := startManager(t, func(c *relay.Config) { c.PublicURLs = []string{"https://mgr.example.com:8443"} })
	addr := strings.TrimPrefix(m.TLSURL, "https://")
	_, port, _ := net.SplitHostPort(addr)
	tr := wire.PinTransport(&http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, addr) // mgr.example.com resolves to the test listener
	}}, m.Pin())
	t.Cleanup(tr.CloseIdleConnections)
	resp, err := (&http.Client{Transport: tr}).Get("https://mgr.example.com:" + port + wire.PathHealth)
	if err != nil {
		t.Fatalf("GET the management host by its public name: %v", err)
	}
	resp.Body.Close()
}
