package relay_test

import (
	"context"
	"testing"
	"time"

	"outpost/relay/wire"
)

// TestSameFingerprintClonesThroughJoinedRelay: two live copies of one
// identity with the same fingerprint, both through one joined relay, are
// told apart by their own connections (the relay passes the agent's
// address): the newcomer is answered Clone. An agent that moved to
// another relay (failover) is not.
func TestSameFingerprintClonesThroughJoinedRelay(t *testing.T) {
	t.Parallel()
	m := startManager(t)
	ctx := context.Background()
	f0 := newFleet(t, m, "acme", 0)
	cl := newCluster(t, m, f0.Account.ID, "edge", "edge.example")
	f := newFleet(t, m, "acme", cl.ID)
	_, relay1, err := joinRelay(t, m, cl.ID)
	if err != nil {
		t.Fatal(err)
	}
	_, relay2, err := joinRelay(t, m, cl.ID)
	if err != nil {
		t.Fatal(err)
	}
	hc := httpClient(m)
	const hold = 1500 * time.Millisecond

	type answer struct {
		resp wire.CheckinResponse
		err  error
	}
	checkin := func(c interface {
		Checkin(context.Context, wire.CheckinRequest) (wire.CheckinResponse, error)
	}, fp string) chan answer {
		ch := make(chan answer, 1)
		go func() {
			resp, err := c.Checkin(ctx, wire.CheckinRequest{Fingerprint: fp, Wait: wire.Duration(hold)})
			ch <- answer{resp, err}
		}()
		return ch
	}
	heldBy := func(n int64) func() bool {
		return func() bool { return metric(t, hc, m.PlainURL, "outpost_checkins_held") == n }
	}

	t.Run("two live copies via one relay", func(t *testing.T) {
		orig := newClient(m, relay1)
		en := enrolLinux(t, orig, f.Key, 1)
		h, _ := linuxHost(1)
		cp := newClient(m, relay1) // its own transport: another connection
		cp.SetCredentials(en.AgentID, en.Secret)

		first := checkin(orig, h.Fingerprint)
		waitFor(t, 5*time.Second, "the original held", heldBy(1))
		second := checkin(cp, h.Fingerprint) // takes the hold over
		a := <-first
		if a.err != nil || a.resp.Clone {
			t.Fatalf("original's answer: got %+v %v, want a plain answer", a.resp, a.err)
		}
		again := checkin(orig, h.Fingerprint) // the original comes straight back
		b := <-second
		if b.err != nil || !b.resp.Clone || !b.resp.DuplicateID {
			t.Errorf("copy's answer: got clone=%v duplicate=%v err=%v, want Clone", b.resp.Clone, b.resp.DuplicateID, b.err)
		}
		if c := <-again; c.err != nil || c.resp.Clone {
			t.Errorf("original's next answer: got clone=%v err=%v, want a plain answer", c.resp.Clone, c.err)
		}
		if g, err := m.DB.GetAgent(ctx, en.AgentID); err != nil || !g.Duplicate {
			t.Errorf("agent %s: got duplicate=%v (%v), want flagged", en.AgentID, g.Duplicate, err)
		}
	})

	t.Run("failover to another relay", func(t *testing.T) {
		before := newClient(m, relay1)
		en := enrolLinux(t, before, f.Key, 2)
		h, _ := linuxHost(2)
		after := newClient(m, relay2)
		after.SetCredentials(en.AgentID, en.Secret)

		old := checkin(before, h.Fingerprint)
		waitFor(t, 5*time.Second, "the check-in held through relay 1", heldBy(1))
		moved := checkin(after, h.Fingerprint) // the agent now uses relay 2; relay 1's hold is never answered to it
		<-old
		for i := 0; i < 2; i++ {
			a := <-moved
			if a.err != nil || a.resp.Clone {
				t.Fatalf("check-in %d after the failover: got clone=%v err=%v, want a plain answer", i+1, a.resp.Clone, a.err)
			}
			moved = checkin(after, h.Fingerprint)
		}
		<-moved
		if g, err := m.DB.GetAgent(ctx, en.AgentID); err != nil || g.Duplicate {
			t.Errorf("agent %s: got duplicate=%v (%v), want not flagged", en.AgentID, g.Duplicate, err)
		}
	})
}
