package relay

import (
	"context"
	"log/slog"
	"outpost/store"
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
	attrs := []any{"held", h.hub.connected()}
	for _, f := range store.SettingFields() { // the ones that changed, from the one list
		if from, to := *f.Of(&old), *f.Of(&st); from != to {
			attrs = append(attrs, slog.Group(f.Key, "from", from, "to", to))
		}
	}
	h.s.log.Info("relay: settings changed: answering the held check-ins with them", attrs...)
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
