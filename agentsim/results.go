package agentsim

import (
	"errors"
	"fmt"
	"sync"

	"outpost/relay/wire"
)

// ErrCommandRunning is returned by Agent.OnCommand for a command that
// started and goes on after it returns; its end comes through Report.
var ErrCommandRunning = errors.New("command running")

// resultQueue holds command results (running, done, failed with a reason)
// until a check-in carries them to the management host.
type resultQueue struct {
	mu sync.Mutex
	rs []wire.CommandResult
}

// Report queues a command's outcome for the next check-in; OnCommand
// handlers that returned ErrCommandRunning call it when they know.
func (a *Agent) Report(r wire.CommandResult) {
	a.results.mu.Lock()
	a.results.rs = append(a.results.rs, r)
	a.results.mu.Unlock()
}

func (q *resultQueue) take() []wire.CommandResult {
	q.mu.Lock()
	defer q.mu.Unlock()
	r := q.rs
	q.rs = nil
	return r
}

// putBack requeues results whose check-in failed, ahead of newer ones.
func (q *resultQueue) putBack(rs []wire.CommandResult) {
	if len(rs) == 0 {
		return
	}
	q.mu.Lock()
	q.rs = append(rs, q.rs...)
	q.mu.Unlock()
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
func errUnsupported(typ string) error {
	return fmt.Errorf("command %q is not supported by this agent", typ)
}
