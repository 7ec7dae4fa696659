package main

// An operator's walk through the command line, and the actor the audit
// names (the CLI harness is in main_test.go).

import (
	"fmt"
	"strings"
	"testing"

	"outpost/store"
)

func TestWalkthrough(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	const ipCluster, domainCluster = "腾讯云-广州", "edge"

	t.Run("account", func(t *testing.T) {
		c.createAccount("acme")
		r := c.ok("account", "list")
		checkAligned(t, r.stdout, "NAME", "acme")
		c.fails(1, `account "acme" already exists`, "account", "create", "acme")
	})
	t.Run("cluster create", func(t *testing.T) {
		var cl clusterJSON
		c.json(&cl, "cluster", "create", "--name", ipCluster, "--address", "10.0.0.5", "--region", "华南")
		if cl.Name != ipCluster || cl.AddressKind != "ip" || cl.Status != "offline" || cl.Policy.Mode != "forward" {
			t.Errorf("cluster create --json: %+v", cl)
		}
		r := c.ok("cluster", "create", "--name", domainCluster, "--address", "relay.example.com", "--remark", "web tier")
		if !strings.Contains(r.stdout, "cluster edge created") || !strings.Contains(r.stdout, "(domain)") {
			t.Errorf("cluster create: %s", r)
		}
	})
	t.Run("cluster list", func(t *testing.T) {
		var cs []clusterJSON
		c.json(&cs, "cluster", "list")
		if len(cs) != 2 {
			t.Fatalf("want 2 clusters, got %+v", cs)
		}
		r := c.ok("cluster", "list")
		checkAligned(t, r.stdout, "ADDRESS", "10.0.0.5", "relay.example.com")
		checkAligned(t, r.stdout, "STATUS", "offline")
	})
	t.Run("installcmd create", func(t *testing.T) {
		var ic struct {
			ID      int64  `json:"id"`
			Key     string `json:"key"`
			Cluster string `json:"cluster"`
			Command string `json:"command"`
			Expires string `json:"expires_at"`
		}
		r := c.json(&ic, "installcmd", "create", "--cluster", domainCluster, "--expires", "2h", "--group", "web")
		if !strings.HasPrefix(ic.Key, "ik_") || ic.Cluster != domainCluster ||
			ic.Command != "outpost agent run --proxy https://relay.example.com:8443 --key "+ic.Key {
			t.Errorf("installcmd create --json: %+v", ic)
		}
		if !strings.Contains(r.stderr, "no proxy server yet") {
			t.Errorf("want a note about the missing proxy, got %q", r.stderr)
		}
		r = c.ok("installcmd", "list")
		checkAligned(t, r.stdout, "CLUSTER", domainCluster)
		if strings.Contains(r.stdout, ic.Key) {
			t.Errorf("installcmd list shows the whole key:\n%s", r.stdout)
		}
		id := fmt.Sprint(ic.ID)
		c.ok("installcmd", "revoke", id)
		c.fails(1, "already revoked", "installcmd", "revoke", id)
		c.fails(1, "not found", "installcmd", "revoke", "999")
	})
	t.Run("policy forward", func(t *testing.T) {
		r := c.ok("cluster", "policy", ipCluster, "--mode", "forward", "--bandwidth", "80Mbit", "--frequency", "50", "--link", "100Mbit")
		if !strings.Contains(r.stdout, "bandwidth 80 Mbit/s, frequency 50 req/s, link 100 Mbit/s") {
			t.Errorf("policy: %s", r)
		}
		if !strings.HasPrefix(r.stderr, "warning: bandwidth limit 80 Mbit/s is more than 60% of the 100 Mbit/s link\n") {
			t.Errorf("want the 60%% warning on stderr, got %q", r.stderr)
		}
		var cl clusterJSON
		c.json(&cl, "cluster", "policy", ipCluster, "--bandwidth", "2Mbit")
		if cl.Policy.BandwidthBps != 250000 || cl.Policy.FrequencyRPS != 50 || len(cl.Warnings) != 0 {
			t.Errorf("policy kept values: %+v", cl.Policy)
		}
	})
	t.Run("policy cache", func(t *testing.T) {
		var cl clusterJSON
		c.json(&cl, "cluster", "policy", domainCluster, "--mode", "cache")
		if cl.Policy.Mode != "cache" || cl.Policy.CacheMax != store.MaxCacheBytes || cl.Policy.CacheDir == "" {
			t.Errorf("cache policy: %+v", cl.Policy)
		}
		c.fails(1, "cache-max 20 GB exceeds the maximum of 10 GB", "cluster", "policy", domainCluster, "--cache-max", "20GB")
		c.fails(2, "--bandwidth does not apply to cache mode", "cluster", "policy", domainCluster, "--bandwidth", "1Mbit")
		r := c.ok("cluster", "policy", domainCluster, "--cache-max", "512MB")
		if !strings.Contains(r.stdout, "capped at 512 MB") {
			t.Errorf("policy: %s", r)
		}
	})
	t.Run("proxy deploy manual", func(t *testing.T) {
		r := c.ok("proxy", "deploy", "--cluster", ipCluster, "--manual", "--manager", "https://mgr.example.com:8443", "--expires", "30m")
		if !strings.Contains(r.stdout, "outpost relay --manager https://mgr.example.com:8443 --join jt_") || !strings.Contains(r.stdout, "in 30m") {
			t.Errorf("proxy deploy: %s", r)
		}
		var jt struct {
			Token   string `json:"token"`
			Deploy  string `json:"deploy"`
			Command string `json:"command"`
		}
		c.json(&jt, "proxy", "deploy", "--cluster", ipCluster, "--manual", "--manager", "https://mgr.example.com:8443")
		if jt.Deploy != "manual" || jt.Command != "outpost relay --manager https://mgr.example.com:8443 --join "+jt.Token {
			t.Errorf("proxy deploy --json: %+v", jt)
		}
		var ps []store.Proxy
		c.json(&ps, "proxy", "list")
		if len(ps) != 0 {
			t.Errorf("no proxy has joined yet: %+v", ps)
		}
	})
	t.Run("cluster show", func(t *testing.T) {
		r := c.ok("cluster", "show", ipCluster)
		for _, want := range []string{"Cluster  腾讯云-广州", "Region   华南", "offline (0 of 0 proxy servers online)", "0 bound, 0 online",
			"forward to the built-in collector, bandwidth 2 Mbit/s, frequency 50 req/s, link 100 Mbit/s", "none yet"} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("cluster show lacks %q:\n%s", want, r.stdout)
			}
		}
		var cl clusterJSON
		c.json(&cl, "cluster", "show", ipCluster)
		if cl.Name != ipCluster || cl.ProxyServers == nil || len(cl.ProxyServers) != 0 {
			t.Errorf("cluster show --json: %+v", cl)
		}
	})
	t.Run("agent list empty", func(t *testing.T) {
		var page struct {
			Agents []store.Agent `json:"agents"`
			Total  int           `json:"total"`
		}
		r := c.json(&page, "agent", "list")
		if page.Total != 0 || page.Agents == nil || !strings.Contains(r.stdout, `"agents": []`) {
			t.Errorf("agent list --json: %s", r.stdout)
		}
	})
	t.Run("release", func(t *testing.T) {
		pkg := releasePackage(t)
		key := releaseKey(t, c)
		c.ok("release", "add", "1.2.0", "--notes", "first", "--file", pkg, "--key", key)
		c.ok("release", "add", "v1.10.0", "--file", pkg, "--key", key)
		var rs []store.Release
		c.json(&rs, "release", "list")
		if len(rs) != 2 || rs[0].Version != "1.10.0" || rs[1].Notes != "first" || len(rs[0].SHA256) != 64 {
			t.Errorf("release list: %+v", rs)
		}
		for _, tt := range []struct {
			name, want string
			code       int
			args       []string
		}{
			{"exists", "release 1.2.0 already exists", 1, []string{"1.2.0", "--file", pkg, "--key", key}},
			{"no package", "--file PATH is required", 2, []string{"1.3.0"}},
			{"missing package", "no such file", 1, []string{"1.3.0", "--file", pkg + ".missing", "--key", key}},
			{"not semver", `version "v1.0": three numbers are needed`, 1, []string{"v1.0", "--file", pkg, "--key", key}},
		} {
			t.Run(tt.name, func(t *testing.T) {
				before := c.snapshot()
				c.fails(tt.code, tt.want, append([]string{"release", "add"}, tt.args...)...)
				if after := c.snapshot(); after != before {
					t.Errorf("a refused release add changed the database")
				}
			})
		}
		c.fails(1, "release 9.9.9 not found", "release", "delete", "9.9.9")
		c.ok("release", "delete", "1.10.0")
		c.json(&rs, "release", "list")
		if len(rs) != 1 || rs[0].Version != "1.2.0" {
			t.Errorf("release list after delete: %+v", rs)
		}
		c.fails(1, "proxy server 7 not found", "proxy", "upgrade", "7")
		c.fails(1, "proxy server 7 not found", "proxy", "delete", "7")
	})
	t.Run("settings", func(t *testing.T) {
		var s map[string]string
		c.json(&s, "settings", "set", "bind_batch_gap=90s", "offline_after=1d")
		if s["bind_batch_gap"] != "1m30s" || s["offline_after"] != "24h" || s["inventory_interval"] != "5h" {
			t.Errorf("settings set: %v", s)
		}
		c.fails(1, "inventory_interval (5h0m0s) must be shorter than offline_after", "settings", "set", "offline_after=1h")
		r := c.ok("settings", "show")
		checkAligned(t, r.stdout, "VALUE", "1m30s", "24h")
	})
	t.Run("cluster delete", func(t *testing.T) {
		c.ok("cluster", "delete", domainCluster)
		c.fails(1, `cluster "edge" not found`, "cluster", "show", domainCluster)
	})
	t.Run("audit", func(t *testing.T) {
		var es []store.AuditEntry
		c.json(&es, "audit", "--limit", "100")
		if len(es) < 10 || es[0].Action != "cluster.delete" {
			t.Fatalf("audit: %+v", es)
		}
		for _, e := range es {
			if e.Actor != "tester@cli" {
				t.Errorf("audit actor %q, want tester@cli", e.Actor)
			}
		}
		var two []store.AuditEntry
		c.json(&two, "audit", "--limit", "2")
		if len(two) != 2 {
			t.Errorf("audit --limit 2: %d entries", len(two))
		}
	})
	t.Run("version", func(t *testing.T) {
		var v map[string]string
		c.json(&v, "version")
		if v["version"] == "" {
			t.Errorf("version --json: %v", v)
		}
	})
}

// TestSudoActor checks that the audit names the operator behind sudo.
func TestSudoActor(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.env = append(c.env, "SUDO_USER=alice")
	c.createAccount("acme")
	var es []store.AuditEntry
	c.json(&es, "audit")
	if len(es) != 1 || es[0].Actor != "alice@cli" {
		t.Errorf("audit: %+v", es)
	}
}
