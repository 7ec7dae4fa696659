package relay

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"

	"outpost/relay/collector"
	"outpost/relay/internal/httpbody"
	"outpost/relay/wire"
	"outpost/store"
)

// acctCache maps agent ids to their account. An agent's account never
// changes (agents are not moved between accounts nor deleted), so entries
// need no expiry; the map is only emptied when it grows past a bound.
type acctCache struct {
	mu sync.Mutex
	m  map[string]int64
}

const acctCacheMax = 1 << 20

// accounts returns the account of each id (unknown ids absent), asking
// the store once for the ids not cached.
func (c *acctCache) accounts(r *http.Request, db *store.DB, ids []string) (map[string]int64, error) {
	out := make(map[string]int64, len(ids))
	var miss []string
	c.mu.Lock()
	for _, id := range ids {
		if a, ok := c.m[id]; ok {
			out[id] = a
		} else {
			miss = append(miss, id)
		}
	}
	c.mu.Unlock()
	if len(miss) == 0 {
		return out, nil
	}
	got, err := db.AgentAccounts(r.Context(), miss)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.m == nil || len(c.m)+len(got) > acctCacheMax {
		c.m = make(map[string]int64, len(got))
	}
	for id, a := range got {
		c.m[id] = a
		out[id] = a
	}
	c.mu.Unlock()
	return out, nil
}

// checkIngestAccount refuses (403, nothing passed on) a joined relay's
// ingest batch holding a record of an agent outside the relay's account:
// the collector trusts each record's agent field, and a relay of another
// account could otherwise write events (and burn sequence numbers) under
// any agent id. Same account is the rule, not the agent's binding: records
// an agent sent through a cluster it has since left stay acceptable. The
// body is read here once and handed on decoded.
func (h *management) checkIngestAccount(w http.ResponseWriter, r *http.Request, ra relayAuth) bool {
	raw, err := httpbody.Read(w, r, collector.MaxBody)
	if err != nil {
		code, kind := httpbody.Status(err)
		writeErr(w, code, kind, err.Error())
		return false
	}
	if wire.IsRecordFrames(r.Header.Get("Content-Type")) {
		// Frames are trusted to hold records their relay validated; a
		// relay of one account is not trusted with another's. Its records
		// go on as a JSON batch, which the collector checks in full and
		// reads as this check does (the last of two agent keys counts).
		if raw, err = framesToJSON(raw); err != nil {
			writeErr(w, http.StatusBadRequest, wire.CodeBadRecord, err.Error())
			return false
		}
		r.Header.Set("Content-Type", "application/json")
	}
	r.Body = io.NopCloser(bytes.NewReader(raw))
	r.ContentLength = int64(len(raw))
	r.Header.Del("Content-Encoding")
	agents, ok := ingestAgents(raw)
	if !ok {
		return true // malformed: the collector answers 400 with its reason
	}
	seen := make(map[string]bool)
	var ids []string
	for _, a := range agents {
		if a != "" && !seen[a] {
			seen[a] = true
			ids = append(ids, a)
		}
	}
	if len(ids) == 0 {
		return true
	}
	accts, err := h.agentAcct.accounts(r, h.db, ids)
	if err != nil {
		h.s.storeErr(w, err)
		return false
	}
	for i, agent := range agents {
		if a, ok := accts[agent]; agent != "" && (!ok || a != ra.AccountID) {
			h.s.m.refused.Add(1)
			h.s.log.Warn("relay: ingest refused: a record names an agent of another account", "relay", ra.ProxyID, "record", i, "agent", agent)
			writeErr(w, http.StatusForbidden, store.EForbidden,
				fmt.Sprintf("record %d: agent %q is not an agent of proxy server %d's account: batch refused", i, agent, ra.ProxyID))
			return false
		}
	}
	return true
}

// ingestAgents returns the agent of each record of an ingest batch, in one
// pass when wire.ScanIngest takes the batch, else by encoding/json; false
// when the batch is malformed.
func ingestAgents(raw []byte) ([]string, bool) {
	var l wire.Lines
	if wire.ScanIngest(&l, raw) {
		out := make([]string, len(l.Agent))
		for i, a := range l.Agent {
			out[i] = string(a)
		}
		return out, true
	}
	var batch struct {
		Records []struct {
			Agent string `json:"agent"`
		} `json:"records"`
	}
	if json.Unmarshal(raw, &batch) != nil {
		return nil, false
	}
	out := make([]string, len(batch.Records))
	for i, r := range batch.Records {
		out[i] = r.Agent
	}
	return out, true
}
