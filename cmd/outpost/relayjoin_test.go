package main

// A joined relay restarted the way the README says: only its data directory
// (and listeners). It must find the management host and its CA pin in what
// it saved at join, start with the newest policy it knew, and come back
// online.

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"outpost/relay/wire"
)

// rjProxy is the part of `proxy list --json` these tests read.
type rjProxy struct {
	ID       int64     `json:"id"`
	Hostname string    `json:"hostname"`
	Status   string    `json:"status"`
	LastSeen time.Time `json:"last_seen"`
}

// rjProxyStatus reads proxy server host's status from the management store.
func rjProxyStatus(t *testing.T, c *cli, host string) (rjProxy, bool) {
	t.Helper()
	r := c.run("proxy", "list", "--json")
	if r.code != 0 {
		return rjProxy{}, false
	}
	var ps []rjProxy
	mustOneJSON(t, r.stdout, &ps)
	for _, p := range ps {
		if p.Hostname == host {
			return p, true
		}
	}
	return rjProxy{}, false
}

// rjHealthMode reads the relay's data-path mode from /healthz.
func rjHealthMode(t *testing.T, client *http.Client, url string) string {
	t.Helper()
	code, body := svGet(t, client, url+wire.PathHealth)
	var h struct {
		Mode string `json:"mode"`
	}
	if err := json.Unmarshal([]byte(body), &h); err != nil || code != http.StatusOK {
		t.Fatalf("GET %s/healthz: got %d %q", url, code, body)
	}
	return h.Mode
}

func TestJoinedRelayRestartsWithDataDirOnly(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.createAccount("acme")
	c.ok("cluster", "create", "--name", "ipc", "--address", "relay.ipc.example")
	c.ok("settings", "set", "proxy_offline_after=3s")

	// The management host comes back on the same port (the relay saved
	// its URL).
	mgrAddr := freeAddrOn(t, "127.0.0.1")
	mgrArgs := []string{"relay", "--listen", "https://" + mgrAddr}
	mgr := svStart(t, c, mgrArgs...)
	info := svRunFile(t, mgr, c.data, "relay")
	mgrURL := svURL(t, info, "https")

	var jt struct {
		Token   string `json:"token"`
		Command string `json:"command"`
	}
	c.json(&jt, "proxy", "deploy", "--cluster", "ipc", "--manual", "--manager", mgrURL)
	if !strings.Contains(jt.Command, "--ca-sha256 "+info.CASHA256) {
		t.Fatalf("deploy command %q: want the CA pin %s", jt.Command, info.CASHA256)
	}
	rc := &cli{t: t, data: t.TempDir(), env: c.env}
	relayAddr := freeAddrOn(t, "127.0.0.2")
	listen := []string{"--listen", "https://" + relayAddr, "--hostname", "ipc-edge-1", "--heartbeat", "200ms"}
	edge := svStart(t, rc, append([]string{"relay", "--manager", mgrURL, "--join", jt.Token, "--ca-sha256", info.CASHA256}, listen...)...)
	svRunFile(t, edge, rc.data, "relay")
	waitCond(t, edge, 15*time.Second, "the joined relay online", func() bool {
		p, ok := rjProxyStatus(t, c, "ipc-edge-1")
		return ok && p.Status == "online"
	})

	// Saved at join, owner-only.
	idPath := filepath.Join(rc.data, "relay.json")
	st, err := os.Stat(idPath)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := st.Mode().Perm(), os.FileMode(0o600); got != want {
		t.Errorf("relay.json mode: got %v, want %v", got, want)
	}
	var saved struct {
		Manager string      `json:"manager"`
		Pin     string      `json:"ca_sha256"`
		Policy  wire.Policy `json:"policy"`
	}
	readSaved := func() {
		b, err := os.ReadFile(idPath)
		if err == nil {
			err = json.Unmarshal(b, &saved)
		}
		if err != nil {
			t.Fatalf("relay.json: %v", err)
		}
	}
	readSaved()
	if saved.Manager != mgrURL || saved.Pin != info.CASHA256 {
		t.Errorf("relay.json: got manager %q pin %q, want %q and %q", saved.Manager, saved.Pin, mgrURL, info.CASHA256)
	}

	// A policy change reaches the relay, which keeps it for its next start.
	c.ok("cluster", "policy", "ipc", "--mode", "cache", "--cache-dir", "cache")
	waitCond(t, edge, 10*time.Second, "the cache policy saved in relay.json", func() bool {
		readSaved()
		return saved.Policy.Mode == "cache"
	})

	// kill -9 both; the relay restarts alone, with only --data and its
	// listeners, while the management host is still down.
	edge.cmd.Process.Kill()
	edge.waitExit(5 * time.Second)
	mgr.cmd.Process.Kill()
	mgr.waitExit(5 * time.Second)
	// kill -9 leaves the run files behind; the next start rewrites them.
	os.Remove(filepath.Join(rc.data, "run", "relay.json"))
	os.Remove(filepath.Join(c.data, "run", "relay.json"))
	restarted := time.Now()
	edge = svStart(t, rc, append([]string{"relay"}, listen...)...)
	svRunFile(t, edge, rc.data, "relay")
	waitCond(t, edge, 10*time.Second, "the saved-policy note", func() bool {
		return strings.Contains(edge.stderr.String(), "using the saved policy until the management host answers")
	})
	pinned := svPinned(t, info.CASHA256)
	if got, want := rjHealthMode(t, pinned, "https://"+relayAddr), "cache"; got != want {
		t.Errorf("mode before the management host answers: got %q, want the newest saved %q", got, want)
	}

	// The management host comes back: the relay finds it on its own.
	mgr = svStart(t, c, mgrArgs...)
	svRunFile(t, mgr, c.data, "relay")
	waitCond(t, edge, 20*time.Second, "the restarted relay online with a fresh heartbeat", func() bool {
		p, ok := rjProxyStatus(t, c, "ipc-edge-1")
		return ok && p.Status == "online" && p.LastSeen.After(restarted)
	})
	waitCond(t, edge, 10*time.Second, "the relay to note the management host's answer", func() bool {
		return strings.Contains(edge.stderr.String(), "the management host answered")
	})
	if s := edge.stderr.String(); strings.Contains(s, "x509") || strings.Contains(s, "unknown authority") {
		t.Errorf("restarted relay log: got a certificate error, want none:\n%s", s)
	}
}
