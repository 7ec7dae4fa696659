package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"outpost/relay"
	"outpost/store"
)

// runFront shows the fleet while `up` runs: the dashboard on a terminal,
// else (or with --no-tui) a live text summary, one block every few seconds
// with clusters, proxies and agents.
func runFront(ctx context.Context, a *app, r *relayRun, noTUI bool) error {
	if !noTUI && isTerminal(a.stdout) {
		return runUpDashboard(ctx, a, r)
	}
	db, err := a.store()
	if err != nil {
		return err
	}
	t := time.NewTicker(3 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		summary, err := fleetSummary(ctx, db)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			a.logger().Warn("summary", "err", err)
			continue
		}
		if r.col != nil {
			st := r.col.Stats()
			summary += fmt.Sprintf("collector: %d records received, %d duplicates\n", st.Total, st.Duplicates)
		}
		if r.srv != nil {
			if d := relay.FormatDamage(r.srv.Damage()); d != "" {
				summary += "damage: " + d + "; see the log\n"
			}
		}
		fmt.Fprint(a.stdout, summary)
	}
}

// fleetSummary renders clusters, proxies and agent counts as plain text.
func fleetSummary(ctx context.Context, db *store.DB) (string, error) {
	clusters, err := db.ListClusters(ctx, 0)
	if err != nil {
		return "", err
	}
	proxies, err := db.ListProxies(ctx, 0)
	if err != nil {
		return "", err
	}
	counts, err := db.CountAgents(ctx, 0)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\n== outpost %s  %s ==\n", version, time.Now().Format("15:04:05"))
	fmt.Fprintf(&b, "agents: %d enrolled, %d online, %d connected now, %d direct, %d at risk, %d duplicate identities\n",
		counts.Total, counts.Online, counts.Connected, counts.Direct, counts.AtRisk, counts.Duplicates)
	for _, c := range clusters {
		fmt.Fprintf(&b, "cluster %-16s %-7s %-24s mode=%-7s proxies %d/%d online  agents %s\n",
			c.Name, c.Status, c.Address, c.Policy.Mode, c.ProxiesOnline, c.Proxies, c.AgentsText())
		for _, w := range c.Warnings {
			fmt.Fprintf(&b, "  warning: %s\n", w.Text())
		}
	}
	for _, p := range proxies {
		fmt.Fprintf(&b, "  proxy %-3d %-10s %-18s %-7s v%-10s connected %d\n", p.ID, p.Cluster, p.Hostname, p.Status, p.Version, p.Agents)
	}
	return b.String(), nil
}
