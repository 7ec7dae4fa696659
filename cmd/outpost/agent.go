package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"outpost/relay/wire"
	"outpost/store"
)

func init() { register("", newAgentCmd) }

func newAgentCmd(a *app) *cobra.Command {
	cmd := group("agent", "Bind, unbind, list, show, upgrade and uninstall agents")
	cmd.AddCommand(newAgentBindCmd(a), newAgentUnbindCmd(a), newAgentListCmd(a), newAgentShowCmd(a), newAgentUpgradeCmd(a), newAgentUninstallCmd(a))
	return cmd
}

func newAgentUnbindCmd(a *app) *cobra.Command {
	var cluster, account string
	var all bool
	cmd := &cobra.Command{
		Use:   "unbind --cluster N (HOST... | --all)",
		Short: "Return agents to direct connection (does not uninstall them)",
		Args:  nargs(0, -1, "HOST"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if all == (len(args) > 0) {
				return usageErrorf("give HOST... or --all (not both)")
			}
			db, c, err := a.storeCluster(cmd, account, cluster)
			if err != nil {
				return err
			}
			ids, err := db.Unbind(ctx(cmd), c.ID, args, all)
			if err != nil {
				return err
			}
			if a.jsonOut {
				return a.printJSON(map[string]any{"cluster": c.Name, "unbound": len(ids), "agents": nonNil(ids)})
			}
			a.printf("%d agent(s) unbound from cluster %s: they connect directly again\n", len(ids), clean(c.Name))
			return nil
		},
	}
	cmd.Flags().StringVar(&cluster, "cluster", "", "cluster to unbind from")
	cmd.Flags().BoolVar(&all, "all", false, "unbind every agent of the cluster")
	cmd.Flags().StringVar(&account, "account", "", "account of the cluster")
	cmd.MarkFlagRequired("cluster")
	return cmd
}

// agentList holds the flags of `agent list`.
type agentList struct {
	a                *app
	cluster, account string
	status, os       string // --status and --os, read into f.Status and f.OS
	direct           bool
	f                store.AgentFilter
}

func newAgentListCmd(a *app) *cobra.Command {
	r := &agentList{a: a}
	cmd := &cobra.Command{
		Use:   "list [--cluster N | --direct] [--status online|offline|uninstalled] [--query Q] [--sort S] [--limit N] [--offset N]",
		Short: "List agents (assets), one page at a time",
		Args:  nargs(0, 0, ""),
		RunE:  func(cmd *cobra.Command, _ []string) error { return r.Run(cmd) },
	}
	fl := cmd.Flags()
	fl.StringVar(&r.cluster, "cluster", "", "only agents bound to this cluster")
	fl.BoolVar(&r.direct, "direct", false, "only agents that connect directly (no cluster)")
	fl.StringVar(&r.status, "status", "", "online, offline (uninstalled ones included) or uninstalled")
	fl.StringVar(&r.f.Query, "query", "", "substring of host name or IP, or an agent id")
	fl.StringVar(&r.os, "os", "", "only this OS (linux, windows)")
	fl.StringVar(&r.f.Group, "group", "", "only this asset group")
	fl.BoolVar(&r.f.Duplicate, "duplicate", false, "only agents flagged as a duplicate identity")
	fl.BoolVar(&r.f.AtRisk, "at-risk", false, "only agents with vulnerabilities, baseline risks or alerts")
	fl.StringVar(&r.f.Sort, "sort", "hostname", "hostname, last_checkin, enrolled, risk, cluster or os")
	fl.BoolVar(&r.f.Desc, "desc", false, "sort in descending order")
	fl.IntVar(&r.f.Limit, "limit", 50, "page size, at most 1000")
	fl.IntVar(&r.f.Offset, "offset", 0, "skip this many agents")
	fl.StringVar(&r.account, "account", "", "only this account's agents")
	return cmd
}

// Run lists one page of the agents the flags select.
func (r *agentList) Run(cmd *cobra.Command) error {
	a := r.a
	switch {
	case r.direct && r.cluster != "":
		return usageErrorf("give --cluster or --direct, not both")
	case r.f.Limit <= 0 || r.f.Limit > 1000:
		return usageErrorf("invalid --limit %d: want 1 to 1000", r.f.Limit)
	case r.f.Offset < 0:
		return usageErrorf("invalid --offset %d: must not be negative", r.f.Offset)
	}
	if r.status != "" {
		var err error
		if r.f.Status, err = store.ParseStatus(r.status); err != nil {
			return usageErrorf("invalid --%s", store.ErrorMessage(err)) // invalid --status "x": want ...
		}
	}
	if r.os != "" {
		var err error
		if r.f.OS, err = wire.ParseOS(r.os); err != nil {
			return usageErrorf("invalid --%s", err) // invalid --os "x": want ...
		}
	}
	db, err := a.store()
	if err != nil {
		return err
	}
	if r.f.AccountID, err = a.accountID(cmd, r.account); err != nil {
		return err
	}
	if r.direct {
		r.f.ClusterID = -1
	} else if r.cluster != "" {
		c, err := a.resolveCluster(cmd, r.account, r.cluster)
		if err != nil {
			return err
		}
		r.f.ClusterID = c.ID
	}
	page, err := db.ListAgents(ctx(cmd), r.f)
	if store.ErrorCode(err) == store.EInvalid {
		return usageErrorf("%s", store.ErrorMessage(err)) // a bad --sort value
	} else if err != nil {
		return err
	}
	page.Agents = nonNil(page.Agents)
	if a.jsonOut {
		return a.printJSON(page)
	}
	if len(page.Agents) == 0 {
		if page.Total > 0 {
			a.notef("no agents at offset %d (%d match)", r.f.Offset, page.Total)
		} else {
			a.notef("no agents match")
		}
		return nil
	}
	r.print(page)
	return nil
}

// print shows a page as a table, with where it sits in the whole.
func (r *agentList) print(page store.AgentPage) {
	a := r.a
	var rows [][]string
	for _, g := range page.Agents {
		cl := g.Cluster
		if g.ClusterID == 0 {
			cl = "(direct)"
		}
		status := string(g.Status)
		if g.Duplicate {
			status += " DUPLICATE"
		}
		rows = append(rows, []string{g.Hostname, strings.Join(g.IPs, ","), string(g.OS), cl, status, g.ConnectedText(), string(g.SecurityStatus), string(g.RiskStatus),
			store.FormatAgo(time.Now(), g.LastCheckin), orDash(g.Version), g.ID})
	}
	a.printTable([]string{"HOST", "IP", "OS", "CLUSTER", "STATUS", "CONNECTED", "SECURITY", "RISK", "LAST CHECK-IN", "VERSION", "ID"}, rows)
	if shown := len(page.Agents); shown < page.Total {
		a.notef("showing %d-%d of %d agents (--limit, --offset)", r.f.Offset+1, r.f.Offset+shown, page.Total)
	}
}

func newAgentShowCmd(a *app) *cobra.Command {
	var account string
	cmd := &cobra.Command{
		Use:   "show HOST",
		Short: "Show one agent (agent id, host name or IP)",
		Args:  nargs(1, 1, "HOST"),
		RunE: func(cmd *cobra.Command, args []string) error {
			db, id, err := a.storeAccount(cmd, account)
			if err != nil {
				return err
			}
			g, err := db.FindAgent(ctx(cmd), id, args[0])
			if err != nil {
				return err
			}
			if a.jsonOut {
				return a.printJSON(g)
			}
			fields := agentFields(g)
			// The server-side reasons, shared with the dashboard's agent view.
			d, err := db.DiagnoseAgent(ctx(cmd), g.ID)
			if err != nil {
				return err
			}
			why := "Why offline"
			if g.Online {
				why = "Not connected"
			}
			for _, r := range d.Reasons {
				fields = append(fields, [2]string{why, r})
				why = ""
			}
			if d.Next != "" {
				fields = append(fields, [2]string{"Next", d.Next})
			}
			a.printFields(fields)
			return nil
		},
	}
	cmd.Flags().StringVar(&account, "account", "", "account of the agent")
	return cmd
}

// agentFields are the lines of `agent show` before the server-side
// reasons.
func agentFields(g store.Agent) [][2]string {
	via := g.ViaText()
	connected := "no"
	if g.Connected {
		connected = "yes, via " + via
	} else if g.Status != store.StatusUninstalled {
		connected = "no: last check-in " + store.FormatAgo(time.Now(), g.LastCheckin) + " via " + via
	}
	fields := [][2]string{
		{"Host", g.Hostname},
		{"ID", g.ID},
		{"IPs", orDash(strings.Join(g.IPs, ", "))},
		{"OS", g.SystemText()},
		{"Provider", orDash(g.Provider)},
		{"Region", orDash(g.Region)},
		{"Group", orDash(g.Group)},
		{"Tags", orDash(strings.Join(g.Tags, ", "))},
		{"Version", orDash(g.Version)},
		{"Upgrade", agentUpgradeText(g)},
		{"Cluster", g.ClusterText()},
		{"Status", fmt.Sprintf("%s, %s, %s", g.Status, g.SecurityStatus, g.RiskStatus)},
		{"Connected", connected},
		{"Enrolled", fmtTime(g.EnrolledAt)},
		{"Last check-in", fmtTime(g.LastCheckin) + " (" + store.FormatAgo(time.Now(), g.LastCheckin) + ")"},
		{"Last inventory", fmtTime(g.LastInventory)},
		{"Inventory", fmt.Sprintf("%d processes, %d listening ports, %d root / %d accounts", g.Processes, g.Ports, g.RootAccounts, g.Accounts)},
		{"Risks", fmt.Sprintf("%d vulnerabilities, %d baseline risks, %d alerts", g.Vulns, g.BaselineRisks, g.Alerts)},
		{"Load", fmt.Sprintf("cpu %.0f%%, mem %.0f%%", g.CPU, g.Mem)},
	}
	if u := g.UninstallText(fmtTime); u != "" {
		fields = append(fields, [2]string{"Uninstall", u})
	}
	if g.Duplicate {
		fields = append(fields, [2]string{"DUPLICATE", "this identity is used by two machines: " + g.DuplicateFix})
	}
	return fields
}

func newAgentUninstallCmd(a *app) *cobra.Command {
	var account string
	cmd := &cobra.Command{
		Use:   "uninstall HOST...",
		Short: "Send the uninstall command to online agents",
		Long: `Send the uninstall command. Only an online agent can receive it; every
host is checked first and nothing is sent if one cannot receive it. The asset
turns uninstalled and Unprotected as soon as its agent acknowledges the
command; an agent never heard of again after the request counts as
uninstalled once the grace period has passed (settings: uninstall_grace).`,
		Args: nargs(1, -1, "HOST"),
		RunE: func(cmd *cobra.Command, args []string) error {
			db, id, err := a.storeAccount(cmd, account)
			if err != nil {
				return err
			}
			ids, err := db.Uninstall(ctx(cmd), id, args)
			if err != nil {
				return err
			}
			if a.jsonOut {
				return a.printJSON(map[string]any{"uninstall_queued": len(ids), "agents": nonNil(ids)})
			}
			a.printf("uninstall command queued for %d agent(s); each turns Unprotected when it acknowledges it (at the latest after the grace period, %s, without contact); check: outpost agent show HOST\n",
				len(ids), store.FormatDuration(db.Settings().UninstallGrace))
			return nil
		},
	}
	cmd.Flags().StringVar(&account, "account", "", "account of the agents")
	return cmd
}

// agentUpgradeText is the agent's latest upgrade, with its state and
// when it last changed: "to 1.2.0: downloading (updated 5s ago)".
func agentUpgradeText(g store.Agent) string {
	if g.Upgrade == nil {
		return "-"
	}
	return store.UpgradeText(g.Upgrade) + " (command " + fmt.Sprint(g.Upgrade.ID) + ", updated " + store.FormatAgo(time.Now(), g.Upgrade.UpdatedAt) + ")"
}
