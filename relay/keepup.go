package relay

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// lagWait is the longest an event batch waits for forwarding to catch up
// before it is stored anyway: agents are slowed, never refused, by a
// backlog that upstream is draining.
const lagWait = time.Second

// lagGate keeps intake from outrunning forwarding while upstream answers.
// Without it the relay spends its CPU taking events in faster than it can
// send them on, the spool grows until it is full and every agent gets 429;
// with it, once more than the lag waits in the spool, each event batch
// waits (up to lagWait) for the forwarder to commit, so intake settles at
// the forwarding rate and forwarding gets the CPU it needs. While upstream
// fails the gate is open: the spool is there to absorb an outage.
type lagGate struct {
	max  int64 // bytes; 0 turns the gate off
	upOK atomic.Bool

	mu      sync.Mutex
	drained chan struct{} // closed (and replaced) at each commit
}

func newLagGate(max int64) *lagGate {
	return &lagGate{max: max, drained: make(chan struct{})}
}

// upstream records how the last upstream request ended; a failure opens
// the gate for the batches already waiting too.
func (g *lagGate) upstream(ok bool) {
	if g.upOK.Swap(ok) && !ok {
		g.committed()
	}
}

// committed wakes the batches waiting for the backlog to shrink.
func (g *lagGate) committed() {
	g.mu.Lock()
	close(g.drained)
	g.drained = make(chan struct{})
	g.mu.Unlock()
}

// wait returns once backlog() is at most the lag, upstream fails, lagWait
// passed or ctx ended; it reports whether the batch waited.
func (g *lagGate) wait(ctx context.Context, backlog func() int64) bool {
	if g.max <= 0 || !g.upOK.Load() || backlog() <= g.max {
		return false
	}
	t := time.NewTimer(lagWait)
	defer t.Stop()
	for {
		g.mu.Lock()
		ch := g.drained
		g.mu.Unlock()
		if !g.upOK.Load() || backlog() <= g.max {
			return true
		}
		select {
		case <-ch:
		case <-t.C:
			return true
		case <-ctx.Done():
			return true
		}
	}
}
