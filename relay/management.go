package relay

import (
	"context"
	"net/http"
	"path/filepath"

	"outpost/relay/collector"
	"outpost/relay/wire"
	"outpost/store"
)

// management is the management host's role (Config.Store set): it answers
// enrolment, check-ins and the relay-facing API from the store, holds
// check-ins in the command hub and mounts the built-in collector. Its
// methods live beside their endpoints (agentapi.go, relayapi.go, hub.go,
// dist.go, ...); s is the Server for the parts both roles share.
type management struct {
	s           *Server
	db          *store.DB
	batcher     *store.Batcher
	hub         *hub
	clones      *cloneWatch
	relays      *authCache[relayAuth]
	agentAcct   acctCache // agent -> account, for relays' ingest
	ingestToken string    // this process's forwarder writes to the collector with it
	dist        *dist     // install script and binaries
	keyChain    keyChainCache
}

// newManagement sets up the management role of s: the PKI of DATA/tls,
// the check-in batcher and the stats token of the built-in collector.
func newManagement(s *Server) (*management, error) {
	cfg := s.cfg
	pki, err := LoadOrCreatePKI(filepath.Join(cfg.DataDir, "tls"), nil)
	if err != nil {
		return nil, err
	}
	s.pki = pki
	if cfg.Collector != nil && s.cfg.StatsToken == "" {
		if s.cfg.StatsToken, err = collector.LoadOrCreateToken(filepath.Join(cfg.DataDir, "stats.token"), "st_"); err != nil {
			return nil, err
		}
	}
	return &management{
		s:           s,
		db:          cfg.Store,
		batcher:     store.NewBatcher(cfg.Store, cfg.CheckinFlush, 2000, s.log),
		hub:         newHub(),
		clones:      newCloneWatch(),
		relays:      newAuthCache[relayAuth](cfg.AuthTTL),
		ingestToken: store.NewSecret("it_"),
		dist:        newDist(cfg.DataDir, s.log),
	}, nil
}

// policy is the data path's policy at start: forward to the configured
// upstream (the built-in collector when none).
func (h *management) policy() wire.Policy {
	return wire.Policy{Mode: wire.ModeForward, Upstream: h.s.cfg.Upstream}
}

func (h *management) routes(mux *http.ServeMux) {
	mux.HandleFunc("POST "+wire.PathEnrol, h.handleEnrol)
	mux.HandleFunc("POST "+wire.PathCheckin, h.handleCheckin)
	mux.HandleFunc("GET "+wire.PathManifest, h.handleManifest)
	mux.HandleFunc("GET "+wire.PathPackage+"{version}", h.handlePackage)
	mux.HandleFunc("POST "+wire.PathJoin, h.handleJoin)
	mux.HandleFunc("POST "+wire.PathHeartbeat, h.handleHeartbeat)
	mux.HandleFunc("POST "+wire.PathAuth, h.handleAuth)
	mux.HandleFunc("GET "+wire.PathInstallScript, h.handleInstallScript)
	mux.HandleFunc("GET "+wire.PathDist+"{name}", h.handleDist)
	if c := h.s.cfg.Collector; c != nil {
		mux.Handle("POST "+wire.PathIngest, h.requireIngestAuth(c))
		mux.Handle("GET "+wire.PathCollStats, h.requireStatsAuth(c))
	}
}

// start runs the command poll (and settings reload) until Close.
func (h *management) start() {
	h.s.bg.Add(1)
	go h.pollCommands()
}

// release answers every held check-in at once (Close, before the
// listeners stop).
func (h *management) release() { h.hub.releaseAll() }

// close writes the check-ins still pending.
func (h *management) close() error { return h.batcher.Close() }

// lookupAgent verifies an agent's credentials in the store.
func (h *management) lookupAgent(ctx context.Context, id, secret string) (agentAuth, *authError) {
	rec, err := h.db.LookupAgentAuth(ctx, id)
	if err != nil || !store.SecretMatches(secret, rec.SecretHash) {
		h.s.m.authFail.Add(1)
		return agentAuth{}, unauthorized("agent credentials not recognised")
	}
	a := agentAuth{ID: rec.ID, AccountID: rec.AccountID, ClusterID: rec.ClusterID, Fingerprint: rec.Fingerprint, Duplicate: rec.Duplicate}
	h.s.agents.put(id, rec.SecretHash, a)
	return a, nil
}

// coverNames re-issues the management host's own certificate when hosts
// names one it lacks.
func (h *management) coverNames(hosts []string) {
	if err := h.s.pki.EnsureNames(hosts); err != nil {
		h.s.log.Error("relay: TLS certificate", "err", err)
	}
}

// health adds nothing: the management host has no identity of its own.
func (h *management) health(map[string]any) {}
