package relay

import (
	"fmt"
	"net/http"
	"sync"
	"time"

	"outpost/relay/wire"
)

// cloneWindow bounds how soon an agent whose held check-in was taken over
// by another connection must come back for the two to count as two live
// agents sharing one identity.
const cloneWindow = 10 * time.Second

// cloneWatch finds copies of one agent identity that present the same
// fingerprint (copies that differ are told apart by it). Only one check-in
// per agent is held: a second connection's check-in takes the hold over
// and the first is answered. An agent that reconnected (failover, a
// timeout, a restart) never comes back on the connection it left; a live
// copy does, at once, because it was answered. So the connection whose hold
// was taken and which returns while the taker still holds proves two live
// agents, and the taker (the newcomer) is answered Clone.
type cloneWatch struct {
	mu     sync.Mutex
	holder map[string]string   // agent -> connection of its held check-in
	took   map[string]takeover // agent -> the last takeover of its hold
	clone  map[string]takeover // agent -> the connection to answer Clone (by)
	n      int
}

type takeover struct {
	from, by string
	at       time.Time
}

func newCloneWatch() *cloneWatch {
	return &cloneWatch{holder: map[string]string{}, took: map[string]takeover{}, clone: map[string]takeover{}}
}

// agentConn names the connection a check-in came on: the agent's own
// address at the relay it reached (a joined relay says it in
// wire.HeaderAgentAddr; only authenticated relays are believed).
func agentConn(r *http.Request, ra relayAuth) string {
	if ra.ProxyID != 0 {
		return fmt.Sprintf("%s via proxy %d", r.Header.Get(wire.HeaderAgentAddr), ra.ProxyID)
	}
	return r.RemoteAddr + " direct"
}

// arrive notes a check-in of agent on conn that is about to be held.
func (w *cloneWatch) arrive(agent, conn string) {
	now := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	if cur, held := w.holder[agent]; held && cur != conn {
		if t, ok := w.took[agent]; ok && t.from == conn && t.by == cur && now.Sub(t.at) < cloneWindow {
			w.clone[agent] = takeover{from: conn, by: cur, at: now}
			delete(w.took, agent)
		} else {
			w.took[agent] = takeover{from: cur, by: conn, at: now}
		}
	}
	w.holder[agent] = conn
	if w.n++; w.n%4096 == 0 {
		for _, m := range []map[string]takeover{w.took, w.clone} {
			for k, t := range m {
				if now.Sub(t.at) > cloneWindow {
					delete(m, k)
				}
			}
		}
	}
}

// leave notes that agent's check-in on conn was answered, and reports
// whether it is to be answered Clone.
func (w *cloneWatch) leave(agent, conn string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.holder[agent] == conn {
		delete(w.holder, agent)
	}
	if t, ok := w.clone[agent]; ok && t.by == conn {
		delete(w.clone, agent)
		return true
	}
	return false
}
