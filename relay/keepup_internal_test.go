package relay

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

func TestLagGateWait(t *testing.T) {
	const max = 1000
	tests := []struct {
		name    string
		max     int64
		up      bool  // upstream answered last
		backlog int64 // at the call
		// meanwhile runs beside wait: it may shrink the backlog, commit,
		// report upstream or cancel.
		meanwhile  func(g *lagGate, backlog *atomic.Int64, cancel func())
		wantWaited bool
		atLeast    time.Duration
		atMost     time.Duration
	}{
		{name: "gate off", max: 0, up: true, backlog: 1 << 40, atMost: 50 * time.Millisecond},
		{name: "upstream failing", max: max, up: false, backlog: 10 * max, atMost: 50 * time.Millisecond},
		{name: "backlog at the lag", max: max, up: true, backlog: max, atMost: 50 * time.Millisecond},
		{name: "backlog below the lag", max: max, up: true, backlog: max / 2, atMost: 50 * time.Millisecond},
		{name: "commit shrinks the backlog", max: max, up: true, backlog: 10 * max,
			meanwhile: func(g *lagGate, b *atomic.Int64, _ func()) {
				time.Sleep(20 * time.Millisecond)
				b.Store(5 * max) // a commit that is not enough: still waiting
				g.committed()
				time.Sleep(60 * time.Millisecond)
				b.Store(max / 2)
				g.committed()
			},
			wantWaited: true, atLeast: 80 * time.Millisecond, atMost: lagWait / 2},
		{name: "never committed", max: max, up: true, backlog: 10 * max,
			wantWaited: true, atLeast: lagWait - 50*time.Millisecond, atMost: 2 * time.Second},
		{name: "upstream fails while waiting", max: max, up: true, backlog: 10 * max,
			meanwhile: func(g *lagGate, _ *atomic.Int64, _ func()) {
				time.Sleep(20 * time.Millisecond)
				g.upstream(false)
				g.committed() // the forwarder's next step wakes the waiters
			},
			wantWaited: true, atLeast: 20 * time.Millisecond, atMost: lagWait / 2},
		{name: "ctx cancelled", max: max, up: true, backlog: 10 * max,
			meanwhile: func(_ *lagGate, _ *atomic.Int64, cancel func()) {
				time.Sleep(30 * time.Millisecond)
				cancel()
			},
			wantWaited: true, atLeast: 30 * time.Millisecond, atMost: lagWait / 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := newLagGate(tt.max)
			g.upstream(tt.up)
			var backlog atomic.Int64
			backlog.Store(tt.backlog)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan struct{})
			if tt.meanwhile != nil {
				go func() {
					defer close(done)
					tt.meanwhile(g, &backlog, cancel)
				}()
			} else {
				close(done)
			}
			start := time.Now()
			waited := g.wait(ctx, backlog.Load)
			took := time.Since(start)
			<-done
			if waited != tt.wantWaited {
				t.Errorf("waited: got %v, want %v", waited, tt.wantWaited)
			}
			if took < tt.atLeast || took > tt.atMost {
				t.Errorf("returned after %v, want between %v and %v", took, tt.atLeast, tt.atMost)
			}
		})
	}
}

// Many batches wait at once; one commit that brings the backlog under the
// lag lets all of them go.
func TestLagGateCommitWakesAll(t *testing.T) {
	g := newLagGate(100)
	g.upstream(true)
	var backlog atomic.Int64
	backlog.Store(1000)
	const n = 8
	took := make(chan time.Duration, n)
	for range n {
		go func() {
			start := time.Now()
			g.wait(context.Background(), backlog.Load)
			took <- time.Since(start)
		}()
	}
	time.Sleep(50 * time.Millisecond)
	backlog.Store(0)
	g.committed()
	for range n {
		if d := <-took; d > lagWait/2 {
			t.Errorf("a waiter returned after %v, want soon after the commit (~50ms)", d)
		}
	}
}
