package agentsim

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"outpost/relay/wire"
)

// ErrCommandRunning is returned by Agent.OnCommand for a command that
// started and goes on after it returns; its end comes through Report.
var ErrCommandRunning = errors.New("command running")

// resultQueue holds command results (running, done, failed with a reason)
// until a check-in carries them to the management host. Each result has a
// sequence number, so Deliver can wait for its own.
type resultQueue struct {
	mu        sync.Mutex
	rs        []queuedResult
	next      uint64        // sequence number of the last result queued
	delivered uint64        // results up to this one reached the management host
	changed   chan struct{} // closed (and replaced) when delivered moves
	hurry     int           // Deliver calls and Hurry holds under way
	interrupt func()        // ends the check-in held now (nil: none is)
}

type queuedResult struct {
	seq uint64
	r   wire.CommandResult
}

// Report queues a command's outcome for the next check-in; OnCommand
// handlers that returned ErrCommandRunning call it when they know.
func (a *Agent) Report(r wire.CommandResult) { a.results.add(r) }

// Deliver queues r and waits until a check-in carried it to the management
// host, or ctx ends; check-ins are not held meanwhile (Hurry), so it
// returns within about a second when a relay answers. An upgrade reports
// "restarting" this way before the process is replaced.
func (a *Agent) Deliver(ctx context.Context, r wire.CommandResult) error {
	defer a.Hurry()()
	seq := a.results.add(r)
	for {
		q := &a.results
		q.mu.Lock()
		done, ch := q.delivered >= seq, q.changed
		if ch == nil {
			q.changed = make(chan struct{})
			ch = q.changed
		}
		q.mu.Unlock()
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		}
	}
}

// Hurry makes check-ins short (hurryWait instead of the long-poll hold)
// until the returned func is called, so results reported meanwhile (the
// stages of an upgrade) reach the management host at once. A check-in held
// when it is called is ended and sent again at once.
func (a *Agent) Hurry() (done func()) {
	q := &a.results
	q.mu.Lock()
	q.hurry++
	if q.interrupt != nil {
		q.interrupt()
		q.interrupt = nil
	}
	q.mu.Unlock()
	return sync.OnceFunc(func() {
		q.mu.Lock()
		q.hurry--
		q.mu.Unlock()
	})
}

// hurryWait is the hold asked for while Hurry is on: long enough that the
// agent does not spin, short enough that a result waits at most this long.
const hurryWait = 500 * time.Millisecond

func (q *resultQueue) hurrying() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.hurry > 0
}

// holding returns the context for a check-in held for wait: one Hurry can
// end (interrupted then reports it) when the hold is long.
func (q *resultQueue) holding(ctx context.Context, wait time.Duration) (hctx context.Context, interrupted func() bool, done func()) {
	if wait <= hurryWait {
		return ctx, func() bool { return false }, func() {}
	}
	hctx, cancel := context.WithCancel(ctx)
	var hurried atomic.Bool
	q.mu.Lock()
	q.interrupt = func() { hurried.Store(true); cancel() }
	q.mu.Unlock()
	return hctx, func() bool { return hurried.Load() && ctx.Err() == nil }, func() {
		q.mu.Lock()
		q.interrupt = nil
		q.mu.Unlock()
		cancel()
	}
}

func (q *resultQueue) add(r wire.CommandResult) uint64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.next++
	q.rs = append(q.rs, queuedResult{q.next, r})
	return q.next
}

// take removes the queued results for one check-in.
func (q *resultQueue) take() []queuedResult {
	q.mu.Lock()
	defer q.mu.Unlock()
	r := q.rs
	q.rs = nil
	return r
}

// putBack requeues results whose check-in failed, ahead of newer ones.
func (q *resultQueue) putBack(rs []queuedResult) {
	if len(rs) == 0 {
		return
	}
	q.mu.Lock()
	q.rs = append(rs, q.rs...)
	q.mu.Unlock()
}

// sent records that a check-in carrying rs succeeded.
func (q *resultQueue) sent(rs []queuedResult) {
	if len(rs) == 0 {
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.delivered = max(q.delivered, rs[len(rs)-1].seq)
	if q.changed != nil {
		close(q.changed)
		q.changed = nil
	}
}

func wireResults(rs []queuedResult) []wire.CommandResult {
	if len(rs) == 0 {
		return nil
	}
	out := make([]wire.CommandResult, len(rs))
	for i, r := range rs {
		out[i] = r.r
	}
	return out
}

// commandResult is what the agent reports for a command its OnCommand
// handler ran: nil error = done (acknowledged), ErrCommandRunning =
// running, any other error = failed with that reason.
func commandResult(id int64, err error) (wire.CommandResult, bool) {
	switch {
	case err == nil:
		return wire.CommandResult{}, false
	case errors.Is(err, ErrCommandRunning):
		return wire.CommandResult{ID: id, State: wire.StateRunning}, true
	}
	msg := err.Error()
	if len(msg) > maxReason {
		msg = msg[:maxReason] + "..." // the store keeps 300 characters anyway
	}
	return wire.CommandResult{ID: id, State: wire.StateFailed, Error: msg}, true
}

// maxReason bounds a reported reason so a long log line cannot make the
// check-in too large to be accepted.
const maxReason = 1000

// errUnsupported is the failure reported for a command this agent cannot
// carry out (a simulated agent starts no relay), rather than a "done" that
// did not happen.
func errUnsupported(typ wire.CommandType) error {
	return fmt.Errorf("command %q is not supported by this agent", typ)
}
