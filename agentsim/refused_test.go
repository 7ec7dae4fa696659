package agentsim_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"outpost/agentsim"
	"outpost/relay"
	"outpost/relay/logs/logstest"
	"outpost/relay/relaytest"
	"outpost/relay/wire"
	"outpost/store"
)

// TestAgentKeepsRefusedRecord: a record the relay can never store (413,
// here larger than a 1 MiB spool) stays in the agent's buffer and is
// reported, the records around it are still delivered, and the agent does
// not retry it in a hot loop. Before, the one record held back every
// later one.
func TestAgentKeepsRefusedRecord(t *testing.T) {
	m := relaytest.Start(t, relaytest.Options{Config: func(c *relay.Config) { c.SpoolMax = 1 << 20 }})
	ctx := context.Background()
	acct, _, err := m.DB.CreateAccount(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	ic, err := m.DB.CreateInstallCommand(ctx, store.InstallInput{AccountID: acct.ID})
	if err != nil {
		t.Fatal(err)
	}
	const big = 3
	huge, _ := json.Marshal(map[string]string{"blob": strings.Repeat("x", 2<<20)})
	lg, lines := logstest.Record(t)
	buf := &agentsim.MemBuffer{}
	a := &agentsim.Agent{
		Client: agentsim.NewClient(agentsim.ClientOptions{Proxies: []string{m.TLSURL}, CASHA256: m.Pin(), Timeout: 10 * time.Second}),
		Key:    ic.Key, Host: wire.Host{Hostname: "web-1", OS: "linux", Arch: "amd64", Fingerprint: "fp-1", Version: "1.0.0"},
		Identity: &agentsim.MemIdentity{}, Buffer: buf, Stats: &agentsim.Stats{},
		Inventory:  func() wire.Inventory { return wire.Inventory{} },
		EventEvery: 20 * time.Millisecond,
		EventData: func(seq uint64) json.RawMessage {
			if seq == big {
				return huge
			}
			return json.RawMessage(`{"n":1}`)
		},
		Log: lg,
	}
	actx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.Run(actx) }()
	deadline := time.Now().Add(20 * time.Second)
	for a.Stats.EventsAcked.Load() < 30 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	<-done

	if got := a.Stats.EventsAcked.Load(); got < 30 {
		t.Errorf("events acked: got %d, want at least 30 (the records after the refused one)", got)
	}
	recs, _ := buf.Peek(buf.Len())
	kept := false
	for _, r := range recs {
		kept = kept || r.Seq == big
	}
	if !kept {
		t.Errorf("the refused record seq %d is not in the buffer any more", big)
	}
	if got := a.Stats.SendErrors.Load(); got > 4 {
		t.Errorf("send errors: got %d, want a few (no retry loop on the refused record)", got)
	}
	if !strings.Contains(strings.Join(lines.All(), "\n"), "relay refused event") {
		t.Errorf("no log line about the refused record")
	}
}
