package main

import (
	"strings"
	"testing"
	"time"
)

// TestAgentShowWhyOffline: agent show gives the server-side reasons an
// agent is offline (store.DiagnoseAgent, as the dashboard does).
func TestAgentShowWhyOffline(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.createAccount("acme")
	c.ok("cluster", "create", "--name", "gz", "--address", "gz.example.com")
	var ic struct {
		Key string `json:"key"`
	}
	c.json(&ic, "installcmd", "create", "--cluster", "gz")
	seedAgents(t, c, ic.Key, 1, "web")
	r := c.ok("agent", "show", "web-0000")
	if strings.Contains(r.stdout, "Why offline") {
		t.Fatalf("a fresh agent has offline reasons:\n%s", r.stdout)
	}
	c.ok("settings", "set", "inventory_interval=1s", "offline_after=2s")
	deadline := time.Now().Add(15 * time.Second)
	for {
		r = c.ok("agent", "show", "web-0000")
		if strings.Contains(r.stdout, "Why offline") || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, want := range []string{"Why offline     no check-in for", "longer than offline_after (2s)",
		"its cluster gz has no proxy server: deploy one", "Next            on the host: outpost doctor"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("agent show lacks %q:\n%s", want, r.stdout)
		}
	}
}
