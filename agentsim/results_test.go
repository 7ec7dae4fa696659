package agentsim_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"outpost/agentsim"
	"outpost/relay"
	"outpost/relay/relaytest"
	"outpost/relay/wire"
	"outpost/store"
)

// TestAgentReportsCommandOutcome: a command the agent's handler could not
// carry out ends "failed" with the handler's reason, one it cannot run at
// all (a simulated agent starts no relay) ends "failed: not supported",
// and one that goes on after the handler returned is "running" until the
// handler reports its end. Before, every one of them was acknowledged as
// done.
func TestAgentReportsCommandOutcome(t *testing.T) {
	m := relaytest.Start(t, relaytest.Options{Config: func(c *relay.Config) { c.PollTimeout = time.Second }})
	ctx := context.Background()
	acct, _, err := m.DB.CreateAccount(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	ic, err := m.DB.CreateInstallCommand(ctx, store.InstallInput{AccountID: acct.ID})
	if err != nil {
		t.Fatal(err)
	}
	var agent *agentsim.Agent
	tests := []struct {
		name      string
		handler   func(context.Context, wire.Command) error
		after     func(id int64) // once the command shows running
		wantState wire.State
		wantError string
	}{
		{"handler fails", func(context.Context, wire.Command) error {
			return errors.New("relay exited (exit status 1): port in use")
		},
			nil, wire.StateFailed, "relay exited (exit status 1): port in use"},
		{"no handler", nil, nil, wire.StateFailed, `command "deploy-proxy" is not supported by this agent`},
		{"running, then done", func(context.Context, wire.Command) error { return agentsim.ErrCommandRunning },
			func(id int64) { agent.Report(wire.CommandResult{ID: id, State: wire.StateDone}) }, wire.StateDone, ""},
		{"handler done", func(context.Context, wire.Command) error { return nil }, nil, wire.StateDone, ""},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := wire.Host{Hostname: fmt.Sprintf("web-%02d", i), OS: "linux", Arch: "amd64", Fingerprint: fmt.Sprintf("fp-%d", i), Version: "1.0.0"}
			agent = &agentsim.Agent{
				Client: agentsim.NewClient(agentsim.ClientOptions{Proxies: []string{m.TLSURL}, CASHA256: m.Pin(), Timeout: 5 * time.Second}),
				Key:    ic.Key, Host: h, Identity: &agentsim.MemIdentity{}, Buffer: &agentsim.MemBuffer{},
				Inventory: func() wire.Inventory { return wire.Inventory{} }, Stats: &agentsim.Stats{},
				Wait: time.Second, OnCommand: tt.handler,
			}
			actx, cancel := context.WithCancel(ctx)
			done := make(chan error, 1)
			go func() { done <- agent.Run(actx) }()
			defer func() { cancel(); <-done }()
			var id string
			waitUntil(t, 10*time.Second, "the agent online", func() bool {
				if got, ok, _ := agent.Identity.Load(); ok {
					a, err := m.DB.GetAgent(ctx, got.AgentID)
					id = got.AgentID
					return err == nil && a.Online
				}
				return false
			})
			c, err := m.DB.CreateCluster(ctx, store.ClusterInput{AccountID: acct.ID, Name: fmt.Sprintf("edge-%d", i), Address: fmt.Sprintf("edge-%d.example.test", i)})
			if err != nil {
				t.Fatal(err)
			}
			jt, err := m.DB.CreateJoinToken(ctx, c.ID, store.DeployQuick, id, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			state := func() store.Command {
				cs, _ := m.DB.ListCommands(ctx, store.TargetAgent, id, 1)
				if len(cs) == 0 || cs[0].ID != jt.CommandID {
					return store.Command{}
				}
				return cs[0]
			}
			if tt.after != nil {
				waitUntil(t, 10*time.Second, "the command running", func() bool { return state().State == wire.StateRunning })
				tt.after(jt.CommandID)
			}
			var got store.Command
			waitUntil(t, 10*time.Second, "the command to end", func() bool {
				got = state()
				return got.State == wire.StateDone || got.State == wire.StateFailed
			})
			if got.State != tt.wantState || got.Error != tt.wantError {
				t.Errorf("got %s %q, want %s %q", got.State, got.Error, tt.wantState, tt.wantError)
			}
		})
	}
}

func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
