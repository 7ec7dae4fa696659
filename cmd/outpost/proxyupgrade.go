package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"outpost/relay/wire"
	"outpost/store"
	"outpost/store/ops"
)

func newProxyUpgradeCmd(a *app) *cobra.Command {
	var force bool
	var cluster, account string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "upgrade (ID... | --cluster N [--timeout 5m]) [--force]",
		Short: "Upgrade online proxy servers to the latest release (a cluster's one at a time)",
		Long: `Queue an upgrade to the latest published release (outpost release add).
Only an online proxy server older than the latest release can be upgraded.
Every ID is checked first: if one cannot be upgraded, none is.

--cluster N upgrades the cluster's proxy servers one at a time, so the
cluster keeps serving its agents: it queues one, waits until its upgrade is
done and the proxy is online at the new version, then the next, printing a
line at each step. It stops at the first upgrade that fails or is rolled
back, saying which and why (the others keep their version), and fails a
proxy not online at the new version within --timeout. Offline proxies and
those already at the release are skipped. A cluster with a single proxy
server is upgraded too, with a warning: its agents have no relay while it
restarts. Ctrl-C stops waiting (the upgrade under way goes on).

The relay checks the release's signature against the release keys it
trusts (the one it got at join, and those it signed) before installing
it, runs the new binary's self-test, restarts into it and rolls back to the
previous binary when it does not come up healthy. Its state shows in
'outpost proxy list' and 'outpost proxy show': queued, delivered,
downloading, verifying, restarting, done, failed (reason), rolled back
(reason). --force queues the latest release even when the proxy runs it or
a newer one (a downgrade, after deleting a bad release); the relay then
accepts it, and the audit log says proxy.upgrade.force.`,
		Args: nargs(0, -1, "ID"),
		PreRunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case (cluster != "") == (len(args) > 0):
				return usageErrorf("give proxy IDs or --cluster N (not both)")
			case cluster == "" && cmd.Flags().Changed("timeout"):
				return usageErrorf("--timeout applies to --cluster only")
			case timeout <= 0:
				return usageErrorf("invalid --timeout %s: must be positive", timeout)
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if cluster != "" {
				return a.rollingUpgrade(cmd, account, cluster, force, timeout)
			}
			return a.upgradeProxies(cmd, args, force)
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "queue the latest release even when not newer than the proxy's version (a downgrade; audited)")
	cmd.Flags().StringVar(&cluster, "cluster", "", "upgrade this cluster's proxy servers one at a time")
	cmd.Flags().StringVar(&account, "account", "", "account of the cluster")
	cmd.Flags().DurationVar(&timeout, "timeout", ops.DefaultProxyUpgradeBound, "with --cluster: how long each proxy may take to be online at the new version")
	return cmd
}

// upgradeProxies runs proxy upgrade ID...: all or nothing, checked first.
func (a *app) upgradeProxies(cmd *cobra.Command, args []string, force bool) error {
	var ids []int64
	for _, s := range args {
		id, err := parseID("proxy id", s)
		if err != nil {
			return err
		}
		ids = append(ids, id)
	}
	db, err := a.store()
	if err != nil {
		return err
	}
	// Check all first so that one refusal leaves every proxy as it
	// was. A proxy that is not upgradable is handed to UpgradeProxy
	// anyway: it refuses (changing nothing) with the reason.
	type done struct {
		ID       int64  `json:"id"`
		Hostname string `json:"hostname"`
		From     string `json:"from"`
		To       string `json:"to"`
	}
	upgrade := db.UpgradeProxy
	if force {
		upgrade = db.ForceUpgradeProxy
	}
	var out []done
	var todo []store.Proxy
	for _, id := range ids {
		p, err := db.GetProxy(ctx(cmd), id)
		if err != nil {
			return err
		}
		if !p.Upgrade || force {
			to, err := upgrade(ctx(cmd), id)
			if err != nil {
				return err
			}
			out = append(out, done{p.ID, p.Hostname, p.Version, to}) // became upgradable meanwhile
			continue
		}
		todo = append(todo, p)
	}
	for _, p := range todo {
		to, err := db.UpgradeProxy(ctx(cmd), p.ID)
		if err != nil {
			return failf("proxy server %d: %s (upgrades queued before it: %d)", p.ID, store.ErrorMessage(err), len(out))
		}
		out = append(out, done{p.ID, p.Hostname, p.Version, to})
	}
	if a.jsonOut {
		return a.printJSON(out)
	}
	for _, d := range out {
		a.printf("proxy server %d (%s): upgrade %s -> %s queued\n", d.ID, clean(d.Hostname), d.From, d.To)
	}
	return nil
}

// rollingUpgrade runs proxy upgrade --cluster: progress lines on stdout
// (on stderr with --json, whose stdout is the result alone).
func (a *app) rollingUpgrade(cmd *cobra.Command, account, cluster string, force bool, timeout time.Duration) error {
	db, c, err := a.storeCluster(cmd, account, cluster)
	if err != nil {
		return err
	}
	r, err := ops.NewRollingUpgrade(ctx(cmd), db, c, force, timeout, wallClock{})
	if err != nil {
		return err
	}
	out := a.stdout
	if a.jsonOut {
		out = a.stderr
	}
	pr := r.Progress()
	if pr.Warning != "" {
		a.notef("warning: %s", pr.Warning)
	}
	for _, p := range pr.Proxies {
		if p.State == ops.RollSkipped {
			fmt.Fprintf(out, "proxy server %d (%s): skipped: %s\n", p.ID, clean(p.Hostname), p.Reason)
		}
	}
	start := time.Now()
	pr, err = r.Run(context.WithoutCancel(ctx(cmd)), cmd.Context(), func(pr ops.RollingProgress) {
		fmt.Fprintln(out, clean(pr.Event))
	})
	if err != nil {
		return err
	}
	done := 0
	for _, p := range pr.Proxies {
		if p.State == ops.RollDone {
			done++
		}
	}
	if a.jsonOut {
		return a.printJSON(pr)
	}
	if done == 0 {
		a.printf("cluster %s: no proxy server to upgrade to %s (all skipped, see above)\n", clean(c.Name), clean(pr.Version))
		return nil
	}
	a.printf("cluster %s: %d proxy server(s) upgraded to %s in %s\n", clean(c.Name), done, clean(pr.Version), time.Since(start).Round(time.Second))
	return nil
}

// upgradeText is the UPGRADE column: the latest upgrade's state ("to
// 1.2.0: downloading", "to 1.2.0: rolled back: REASON"), a done one only
// while no newer release is available, else whether one is.
func upgradeText(p store.Proxy) string {
	c, ok := p.UpgradeCommand()
	switch {
	case ok && c.State != wire.StateDone:
		return store.UpgradeText(&c)
	case p.Upgrade:
		return "available"
	case !ok:
		return "-"
	}
	text := store.UpgradeText(&c)
	if v := c.UpgradeVersion(); p.Status == store.StatusOnline && v != "" && store.CompareVersions(p.Version, v) != 0 {
		text += ", but it runs " + orDash(p.Version) // acknowledged by a relay that did not restart into it
	}
	return text
}
