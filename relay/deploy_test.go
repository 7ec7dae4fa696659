package relay_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"outpost/relay/wire"
	"outpost/store"
)

// TestDeployProxyNamesTheManagementHost: a quick deployment onto an agent
// that reaches the fleet through a joined relay tells the agent where to
// join, the management host; the joined relay it talks to does not serve
// the relay-facing API, so "join the relay in use" failed with "no such
// endpoint".
func TestDeployProxyNamesTheManagementHost(t *testing.T) {
	t.Parallel()
	m := startManager(t)
	f, cl := clusterFleet(t, m, "acme", "edge", "edge.example.test")
	relayURL, _ := startJoinedAt(t, m, cl.ID, t.TempDir())
	c := agentClient(t, m, relayURL)
	enrol := enrolLinux(t, c, f.Key, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := m.DB.CreateJoinToken(ctx, cl.ID, store.DeployQuick, enrol.AgentID, time.Hour); err != nil {
		t.Fatal(err)
	}
	var got *wire.Command
	for got == nil && ctx.Err() == nil {
		resp, err := c.Checkin(ctx, wire.CheckinRequest{Wait: wire.Duration(2 * time.Second)})
		if err != nil {
			t.Fatalf("check-in through the joined relay: %v", err)
		}
		for i := range resp.Commands {
			if resp.Commands[i].Type == wire.CmdDeployProxy {
				got = &resp.Commands[i]
			}
		}
	}
	if got == nil {
		t.Fatal("no deploy-proxy command reached the agent")
	}
	var args struct {
		Token   string `json:"token"`
		Manager string `json:"manager"`
	}
	if err := json.Unmarshal(got.Args, &args); err != nil {
		t.Fatal(err)
	}
	if args.Token == "" {
		t.Errorf("deploy-proxy args %s: want a join token", got.Args)
	}
	if args.Manager != m.TLSURL {
		t.Errorf("deploy-proxy manager: got %q, want the management host %q (not the joined relay %s)", args.Manager, m.TLSURL, relayURL)
	}
}
