package main

// The fleet as an operator builds it: a management host, a domain cluster
// with two joined relays on other loopback addresses (each listening on
// https and http), one install key, a simulated fleet pointed at the
// printed install command, and one relay killed and restarted halfway.

import (
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// freeAddrOn returns host:port with a port nothing listens on at ip.
func freeAddrOn(t *testing.T, ip string) string {
	t.Helper()
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Skipf("cannot listen on %s: %v", ip, err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// fleetRelay is one joined relay: its own data directory and fixed ports,
// so a restart comes back on the URLs agents were handed.
type fleetRelay struct {
	c          *cli
	tls, plain string // host:port
	p          *proc
	manager    string
	token, pin string
}

func (r *fleetRelay) listen() []string {
	return []string{"--listen", "https://" + r.tls, "--listen", "http://" + r.plain}
}

func (r *fleetRelay) start(t *testing.T, args ...string) {
	t.Helper()
	r.p = svStart(t, r.c, append(append([]string{"relay"}, args...), r.listen()...)...)
	svRunFile(t, r.p, r.c.data, "relay")
}

// installArgs pulls --proxy and --key out of a printed install command.
func installArgs(t *testing.T, command string) (proxies, key, pin string) {
	t.Helper()
	f := strings.Fields(command)
	for i := 0; i+1 < len(f); i++ {
		switch f[i] {
		case "--proxy":
			proxies = f[i+1]
		case "--key":
			key = f[i+1]
		case "--ca-sha256":
			pin = f[i+1]
		}
	}
	if proxies == "" || key == "" {
		t.Fatalf("install command without --proxy or --key: %q", command)
	}
	return proxies, key, pin
}

func TestFleetTwoRelaysOneRestarted(t *testing.T) {
	if testing.Short() {
		t.Skip("process fleet test")
	}
	t.Parallel()
	const agents = 200
	c := newCLI(t)
	c.createAccount("acme")
	c.ok("cluster", "create", "--name", "edge", "--address", "edge.invalid")

	mgr := svStart(t, c, append([]string{"relay"}, svRelayListen...)...)
	info := svRunFile(t, mgr, c.data, "relay")
	mgrURL := svURL(t, info, "https")

	relays := make([]*fleetRelay, 2)
	for i, ip := range []string{"127.0.0.2", "127.0.0.3"} {
		var jt struct {
			Token   string `json:"token"`
			Command string `json:"command"`
		}
		c.json(&jt, "proxy", "deploy", "--cluster", "edge", "--manual", "--manager", mgrURL)
		r := &fleetRelay{c: &cli{t: t, data: t.TempDir(), env: c.env}, tls: freeAddrOn(t, ip), plain: freeAddrOn(t, ip),
			manager: mgrURL, token: jt.Token, pin: info.CASHA256}
		r.start(t, "--manager", mgrURL, "--join", jt.Token, "--ca-sha256", info.CASHA256)
		relays[i] = r
	}
	var proxies []struct {
		ID     int64    `json:"id"`
		Status string   `json:"status"`
		URLs   []string `json:"urls"`
	}
	waitCond(t, mgr, 20*time.Second, "both relays online", func() bool {
		r := c.run("proxy", "list", "--cluster", "edge", "--json")
		if r.code != 0 {
			return false
		}
		mustOneJSON(t, r.stdout, &proxies)
		online := 0
		for _, p := range proxies {
			if p.Status == "online" {
				online++
			}
		}
		return online == 2
	})

	var ic struct {
		Key     string `json:"key"`
		Command string `json:"command"`
	}
	c.json(&ic, "installcmd", "create", "--cluster", "edge")
	proxyList, key, pin := installArgs(t, ic.Command)
	if pin != info.CASHA256 {
		t.Errorf("install command pin: got %q, want %q", pin, info.CASHA256)
	}
	for _, u := range strings.Split(proxyList, ",") {
		if !strings.HasPrefix(u, "https://") {
			t.Errorf("install command hands agents %q: want https URLs only (plain calls are refused)", u)
		}
	}
	for _, r := range relays {
		if !strings.Contains(proxyList, r.tls) {
			t.Errorf("install command %q: want relay %s among the URLs", proxyList, r.tls)
		}
	}

	// The fleet runs 24 s; relay 2 is killed at 8 s and restarted the way
	// the README says (only --data and its listeners) at 12 s.
	simStart := time.Now()
	sim := svStart(t, c, "agentsim", "--json", "--proxy", proxyList, "--key", key, "--ca-sha256", pin,
		"--agents", fmt.Sprint(agents), "--events-per-sec", "1", "--duration", "24s", "--seed", "11",
		"--collector", mgrURL, "--drain-timeout", "40s")
	// Before the kill both relays carry agents: the fleet spreads over the
	// cluster's relays instead of piling onto (or refusing at) one URL.
	waitCond(t, sim, 8*time.Second, "agents checked in through both relays", func() bool {
		n := viaCounts(t, c)
		return len(n) == 2 && n[proxies[0].ID] > 0 && n[proxies[1].ID] > 0
	})
	t.Logf("agents per relay before the kill: %v", viaCounts(t, c))
	time.Sleep(time.Until(simStart.Add(8 * time.Second)))
	victim := relays[1]
	victim.p.signal(syscall.SIGKILL)
	victim.p.waitExit(10 * time.Second)
	time.Sleep(4 * time.Second)
	os.Remove(victim.c.data + "/run/relay.json") // a kill -9 leaves it behind
	victim.start(t)

	sim.waitExit(90 * time.Second)
	var rep struct {
		Enrolled      int64  `json:"enrolled"`
		EnrolFailures int64  `json:"enrol_failures"`
		AgentsFailed  int64  `json:"agents_failed"`
		EventsAcked   int64  `json:"events_acked"`
		Unacked       int64  `json:"events_unacked"`
		Received      *int64 `json:"received_by_collector"`
		Lost          *int64 `json:"lost"`
		Duplicates    int64  `json:"duplicates"`
		FirstError    string `json:"first_error"`
	}
	mustOneJSON(t, sim.stdout.String(), &rep)
	t.Logf("agentsim report: %+v (lost %v received %v)", rep, deref(rep.Lost), deref(rep.Received))
	if got, want := sim.code(), 0; got != want {
		t.Errorf("agentsim exit: got %d, want %d; stderr:\n%s", got, want, sim.stderr.String())
	}
	if rep.Enrolled != agents || rep.AgentsFailed != 0 {
		t.Errorf("enrolled/failed: got %d/%d, want %d/0 (first error %q)", rep.Enrolled, rep.AgentsFailed, agents, rep.FirstError)
	}
	if rep.Lost == nil || *rep.Lost != 0 {
		t.Errorf("lost: got %v, want 0 (checked against the collector)", deref(rep.Lost))
	}
	if rep.Unacked != 0 || rep.EventsAcked == 0 {
		t.Errorf("events acked/unacked: got %d/%d, want >0/0", rep.EventsAcked, rep.Unacked)
	}

	// Every agent checked in through one of the two relays, after the
	// fleet started, and the restarted relay is online again.
	var list struct {
		Agents []struct {
			ID          string    `json:"id"`
			ViaProxyID  int64     `json:"via_proxy_id"`
			LastCheckin time.Time `json:"last_checkin"`
		} `json:"agents"`
		Total int `json:"total"`
	}
	c.json(&list, "agent", "list", "--cluster", "edge", "--limit", "1000")
	if list.Total != agents {
		t.Errorf("agent list --cluster edge: got %d agents, want %d", list.Total, agents)
	}
	ids := map[int64]bool{}
	for _, p := range proxies {
		ids[p.ID] = true
	}
	via := map[int64]int{}
	for _, a := range list.Agents {
		via[a.ViaProxyID]++
		if !ids[a.ViaProxyID] {
			t.Errorf("agent %s: came through proxy %d, want one of the cluster's relays %v", a.ID, a.ViaProxyID, ids)
		}
		if a.LastCheckin.Before(simStart) {
			t.Errorf("agent %s: last check-in %s, before the fleet started", a.ID, a.LastCheckin)
		}
	}
	t.Logf("agents per relay: %v", via)
	waitCond(t, victim.p, 30*time.Second, "the restarted relay online", func() bool {
		r := c.run("proxy", "list", "--cluster", "edge", "--json")
		return r.code == 0 && strings.Count(r.stdout, `"status": "online"`) == 2
	})
}

// viaCounts counts the agents of cluster edge by the proxy server they last
// came through (0 = not yet checked in through a relay).
func viaCounts(t *testing.T, c *cli) map[int64]int {
	t.Helper()
	var list struct {
		Agents []struct {
			ViaProxyID int64 `json:"via_proxy_id"`
		} `json:"agents"`
	}
	c.json(&list, "agent", "list", "--cluster", "edge", "--limit", "1000")
	n := map[int64]int{}
	for _, a := range list.Agents {
		if a.ViaProxyID != 0 {
			n[a.ViaProxyID]++
		}
	}
	return n
}

func deref(p *int64) any {
	if p == nil {
		return "null"
	}
	return *p
}
