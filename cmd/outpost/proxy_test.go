package main

// A proxy server from deploy to delete through the command line (the CLI
// harness is in main_test.go).

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"outpost/store"
)

func TestProxyLifecycle(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.createAccount("acme")
	c.ok("cluster", "create", "--name", "web", "--address", "relay.example.com")
	c.ok("cluster", "create", "--name", "gz", "--address", "10.0.0.5")
	var jt struct {
		Token string `json:"token"`
	}
	c.json(&jt, "proxy", "deploy", "--cluster", "web", "--manual")
	p := joinProxy(t, c, jt.Token, "腾讯云-relay-01", "1.0.0", "https://10.0.0.5:8443", "http://10.0.0.5:8080")
	id := fmt.Sprint(p.ID)

	var ps []store.Proxy
	c.json(&ps, "proxy", "list", "--cluster", "web")
	if len(ps) != 1 || ps[0].Status != "online" || ps[0].Hostname != "腾讯云-relay-01" || ps[0].Deploy != "manual" {
		t.Fatalf("proxy list: %+v", ps)
	}
	r := c.ok("proxy", "list")
	checkAligned(t, r.stdout, "IP", "10.0.0.5")
	checkAligned(t, r.stdout, "STATUS", "online")
	r = c.ok("cluster", "show", "web")
	if !strings.Contains(r.stdout, "online (1 of 1 proxy servers online)") || !strings.Contains(r.stdout, "腾讯云-relay-01") {
		t.Errorf("cluster show:\n%s", r.stdout)
	}
	var ic struct {
		Key     string `json:"key"`
		Command string `json:"command"`
	}
	r = c.json(&ic, "installcmd", "create", "--cluster", "web")
	// The cluster address first, then what the proxy advertised (here
	// joined directly in the store, so with a plain URL too).
	if want := "outpost agent run --proxy https://relay.example.com:8443,https://10.0.0.5:8443,http://10.0.0.5:8080 --key " + ic.Key; ic.Command != want || r.stderr != "" {
		t.Errorf("install command %q, want %q (stderr %q)", ic.Command, want, r.stderr)
	}

	// Upgrade: only to a newer published release; one bad id queues nothing.
	c.fails(1, "no release is published", "proxy", "upgrade", id)
	c.ok("release", "add", "1.1.0", "--file", releasePackage(t), "--key", releaseKey(t, c))
	before := c.snapshot()
	c.fails(1, "proxy server 99 not found", "proxy", "upgrade", id, "99")
	if after := c.snapshot(); after != before {
		t.Errorf("a refused upgrade changed the database")
	}
	r = c.ok("proxy", "upgrade", id)
	if !strings.Contains(r.stdout, "upgrade 1.0.0 -> 1.1.0 queued") {
		t.Errorf("proxy upgrade: %s", r)
	}

	// An IP-address cluster holds one proxy server.
	c.json(&jt, "proxy", "deploy", "--cluster", "gz", "--manual")
	joinProxy(t, c, jt.Token, "gz-relay", "1.1.0")
	c.fails(1, `cluster "gz" uses an IP address and already has its one proxy server`, "proxy", "deploy", "--cluster", "gz", "--manual")

	// Deletion order: an online proxy cannot be deleted, nor its cluster.
	c.fails(1, "is still online (last heartbeat ", "proxy", "delete", id)
	c.fails(1, `cluster "web" still has 1 proxy server(s) (stop each relay, then: outpost proxy delete ID)`, "cluster", "delete", "web")
	c.ok("settings", "set", "proxy_offline_after=1s")
	time.Sleep(1100 * time.Millisecond)
	r = c.ok("proxy", "delete", id)
	if !strings.Contains(r.stdout, "proxy server "+id+" (腾讯云-relay-01) deleted from cluster web") {
		t.Errorf("proxy delete: %s", r)
	}
	c.ok("cluster", "delete", "web")
}
