package agentsim_test

import (
	"context"
	"testing"
	"time"

	"outpost/agentsim"
	"outpost/relay"
	"outpost/relay/relaytest"
	"outpost/relay/wire"
	"outpost/store"
)

// TestDeliverDoesNotWaitForTheHold: a result given to Deliver while the
// agent holds 30-second check-ins reaches the management host within a
// couple of seconds (check-ins are short while it waits), and Deliver
// returns only once it is stored: an upgrade reports "restarting" this
// way before the process is replaced.
func TestDeliverDoesNotWaitForTheHold(t *testing.T) {
	m := relaytest.Start(t, relaytest.Options{Config: func(c *relay.Config) { c.PollTimeout = 30 * time.Second }})
	ctx := context.Background()
	acct, _, err := m.DB.CreateAccount(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	ic, err := m.DB.CreateInstallCommand(ctx, store.InstallInput{AccountID: acct.ID})
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan int64, 1)
	agent := &agentsim.Agent{
		Client: agentsim.NewClient(agentsim.ClientOptions{Proxies: []string{m.TLSURL}, CASHA256: m.Pin(), Timeout: 5 * time.Second}),
		Key:    ic.Key, Host: wire.Host{Hostname: "web-01", OS: "linux", Arch: "amd64", Fingerprint: "fp-1", Version: "1.0.0"},
		Identity: &agentsim.MemIdentity{}, Buffer: &agentsim.MemBuffer{},
		Inventory: func() wire.Inventory { return wire.Inventory{} }, Stats: &agentsim.Stats{},
		Wait: 30 * time.Second,
		OnCommand: func(_ context.Context, c wire.Command) error {
			started <- c.ID
			return agentsim.ErrCommandRunning
		},
	}
	actx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- agent.Run(actx) }()
	defer func() { cancel(); <-done }()
	var id string
	waitUntil(t, 10*time.Second, "the agent online", func() bool {
		got, ok, _ := agent.Identity.Load()
		id = got.AgentID
		return ok
	})
	c, err := m.DB.CreateCluster(ctx, store.ClusterInput{AccountID: acct.ID, Name: "edge", Address: "edge.example.test"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.DB.CreateJoinToken(ctx, c.ID, store.DeployQuick, id, time.Hour); err != nil {
		t.Fatal(err)
	}
	var cmdID int64
	select {
	case cmdID = <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("the command did not reach the agent")
	}
	time.Sleep(500 * time.Millisecond) // the next check-in is held by now
	start := time.Now()
	dctx, dcancel := context.WithTimeout(ctx, 20*time.Second)
	defer dcancel()
	if err := agent.Deliver(dctx, wire.CommandResult{ID: cmdID, State: wire.StateRunning, Stage: wire.StageRestarting}); err != nil {
		t.Fatalf("Deliver: %v after %s", err, time.Since(start))
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("Deliver took %s, want a few seconds at most (not the 30 s hold)", took)
	}
	cs, err := m.DB.ListCommands(ctx, store.TargetAgent, id, 1)
	if err != nil || len(cs) == 0 {
		t.Fatalf("commands: %v %v", cs, err)
	}
	if got, want := cs[0].Describe(), "restarting"; got != want {
		t.Errorf("command once Deliver returned: got %q, want %q", got, want)
	}
}
