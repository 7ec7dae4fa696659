package relay

import (
	"context"
	"sync"
	"time"

	"outpost/relay/wire"
)

// keyChainTTL bounds how stale the release key chain handed to agents
// with an upgrade command may be: a fleet-wide upgrade hands out many at
// once, and the chain changes only when the operator rotates the key
// (another process, the CLI).
const keyChainTTL = 2 * time.Second

// keyChainCache keeps the release key chain for check-in answers; the
// zero value is ready.
type keyChainCache struct {
	mu    sync.Mutex
	at    time.Time
	chain []wire.ReleaseKeyLink
}

// checkinKeyChain is the release key chain for a check-in answer that
// carries an upgrade, read at most once per keyChainTTL. Heartbeats and enrolments read the store.
func (h *management) checkinKeyChain(ctx context.Context) ([]wire.ReleaseKeyLink, error) {
	c := &h.keyChain
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.at.IsZero() && time.Since(c.at) < keyChainTTL {
		return c.chain, nil
	}
	chain, err := h.db.ReleaseKeyChain(ctx)
	if err != nil {
		return nil, err
	}
	c.chain, c.at = chain, time.Now()
	return chain, nil
}
