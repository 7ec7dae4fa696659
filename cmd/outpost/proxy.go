package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"outpost/relay/wire"
	"outpost/store"
	"outpost/store/ops"
)

func init() { register("", newProxyCmd) }

func newProxyCmd(a *app) *cobra.Command {
	cmd := group("proxy", "Deploy, list, upgrade and delete proxy servers")
	cmd.AddCommand(newProxyDeployCmd(a), newProxyListCmd(a), newProxyShowCmd(a), newProxyDeploymentsCmd(a), newProxyUpgradeCmd(a), newProxyDeleteCmd(a))
	return cmd
}

var proxyHead = []string{"ID", "CLUSTER", "HOST", "IP", "VERSION", "DEPLOY", "STATUS", "LAST SEEN", "AGENTS", "LOAD", "SECURITY", "UPGRADE"}

func proxyRows(ps []store.Proxy) [][]string {
	rows := make([][]string, 0, len(ps))
	for _, p := range ps {
		prot := p.SecurityText()
		up := upgradeText(p)
		rows = append(rows, []string{fmt.Sprint(p.ID), p.Cluster, p.Hostname, orDash(p.IP), orDash(p.Version), string(p.Deploy), string(p.Status),
			store.FormatAgo(time.Now(), p.LastSeen), fmt.Sprint(p.Agents), fmt.Sprintf("%.2f", p.Load), prot, up})
	}
	return rows
}

// proxyDeploy holds the flags of `proxy deploy`.
type proxyDeploy struct {
	a                                         *app
	cluster, account, asset, expires, manager string
	manual                                    bool
	listen, public                            []string
}

func newProxyDeployCmd(a *app) *cobra.Command {
	r := &proxyDeploy{a: a}
	cmd := &cobra.Command{
		Use:   "deploy --cluster N (--asset HOST [--listen L]... [--public URL]... | --manual) [--expires 1h] [--manager URL]",
		Short: "Deploy a proxy server: onto an online Linux asset, or with a one-time command",
		Long: `Deploy a proxy server into a cluster.

--asset HOST   quick deployment: queue the deploy command for an online Linux
               asset that runs the agent; the agent starts the relay, with
               --listen and --public as given here (as for 'outpost relay').
               The command's state (queued, delivered, running, done, or
               failed with the reason, such as a port already in use) shows
               in 'outpost proxy list' and 'outpost proxy deployments'.
--manual       print a one-time, expiring line to run as root on a bare
               Linux proxy host (only curl and sh needed):
               curl -fsSk --pinnedpubkey sha256//K URL/v1/install.sh | sh -s -- relay --manager URL --join TOKEN --ca-sha256 H
               It fetches the install script with the management host's server
               key K pinned, which installs /usr/local/bin/outpost (SHA-256
               checked) and the outpost-relay systemd service (the token goes
               only to a 0600 file in the relay's data directory); give the
               relay's flags (--listen, --public) after the token. Also printed,
               for a host that has the binary:
               outpost relay --manager URL --join TOKEN [--ca-sha256 H]
               URL is --manager, else the first https URL of the relay running
               on this host (DATA/run/relay.json), else https://HOSTNAME:8443.
               The relay saves URL and pin: later starts need only --data DIR.`,
		Args: nargs(0, 0, ""),
		RunE: func(cmd *cobra.Command, _ []string) error { return r.Run(cmd) },
	}
	f := cmd.Flags()
	f.StringVar(&r.cluster, "cluster", "", "cluster to deploy into")
	f.StringVar(&r.asset, "asset", "", "quick deployment onto this online Linux asset (agent id, host name or IP)")
	f.BoolVar(&r.manual, "manual", false, "print a one-time command to run on the proxy host")
	f.StringVar(&r.expires, "expires", "1h", "how long the join token stays valid")
	f.StringVar(&r.manager, "manager", "", "URL the relay uses to reach this management host (manual deployment)")
	f.StringVar(&r.account, "account", "", "account of the cluster")
	f.StringArrayVar(&r.listen, "listen", nil, "quick deployment: listener of the relay, repeatable: https://HOST:PORT or http://HOST:PORT (default the relay's)")
	f.StringArrayVar(&r.public, "public", nil, "quick deployment: URL agents use to reach the relay, repeatable (default: from --listen)")
	cmd.MarkFlagRequired("cluster")
	return cmd
}

// Run checks the flags, then deploys onto --asset or prints the manual
// command.
func (r *proxyDeploy) Run(cmd *cobra.Command) error {
	ttl, err := r.parse(cmd)
	if err != nil {
		return err
	}
	var mgr, pin, keyPin string
	if r.manual {
		if mgr, err = r.a.managerURL(r.manager); err != nil {
			return err
		}
		if pin, err = r.a.caPin(); err != nil {
			return err
		}
		if keyPin, err = r.a.keyPin(); err != nil {
			return err
		}
	}
	db, c, err := r.a.storeCluster(cmd, r.account, r.cluster)
	if err != nil {
		return err
	}
	if r.asset != "" {
		return r.quick(cmd, db, c, ttl)
	}
	return r.printManual(cmd, db, c, ttl, mgr, pin, keyPin)
}

// parse refuses flags that do not go together and returns the token's
// lifetime.
func (r *proxyDeploy) parse(cmd *cobra.Command) (time.Duration, error) {
	if r.manual == (r.asset != "") {
		return 0, usageErrorf("give exactly one of --asset HOST or --manual")
	}
	if r.asset != "" && r.manager != "" {
		return 0, usageErrorf("--manager applies to --manual only")
	}
	if r.manual && (len(r.listen) > 0 || len(r.public) > 0) {
		return 0, usageErrorf("--listen and --public apply to --asset only: give them to the 'outpost relay' command on the proxy host")
	}
	for _, l := range r.listen {
		if _, err := parseListen(l); err != nil {
			return 0, err
		}
	}
	if !cmd.Flags().Changed("expires") {
		return store.DefaultJoinTTL, nil
	}
	return parseDuration("expires", r.expires)
}

// quick queues the deploy command for the asset's agent.
func (r *proxyDeploy) quick(cmd *cobra.Command, db *store.DB, c store.Cluster, ttl time.Duration) error {
	a := r.a
	agent, err := db.FindAgent(ctx(cmd), c.AccountID, r.asset)
	if err != nil {
		return err
	}
	jt, err := db.CreateQuickDeploy(ctx(cmd), c.ID, agent.ID, ttl, store.RelayOptions{Listen: r.listen, Public: r.public})
	if err != nil {
		return err
	}
	if a.jsonOut {
		jt.Token = "" // travels to the asset only
		return a.printJSON(struct {
			store.JoinToken
			Hostname string `json:"hostname"`
		}{jt, agent.Hostname})
	}
	a.printf("deploy command %d queued for asset %s (%s): its agent starts the relay at its next check-in\n", jt.CommandID, clean(agent.Hostname), agent.ID)
	a.printf("the join token expires at %s; follow it: outpost proxy deployments --cluster %s\n", fmtTime(jt.ExpiresAt), shellQuote(c.Name))
	return nil
}

// printManual issues a join token and prints the lines to run on the
// proxy host.
func (r *proxyDeploy) printManual(cmd *cobra.Command, db *store.DB, c store.Cluster, ttl time.Duration, mgr, pin, keyPin string) error {
	a := r.a
	jt, err := db.CreateJoinToken(ctx(cmd), c.ID, store.DeployManual, "", ttl)
	if err != nil {
		return err
	}
	command := ops.JoinCommand(mgr, jt.Token, pin)
	install := ops.JoinInstallLine(mgr, keyPin, jt.Token, pin)
	if a.jsonOut {
		return a.printJSON(struct {
			store.JoinToken
			Command string `json:"command"`
			Install string `json:"install"`
		}{jt, command, install})
	}
	if install != "" {
		a.printf("Run this as root on the proxy host of cluster %s (one use, expires at %s, in %s); it installs /usr/local/bin/outpost and the outpost-relay systemd service:\n\n  %s\n\n",
			clean(c.Name), fmtTime(jt.ExpiresAt), store.FormatDuration(ttl), install)
		a.printf("or, where outpost is already installed:\n\n  %s\n\n", command)
	} else {
		a.notef("note: %s", ops.InstallLineMissing(mgr, keyPin))
		a.printf("Run this on the proxy host of cluster %s (one use, expires at %s, in %s):\n\n  %s\n\n",
			clean(c.Name), fmtTime(jt.ExpiresAt), store.FormatDuration(ttl), command)
	}
	a.printf("Then watch it come online: outpost proxy list --cluster %s\n", shellQuote(c.Name))
	return nil
}

func newProxyListCmd(a *app) *cobra.Command {
	var cluster, account string
	cmd := &cobra.Command{
		Use:   "list [--cluster N]",
		Short: "List proxy servers",
		Args:  nargs(0, 0, ""),
		RunE: func(cmd *cobra.Command, _ []string) error {
			db, err := a.store()
			if err != nil {
				return err
			}
			var f store.ProxyFilter
			if cluster != "" {
				c, err := a.resolveCluster(cmd, account, cluster)
				if err != nil {
					return err
				}
				f.ClusterID = c.ID
			} else if account != "" {
				acct, err := a.resolveAccount(cmd, account)
				if err != nil {
					return err
				}
				f.AccountID = acct.ID
			}
			ps, err := db.FindProxies(ctx(cmd), f)
			if err != nil {
				return err
			}
			if a.jsonOut {
				return a.printJSON(nonNil(ps))
			}
			if len(ps) == 0 {
				a.notef("no proxy server yet: deploy one with 'outpost proxy deploy --cluster N --manual'")
				a.printDeploymentNotes(cmd, cluster, account)
				return nil
			}
			a.printTable(proxyHead, proxyRows(ps))
			a.printCommandNotes(ps)
			a.printDeploymentNotes(cmd, cluster, account)
			return nil
		},
	}
	cmd.Flags().StringVar(&cluster, "cluster", "", "only this cluster's proxy servers")
	cmd.Flags().StringVar(&account, "account", "", "only this account's proxy servers")
	return cmd
}

// proxyArg parses a proxy id argument, opens the store and loads the proxy.
func (a *app) proxyArg(cmd *cobra.Command, arg string) (*store.DB, store.Proxy, error) {
	id, err := parseID("proxy id", arg)
	if err != nil {
		return nil, store.Proxy{}, err
	}
	db, err := a.store()
	if err != nil {
		return nil, store.Proxy{}, err
	}
	p, err := db.GetProxy(ctx(cmd), id)
	return db, p, err
}

// proxyIDCmd is a command on one proxy server, its ID the only argument:
// run gets the open store and the proxy.
func (a *app) proxyIDCmd(use, short string, run func(cmd *cobra.Command, db *store.DB, p store.Proxy) error) *cobra.Command {
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  nargs(1, 1, "ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			db, p, err := a.proxyArg(cmd, args[0])
			if err != nil {
				return err
			}
			return run(cmd, db, p)
		},
	}
}

func newProxyDeleteCmd(a *app) *cobra.Command {
	return a.proxyIDCmd("delete ID",
		"Delete an offline proxy server (stop its relay first)",
		func(cmd *cobra.Command, db *store.DB, p store.Proxy) error {
			id := p.ID
			if err := db.DeleteProxy(ctx(cmd), id); err != nil {
				return err
			}
			if a.jsonOut {
				return a.printJSON(map[string]any{"deleted": "proxy", "id": id, "hostname": p.Hostname, "cluster": p.Cluster})
			}
			a.printf("proxy server %d (%s) deleted from cluster %s\n", id, clean(p.Hostname), clean(p.Cluster))
			return nil
		})
}

// printCommandNotes prints, under the proxy table, the last failed command
// of each proxy server.
func (a *app) printCommandNotes(ps []store.Proxy) {
	for _, p := range ps {
		if p.LastError != "" {
			a.printf("proxy server %d (%s): last error: %s\n", p.ID, clean(p.Hostname), p.LastError)
		}
	}
}

// printDeploymentNotes prints quick deployments that have not ended well
// (the latest per asset; failures of the last day), so a relay that could
// not start is seen where the operator looks for it.
func (a *app) printDeploymentNotes(cmd *cobra.Command, cluster, account string) {
	ds, err := a.deployments(cmd, cluster, account)
	if err != nil {
		return
	}
	seen := map[string]bool{}
	for _, d := range ds {
		if seen[d.AssetID] {
			continue
		}
		seen[d.AssetID] = true
		if d.State != wire.StateDone && (d.State != wire.StateFailed || time.Since(d.Command.UpdatedAt) < 24*time.Hour) {
			a.printf("quick deployment onto %s (cluster %s, command %d): %s\n", clean(orDash(d.Hostname)), clean(d.Cluster), d.Command.ID, d.Command.Describe())
		}
	}
}

// deployments lists quick deployments of a cluster, or of all clusters
// (of one account when given).
func (a *app) deployments(cmd *cobra.Command, cluster, account string) ([]store.Deployment, error) {
	db, err := a.store()
	if err != nil {
		return nil, err
	}
	if cluster != "" {
		c, err := a.resolveCluster(cmd, account, cluster)
		if err != nil {
			return nil, err
		}
		return db.ListDeployments(ctx(cmd), c.ID)
	}
	ds, err := db.ListDeployments(ctx(cmd), 0)
	if err != nil || account == "" {
		return ds, err
	}
	acct, err := a.resolveAccount(cmd, account)
	if err != nil {
		return nil, err
	}
	cs, err := db.ListClusters(ctx(cmd), acct.ID)
	if err != nil {
		return nil, err
	}
	mine := map[int64]bool{}
	for _, c := range cs {
		mine[c.ID] = true
	}
	var out []store.Deployment
	for _, d := range ds {
		if mine[d.ClusterID] {
			out = append(out, d)
		}
	}
	return out, nil
}

func newProxyDeploymentsCmd(a *app) *cobra.Command {
	var cluster, account string
	cmd := &cobra.Command{
		Use:   "deployments [--cluster N]",
		Short: "List quick deployments and the state of their deploy command",
		Long: `List quick deployments (proxy deploy --asset), newest first, with the state
of the deploy command: queued (the agent has not checked in since), delivered
(handed to the agent, no answer yet), running (the agent started the relay),
done (the relay joined and listens), or failed with the reason (the relay's
own error, such as a port already in use, or no answer from the agent).`,
		Args: nargs(0, 0, ""),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ds, err := a.deployments(cmd, cluster, account)
			if err != nil {
				return err
			}
			if done, err := listed(a, ds, "no quick deployment yet: outpost proxy deploy --cluster N --asset HOST"); done {
				return err
			}
			var rows [][]string
			for _, d := range ds {
				proxy := "-"
				if d.ProxyID != 0 {
					proxy = fmt.Sprint(d.ProxyID)
				}
				rows = append(rows, []string{fmt.Sprint(d.Command.ID), d.Cluster, orDash(d.Hostname), d.Command.Describe(),
					store.FormatAgo(time.Now(), d.Command.UpdatedAt), proxy})
			}
			a.printTable([]string{"COMMAND", "CLUSTER", "ASSET", "STATE", "UPDATED", "PROXY"}, rows)
			return nil
		},
	}
	cmd.Flags().StringVar(&cluster, "cluster", "", "only this cluster's deployments")
	cmd.Flags().StringVar(&account, "account", "", "only this account's deployments")
	return cmd
}

func newProxyShowCmd(a *app) *cobra.Command {
	return a.proxyIDCmd("show ID",
		"Show a proxy server and its recent commands (upgrade, policy) with their states",
		func(cmd *cobra.Command, db *store.DB, p store.Proxy) error {
			id := p.ID
			cmds, err := db.ListCommands(ctx(cmd), store.TargetProxy, fmt.Sprint(id), 10)
			if err != nil {
				return err
			}
			if a.jsonOut {
				return a.printJSON(struct {
					store.Proxy
					Recent []store.Command `json:"recent_commands"`
				}{p, nonNil(cmds)})
			}
			a.printFields([][2]string{
				{"Proxy server", fmt.Sprintf("%d (%s)", p.ID, p.Hostname)},
				{"Cluster", p.Cluster},
				{"IP", orDash(p.IP)},
				{"URLs", orDash(strings.Join(p.URLs, ", "))},
				{"Version", orDash(p.Version)},
				{"Deploy", string(p.Deploy)},
				{"Status", string(p.Status) + ", last seen " + store.FormatAgo(time.Now(), p.LastSeen)},
				{"Agents", fmt.Sprint(p.Agents)},
				{"Security", p.SecurityText()},
				{"Upgrade", upgradeText(p)},
				{"Last error", orDash(p.LastError)},
			})
			a.printf("\nRecent commands:\n")
			if len(cmds) == 0 {
				a.printf("  none\n")
				return nil
			}
			var rows [][]string
			for _, c := range cmds {
				rows = append(rows, []string{fmt.Sprint(c.ID), string(c.Type), c.Describe(), fmtTime(c.CreatedAt), store.FormatAgo(time.Now(), c.UpdatedAt), fmt.Sprint(c.Attempts)})
			}
			a.printTableIndent("  ", []string{"ID", "TYPE", "STATE", "QUEUED", "UPDATED", "DELIVERIES"}, rows)
			return nil
		})
}
