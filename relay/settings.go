package relay

import (
	"context"
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
		h.s.logf("relay: reload settings: %v", err)
		return
	}
	if !changed {
		return
	}
	st := h.db.Settings()
	h.s.logf("relay: settings changed: offline_after %s -> %s, inventory_interval %s -> %s, poll_timeout %s -> %s; answering %d held check-ins with them",
		old.OfflineAfter, st.OfflineAfter, old.InventoryInterval, st.InventoryInterval, old.PollTimeout, st.PollTimeout, h.hub.connected())
	h.hub.wakeAll()
}

// wakeAll answers every held check-in now (settings changed); unlike
// releaseAll the hub keeps holding the next ones.
func (h *hub) wakeAll() {
	h.mu.Lock()
	for _, ch := range h.waiters {
		close(ch)
	}
	clear(h.waiters)
	h.mu.Unlock()
}
