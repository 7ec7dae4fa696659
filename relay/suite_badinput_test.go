package relay_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"outpost/relay/wire"
	"outpost/store"
)

// Criterion 6: bad input is refused with the right status and leaves no
// trace: no agent or proxy row, nothing acknowledged, nothing collected.
func TestBadInputLeavesNoTrace(t *testing.T) {
	ctx := context.Background()
	m := startManager(t)
	fa, cl := clusterFleet(t, m, "acme", "dc-a", "relay.a.example")
	jt, err := m.DB.CreateJoinToken(ctx, cl.ID, store.DeployManual, "", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	dirA := t.TempDir()
	_, relayA, err := startJoined(t, m, jt.Token, dirA)
	if err != nil {
		t.Fatalf("join: %v", err)
	}
	relayCreds := relayHeader(t, dirA)
	jt2, err := m.DB.CreateJoinToken(ctx, cl.ID, store.DeployManual, "", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	fb := newFleet(t, m, "globex", 0)

	// One agent of each account, enrolled properly.
	agentA := enrolLinux(t, agentClient(t, m, relayA), fa.Key, 1)
	agentB := enrolLinux(t, agentClient(t, m, m.TLSURL), fb.Key, 2)
	authA := wire.AgentAuth(agentA.AgentID, agentA.Secret)
	authB := wire.AgentAuth(agentB.AgentID, agentB.Secret)

	expired, err := m.DB.CreateInstallCommand(ctx, store.InstallInput{AccountID: fa.Account.ID, ClusterID: cl.ID, TTL: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	revoked, err := m.DB.CreateInstallCommand(ctx, store.InstallInput{AccountID: fa.Account.ID, ClusterID: cl.ID})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.DB.RevokeInstallCommand(ctx, fa.Account.ID, revoked.ID); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond) // the 1 ms key is expired now

	enrolBody := func(key string, i int) []byte {
		h, inv := linuxHost(i)
		b, _ := json.Marshal(wire.EnrolRequest{Key: key, Host: h, Inventory: inv})
		return b
	}
	eventsBody, _ := json.Marshal(wire.EventBatch{Records: records(1, 5)})
	checkinBody, _ := json.Marshal(wire.CheckinRequest{Fingerprint: "fp"})
	manyIDs := make([]int64, 33000) // past SQLite's 32,766 variables: answered 500 before
	for i := range manyIDs {
		manyIDs[i] = int64(i + 1)
	}
	manyAcked, _ := json.Marshal(wire.CheckinRequest{Fingerprint: "fp", Acked: manyIDs})
	manyHeartbeat, _ := json.Marshal(wire.HeartbeatRequest{Version: "0.1.0", Acked: manyIDs})
	oversized := func(n int) []byte {
		// A valid JSON document, just too long.
		return []byte(`{"records":[],"pad":"` + strings.Repeat("x", n) + `"}`)
	}

	cases := []struct {
		name    string
		base    string // relay URL
		method  string
		path    string
		auth    string
		body    []byte
		gzip    bool   // send body gzip-compressed
		badGzip bool   // claim gzip, send garbage
		enc     string // Content-Encoding sent as is
		relay   string // wire.HeaderRelay sent
		code    string // wire.Error code wanted, when set
		raw     string // request sent as is on a TCP connection instead
		want    int
	}{
		{name: "malformed JSON enrol", base: m.TLSURL, method: "POST", path: wire.PathEnrol, body: []byte(`{"key":`), want: 400},
		{name: "malformed JSON events", base: m.TLSURL, method: "POST", path: wire.PathEvents, auth: authA, body: []byte(`{"records":[{"seq":1,`), want: 400},
		{name: "malformed JSON events via joined relay", base: relayA, method: "POST", path: wire.PathEvents, auth: authA, body: []byte(`[`), want: 400},
		{name: "events with seq 0", base: m.TLSURL, method: "POST", path: wire.PathEvents, auth: authA, body: []byte(`{"records":[{"seq":0,"type":"x"}]}`), want: 400},
		{name: "oversized events body", base: m.TLSURL, method: "POST", path: wire.PathEvents, auth: authA, body: oversized(4<<20 + 1), want: 413},
		{name: "oversized events body via joined relay", base: relayA, method: "POST", path: wire.PathEvents, auth: authA, body: oversized(4<<20 + 1), want: 413},
		{name: "gzip bomb events body", base: m.TLSURL, method: "POST", path: wire.PathEvents, auth: authA, body: oversized(8 << 20), gzip: true, want: 413},
		{name: "corrupt gzip events body", base: m.TLSURL, method: "POST", path: wire.PathEvents, auth: authA, body: []byte("not gzip"), badGzip: true, want: 400},
		{name: "brotli events body", base: m.TLSURL, method: "POST", path: wire.PathEvents, auth: authA, body: eventsBody, enc: "br", want: 415},
		{name: "brotli events body via joined relay", base: relayA, method: "POST", path: wire.PathEvents, auth: authA, body: eventsBody, enc: "br", want: 415},
		{name: "brotli check-in", base: m.TLSURL, method: "POST", path: wire.PathCheckin, auth: authA, body: checkinBody, enc: "br", want: 415},
		{name: "oversized enrol body", base: m.TLSURL, method: "POST", path: wire.PathEnrol, body: oversized(256<<10 + 1), want: 413},
		{name: "oversized enrol body via joined relay", base: relayA, method: "POST", path: wire.PathEnrol, body: oversized(256<<10 + 1), want: 413},
		{name: "bad agent secret", base: m.TLSURL, method: "POST", path: wire.PathEvents, auth: wire.AgentAuth(agentA.AgentID, "as_wrong"), body: eventsBody, want: 401},
		{name: "unknown agent", base: m.TLSURL, method: "POST", path: wire.PathCheckin, auth: wire.AgentAuth("ag_0000000000000000", "as_x"), body: checkinBody, want: 401},
		{name: "no credentials", base: m.TLSURL, method: "POST", path: wire.PathEvents, body: eventsBody, want: 401},
		{name: "bad agent secret via joined relay", base: relayA, method: "POST", path: wire.PathEvents, auth: wire.AgentAuth(agentA.AgentID, "as_wrong"), body: eventsBody, want: 401},
		{name: "bad check-in credentials via joined relay", base: relayA, method: "POST", path: wire.PathCheckin, auth: "Bearer nobody", body: checkinBody, want: 401},
		{name: "unknown install key", base: m.TLSURL, method: "POST", path: wire.PathEnrol, body: enrolBody("ik_notakey", 10), want: 401},
		{name: "empty install key", base: m.TLSURL, method: "POST", path: wire.PathEnrol, body: enrolBody("", 11), want: 401},
		{name: "unknown install key via joined relay", base: relayA, method: "POST", path: wire.PathEnrol, body: enrolBody("ik_notakey", 12), want: 401},
		{name: "expired install key", base: relayA, method: "POST", path: wire.PathEnrol, body: enrolBody(expired.Key, 13), want: 403},
		{name: "revoked install key", base: relayA, method: "POST", path: wire.PathEnrol, body: enrolBody(revoked.Key, 14), want: 403},
		{name: "replayed join token", base: m.TLSURL, method: "POST", path: wire.PathJoin, body: []byte(`{"token":"` + jt.Token + `","hostname":"evil","ip":"10.9.9.9"}`), want: 401},
		{name: "unknown join token", base: m.TLSURL, method: "POST", path: wire.PathJoin, body: []byte(`{"token":"jt_nope","hostname":"evil"}`), want: 401},
		{name: "heartbeat without relay credentials", base: m.TLSURL, method: "POST", path: wire.PathHeartbeat, body: []byte(`{}`), want: 401},
		{name: "ingest without relay credentials", base: m.TLSURL, method: "POST", path: wire.PathIngest, body: []byte(`{"records":[{"agent":"x","seq":1}]}`), want: 401},
		{name: "cross-account enrol via joined relay", base: relayA, method: "POST", path: wire.PathEnrol, body: enrolBody(fb.Key, 15), want: 403},
		{name: "cross-account check-in via joined relay", base: relayA, method: "POST", path: wire.PathCheckin, auth: authB, body: checkinBody, want: 403},
		{name: "cross-account events via joined relay", base: relayA, method: "POST", path: wire.PathEvents, auth: authB, body: eventsBody, want: 403},
		{name: "check-in with 33,000 acked ids", base: m.TLSURL, method: "POST", path: wire.PathCheckin, auth: authA, body: manyAcked, want: 400},
		{name: "check-in with 33,000 acked ids via joined relay", base: relayA, method: "POST", path: wire.PathCheckin, auth: authA, body: manyAcked, want: 400},
		{name: "heartbeat with 33,000 acked ids", base: m.TLSURL, method: "POST", path: wire.PathHeartbeat, relay: relayCreds, body: manyHeartbeat, want: 400},
		{name: "CONNECT", base: m.PlainURL, raw: "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", want: 405},
		{name: "CONNECT via joined relay over TLS", base: relayA, raw: "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", want: 405},
		{name: "absolute-form GET", base: m.PlainURL, raw: "GET http://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n", want: 403},
		{name: "absolute-form POST to an agent path", base: m.PlainURL, raw: "POST http://example.com" + wire.PathEnrol + " HTTP/1.1\r\nHost: example.com\r\nContent-Length: 2\r\n\r\n{}", want: 403},
		{name: "events on plain HTTP", base: m.PlainURL, method: "POST", path: wire.PathEvents, auth: authA, body: eventsBody, want: 403},
		{name: "enrol on plain HTTP", base: m.PlainURL, method: "POST", path: wire.PathEnrol, body: enrolBody(fa.Key, 16), want: 403},
		{name: "check-in on plain HTTP", base: m.PlainURL, method: "POST", path: wire.PathCheckin, auth: authA, body: checkinBody, want: 403},
		{name: "join on plain HTTP", base: m.PlainURL, method: "POST", path: wire.PathJoin, body: []byte(`{"token":"` + jt2.Token + `","hostname":"vm-2","ip":"10.9.9.8"}`), want: 403, code: wire.CodeNeedsTLS},
		{name: "heartbeat on plain HTTP", base: m.PlainURL, method: "POST", path: wire.PathHeartbeat, relay: relayCreds, body: []byte(`{}`), want: 403, code: wire.CodeNeedsTLS},
		{name: "relay auth on plain HTTP", base: m.PlainURL, method: "POST", path: wire.PathAuth, relay: relayCreds,
			body: []byte(`{"agent":"` + agentA.AgentID + `","secret":"` + agentA.Secret + `"}`), want: 403, code: wire.CodeNeedsTLS},
		{name: "ingest with relay credentials on plain HTTP", base: m.PlainURL, method: "POST", path: wire.PathIngest, relay: relayCreds, body: []byte(`{"records":[]}`), want: 403, code: wire.CodeNeedsTLS},
	}

	hc := httpClient(m)
	t.Cleanup(hc.CloseIdleConnections)
	type snapshot struct {
		agents, proxies int
		collected       uint64
		ackedM, ackedA  int64
		spoolM, spoolA  int64
	}
	snap := func() snapshot {
		t.Helper()
		page, err := m.DB.ListAgents(ctx, store.AgentFilter{})
		if err != nil {
			t.Fatal(err)
		}
		px, err := m.DB.ListProxies(ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		mm, ma := metrics(t, hc, m.TLSURL), metrics(t, hc, relayA)
		return snapshot{agents: page.Total, proxies: len(px), collected: m.Collector.Stats().Total,
			ackedM: mm["outpost_events_acked_total"], ackedA: ma["outpost_events_acked_total"],
			spoolM: mm["outpost_spool_records"], spoolA: ma["outpost_spool_records"]}
	}
	before := snap()
	if before.agents != 2 || before.proxies != 1 {
		t.Fatalf("setup: got %d agents and %d proxies, want 2 and 1", before.agents, before.proxies)
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got int
			var body string
			if tc.raw != "" {
				got, body = rawRequest(t, m, tc.base, tc.raw)
			} else {
				reqBody := tc.body
				if tc.gzip {
					var buf bytes.Buffer
					zw := gzip.NewWriter(&buf)
					zw.Write(reqBody)
					zw.Close()
					reqBody = buf.Bytes()
				}
				req, err := http.NewRequest(tc.method, tc.base+tc.path, bytes.NewReader(reqBody))
				if err != nil {
					t.Fatal(err)
				}
				req.Header.Set("Content-Type", "application/json")
				if tc.gzip || tc.badGzip {
					req.Header.Set("Content-Encoding", "gzip")
				}
				if tc.enc != "" {
					req.Header.Set("Content-Encoding", tc.enc)
				}
				if tc.auth != "" {
					req.Header.Set("Authorization", tc.auth)
				}
				if tc.relay != "" {
					req.Header.Set(wire.HeaderRelay, tc.relay)
				}
				resp, err := hc.Do(req)
				if err != nil {
					t.Fatalf("%s %s: %v", tc.method, tc.path, err)
				}
				got, body = resp.StatusCode, drainBody(resp)
			}
			if got != tc.want {
				t.Errorf("got status %d (%s), want %d", got, strings.TrimSpace(body), tc.want)
			}
			var e wire.Error
			if err := json.Unmarshal([]byte(body), &e); err != nil || e.Message == "" {
				t.Errorf("got body %q, want a JSON error with a message", body)
			}
			if tc.code != "" && e.Code != tc.code {
				t.Errorf("got code %q, want %q", e.Code, tc.code)
			}
			if after := snap(); after != before {
				t.Errorf("left a trace: got %+v, want %+v", after, before)
			}
		})
	}

	// The replayed join token also fails as a relay would use it, and no
	// second proxy row appears.
	t.Run("replayed join token on relay start", func(t *testing.T) {
		_, _, err := startJoined(t, m, jt.Token, t.TempDir())
		if err == nil || !strings.Contains(err.Error(), "already used") {
			t.Errorf("got %v, want a refusal saying the token was already used", err)
		}
		if after := snap(); after != before {
			t.Errorf("left a trace: got %+v, want %+v", after, before)
		}
	})
}

// rawRequest writes req as is on a new connection to base (TLS for https)
// and reads one response.
func rawRequest(t *testing.T, m *manager, base, req string) (int, string) {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	d := &net.Dialer{Timeout: 5 * time.Second}
	var conn net.Conn
	if u.Scheme == "https" {
		cfg := httpClient(m).Transport.(*http.Transport).TLSClientConfig.Clone()
		cfg.NextProtos = []string{"http/1.1"}
		conn, err = tls.DialWithDialer(d, "tcp", u.Host, cfg)
	} else {
		conn, err = d.Dial("tcp", u.Host)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	return resp.StatusCode, drainBody(resp)
}

// relayHeader is a joined relay's own credentials, from its DATA/relay.json.
func relayHeader(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "relay.json"))
	if err != nil {
		t.Fatal(err)
	}
	var id struct {
		ProxyID int64  `json:"proxy_id"`
		Secret  string `json:"secret"`
	}
	if err := json.Unmarshal(b, &id); err != nil || id.Secret == "" {
		t.Fatalf("relay.json: %v", err)
	}
	return fmt.Sprintf("%d:%s", id.ProxyID, id.Secret)
}
