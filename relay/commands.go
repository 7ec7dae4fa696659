package relay

import (
	"context"
	"time"

	"outpost/relay/wire"
	"outpost/store"
)

// commandSweepEvery is how often the management host ends commands left
// without an answer past their bounds (store.ExpireCommands).
const commandSweepEvery = 30 * time.Second

// commandReports turns what an agent or relay reports about its commands
// into the store's form.
func commandReports(rs []wire.CommandResult) []store.CommandReport {
	if len(rs) == 0 {
		return nil
	}
	out := make([]store.CommandReport, len(rs))
	for i, r := range rs {
		out[i] = store.CommandReport{ID: r.ID, State: r.State, Error: r.Error}
	}
	return out
}

// sweepCommands fails the commands whose target stopped answering, so the
// operator sees "failed: no answer ..." rather than a state that never
// ends.
func (s *Server) sweepCommands() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n, err := s.db.ExpireCommands(ctx)
	if err != nil {
		s.logf("relay: command sweep: %v", err)
	} else if n > 0 {
		s.logf("relay: %d command(s) failed for want of an answer (see outpost audit)", n)
	}
}
