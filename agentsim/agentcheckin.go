// The check-in loop: the long-poll hold, the inventory when due, the
// back-off after failures, and the commands of each answer.

package agentsim

import (
	"context"
	"errors"
	"net/http"
	"time"

	"outpost/relay/wire"
)

func (a *Agent) checkinLoop(ctx context.Context) error {
	var acked []int64
	var lastInv, nextInv time.Time // zero: send inventory on the first check-in
	bo := checkinBackoff{base: time.Second, net: reconnectSpread}
	for ctx.Err() == nil {
		pending := a.results.take()
		req := a.checkinRequest(acked, wireResults(pending), nextInv)
		start := time.Now()
		a.Stats.Held.Add(1)
		if h := a.Stats.Held.Load(); h > a.Stats.MaxHeld.Load() {
			a.Stats.MaxHeld.Store(h)
		}
		hctx, interrupted, held := a.results.holding(ctx, time.Duration(req.Wait))
		resp, err := a.Client.Checkin(hctx, req)
		held()
		a.Stats.Held.Add(-1)
		if err != nil {
			a.results.putBack(pending)
			if ctx.Err() != nil {
				return nil
			}
			if interrupted() {
				continue // Hurry: ask again with a short hold
			}
			if retry, err := a.checkinFailed(ctx, err, &bo); !retry {
				return err
			}
			continue
		}
		bo = checkinBackoff{base: time.Second, net: reconnectSpread}
		a.results.sent(pending)
		a.setLastError(nil)
		a.Stats.Checkins.Add(1)
		if req.Wait == 0 {
			a.Stats.CheckinLatency.Add(time.Since(start))
		}
		// Settings come with every answer: a change made by the operator
		// applies from this one (the next inventory is due on the new
		// interval, counted from the last one sent).
		if req.Inventory != nil {
			lastInv = time.Now()
		}
		a.applySettings(resp.Settings)
		nextInv = lastInv.Add(a.inventoryInterval(resp.Settings))
		if resp.Clone {
			acked = nil // carried by this check-in already
			if !a.cloneBackoff(ctx) {
				return nil
			}
			continue
		}
		a.noteDuplicate(resp.DuplicateID)
		if a.OnReleaseKeys != nil && len(resp.ReleaseKeys) > 0 {
			a.OnReleaseKeys(resp.ReleaseKeys) // before an upgrade in this answer
		}
		if a.OnCheckin != nil {
			a.OnCheckin()
		}
		var uninstalled bool
		if acked, uninstalled = a.commands(ctx, resp.Commands); uninstalled {
			return ErrUninstalled
		}
	}
	return nil
}

// checkinRequest is the next check-in: what it acknowledges and reports,
// the load, and the inventory when it is due (then without a hold).
func (a *Agent) checkinRequest(acked []int64, results []wire.CommandResult, nextInv time.Time) wire.CheckinRequest {
	req := wire.CheckinRequest{Fingerprint: a.Host.Fingerprint, Acked: acked, Results: results, Wait: wire.Duration(a.wait())}
	if a.Load != nil {
		req.CPU, req.Mem = a.Load()
	}
	if !time.Now().Before(nextInv) {
		inv := a.Inventory()
		h := a.Host
		req.Inventory, req.Host, req.Wait = &inv, &h, 0
	} else if due := time.Until(nextInv); due < time.Duration(req.Wait) {
		req.Wait = wire.Duration(due) // the inventory is due before the hold would end
	}
	return req
}

// checkinBackoff is the wait before the next check-in after failures:
// base for answers, net (spread over a window) when no relay answered.
type checkinBackoff struct{ base, net time.Duration }

// checkinFailed counts a failed check-in and waits before the next one;
// retry is false when the loop ends, with err when the identity is no
// longer valid (re-enrol needed), nil when ctx ended.
func (a *Agent) checkinFailed(ctx context.Context, err error, bo *checkinBackoff) (retry bool, _ error) {
	a.Stats.CheckinErrors.Add(1)
	a.setLastError(err)
	var se *StatusError
	var nr *NoRelayError
	if !errors.As(err, &nr) && errors.As(err, &se) && se.Status == http.StatusUnauthorized {
		return false, err // identity no longer valid: re-enrol needed
	}
	wait := jitter(bo.base)
	switch {
	case nr != nil && nr.Unreachable():
		// No relay answered: a fleet whose relay restarted would
		// reconnect all at once and overflow its accept queue, so
		// spread the reconnections over the whole window.
		wait = spread(bo.net)
		bo.net = min(bo.net*2, time.Minute)
	case nr != nil && nr.RetryAfter() > 0:
		wait = jitter(nr.RetryAfter())
	}
	if !sleepCtx(ctx, wait) {
		return false, nil
	}
	bo.base = min(bo.base*2, 15*time.Second)
	return true, nil
}

// commands carries out the commands of one check-in answer and returns the
// ids to acknowledge with the next one; uninstalled when an uninstall was
// carried out and acknowledged (Run then ends).
func (a *Agent) commands(ctx context.Context, cmds []wire.Command) (acked []int64, uninstalled bool) {
	for _, c := range cmds {
		a.Stats.Commands.Add(1)
		switch c.Type {
		case wire.CmdBind, wire.CmdUnbind:
			a.Client.SetProxies(Spread(c.Proxies, a.Host.Fingerprint))
			if id, ok, _ := a.Identity.Load(); ok {
				id.Proxies, id.Cluster = a.Client.Proxies(), c.Cluster
				a.Identity.Save(id)
			}
		case wire.CmdUninstall:
			if a.OnUninstall != nil {
				if err := a.OnUninstall(ctx); err != nil {
					r, _ := commandResult(c.ID, err)
					a.log.Warn("agent: uninstall failed", "err", err)
					a.Report(r)
					continue
				}
			}
			// Acknowledge while the identity still exists, so the
			// management host learns the uninstall was done.
			a.ackUninstall(ctx, append(acked, c.ID))
			return nil, true
		default:
			err := errUnsupported(c.Type)
			if a.OnCommand != nil {
				err = a.OnCommand(ctx, c)
			}
			if r, ok := commandResult(c.ID, err); ok {
				if r.State == wire.StateFailed {
					a.log.Warn("agent: command failed", "command", c.Type, "err", err)
				}
				a.Report(r)
				continue
			}
		}
		acked = append(acked, c.ID)
	}
	return acked, false
}

func (a *Agent) ackUninstall(ctx context.Context, acked []int64) {
	pending := a.results.take()
	req := wire.CheckinRequest{Fingerprint: a.Host.Fingerprint, Acked: acked, Results: wireResults(pending)}
	var err error
	for try := 0; try < 5; try++ {
		if _, err = a.Client.Checkin(ctx, req); err == nil || ctx.Err() != nil {
			break
		}
		if !sleepCtx(ctx, jitter(time.Second)) {
			break
		}
	}
	if err != nil {
		a.log.Warn("agent: uninstall not acknowledged: the management host counts it done after its grace period", "err", Describe(err))
	}
}
