package relay_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"outpost/relay/wire"
	"outpost/store"
)

func TestEndToEndDirectForward(t *testing.T) {
	m := startManager(t)
	f := newFleet(t, m, "acme", 0)
	c := newClient(m, m.TLSURL)
	en := enrol(t, c, f.Key, 1)
	ctx := context.Background()
	h, _ := host(1)
	if _, err := c.Checkin(ctx, wire.CheckinRequest{Fingerprint: h.Fingerprint}); err != nil {
		t.Fatalf("checkin: %v", err)
	}
	acked, err := c.SendEvents(ctx, records(1, 100))
	if err != nil {
		t.Fatalf("events: %v", err)
	}
	if got, want := len(acked), 100; got != want {
		t.Fatalf("acked %d, want %d", got, want)
	}
	waitFor(t, 5*time.Second, "collector to receive 100 records", func() bool { return m.Collector.Received(en.AgentID) == 100 })
	a, err := m.DB.GetAgent(ctx, en.AgentID)
	if err != nil {
		t.Fatal(err)
	}
	if !a.Online || a.SecurityStatus != store.Protected {
		t.Errorf("got online=%v status=%s, want online Protected", a.Online, a.SecurityStatus)
	}
}

func TestCommandArrivesWithinOneSecond(t *testing.T) {
	m := startManager(t)
	ctx := context.Background()
	f := newFleet(t, m, "acme", 0)
	cl, err := m.DB.CreateCluster(ctx, store.ClusterInput{AccountID: f.Account.ID, Name: "dc1", Address: "relay.dc1.example"})
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(m, m.TLSURL)
	en := enrol(t, c, f.Key, 1)
	h, _ := host(1)
	type result struct {
		resp wire.CheckinResponse
		err  error
		at   time.Time
	}
	done := make(chan result, 1)
	go func() {
		resp, err := c.Checkin(ctx, wire.CheckinRequest{Fingerprint: h.Fingerprint, Wait: wire.Duration(5 * time.Second)})
		done <- result{resp, err, time.Now()}
	}()
	time.Sleep(300 * time.Millisecond) // the check-in is held now
	queued := time.Now()
	if _, err := m.DB.Bind(ctx, cl.ID, []string{en.AgentID}); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	if got := r.at.Sub(queued); got > time.Second {
		t.Errorf("command arrived after %s, want within 1s", got)
	}
	if len(r.resp.Commands) != 1 || r.resp.Commands[0].Type != wire.CmdBind {
		t.Fatalf("got commands %+v, want one bind", r.resp.Commands)
	}
	// Acknowledging it clears it.
	if _, err := c.Checkin(ctx, wire.CheckinRequest{Fingerprint: h.Fingerprint, Acked: []int64{r.resp.Commands[0].ID}}); err != nil {
		t.Fatal(err)
	}
	pending, err := m.DB.PendingCommands(ctx, store.TargetAgent, en.AgentID)
	if err != nil {
		t.Fatal(err)
	}
	if len(pending) != 0 {
		t.Errorf("got %d pending after ack, want 0", len(pending))
	}
}

func TestMetricsLatencyHistograms(t *testing.T) {
	m := startManager(t)
	f := newFleet(t, m, "acme", 0)
	c := newClient(m, m.TLSURL)
	enrol(t, c, f.Key, 1)
	ctx := context.Background()
	if _, err := c.SendEvents(ctx, records(1, 3)); err != nil {
		t.Fatal(err)
	}
	h, _ := host(1)
	if _, err := c.Checkin(ctx, wire.CheckinRequest{Fingerprint: h.Fingerprint}); err != nil {
		t.Fatal(err)
	}
	resp, err := httpClient(m).Get(m.TLSURL + wire.PathMetrics)
	if err != nil {
		t.Fatal(err)
	}
	body := drainBody(resp)
	for _, want := range []string{
		`outpost_request_seconds_count{path="enrol"} 1`,
		`outpost_request_seconds_count{path="events"} 1`,
		`outpost_request_seconds_count{path="checkin"} 1`,
		`outpost_request_seconds_bucket{path="events",le="+Inf"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}
