package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"outpost/relay"
)

// TestRelayUpgradeClusterRolling: 'proxy upgrade --cluster' takes both
// relays of a cluster from 1.0.0 to 1.1.0 one at a time, each in place
// (same PID), while agents fail over between them: no acknowledged event
// is lost.
func TestRelayUpgradeClusterRolling(t *testing.T) {
	if testing.Short() {
		t.Skip("process upgrade test")
	}
	t.Parallel()
	f := newUpFleet(t)
	second := f.startRelay(t, "127.0.0.3", "edge-2")
	f.publish(t, "1.1.0", upBuild(t, "1.1.0"))
	var ic struct {
		Command string `json:"command"`
	}
	f.c.json(&ic, "installcmd", "create", "--cluster", "edge")
	_, key, _ := installArgs(t, ic.Command)
	sim := svStart(t, f.c, "agentsim", "--json", "--proxy", f.relayURL+","+second.relayURL, "--key", key, "--ca-sha256", f.pin,
		"--agents", "20", "--events-per-sec", "5", "--duration", "10s", "--seed", "7",
		"--collector", f.mgrURL, "--drain-timeout", "30s")
	waitCond(t, sim, 10*time.Second, "agents checked in through a relay", func() bool { n := viaCounts(t, f.c); return n[f.id]+n[second.id] > 0 })

	start := time.Now()
	r := f.c.run("proxy", "upgrade", "--cluster", "edge", "--timeout", "1m")
	if r.code != 0 {
		t.Fatalf("proxy upgrade --cluster edge: got\n%s\nwant exit 0", r)
	}
	t.Logf("proxy upgrade --cluster edge (2 relays) took %s:\n%s", time.Since(start).Round(time.Millisecond), r.stdout)
	if got := strings.Count(r.stdout, "online at 1.1.0"); got != 2 {
		t.Errorf("rolling upgrade output: got %d lines online at 1.1.0, want 2:\n%s", got, r.stdout)
	}
	for _, rl := range []*upRelay{f.upRelay, second} {
		p, ok := f.proxyOf(t, rl.host)
		if st, _ := p.upgrade(); !ok || p.Version != "1.1.0" || p.Status != "online" || st != "done" {
			t.Errorf("%s: got %s %s, upgrade %s; want online at 1.1.0, done", rl.host, p.Status, p.Version, st)
		}
		info, err := relay.ReadRunFile(rl.rc.data, "relay")
		if err != nil || info.PID != rl.relay.cmd.Process.Pid || rl.relay.exited() {
			t.Errorf("%s: run file pid %d (%v), want the same process %d serving", rl.host, info.PID, err, rl.relay.cmd.Process.Pid)
		}
	}

	sim.waitExit(60 * time.Second)
	var rep struct {
		Enrolled     int64  `json:"enrolled"`
		AgentsFailed int64  `json:"agents_failed"`
		EventsAcked  int64  `json:"events_acked"`
		Unacked      int64  `json:"events_unacked"`
		Lost         *int64 `json:"lost"`
		FirstError   string `json:"first_error"`
	}
	mustOneJSON(t, sim.stdout.String(), &rep)
	if rep.Enrolled != 20 || rep.AgentsFailed != 0 {
		t.Errorf("enrolled/failed: got %d/%d, want 20/0 (first error %q)", rep.Enrolled, rep.AgentsFailed, rep.FirstError)
	}
	if rep.Lost == nil || *rep.Lost != 0 || rep.Unacked != 0 || rep.EventsAcked == 0 {
		t.Errorf("events: got acked %d unacked %d lost %v, want >0, 0 and 0", rep.EventsAcked, rep.Unacked, fmt.Sprint(deref(rep.Lost)))
	}
}
