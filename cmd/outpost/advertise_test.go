package main

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestAdvertisedURLs(t *testing.T) {
	listening := []string{"http://vm:8080", "https://vm:8443"}
	for _, tt := range []struct {
		name       string
		public     []string
		allowPlain bool
		want       []string
		err        string
	}{
		{"TLS-only relay hides its plain listener", nil, false, []string{"https://vm:8443"}, ""},
		{"--allow-plain advertises both, TLS first", nil, true, []string{"https://vm:8443", "http://vm:8080"}, ""},
		{"--public replaces the listeners", []string{"https://edge.example:9443/"}, false, []string{"https://edge.example:9443"}, ""},
		{"--public http needs --allow-plain", []string{"http://edge.example:80"}, false, nil, "agents need TLS"},
		{"--public http with --allow-plain", []string{"http://edge.example:80"}, true, []string{"http://edge.example:80"}, ""},
		{"--public without a port", []string{"https://edge.example"}, false, nil, "want https://HOST:PORT"},
		{"--public without a host", []string{"https://:8443"}, false, nil, "want https://HOST:PORT"},
		{"--public not a URL", []string{"edge.example:8443"}, false, nil, "want https://HOST:PORT"},
		{"--public with a path", []string{"https://edge.example:8443/agents"}, false, nil, "want https://HOST:PORT"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := advertisedURLs(listening, tt.public, tt.allowPlain)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("got %v, %v; want an error saying %q", got, err, tt.err)
				}
				return
			}
			if err != nil || !slices.Equal(got, tt.want) {
				t.Errorf("got %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

// installProxyList is the --proxy list of the agent command that
// `installcmd create --cluster` prints.
func installProxyList(t *testing.T, c *cli, cluster string) []string {
	t.Helper()
	var ic struct {
		Command string `json:"command"`
	}
	c.json(&ic, "installcmd", "create", "--cluster", cluster)
	_, rest, ok := strings.Cut(ic.Command, "--proxy ")
	if !ok {
		t.Fatalf("install command %q has no --proxy", ic.Command)
	}
	return strings.Split(strings.Fields(rest)[0], ",")
}

// Two relays join a domain cluster, each listening on https and http
// without --allow-plain, the second with --public: agents are handed the
// cluster address on the relays' TLS port, then the relays' TLS URLs, and
// never a plain URL they would be refused on.
func TestJoinedRelaysAdvertiseUsableURLs(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.createAccount("acme")
	c.ok("cluster", "create", "--name", "dc", "--address", "relay.dc.example")
	mgr := svStart(t, c, "relay", "--listen", "https://127.0.0.1:0", "--listen", "http://127.0.0.1:0")
	info := svRunFile(t, mgr, c.data, "relay")
	mgrURL := svURL(t, info, "https")

	var relays, plains []string
	for i, extra := range [][]string{nil, {"--public", "https://edge-2.dc.example:9443"}} {
		var jt struct {
			Token string `json:"token"`
		}
		c.json(&jt, "proxy", "deploy", "--cluster", "dc", "--manual", "--manager", mgrURL)
		rc := &cli{t: t, data: t.TempDir(), env: c.env}
		args := append([]string{"relay", "--manager", mgrURL, "--join", jt.Token, "--ca-sha256", info.CASHA256,
			"--listen", "https://127.0.0.1:0", "--listen", "http://127.0.0.1:0"}, extra...)
		p := svStart(t, rc, args...)
		ri := svRunFile(t, p, rc.data, "relay")
		if extra == nil {
			plains = append(plains, svURL(t, ri, "http"))
			relays = append(relays, svURL(t, ri, "https"))
		} else {
			relays = append(relays, extra[1])
		}
		waitCond(t, p, 15*time.Second, "relay joined", func() bool { return len(installProxyList(t, c, "dc")) >= i+2 })
	}
	got := installProxyList(t, c, "dc")
	if want := "https://relay.dc.example:" + strings.Split(relays[0], ":")[2]; got[0] != want {
		t.Errorf("first URL: got %s, want %s: the cluster address on the first relay's TLS port", got[0], want)
	}
	for _, u := range got {
		if !strings.HasPrefix(u, "https://") {
			t.Errorf("agents handed %s: a plain URL the relay refuses (list %v)", u, got)
		}
	}
	for _, r := range relays {
		if !slices.Contains(got, r) {
			t.Errorf("list %v lacks relay URL %s", got, r)
		}
	}

	// Simulated agents given a plain URL first (refused: needs TLS), then
	// the cluster address (not resolvable here) and the relays: every one
	// enrols and checks in over TLS, and every event is acknowledged and
	// reaches the collector. The second relay's --public name does not
	// resolve either, so all go through the first.
	var ic struct {
		Key string `json:"key"`
	}
	c.json(&ic, "installcmd", "create", "--cluster", "dc")
	var rep struct {
		Enrolled      int64  `json:"enrolled"`
		Checkins      int64  `json:"checkins"`
		CheckinErrors int64  `json:"checkin_errors"`
		EventsAcked   int64  `json:"events_acked"`
		Unacked       int64  `json:"events_unacked"`
		Lost          *int64 `json:"lost"`
		AgentsFailed  int64  `json:"agents_failed"`
	}
	start := time.Now()
	c.json(&rep, "agentsim", "--proxy", strings.Join(append([]string{plains[0]}, got...), ","), "--key", ic.Key,
		"--ca-sha256", info.CASHA256, "--collector", mgrURL, "--agents", "10", "--seed", "11", "--duration", "4s",
		"--events-per-sec", "2", "--wait", "2s", "--drain-timeout", "20s")
	t.Logf("agentsim took %s: %+v", time.Since(start), rep)
	if rep.Enrolled != 10 || rep.AgentsFailed != 0 || rep.Checkins < 10 || rep.CheckinErrors != 0 {
		t.Errorf("got %d enrolled, %d failed, %d check-ins, %d check-in errors; want 10, 0, >= 10, 0", rep.Enrolled, rep.AgentsFailed,
			rep.Checkins, rep.CheckinErrors)
	}
	if rep.EventsAcked == 0 || rep.Unacked != 0 || rep.Lost == nil || *rep.Lost != 0 {
		t.Errorf("got %d acknowledged, %d unacknowledged, lost %v; want > 0, 0, 0", rep.EventsAcked, rep.Unacked, rep.Lost)
	}
}

// A joined relay restarted with another --public advertises it with its
// next heartbeat: agents are handed the new URL.
func TestRestartedRelayAdvertisesItsNewPublicURL(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.createAccount("acme")
	c.ok("cluster", "create", "--name", "dc", "--address", "relay.dc.example")
	mgr := svStart(t, c, "relay", "--listen", "https://127.0.0.1:0")
	info := svRunFile(t, mgr, c.data, "relay")
	mgrURL := svURL(t, info, "https")
	var jt struct {
		Token string `json:"token"`
	}
	c.json(&jt, "proxy", "deploy", "--cluster", "dc", "--manual", "--manager", mgrURL)
	rc := &cli{t: t, data: t.TempDir(), env: c.env}
	p := svStart(t, rc, "relay", "--manager", mgrURL, "--join", jt.Token, "--ca-sha256", info.CASHA256,
		"--listen", "https://127.0.0.1:0", "--public", "https://edge-old.dc.example:9443", "--heartbeat", "200ms")
	svRunFile(t, p, rc.data, "relay") // joined, identity saved
	waitCond(t, p, 15*time.Second, "the old URL handed out", func() bool {
		return slices.Contains(installProxyList(t, c, "dc"), "https://edge-old.dc.example:9443")
	})
	p.cmd.Process.Kill()
	p.waitExit(10 * time.Second)
	p = svStart(t, rc, "relay", "--listen", "https://127.0.0.1:0", "--public", "https://edge-new.dc.example:9443", "--heartbeat", "200ms")
	waitCond(t, p, 15*time.Second, "the new URL handed out", func() bool {
		got := installProxyList(t, c, "dc")
		return slices.Contains(got, "https://edge-new.dc.example:9443") && !slices.Contains(got, "https://edge-old.dc.example:9443")
	})
}
