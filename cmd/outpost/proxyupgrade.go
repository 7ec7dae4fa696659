package main

import (
	"encoding/json"

	"github.com/spf13/cobra"

	"outpost/store"
)

func newProxyUpgradeCmd(a *app) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "upgrade ID... [--force]",
		Short: "Upgrade online proxy servers to the latest release",
		Long: `Queue an upgrade to the latest published release (outpost release add).
Only an online proxy server older than the latest release can be upgraded.
Every ID is checked first: if one cannot be upgraded, none is.

The relay checks the release's signature against the release public key it
got at join (or heartbeat) before staging it, and refuses a version not
newer than its own. --force queues the latest release even when the proxy
runs it or a newer one (a downgrade, after deleting a bad release); the
relay then accepts it, and the audit log says proxy.upgrade.force.`,
		Args: nargs(1, -1, "ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
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
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "queue the latest release even when not newer than the proxy's version (a downgrade; audited)")
	return cmd
}

// upgradeText is the UPGRADE column: an upgrade under way or failed says
// so (its state), else whether a newer release is available.
func upgradeText(p store.Proxy) string {
	if c, ok := p.UpgradeCommand(); ok && c.State != store.CommandDone {
		return "to " + commandVersion(c) + ": " + c.Describe()
	}
	if p.Upgrade {
		return "available"
	}
	return "-"
}

// commandVersion is the version an upgrade command names.
func commandVersion(c store.Command) string {
	var v struct {
		Version string `json:"version"`
	}
	json.Unmarshal([]byte(c.Payload), &v)
	return orDash(v.Version)
}
