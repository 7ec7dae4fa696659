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
// (acked ids are done) into the store's form, so one transaction records
// them all.
func commandReports(acked []int64, rs []wire.CommandResult) []store.CommandReport {
	if len(acked)+len(rs) == 0 {
		return nil
	}
	out := make([]store.CommandReport, 0, len(acked)+len(rs))
	for _, id := range acked {
		out = append(out, store.CommandReport{ID: id, State: wire.StateDone})
	}
	for _, r := range rs {
		out = append(out, store.CommandReport{ID: r.ID, State: r.State, Stage: r.Stage, Error: r.Error})
	}
	return out
}

// sweepCommands fails the commands whose target stopped answering, so the
// operator sees "failed: no answer ..." rather than a state that never
// ends.
func (h *management) sweepCommands() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n, err := h.db.ExpireCommands(ctx)
	if err != nil {
		h.s.log.Error("relay: command sweep", "err", err)
	} else if n > 0 {
		h.s.log.Warn("relay: commands failed for want of an answer (see outpost audit)", "commands", n)
	}
}
