package relay

import (
	"context"
	"sync"
	"time"

	"outpost/store"
)

// hub holds agents' long-poll check-ins and wakes the right one when a
// command is queued for it. Commands are found by polling the store's
// command table (cheap: by primary key), so commands queued by another
// process (the CLI, the dashboard) arrive as fast as in-process ones.
type hub struct {
	mu       sync.Mutex
	waiters  map[string]chan struct{}
	pending  map[string]bool // agents that may have undelivered commands
	released bool
}

func newHub() *hub {
	return &hub{waiters: map[string]chan struct{}{}, pending: map[string]bool{}}
}

func (h *hub) notify(agent string) {
	h.mu.Lock()
	h.pending[agent] = true
	if ch, ok := h.waiters[agent]; ok {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
	h.mu.Unlock()
}

// releaseAll answers every held check-in now (shutdown).
func (h *hub) releaseAll() {
	h.mu.Lock()
	h.released = true // no check-in is held from now on
	h.mu.Unlock()
	h.wakeAll()
}

// connected is the number of check-ins held right now.
func (h *hub) connected() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.waiters)
}

// wait returns the agent's pending commands, holding the call up to d while
// there are none. The waiter is registered before the first look so a
// command queued in between is not missed.
func (h *hub) wait(ctx context.Context, db *store.DB, agent string, d time.Duration) ([]store.Command, error) {
	ch := make(chan struct{}, 1)
	h.mu.Lock()
	if h.released {
		h.mu.Unlock()
		return nil, nil
	}
	if old, ok := h.waiters[agent]; ok {
		close(old) // a newer check-in of the same agent supersedes
	}
	h.waiters[agent] = ch
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		if h.waiters[agent] == ch {
			delete(h.waiters, agent)
		}
		h.mu.Unlock()
	}()
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		h.mu.Lock()
		maybe := h.pending[agent]
		h.mu.Unlock()
		if maybe {
			cmds, err := db.DeliverCommands(ctx, store.TargetAgent, agent)
			if err != nil {
				return nil, err
			}
			if len(cmds) > 0 {
				return cmds, nil
			}
			h.mu.Lock()
			delete(h.pending, agent)
			h.mu.Unlock()
		}
		select {
		case _, ok := <-ch:
			if !ok {
				return nil, nil
			}
		case <-timer.C:
			return nil, nil
		case <-ctx.Done():
			return nil, nil
		}
	}
}

// pollCommands wakes agents whose commands were queued since the last look,
// and reloads the settings (settingsReloadEvery).
func (h *management) pollCommands() {
	defer h.s.bg.Done()
	var last int64
	var reloaded time.Time
	var swept time.Time
	t := time.NewTicker(h.s.cfg.CommandPoll)
	defer t.Stop()
	for {
		if time.Since(reloaded) >= settingsReloadEvery {
			h.reloadSettings()
			reloaded = time.Now()
		}
		if time.Since(swept) >= commandSweepEvery {
			h.sweepCommands()
			swept = time.Now()
		}
		cmds, err := h.db.CommandsAfter(context.Background(), last, 5000)
		if err != nil {
			h.s.log.Error("relay: command poll", "err", err)
		}
		for _, c := range cmds {
			last = max(last, c.ID)
			if c.TargetKind == store.TargetAgent {
				h.hub.notify(c.TargetID)
			}
		}
		if len(cmds) == 5000 {
			continue
		}
		select {
		case <-h.s.closing:
			return
		case <-t.C:
		}
	}
}
