package store_test

import (
	"slices"
	"testing"
	"time"

	"outpost/store"
)

func commandIDs(cs []store.Command) []int64 {
	out := make([]int64, len(cs))
	for i, c := range cs {
		out[i] = c.ID
	}
	return out
}

func TestCommandsLifecycle(t *testing.T) {
	f := newFixture(t)
	a, key := f.account("acme")
	c := f.cluster(a.ID, "edge", "relay.acme.example")
	w1, w2 := f.enrol(key, "web-01"), f.enrol(key, "web-02")
	if _, err := f.db.Bind(f.ctx, c.ID, []string{"web-01", "web-02"}); err != nil {
		t.Fatal(err)
	}
	c1, c2 := f.pending(store.TargetAgent, w1.ID), f.pending(store.TargetAgent, w2.ID)
	if len(c1) != 1 || len(c2) != 1 {
		t.Fatalf("got %d and %d pending, want 1 each", len(c1), len(c2))
	}
	id1, id2 := c1[0].ID, c2[0].ID
	if c1[0].TargetKind != store.TargetAgent || c1[0].TargetID != w1.ID || !c1[0].CreatedAt.Equal(t0) || !c1[0].DeliveredAt.IsZero() {
		t.Errorf("got %+v, want an undelivered agent command for %s created at %v", c1[0], w1.ID, t0)
	}

	after := func(id int64) []int64 {
		t.Helper()
		cs, err := f.db.CommandsAfter(f.ctx, id, 0)
		if err != nil {
			t.Fatal(err)
		}
		return commandIDs(cs)
	}
	if got := after(0); !slices.Equal(got, []int64{id1, id2}) {
		t.Errorf("CommandsAfter(0): got %v, want %v", got, []int64{id1, id2})
	}
	if got := after(id1); !slices.Equal(got, []int64{id2}) {
		t.Errorf("CommandsAfter(%d): got %v, want %v", id1, got, []int64{id2})
	}
	if cs, err := f.db.CommandsAfter(f.ctx, 0, 1); err != nil || len(cs) != 1 {
		t.Errorf("CommandsAfter limit 1: got %d, %v, want 1", len(cs), err)
	}

	t.Run("MarkDelivered keeps it pending", func(t *testing.T) {
		f.clock.Advance(time.Second)
		if err := f.db.MarkDelivered(f.ctx, []int64{id1}); err != nil {
			t.Fatal(err)
		}
		got := f.pending(store.TargetAgent, w1.ID)
		if len(got) != 1 || !got[0].DeliveredAt.Equal(t0.Add(time.Second)) {
			t.Errorf("got %+v, want still pending, delivered at %v", got, t0.Add(time.Second))
		}
		// A second delivery does not move the first delivery time.
		f.clock.Advance(time.Second)
		if err := f.db.MarkDelivered(f.ctx, []int64{id1}); err != nil {
			t.Fatal(err)
		}
		if got := f.pending(store.TargetAgent, w1.ID); !got[0].DeliveredAt.Equal(t0.Add(time.Second)) {
			t.Errorf("got delivered %v, want %v", got[0].DeliveredAt, t0.Add(time.Second))
		}
	})
	t.Run("ack by another target does nothing", func(t *testing.T) {
		before := f.dump()
		for _, tt := range []struct{ kind, target string }{{store.TargetAgent, w2.ID}, {store.TargetProxy, w1.ID}, {store.TargetAgent, "ag_nope"}} {
			if err := f.db.AckCommands(f.ctx, tt.kind, tt.target, []int64{id1}); err != nil {
				t.Fatal(err)
			}
		}
		f.unchanged(before)
		if got := f.pending(store.TargetAgent, w1.ID); len(got) != 1 {
			t.Errorf("got %d pending, want 1", len(got))
		}
	})
	t.Run("ack by the target", func(t *testing.T) {
		if err := f.db.AckCommands(f.ctx, store.TargetAgent, w1.ID, []int64{id1}); err != nil {
			t.Fatal(err)
		}
		if got := f.pending(store.TargetAgent, w1.ID); len(got) != 0 {
			t.Errorf("got %v, want none pending", commandTypes(got))
		}
		if got := after(0); !slices.Equal(got, []int64{id2}) {
			t.Errorf("CommandsAfter(0): got %v, want %v", got, []int64{id2})
		}
		if got := f.pending(store.TargetAgent, w2.ID); len(got) != 1 {
			t.Errorf("web-02: got %d pending, want 1", len(got))
		}
	})
	t.Run("empty id lists", func(t *testing.T) {
		if err := f.db.MarkDelivered(f.ctx, nil); err != nil {
			t.Error(err)
		}
		if err := f.db.AckCommands(f.ctx, store.TargetAgent, w2.ID, nil); err != nil {
			t.Error(err)
		}
	})
}
