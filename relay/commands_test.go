package relay_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"outpost/agentsim"
	"outpost/relay/wire"
	"outpost/store"
)

// TestCommandResultsReachTheStore: what an agent reports about a command
// (running, failed with a reason) reaches the store, whether it checks in
// with the management host or through a joined relay that forwards the
// check-in; a state that is not a report is refused with 400.
func TestCommandResultsReachTheStore(t *testing.T) {
	m := startManager(t)
	f, cl := clusterFleet(t, m, "acme", "edge", "relay.edge.example")
	joined, stop := startJoinedAt(t, m, cl.ID, t.TempDir())
	defer stop()
	ctx := context.Background()
	for i, tt := range []struct{ name, url string }{{"direct", m.TLSURL}, {"through a joined relay", joined}} {
		t.Run(tt.name, func(t *testing.T) {
			c := agentClient(t, m, tt.url)
			en := enrolLinux(t, c, f.Key, 100+i)
			h, _ := linuxHost(100 + i)
			other := newCluster(t, m, f.Account.ID, fmt.Sprintf("core-%d", i), fmt.Sprintf("relay.core-%d.example", i))
			if _, err := m.DB.Bind(ctx, other.ID, []string{en.AgentID}); err != nil {
				t.Fatal(err)
			}
			var cmd wire.Command
			waitFor(t, 10*time.Second, "the bind command", func() bool {
				resp, err := c.Checkin(ctx, wire.CheckinRequest{Fingerprint: h.Fingerprint, Wait: wire.Duration(time.Second)})
				if err == nil && len(resp.Commands) > 0 {
					cmd = resp.Commands[0]
				}
				return cmd.ID != 0
			})
			state := func() store.Command {
				t.Helper()
				cs, err := m.DB.ListCommands(ctx, store.TargetAgent, en.AgentID, 1)
				if err != nil || len(cs) != 1 {
					t.Fatalf("ListCommands: %v %v", cs, err)
				}
				return cs[0]
			}
			if got := state(); got.State != wire.StateDelivered {
				t.Errorf("after delivery: got %s, want delivered", got.State)
			}
			report := func(r wire.CommandResult) error {
				_, err := c.Checkin(ctx, wire.CheckinRequest{Fingerprint: h.Fingerprint, Results: []wire.CommandResult{r}})
				return err
			}
			var se *agentsim.StatusError
			if err := report(wire.CommandResult{ID: cmd.ID, State: "exploded"}); !errors.As(err, &se) || se.Status != http.StatusBadRequest {
				t.Errorf("unknown state: got %v, want 400", err)
			}
			if err := report(wire.CommandResult{ID: cmd.ID, State: wire.StateRunning}); err != nil {
				t.Fatal(err)
			}
			if got := state(); got.State != wire.StateRunning {
				t.Errorf("after running: got %s, want running", got.State)
			}
			if err := report(wire.CommandResult{ID: cmd.ID, State: wire.StateFailed, Error: "cannot write the identity"}); err != nil {
				t.Fatal(err)
			}
			if got := state(); got.State != wire.StateFailed || got.Error != "cannot write the identity" {
				t.Errorf("after failed: got %s %q, want failed with the reason", got.State, got.Error)
			}
		})
	}
}
