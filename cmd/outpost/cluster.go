package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"outpost/relay/wire"
	"outpost/store"
)

func init() { register("", newClusterCmd) }

func newClusterCmd(a *app) *cobra.Command {
	cmd := group("cluster", "Create, list, show and delete clusters; set their transmission policy")
	cmd.AddCommand(newClusterCreateCmd(a), newClusterListCmd(a), newClusterShowCmd(a), newClusterDeleteCmd(a), newClusterPolicyCmd(a))
	return cmd
}

func newClusterCreateCmd(a *app) *cobra.Command {
	var in store.ClusterInput
	var account string
	cmd := &cobra.Command{
		Use:   "create --name N --address A [--region R] [--remark T]",
		Short: "Create a cluster (name and address cannot be changed later)",
		Args:  nargs(0, 0, ""),
		RunE: func(cmd *cobra.Command, _ []string) error {
			db, err := a.store()
			if err != nil {
				return err
			}
			acct, err := a.resolveAccount(cmd, account)
			if err != nil {
				return err
			}
			in.AccountID = acct.ID
			c, err := db.CreateCluster(ctx(cmd), in)
			if err != nil {
				return err
			}
			if a.jsonOut {
				return a.printJSON(c)
			}
			a.printf("cluster %s created in account %s: address %s (%s)", clean(c.Name), clean(c.Account), c.Address, c.AddressKind)
			if c.AddressKind == store.AddressIP {
				a.printf(", holds one proxy server\n")
			} else {
				a.printf(", holds any number of proxy servers\n")
			}
			a.printf("next: outpost proxy deploy --cluster %s --manual\n", shellQuote(c.Name))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&in.Name, "name", "", "cluster name, unique in the account (fixed after creation)")
	f.StringVar(&in.Address, "address", "", "IP address (one proxy server) or domain name (several) agents dial (fixed after creation)")
	f.StringVar(&in.Region, "region", "", "region label")
	f.StringVar(&in.Remark, "remark", "", "remarks")
	f.StringVar(&account, "account", "", "account (default: the only account)")
	cmd.MarkFlagRequired("name")
	cmd.MarkFlagRequired("address")
	return cmd
}

func newClusterListCmd(a *app) *cobra.Command {
	var account string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List clusters with status, proxy servers and agents",
		Args:  nargs(0, 0, ""),
		RunE: func(cmd *cobra.Command, _ []string) error {
			db, id, err := a.storeAccount(cmd, account)
			if err != nil {
				return err
			}
			cs, err := db.ListClusters(ctx(cmd), id)
			if err != nil {
				return err
			}
			if done, err := listed(a, cs, "no cluster yet: create one with 'outpost cluster create --name N --address A'"); done {
				return err
			}
			accounts := map[string]bool{}
			for _, c := range cs {
				accounts[c.Account] = true
			}
			head := []string{"NAME", "ADDRESS", "REGION", "STATUS", "PROXIES", "AGENTS", "MODE", "WARNINGS"}
			if len(accounts) > 1 {
				head = append([]string{"ACCOUNT"}, head...)
			}
			var rows [][]string
			for _, c := range cs {
				r := []string{c.Name, c.Address, orDash(c.Region), string(c.Status),
					fmt.Sprintf("%d/%d online", c.ProxiesOnline, c.Proxies),
					c.AgentsText(),
					string(c.Policy.Mode), fmt.Sprint(len(c.Warnings))}
				if len(accounts) > 1 {
					r = append([]string{c.Account}, r...)
				}
				rows = append(rows, r)
			}
			a.printTable(head, rows)
			return nil
		},
	}
	cmd.Flags().StringVar(&account, "account", "", "only this account's clusters (default: every account)")
	return cmd
}

func newClusterShowCmd(a *app) *cobra.Command {
	var account string
	cmd := &cobra.Command{
		Use:   "show NAME",
		Short: "Show a cluster: policy, status, proxy servers, agents and warnings",
		Args:  nargs(1, 1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			db, c, err := a.storeCluster(cmd, account, args[0])
			if err != nil {
				return err
			}
			ps, err := db.ListProxies(ctx(cmd), c.ID)
			if err != nil {
				return err
			}
			if a.jsonOut {
				return a.printJSON(struct {
					store.Cluster
					ProxyServers []store.Proxy `json:"proxy_servers"`
				}{c, nonNil(ps)})
			}
			kind := "IP address: at most one proxy server"
			if c.AddressKind == store.AddressDomain {
				kind = "domain name: any number of proxy servers"
			}
			a.printFields([][2]string{
				{"Cluster", c.Name},
				{"Account", c.Account},
				{"Address", c.Address + " (" + kind + ")"},
				{"Region", orDash(c.Region)},
				{"Remark", orDash(c.Remark)},
				{"Created", fmtTime(c.CreatedAt)},
				{"Status", fmt.Sprintf("%s (%d of %d proxy servers online)", c.Status, c.ProxiesOnline, c.Proxies)},
				{"Agents", fmt.Sprintf("%d bound, %d online, %d connected now", c.Agents, c.AgentsOnline, c.AgentsConnected)},
				{"Policy", c.Policy.Describe()},
			})
			a.printf("\nProxy servers:\n")
			if len(ps) == 0 {
				a.printf("  none yet: outpost proxy deploy --cluster %s --manual\n", shellQuote(c.Name))
			} else {
				a.printTableIndent("  ", proxyHead, proxyRows(ps))
			}
			if len(c.Warnings) > 0 {
				a.printf("\nWarnings:\n")
				for _, w := range c.Warnings {
					a.printf("  %s\n", clean(w.Text()))
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&account, "account", "", "account of the cluster")
	return cmd
}

func newClusterDeleteCmd(a *app) *cobra.Command {
	var account string
	cmd := &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a cluster that has no bound agents and no proxy servers",
		Args:  nargs(1, 1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			db, c, err := a.storeCluster(cmd, account, args[0])
			if err != nil {
				return err
			}
			if err := db.DeleteCluster(ctx(cmd), c.ID); err != nil {
				return err
			}
			if a.jsonOut {
				return a.printJSON(map[string]any{"deleted": "cluster", "id": c.ID, "name": c.Name, "account": c.Account})
			}
			a.printf("cluster %s deleted\n", clean(c.Name))
			return nil
		},
	}
	cmd.Flags().StringVar(&account, "account", "", "account of the cluster")
	return cmd
}

// clusterPolicy holds the flags of `cluster policy`.
type clusterPolicy struct {
	a                                                                       *app
	account, mode, bandwidth, frequency, cacheDir, cacheMax, link, upstream string
}

// changedFlags is what parse and apply need of a flag set.
type changedFlags interface{ Changed(name string) bool }

// policyLimits are the parsed values of the limit flags.
type policyLimits struct {
	mode                wire.Mode
	bw, freq, cmax, lnk int64
}

func newClusterPolicyCmd(a *app) *cobra.Command {
	r := &clusterPolicy{a: a}
	cmd := &cobra.Command{
		Use:   "policy NAME --mode forward|cache [flags]",
		Short: "Set a cluster's transmission policy (flags left out keep their value)",
		Long: `Set a cluster's transmission policy. The relays of the cluster apply it
without a restart.

forward (default): send data to the management centre (or --upstream) under
  a bandwidth limit (--bandwidth 2Mbit, 500KB/s or unlimited; a number needs
  its unit) and a frequency limit (--frequency requests per second, or
  unlimited).
cache: append data to a directory (--cache-dir, relative to the relay's data
  directory) capped at --cache-max (default and maximum 10GB); past the cap
  the oldest data is overwritten.

--link is the proxy host's link capacity (e.g. 100Mbit; 0 = unknown); with
it, limits that would take more than 60% of the link are reported as warnings.`,
		Args: nargs(1, 1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error { return r.Run(cmd, args[0]) },
	}
	f := cmd.Flags()
	f.StringVar(&r.mode, "mode", "", "forward or cache (default: keep the current mode)")
	f.StringVar(&r.bandwidth, "bandwidth", "", "forward: upstream bandwidth limit, e.g. 2Mbit, 500KB or unlimited")
	f.StringVar(&r.frequency, "frequency", "", "forward: upstream requests per second, or unlimited")
	f.StringVar(&r.upstream, "upstream", "", "forward: http(s) URL to send data to (default: the built-in collector)")
	f.StringVar(&r.cacheDir, "cache-dir", "", "cache: directory (default cache/NAME under the relay's data directory)")
	f.StringVar(&r.cacheMax, "cache-max", "", "cache: total cap, at most 10GB (default 10GB)")
	f.StringVar(&r.link, "link", "", "proxy host link capacity, e.g. 100Mbit, 0 = unknown (for the 60% warning)")
	f.StringVar(&r.account, "account", "", "account of the cluster")
	return cmd
}

// Run sets the policy of cluster name from the flags given.
func (r *clusterPolicy) Run(cmd *cobra.Command, name string) error {
	a := r.a
	db, err := a.store()
	if err != nil {
		return err
	}
	f := cmd.Flags()
	changed := false
	for _, name := range []string{"mode", "bandwidth", "frequency", "upstream", "cache-dir", "cache-max", "link"} {
		changed = changed || f.Changed(name)
	}
	if !changed {
		return usageErrorf("nothing to change: give --mode and the limits to set (see 'outpost cluster policy --help')")
	}
	lim, err := r.parse(f)
	if err != nil {
		return err
	}
	c, err := a.resolveCluster(cmd, r.account, name)
	if err != nil {
		return err
	}
	p, err := r.apply(f, c.Policy, lim)
	if err != nil {
		return err
	}
	c, err = db.SetPolicy(ctx(cmd), c.ID, p)
	if err != nil {
		return err
	}
	for _, w := range c.Warnings {
		a.notef("warning: %s", clean(w.Text()))
	}
	if a.jsonOut {
		return a.printJSON(c)
	}
	a.printf("cluster %s policy: %s\n", clean(c.Name), c.Policy.Describe())
	return nil
}

// parse reads every value before the store is touched: bad input is a
// usage error and changes nothing.
func (r *clusterPolicy) parse(f changedFlags) (policyLimits, error) {
	var lim policyLimits
	var err error
	if f.Changed("mode") {
		if lim.mode, err = wire.ParseMode(r.mode); err != nil {
			return lim, usageErrorf("invalid --%s", err) // invalid --mode "x": want ...
		}
	}
	if f.Changed("bandwidth") {
		if lim.bw, err = store.ParseBandwidth(r.bandwidth); err != nil {
			return lim, asUsage("bandwidth", err)
		}
	}
	if f.Changed("frequency") {
		if lim.freq, err = store.ParseFrequency(r.frequency); err != nil {
			return lim, asUsage("frequency", err)
		}
	}
	if f.Changed("cache-max") {
		if lim.cmax, err = store.ParseSize(r.cacheMax); err != nil {
			return lim, asUsage("cache-max", err)
		}
		if lim.cmax == 0 { // the policy's 0 means "default 10 GB": never from the operator
			return lim, usageErrorf("invalid --cache-max %s: cache-max must be more than 0 (at most 10GB; leave it out for the 10GB default)", r.cacheMax)
		}
	}
	if f.Changed("link") {
		if lim.lnk, err = store.ParseLink(r.link); err != nil {
			return lim, asUsage("link", err)
		}
	}
	return lim, nil
}

// apply is cur with the flags given; a flag of the other mode is refused.
func (r *clusterPolicy) apply(f changedFlags, cur store.Policy, lim policyLimits) (store.Policy, error) {
	p := cur
	if f.Changed("mode") {
		p.Mode = lim.mode
	}
	forwardOnly := []string{"bandwidth", "frequency", "upstream"}
	cacheOnly := []string{"cache-dir", "cache-max"}
	wrong := cacheOnly
	if p.Mode == wire.ModeCache {
		wrong = forwardOnly
	}
	for _, name := range wrong {
		if f.Changed(name) {
			return p, usageErrorf("--%s does not apply to %s mode", name, p.Mode)
		}
	}
	if lim.mode == wire.ModeCache && cur.Mode != wire.ModeCache {
		p.CacheDir, p.CacheMax = "", 0 // the defaults, unless given
	}
	if f.Changed("bandwidth") {
		p.BandwidthBps = lim.bw
	}
	if f.Changed("frequency") {
		p.FrequencyRPS = lim.freq
	}
	if f.Changed("upstream") {
		p.Upstream = r.upstream
	}
	if f.Changed("cache-dir") {
		p.CacheDir = r.cacheDir
	}
	if f.Changed("cache-max") {
		p.CacheMax = lim.cmax
	}
	if f.Changed("link") {
		p.LinkBps = lim.lnk
	}
	return p, nil
}

// shellQuote quotes s for a copy-pasteable command line when needed.
func shellQuote(s string) string {
	s = clean(s)
	if s != "" && !strings.ContainsAny(s, " \t'\"\\$`!*?[]{}()<>|&;#~") {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
