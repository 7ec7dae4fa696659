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
	waiters  map[string]*waiter
	pending  map[string]bool // agents that may have undelivered commands
	released bool
}

// waiter is one held check-in. ch gets a token when a command may be
// pending and is closed when the check-in is to be answered now (a newer
// check-in of the agent, shutdown, new settings); wake, when set, is
// called on both, for a parked check-in that waits in a read, not on ch.
type waiter struct {
	ch   chan struct{}
	wake func()
}

func (w *waiter) end() {
	close(w.ch)
	if w.wake != nil {
		w.wake()
	}
}

func newHub() *hub {
	return &hub{waiters: map[string]*waiter{}, pending: map[string]bool{}}
}

func (h *hub) notify(agent string) {
	h.mu.Lock()
	h.pending[agent] = true
	if w, ok := h.waiters[agent]; ok {
		select {
		case w.ch <- struct{}{}:
		default:
		}
		if w.wake != nil {
			w.wake()
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

// join registers a held check-in of agent (nil once released: answer it
// now). It is registered before the first look for commands, so a command
// queued in between is not missed.
func (h *hub) join(agent string, wake func()) *waiter {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.released {
		return nil
	}
	if old, ok := h.waiters[agent]; ok {
		old.end() // a newer check-in of the same agent supersedes
	}
	w := &waiter{ch: make(chan struct{}, 1), wake: wake}
	h.waiters[agent] = w
	return w
}

func (h *hub) leave(agent string, w *waiter) {
	h.mu.Lock()
	if h.waiters[agent] == w {
		delete(h.waiters, agent)
	}
	h.mu.Unlock()
}

// deliver hands over agent's pending commands, if it may have any.
func (h *hub) deliver(ctx context.Context, db *store.DB, agent string) ([]store.Command, error) {
	h.mu.Lock()
	maybe := h.pending[agent]
	h.mu.Unlock()
	if !maybe {
		return nil, nil
	}
	cmds, err := db.DeliverCommands(ctx, store.TargetAgent, agent)
	if err != nil || len(cmds) > 0 {
		return cmds, err
	}
	h.mu.Lock()
	delete(h.pending, agent)
	h.mu.Unlock()
	return nil, nil
}

// wait returns the agent's pending commands, holding the call up to d while
// there are none.
func (h *hub) wait(ctx context.Context, db *store.DB, agent string, d time.Duration) ([]store.Command, error) {
	w := h.join(agent, nil)
	if w == nil {
		return nil, nil
	}
	defer h.leave(agent, w)
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		if cmds, err := h.deliver(ctx, db, agent); err != nil || len(cmds) > 0 {
			return cmds, err
		}
		select {
		case _, ok := <-w.ch:
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
