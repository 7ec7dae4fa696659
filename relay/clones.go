package relay

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"outpost/relay/internal/httpbody"
	"outpost/relay/wire"
)

// cloneWindow bounds how soon an agent whose held check-in was taken over
// by another connection must come back for the two to count as two live
// agents sharing one identity.
const cloneWindow = 10 * time.Second

// cloneWatch finds copies of one agent identity that present the same
// fingerprint (copies that differ are told apart by it). Only one check-in
// per agent is held: a second connection's check-in takes the hold over and
// the first is answered. An agent that reconnected (failover, a timeout, a
// restart) never comes back on the connection it left; a live copy does, at
// once, because it was answered. So a connection whose hold was taken and
// which returns while the taker still holds proves two live agents. Of the
// two connections, the one first seen later (the newcomer) is answered
// Clone; the other keeps its hold.
type cloneWatch struct {
	mu     sync.Mutex
	holder map[string]string               // agent -> connection of its held check-in
	took   map[string]takeover             // agent -> the last takeover of its hold
	clone  map[string]takeover             // agent -> the holding connection to answer Clone (by)
	seen   map[string]map[string]*connSeen // agent -> connection -> when
	n      int
}

type takeover struct {
	from, by string
	at       time.Time
}

type connSeen struct{ first, last time.Time }

func newCloneWatch() *cloneWatch {
	return &cloneWatch{holder: map[string]string{}, took: map[string]takeover{}, clone: map[string]takeover{},
		seen: map[string]map[string]*connSeen{}}
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

// cloneHold is how long a check-in with a fingerprint that is not the
// enrolled one is held before it is answered Clone.
const cloneHold = 5 * time.Second

// arrive notes a check-in of agent on conn that is about to be held for
// wait, and reports whether it is to be answered Clone at once (it is the
// newcomer of two live connections; the other keeps its hold). Short ones
// (an inventory, the doctor) are not counted: they are answered before the
// agent they pre-empt could come back.
func (w *cloneWatch) arrive(agent, conn string, wait time.Duration) (cloneNow bool) {
	if wait < time.Second {
		return false
	}
	now := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	conns := w.seen[agent]
	if conns == nil {
		conns = map[string]*connSeen{}
		w.seen[agent] = conns
	}
	me := conns[conn]
	if me == nil {
		me = &connSeen{first: now}
		conns[conn] = me
	}
	me.last = now
	if cur, held := w.holder[agent]; held && cur != conn {
		if t, ok := w.took[agent]; ok && t.from == conn && t.by == cur && now.Sub(t.at) < cloneWindow {
			delete(w.took, agent)
			if other := conns[cur]; other != nil && other.first.Before(me.first) {
				return true // this one came later: the holder keeps its hold
			}
			w.clone[agent] = takeover{from: conn, by: cur, at: now}
		} else {
			w.took[agent] = takeover{from: cur, by: conn, at: now}
		}
	}
	w.holder[agent] = conn
	if w.n++; w.n%4096 == 0 {
		w.prune(now)
	}
	return false
}

// prune forgets what no longer matters: takeovers past the window and
// connections not seen for a few minutes.
func (w *cloneWatch) prune(now time.Time) {
	for _, m := range []map[string]takeover{w.took, w.clone} {
		for k, t := range m {
			if now.Sub(t.at) > cloneWindow {
				delete(m, k)
			}
		}
	}
	for agent, conns := range w.seen {
		for c, cs := range conns {
			if now.Sub(cs.last) > 5*time.Minute {
				delete(conns, c)
			}
		}
		if len(conns) == 0 {
			delete(w.seen, agent)
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

// answerCopy answers a check-in whose fingerprint is not the enrolled one:
// a copy of the agent directory (another machine, or another directory on
// this one). It is flagged (once), records nothing else (its acknowledgements,
// load and inventory are not the agent's) and never takes the original's
// held check-in over; it is answered Clone after a short hold, so a copy
// too old to back off does not spin.
func (h *management) answerCopy(w http.ResponseWriter, r *http.Request, a agentAuth, ra relayAuth, fingerprint string, wait time.Duration) {
	if !a.Duplicate {
		if err := h.db.FlagDuplicate(context.WithoutCancel(r.Context()), a.ID, fingerprint, agentConn(r, ra)); err != nil {
			h.s.log.Error("relay: flag duplicate", "agent", a.ID, "err", err)
		}
		h.s.agents.drop(a.ID)
	}
	select {
	case <-time.After(min(wait, cloneHold)):
	case <-h.s.closing:
	case <-r.Context().Done():
		return
	}
	httpbody.WriteJSON(w, http.StatusOK, wire.CheckinResponse{Settings: h.settings(), DuplicateID: true, Clone: true, ServerTimeUTC: time.Now().UTC()})
}
