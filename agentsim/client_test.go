package agentsim_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"outpost/agentsim"
	"outpost/relay/relaytest"
	"outpost/relay/wire"
	"outpost/store"
)

// loopback serves h on a real 127.0.0.1:0 listener (plain HTTP) until the
// test ends and counts the requests it got.
func loopback(t *testing.T, h http.HandlerFunc) (url string, hits *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hits = &atomic.Int64{}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1); h(w, r) })}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String(), hits
}

// answering is a server giving every call the same error answer.
func answering(status int, code string, retryAfter string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if retryAfter != "" {
			w.Header().Set("Retry-After", retryAfter)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(wire.Error{Code: code, Message: "test answer " + http.StatusText(status)})
	}
}

// enrolling is a good relay: every enrolment succeeds.
func enrolling(w http.ResponseWriter, r *http.Request) {
	json.NewEncoder(w).Encode(wire.EnrolResponse{AgentID: "ag_1", Secret: "s"})
}

func testHost() (wire.Host, *wire.Inventory) {
	return wire.Host{Hostname: "web-01", OS: "linux", Arch: "amd64", Fingerprint: "fp-web-01", Version: "1.0.0"}, &wire.Inventory{}
}

// An agent fails over on every answer that means "this URL cannot serve
// you" (plain listener of a TLS-only relay, TLS mismatch, 421, 5xx, not a
// relay at all), and not on answers about the request itself (400, 401,
// 409, 413, 429): each URL is tried once, and the log line says why.
func TestClientFailsOverOnNotHere(t *testing.T) {
	m := relaytest.Start(t, relaytest.Options{})
	other := relaytest.Start(t, relaytest.Options{}) // another CA: a pin mismatch
	plainAddr := strings.TrimPrefix(func() string { u, _ := loopback(t, enrolling); return u }(), "http://")
	for _, tt := range []struct {
		name     string
		first    func(t *testing.T) string
		failover bool
		status   int    // when not failing over: the answer returned
		why      string // what a single-URL client's error says
	}{
		{"plain listener of a TLS-only relay", func(*testing.T) string { return m.PlainURL }, true, 0, "refused: needs TLS"},
		{"https URL on a plain HTTP port", func(*testing.T) string { return "https://" + plainAddr }, true, 0, "TLS refused"},
		{"http URL on a TLS port", func(*testing.T) string { return "http://" + strings.TrimPrefix(m.TLSURL, "https://") }, true, 0, "not an Outpost relay: 400"},
		{"CA pin mismatch", func(*testing.T) string { return other.TLSURL }, true, 0, "TLS refused"},
		{"nothing listening", func(t *testing.T) string { return "https://" + relaytest.FreeAddr(t) }, true, 0, "relay unreachable: dial tcp"},
		{"421 misdirected", func(t *testing.T) string { u, _ := loopback(t, answering(421, "misdirected", "")); return u }, true, 0, "refused: test answer"},
		{"503 relay failing", func(t *testing.T) string { u, _ := loopback(t, answering(503, "unavailable", "1")); return u }, true, 0, "relay failed: 503"},
		{"502 management host unreachable", func(t *testing.T) string { u, _ := loopback(t, answering(502, "unavailable", "")); return u }, true, 0, "relay failed: 502"},
		{"400 bad request", func(t *testing.T) string { u, _ := loopback(t, answering(400, store.EInvalid, "")); return u }, false, 400, "refused: test answer"},
		{"401 unknown key", func(t *testing.T) string { u, _ := loopback(t, answering(401, store.EUnauthorized, "")); return u }, false, 401, "refused: test answer"},
		{"409 conflict", func(t *testing.T) string { u, _ := loopback(t, answering(409, store.EConflict, "")); return u }, false, 409, "refused: test answer"},
		{"413 too large", func(t *testing.T) string { u, _ := loopback(t, answering(413, "too_large", "")); return u }, false, 413, "refused: test answer"},
		{"429 busy", func(t *testing.T) string { u, _ := loopback(t, answering(429, store.ELimit, "7")); return u }, false, 429, "busy: test answer"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			first := tt.first(t)
			good, hits := loopback(t, enrolling)
			c := agentsim.NewClient(agentsim.ClientOptions{Proxies: []string{first, good}, CASHA256: m.Pin(), Timeout: 5 * time.Second})
			h, inv := testHost()
			_, err := c.Enrol(context.Background(), "ik_test", h, inv)
			if tt.failover {
				if err != nil || hits.Load() != 1 {
					t.Fatalf("got %v with %d calls to the next URL, want success through it", err, hits.Load())
				}
				if got := c.Proxies()[0]; got != good {
					t.Errorf("URL in use: got %s, want %s (the agent stays on the one that works)", got, good)
				}
			} else {
				var se *agentsim.StatusError
				if !errors.As(err, &se) || se.Status != tt.status || hits.Load() != 0 {
					t.Fatalf("got %v with %d calls to the next URL, want the %d answer and no failover", err, hits.Load(), tt.status)
				}
				if tt.status == 429 && se.RetryAfter != 7*time.Second {
					t.Errorf("Retry-After: got %s, want 7s", se.RetryAfter)
				}
			}
			alone := agentsim.NewClient(agentsim.ClientOptions{Proxies: []string{first}, CASHA256: m.Pin(), Timeout: 5 * time.Second})
			_, err = alone.Enrol(context.Background(), "ik_test", h, inv)
			if got := agentsim.Describe(err); !strings.Contains(got, tt.why) || (tt.failover && !strings.Contains(got, first)) {
				t.Errorf("single URL: got %q, want it to say %q and name the URL", got, tt.why)
			}
		})
	}
}

// A key refusal is final: an agent with a revoked key tries each relay URL
// once and gives up with the relay's reason instead of looping; a list in
// which every URL says "needs TLS" is final too.
func TestEnrolRefusalIsFinal(t *testing.T) {
	m := relaytest.Start(t, relaytest.Options{})
	ctx := context.Background()
	acct, _, err := m.DB.CreateAccount(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	ic, err := m.DB.CreateInstallCommand(ctx, store.InstallInput{AccountID: acct.ID})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.DB.RevokeInstallCommand(ctx, acct.ID, ic.ID); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name    string
		proxies []string
		key     string
		why     string
	}{
		{"revoked key through two URLs", []string{m.PlainURL, m.TLSURL}, ic.Key, "refused: install key was revoked"},
		{"expired-or-not, only plain URLs", []string{m.PlainURL}, ic.Key, "refused: needs TLS"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h, inv := testHost()
			a := &agentsim.Agent{
				Client: agentsim.NewClient(agentsim.ClientOptions{Proxies: tt.proxies, CASHA256: m.Pin(), Timeout: 5 * time.Second}),
				Key:    tt.key, Host: h, Identity: &agentsim.MemIdentity{}, Buffer: &agentsim.MemBuffer{},
				Inventory: func() wire.Inventory { return *inv }, Stats: &agentsim.Stats{},
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			err := a.Run(ctx)
			if err == nil || ctx.Err() != nil {
				t.Fatalf("got %v (context %v), want a final refusal before the deadline", err, ctx.Err())
			}
			if got := agentsim.Describe(err); !strings.Contains(got, tt.why) {
				t.Errorf("got %q, want it to say %q", got, tt.why)
			}
			if got := a.Stats.EnrolFailures.Load(); got != 1 {
				t.Errorf("enrol attempts: got %d, want 1 (no retry loop)", got)
			}
		})
	}
}

// An unreachable cluster address (first in the list) costs at most the
// dial timeout before the agent moves on to the relays' own URLs.
func TestUnreachableFirstURLFailsOverQuickly(t *testing.T) {
	good, hits := loopback(t, enrolling)
	c := agentsim.NewClient(agentsim.ClientOptions{Proxies: []string{"https://10.255.255.1:8443", good}, DialTimeout: time.Second})
	h, inv := testHost()
	start := time.Now()
	if _, err := c.Enrol(context.Background(), "ik_test", h, inv); err != nil || hits.Load() != 1 {
		t.Fatalf("got %v, %d calls to the relay URL; want success through it", err, hits.Load())
	}
	if got, want := time.Since(start), 3*time.Second; got > want {
		t.Errorf("enrolment took %s, want under %s", got, want)
	}
}

// The cluster address stays first (a load balancer spreads agents itself);
// the relays' own URLs behind it are rotated per agent, so a fleet whose
// address is unreachable spreads over the relays.
func TestSpreadKeepsTheClusterAddressFirst(t *testing.T) {
	urls := []string{"https://relay.example.com:8443", "https://vm-1:8443", "https://vm-2:8443", "https://vm-3:8443"}
	seen := map[string]bool{}
	for i := 0; i < 50; i++ {
		got := agentsim.Spread(urls, fmt.Sprintf("fp-%d", i))
		if got[0] != urls[0] || len(got) != len(urls) {
			t.Fatalf("agent %d: got %v, want %s first and every URL", i, got, urls[0])
		}
		seen[got[1]] = true
	}
	if len(seen) != 3 {
		t.Errorf("second URLs used: got %v, want all three relays", seen)
	}
}
