package relay

import (
	"context"
	"log/slog"
	"time"
)

// settingsReloadEvery is how often the management host re-reads the
// settings table, which the CLI may change from another process. Six rows
// in one read: cheaper than a version row and as quick to notice.
const settingsReloadEvery = time.Second

// reloadSettings picks up settings changed by another process. On a
// change, held check-ins are answered at once so every connected agent
// gets the new settings now rather than at the end of its hold; agents
// behind joined relays too, since those forward the answer as it is.
func (h *management) reloadSettings() {
	old := h.db.Settings()
	changed, err := h.db.ReloadSettings(context.Background())
	if err != nil {
		h.s.log.Error("relay: reload settings", "err", err)
		return
	}
	if !changed {
		return
	}
	st := h.db.Settings()
	h.s.log.Info("relay: settings changed: answering the held check-ins with them", "held", h.hub.connected(),
		slog.Group("offline_after", "from", old.OfflineAfter, "to", st.OfflineAfter),
		slog.Group("inventory_interval", "from", old.InventoryInterval, "to", st.InventoryInterval),
		slog.Group("poll_timeout", "from", old.PollTimeout, "to", st.PollTimeout))
	h.hub.wakeAll()
}

// wakeAll answers every held check-in now (settings changed); unlike
// releaseAll the hub keeps holding the next ones.
func (h *hub) wakeAll() {
	h.mu.Lock()
	for _, w := range h.waiters {
		w.end()
	}
	clear(h.waiters)
	h.mu.Unlock()
}
