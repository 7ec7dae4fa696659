package ops

import (
	"context"
	"time"
)

// paced is a run runPaced drives: PacedBind and PacedUpgrade.
type paced[P any] interface {
	Step(ctx context.Context) P
	Progress() P
	Interrupted() error
	finished() bool
}

// stepState is what runPaced reads of a progress: whether the run is
// over, the wait before the next step, and the error that ended it.
type stepState interface {
	state() (finished bool, wait time.Duration, err error)
}

// runPaced drives p's Step to the end (report gets every progress); an
// interrupt between steps ends it with p.Interrupted().
func runPaced[P stepState](ctx, interrupt context.Context, p paced[P], report func(P)) (P, error) {
	var last P
	if pace(interrupt, p.finished, func() (bool, time.Duration) {
		last = p.Step(ctx)
		if report != nil {
			report(last)
		}
		done, wait, _ := last.state()
		return done, wait
	}) {
		return p.Progress(), p.Interrupted()
	}
	_, _, err := last.state()
	return last, err
}

// pace calls step until it says done, sleeping the wait it returns between
// calls but waking every second (so a report can count down); it returns
// true when interrupt ended it between steps, before finished.
func pace(interrupt context.Context, finished func() bool, step func() (done bool, wait time.Duration)) (interrupted bool) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		if interrupt.Err() != nil && !finished() {
			return true
		}
		done, wait := step()
		if done {
			return false
		}
		if wait <= 0 {
			continue
		}
		timer := time.NewTimer(wait)
		select {
		case <-timer.C:
		case <-tick.C:
		case <-interrupt.Done():
		}
		timer.Stop()
	}
}
