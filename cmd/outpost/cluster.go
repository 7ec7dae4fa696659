package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

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
			if c.AddressKind == "ip" {
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
			if a.jsonOut {
				return a.printJSON(nonNil(cs))
			}
			if len(cs) == 0 {
				a.notef("no cluster yet: create one with 'outpost cluster create --name N --address A'")
				return nil
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
				r := []string{c.Name, c.Address, orDash(c.Region), c.Status,
					fmt.Sprintf("%d/%d online", c.ProxiesOnline, c.Proxies),
					c.AgentsText(),
					c.Policy.Mode, fmt.Sprint(len(c.Warnings))}
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
			db, err := a.store()
			if err != nil {
				return err
			}
			c, err := a.resolveCluster(cmd, account, args[0])
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
			if c.AddressKind == "domain" {
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
			db, err := a.store()
			if err != nil {
				return err
			}
			c, err := a.resolveCluster(cmd, account, args[0])
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

func newClusterPolicyCmd(a *app) *cobra.Command {
	var account, mode, bandwidth, frequency, cacheDir, cacheMax, link, upstream string
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
		RunE: func(cmd *cobra.Command, args []string) error {
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
			// Parse every value before touching the store: bad input is a
			// usage error and changes nothing.
			if f.Changed("mode") && mode != store.ModeForward && mode != store.ModeCache {
				return usageErrorf("invalid --mode %q: want forward or cache", mode)
			}
			var bw, freq, cmax, lnk int64
			if f.Changed("bandwidth") {
				if bw, err = store.ParseBandwidth(bandwidth); err != nil {
					return asUsage("bandwidth", err)
				}
			}
			if f.Changed("frequency") {
				if freq, err = store.ParseFrequency(frequency); err != nil {
					return asUsage("frequency", err)
				}
			}
			if f.Changed("cache-max") {
				if cmax, err = store.ParseSize(cacheMax); err != nil {
					return asUsage("cache-max", err)
				}
				if cmax == 0 { // the policy's 0 means "default 10 GB": never from the operator
					return usageErrorf("invalid --cache-max %s: cache-max must be more than 0 (at most 10GB; leave it out for the 10GB default)", cacheMax)
				}
			}
			if f.Changed("link") {
				if lnk, err = store.ParseLink(link); err != nil {
					return asUsage("link", err)
				}
			}
			c, err := a.resolveCluster(cmd, account, args[0])
			if err != nil {
				return err
			}
			p := c.Policy
			if f.Changed("mode") {
				p.Mode = mode
			}
			forwardOnly := []string{"bandwidth", "frequency", "upstream"}
			cacheOnly := []string{"cache-dir", "cache-max"}
			wrong := cacheOnly
			if p.Mode == store.ModeCache {
				wrong = forwardOnly
			}
			for _, name := range wrong {
				if f.Changed(name) {
					return usageErrorf("--%s does not apply to %s mode", name, p.Mode)
				}
			}
			if mode == store.ModeCache && c.Policy.Mode != store.ModeCache {
				p.CacheDir, p.CacheMax = "", 0 // the defaults, unless given
			}
			if f.Changed("bandwidth") {
				p.BandwidthBps = bw
			}
			if f.Changed("frequency") {
				p.FrequencyRPS = freq
			}
			if f.Changed("upstream") {
				p.Upstream = upstream
			}
			if f.Changed("cache-dir") {
				p.CacheDir = cacheDir
			}
			if f.Changed("cache-max") {
				p.CacheMax = cmax
			}
			if f.Changed("link") {
				p.LinkBps = lnk
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
		},
	}
	f := cmd.Flags()
	f.StringVar(&mode, "mode", "", "forward or cache (default: keep the current mode)")
	f.StringVar(&bandwidth, "bandwidth", "", "forward: upstream bandwidth limit, e.g. 2Mbit, 500KB or unlimited")
	f.StringVar(&frequency, "frequency", "", "forward: upstream requests per second, or unlimited")
	f.StringVar(&upstream, "upstream", "", "forward: http(s) URL to send data to (default: the built-in collector)")
	f.StringVar(&cacheDir, "cache-dir", "", "cache: directory (default cache/NAME under the relay's data directory)")
	f.StringVar(&cacheMax, "cache-max", "", "cache: total cap, at most 10GB (default 10GB)")
	f.StringVar(&link, "link", "", "proxy host link capacity, e.g. 100Mbit, 0 = unknown (for the 60% warning)")
	f.StringVar(&account, "account", "", "account of the cluster")
	return cmd
}

// shellQuote quotes s for a copy-pasteable command line when needed.
func shellQuote(s string) string {
	s = clean(s)
	if s != "" && !strings.ContainsAny(s, " \t'\"\\$`!*?[]{}()<>|&;#~") {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
