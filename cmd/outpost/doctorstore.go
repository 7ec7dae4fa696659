package main

// The management store read into the doctor's plain types: the doctor
// (agentsim/doctor) runs on agent hosts and does not import the store.

import (
	"context"

	"outpost/agentsim/doctor"
	"outpost/relay/wire"
	"outpost/store"
)

// readStore gives the doctor the store's agents, install commands and
// clusters.
func readStore(d *doctor.Doctor, db *store.DB) {
	d.Agent = func(ctx context.Context, id string) (doctor.Agent, error) {
		a, err := db.GetAgent(ctx, id)
		if store.ErrorCode(err) == store.ENotFound {
			return doctor.Agent{}, doctor.ErrUnknownAgent
		}
		return doctorAgent(a), err
	}
	d.Duplicates = func(ctx context.Context) ([]doctor.Agent, int, error) {
		page, err := db.ListAgents(ctx, store.AgentFilter{Duplicate: true, Limit: 10})
		out := make([]doctor.Agent, len(page.Agents))
		for i, a := range page.Agents {
			out[i] = doctorAgent(a)
		}
		return out, page.Total, err
	}
	d.InstallCommands = func(ctx context.Context) ([]doctor.InstallCommand, error) {
		ics, err := db.ListInstallCommands(ctx, 0)
		out := make([]doctor.InstallCommand, len(ics))
		for i, ic := range ics {
			out[i] = doctor.InstallCommand{ID: ic.ID, KeyPrefix: ic.KeyPrefix, Cluster: ic.Cluster, ExpiresAt: ic.ExpiresAt,
				Uses: ic.Uses, Revoked: ic.Revoked, Expired: ic.Expired}
		}
		return out, err
	}
	d.Clusters = func(ctx context.Context) ([]doctor.Cluster, error) {
		cls, err := db.ListClusters(ctx, 0)
		out := make([]doctor.Cluster, len(cls))
		for i, c := range cls {
			out[i] = doctorCluster(c)
		}
		return out, err
	}
}

func doctorAgent(a store.Agent) doctor.Agent {
	return doctor.Agent{ID: a.ID, Hostname: a.Hostname, Duplicate: a.Duplicate}
}

// doctorCluster carries a cluster's policy as shown and its warnings
// (store.Warnings, computed by ListClusters).
func doctorCluster(c store.Cluster) doctor.Cluster {
	p := c.Policy
	dc := doctor.Cluster{ID: c.ID, Name: c.Name, Account: c.Account, Forward: p.Mode == wire.ModeForward,
		Bandwidth: store.FormatBandwidth(p.BandwidthBps), Agents: c.Agents}
	if p.LinkBps > 0 {
		dc.Link = store.FormatBandwidth(p.LinkBps / 8)
	}
	if p.Mode == wire.ModeCache {
		ct := doctorCache(c.Name, p.CacheDir, p.CacheMax)
		dc.Cache = &ct
	}
	for _, w := range c.Warnings {
		dc.Warnings = append(dc.Warnings, w)
	}
	return dc
}

// doctorCache is a cache-mode directory with the store's defaults filled
// in (relative to DATA, 10 GB).
func doctorCache(cluster, dir string, maxBytes int64) doctor.CacheTarget {
	if dir == "" {
		dir = store.DefaultCacheDir
	}
	if maxBytes <= 0 {
		maxBytes = store.MaxCacheBytes
	}
	return doctor.CacheTarget{Cluster: cluster, Dir: dir, Max: maxBytes}
}
