//go:build linux

package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"outpost/agentsim"
	"outpost/relay/wire"
)

// perfEvents is the event path of the harness, all on loopback: one
// `outpost center`, a management host, a joined relay of a forward-mode
// cluster and one of a cache-mode cluster (8 agents enrolled through
// each), and nginx as a plain reverse proxy in front of the same center.
type perfEvents struct {
	c          *cli
	center     *proc
	centerURL  string // http://HOST:PORT
	centerDir  string // its segments
	token      string // center's ingest token
	fwd, cache *perfRelay
	nginx      *perfNginx // nil when nginx is not installed
	nginxWhy   string     // why not
	seqs       []uint64   // per nginx connection (its own agent ids)
}

type perfRelay struct {
	p      *proc
	plain  string // http://HOST:PORT
	agents []perfAgent
}

type perfAgent struct {
	id, secret string
	seq        uint64
	acked      int64
}

func startPerfEvents(t *testing.T) *perfEvents {
	t.Helper()
	e := &perfEvents{c: newCLI(t), seqs: make([]uint64, perfConns)}
	c := e.c
	c.createAccount("perf")
	for _, name := range []string{"fwd", "cache"} {
		c.ok("cluster", "create", "--name", name, "--address", name+".invalid")
	}
	cdata := t.TempDir()
	var raw [16]byte
	rand.Read(raw[:])
	e.token = "ct_" + hex.EncodeToString(raw[:])
	tokFile := filepath.Join(cdata, "ingest.token")
	if err := os.WriteFile(tokFile, []byte(e.token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cc := &cli{t: t, data: cdata, env: c.env}
	e.centerDir = filepath.Join(cdata, "center")
	e.center = svStart(t, cc, append([]string{"center", "--listen", "127.0.0.1:0", "--token-file", tokFile}, perfProfile("center")...)...)
	info := svRunFile(t, e.center, cdata, "center")
	e.centerURL = strings.TrimSuffix(info.URLs[0], wire.PathIngest)

	c.ok("cluster", "policy", "fwd", "--mode", "forward", "--bandwidth", "unlimited", "--frequency", "unlimited", "--upstream", e.centerURL)
	c.ok("cluster", "policy", "cache", "--mode", "cache", "--cache-max", "3GB")
	mgr := svStart(t, c, append([]string{"relay"}, svRelayListen...)...)
	minfo := svRunFile(t, mgr, c.data, "relay")
	mgrURL := svURL(t, minfo, "https")
	e.fwd = e.joinRelay(t, "fwd", mgrURL, minfo.CASHA256, tokFile)
	e.cache = e.joinRelay(t, "cache", mgrURL, minfo.CASHA256, tokFile)
	if bin, err := exec.LookPath("nginx"); err != nil {
		e.nginxWhy = "nginx not installed (make perf installs it)"
	} else {
		e.nginx = startNginx(t, bin, strings.TrimPrefix(e.centerURL, "http://"))
	}
	return e
}

// joinRelay deploys a relay into cluster, starts it and enrols perfConns
// agents through it.
func (e *perfEvents) joinRelay(t *testing.T, cluster, mgrURL, pin, tokFile string) *perfRelay {
	t.Helper()
	var jt struct {
		Token string `json:"token"`
	}
	e.c.json(&jt, "proxy", "deploy", "--cluster", cluster, "--manual", "--manager", mgrURL)
	rc := &cli{t: t, data: t.TempDir(), env: e.c.env}
	args := []string{"relay", "--manager", mgrURL, "--join", jt.Token, "--ca-sha256", pin,
		"--listen", "https://127.0.0.1:0", "--listen", "http://127.0.0.1:0", "--allow-plain",
		"--upstream-token-file", tokFile, "--spool-max", "8GiB"}
	if cluster == "fwd" {
		args = append(args, perfProfile(cluster)...)
	}
	p := svStart(t, rc, args...)
	info := svRunFile(t, p, rc.data, "relay")
	r := &perfRelay{p: p, plain: svURL(t, info, "http")}
	var ic struct {
		Key string `json:"key"`
	}
	e.c.json(&ic, "installcmd", "create", "--cluster", cluster)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := range perfConns {
		cl := agentsim.NewClient(agentsim.ClientOptions{Proxies: []string{svURL(t, info, "https")}, CASHA256: pin})
		host, inv := agentsim.FakeHostOS(7, i+len(cluster)*100, "perf", "linux")
		en, err := cl.Enrol(ctx, ic.Key, host, &inv)
		if err != nil {
			t.Fatalf("enrol through the %s relay: %v", cluster, err)
		}
		r.agents = append(r.agents, perfAgent{id: en.AgentID, secret: en.Secret})
	}
	return r
}

// relayConns are the relay's agents, one connection each.
func (r *perfRelay) conns() []blastConn {
	var out []blastConn
	for i := range r.agents {
		a := &r.agents[i]
		out = append(out, blastConn{url: r.plain + wire.PathEvents, auth: "Bearer " + a.id + ":" + a.secret, seq: &a.seq, acked: &a.acked})
	}
	return out
}

// nginxConns post ingest batches through nginx, as a relay would.
func (e *perfEvents) nginxConns() []blastConn {
	var out []blastConn
	for i := range perfConns {
		out = append(out, blastConn{url: e.nginx.url + wire.PathIngest, auth: "Bearer " + e.token,
			agent: fmt.Sprintf("perf-nginx-%d", i), relay: true, seq: &e.seqs[i]})
	}
	return out
}

// drain waits until the forward relay's spool is empty (bounded), so the
// next run does not share the machine with a backlog.
func (e *perfEvents) drain(t *testing.T, max time.Duration) {
	t.Helper()
	start := time.Now()
	for perfMetric(t, e.fwd.plain, "outpost_spool_records") > 0 {
		if time.Since(start) > max {
			t.Logf("  spool still holds %.0f records after %s of draining; going on",
				perfMetric(t, e.fwd.plain, "outpost_spool_records"), max)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	if d := time.Since(start); d > time.Second {
		t.Logf("  spool drained in %s", d.Round(100*time.Millisecond))
	}
	e.prune()
}

// prune removes the center's closed segments, so a long run does not fill
// the disk (the center keeps its duplicate state in memory).
func (e *perfEvents) prune() {
	m, _ := filepath.Glob(filepath.Join(e.centerDir, "ingest-*.ndjson"))
	sort.Strings(m)
	for i := 0; i+1 < len(m); i++ {
		os.Remove(m[i])
	}
}

// peerPIDs are the processes behind "nginx -> center".
func (e *perfEvents) peerPIDs() []int {
	return append(e.nginx.pids(), e.center.cmd.Process.Pid)
}

// checkDelivered compares what the center holds of the forward relay's
// agents with what the relay acknowledged to them: once the spool is
// drained, nothing acknowledged may be missing.
func (e *perfEvents) checkDelivered(t *testing.T) {
	t.Helper()
	if left := perfMetric(t, e.fwd.plain, "outpost_spool_records"); left > 0 {
		t.Logf("  delivery not checked: %.0f records still in the spool", left)
		return
	}
	code, body := svGet(t, &http.Client{Transport: bearer{e.token}, Timeout: 10 * time.Second}, e.centerURL+wire.PathCollStats)
	var st wire.CollectorStats
	if code != http.StatusOK || json.Unmarshal([]byte(body), &st) != nil {
		t.Fatalf("center stats: %d %s", code, body)
	}
	var acked, got int64
	for _, a := range e.fwd.agents {
		acked += a.acked
		got += int64(min(st.Received[a.id], uint64(a.acked)))
	}
	t.Logf("  the center holds %d of the %d events the forward relay acknowledged", got, acked)
	if got < acked {
		t.Errorf("forward mode lost %d acknowledged events", acked-got)
	}
}

// perfProfile: with OUTPOST_PERF_PROFILE=DIR, the flag that makes a process
// write its CPU profile to DIR/NAME.pprof when it stops.
func perfProfile(name string) []string {
	dir := os.Getenv("OUTPOST_PERF_PROFILE")
	if dir == "" {
		return nil
	}
	return []string{"--cpuprofile", filepath.Join(dir, name+".pprof")}
}
