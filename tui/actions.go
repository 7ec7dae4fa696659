package tui

import (
	"context"
	"fmt"
	"strings"

	tea "github.com/charmbracelet/bubbletea"

	"outpost/relay/wire"
	"outpost/store"
)

// Actions on clusters and proxy servers. Each goes through the same store
// method the command line calls; a refusal is the store's message in the
// flash line (and in the form), and changes nothing. Every action also
// refuses in --readonly mode, although its key is not even bound there.

// readOnly returns the refusal of a change in --readonly mode.
func readOnly(c *Common) tea.Cmd {
	if c.ReadOnly {
		return func() tea.Msg {
			return FlashMsg{Text: "read-only dashboard: nothing can be changed (started with --readonly)", Err: true}
		}
	}
	return nil
}

// readOnlyErr is a form's refusal to submit on a read-only dashboard.
func readOnlyErr(c *Common) error {
	if c.ReadOnly {
		return store.Errorf(store.EForbidden, "read-only dashboard: nothing can be changed")
	}
	return nil
}

// ---------------------------------------------------------------------------
// Create a cluster

// createClusterForm opens the create form; with several accounts and no
// --account it first loads them for a choice field.
func createClusterForm(c *Common) tea.Cmd {
	if cmd := readOnly(c); cmd != nil {
		return cmd
	}
	if c.Account.ID != 0 {
		return OpenDialog(newCreateClusterForm(c, nil))
	}
	return c.Call(func(ctx context.Context, b Backend) tea.Msg {
		as, err := b.ListAccounts(ctx)
		if err != nil {
			return FlashMsg{Text: errText(err), Err: true}
		}
		if len(as) == 0 {
			return FlashMsg{Text: "no account yet: create one with 'outpost account create NAME'", Err: true}
		}
		return OpenDialogMsg{newCreateClusterForm(c, as)}
	})
}

func newCreateClusterForm(c *Common, accounts []store.Account) *Form {
	fields := []Field{
		{Key: "name", Label: "Name", Hint: "unique in the account; cannot be changed later"},
		{Key: "address", Label: "Address", Placeholder: "IP address or domain name", Hint: "agents dial it; cannot be changed later"},
		{Key: "region", Label: "Region"},
		{Key: "remark", Label: "Remark"},
	}
	if accounts != nil {
		var names []string
		for _, a := range accounts {
			names = append(names, a.Name)
		}
		fields = append([]Field{{Key: "account", Label: "Account", Kind: FieldChoice, Choices: names, Value: names[0]}}, fields...)
	}
	f := NewForm(c, "Create a cluster", fields...)
	f.Note = "The name and the address cannot be changed after creation. An IP address holds one proxy server; a domain name holds any number."
	f.Live = func(v Values) []string {
		if v["address"] == "" {
			return nil
		}
		kind, err := store.ClassifyAddress(v["address"])
		if err != nil {
			return []string{errText(err)}
		}
		if kind == store.AddressIP {
			return []string{"IP address: this cluster will hold one proxy server"}
		}
		return []string{"domain name: this cluster can hold any number of proxy servers"}
	}
	f.Submit = func(v Values) (tea.Cmd, error) {
		in := store.ClusterInput{AccountID: c.Account.ID, Name: v["name"], Address: v["address"], Region: v["region"], Remark: v["remark"]}
		acctName := v["account"]
		return c.Call(func(ctx context.Context, b Backend) tea.Msg {
			if in.AccountID == 0 {
				a, err := b.FindAccount(ctx, acctName)
				if err != nil {
					return f.Result(err, "", nil)
				}
				in.AccountID = a.ID
			}
			cl, err := b.CreateCluster(ctx, in)
			if err != nil {
				return f.Result(err, "", nil)
			}
			next := "next: open it (enter) and deploy a proxy server (p)"
			return f.Result(nil, fmt.Sprintf("cluster %s created: %s (%s); %s", cl.Name, cl.Address, kindText(cl), next), nil)
		}), nil
	}
	return f
}

// ---------------------------------------------------------------------------
// Proxy settings (transmission policy)

const (
	unlimited = "unlimited"
	unknown   = "unknown"
)

// policyValues parses the form into a policy; rules stay in the store
// (ParseBandwidth, NormalizePolicy), the form only reads text.
func policyValues(v Values, base store.Policy) (store.Policy, error) {
	p := base
	p.Mode = wire.Mode(v["mode"]) // a choice field; NormalizePolicy checks it
	var err error
	if p.Mode == wire.ModeForward {
		if p.BandwidthBps, err = store.ParseBandwidth(v["bandwidth"]); err != nil {
			return p, err
		}
		if p.FrequencyRPS, err = store.ParseFrequency(v["frequency"]); err != nil {
			return p, err
		}
		p.Upstream = v["upstream"]
	} else {
		p.CacheDir = v["cache_dir"]
		if s := v["cache_max"]; s != "" {
			if p.CacheMax, err = store.ParseSize(s); err != nil {
				return p, err
			}
		} else {
			p.CacheMax = 0
		}
	}
	link := v["link"]
	if strings.EqualFold(link, unknown) || link == "" {
		p.LinkBps = 0
	} else {
		bps, err := store.ParseBandwidth(link)
		if err != nil {
			return p, store.Errorf(store.EInvalid, "link: %s", errText(err))
		}
		p.LinkBps = bps * 8
	}
	return p, nil
}

// policyForm edits a cluster's policy; the 60 % and capacity warnings are
// recomputed (store.Warnings) as the values change.
func policyForm(c *Common, cl store.Cluster) Dialog {
	p := cl.Policy
	bw, freq := unlimited, unlimited
	if p.BandwidthBps > 0 {
		bw = store.FormatBandwidth(p.BandwidthBps)
	}
	if p.FrequencyRPS > 0 {
		freq = fmt.Sprint(p.FrequencyRPS)
	}
	cmax := "10 GB"
	if p.CacheMax > 0 {
		cmax = store.FormatBytes(p.CacheMax)
	}
	isCache := func(v Values) bool { return wire.Mode(v["mode"]) == wire.ModeCache }
	isForward := func(v Values) bool { return wire.Mode(v["mode"]) != wire.ModeCache }
	f := NewForm(c, "Proxy settings of cluster "+Clean(cl.Name),
		Field{Key: "mode", Label: "Mode", Kind: FieldChoice, Choices: []string{string(wire.ModeForward), string(wire.ModeCache)}, Value: orForward(p.Mode),
			Hint: "forward: send to the management centre; cache: keep on the proxy host"},
		Field{Key: "bandwidth", Label: "Bandwidth limit", Value: bw, Hidden: isCache, Hint: "e.g. 2Mbit, 500KB or unlimited"},
		Field{Key: "frequency", Label: "Frequency limit", Value: freq, Hidden: isCache, Hint: "requests per second, or unlimited"},
		Field{Key: "upstream", Label: "Upstream URL", Value: p.Upstream, Hidden: isCache, Placeholder: "built-in collector"},
		Field{Key: "cache_dir", Label: "Cache directory", Value: p.CacheDir, Hidden: isForward, Placeholder: "cache/" + cl.Name},
		Field{Key: "cache_max", Label: "Cache cap", Value: cmax, Hidden: isForward, Hint: "at most 10 GB; the oldest data is overwritten past it"},
		Field{Key: "link", Label: "Link capacity", Value: store.FormatLink(p.LinkBps), Hint: "the proxy host's link, e.g. 100Mbit (for the 60 % rule)"},
	)
	f.Note = fmt.Sprintf("%d agents bound, %d proxy servers online; the relays apply the change without a restart.", cl.Agents, cl.ProxiesOnline)
	f.Live = func(v Values) []string {
		np, err := policyValues(v, p)
		if err == nil {
			np, err = store.NormalizePolicy(np, cl.Name)
		}
		if err != nil {
			return []string{"invalid: " + errText(err)}
		}
		ws := store.Warnings(np, cl.Agents, cl.Proxies, cl.ProxiesOnline)
		if len(ws) == 0 {
			return []string{"no warnings: " + np.Describe()}
		}
		out := make([]string, len(ws))
		for i, w := range ws {
			out[i] = "warning: " + w.Text()
		}
		return out
	}
	f.Submit = func(v Values) (tea.Cmd, error) {
		if err := readOnlyErr(c); err != nil {
			return nil, err
		}
		np, err := policyValues(v, p)
		if err != nil {
			return nil, err
		}
		id := cl.ID
		return c.Call(func(ctx context.Context, b Backend) tea.Msg {
			got, err := b.SetPolicy(ctx, id, np)
			if err != nil {
				return f.Result(err, "", nil)
			}
			text := fmt.Sprintf("cluster %s policy: %s", got.Name, got.Policy.Describe())
			if n := len(got.Warnings); n > 0 {
				text += fmt.Sprintf(" (%d warning(s))", n)
			}
			return f.Result(nil, text, nil)
		}), nil
	}
	return f
}

func orForward(mode wire.Mode) string {
	if mode == "" {
		return string(wire.ModeForward)
	}
	return string(mode)
}

// ---------------------------------------------------------------------------
// Upgrade and delete a proxy server

func upgradeProxyConfirm(c *Common, view int, p store.Proxy) tea.Cmd {
	if cmd := readOnly(c); cmd != nil {
		return cmd
	}
	do := c.Call(func(ctx context.Context, b Backend) tea.Msg {
		to, err := b.UpgradeProxy(ctx, p.ID)
		return clusterActionMsg{view: view, action: "upgrade", err: err,
			text: fmt.Sprintf("proxy server %d (%s): upgrade %s -> %s queued; it restarts on the new version", p.ID, p.Hostname, p.Version, to)}
	})
	if !p.Upgrade {
		// Not upgradable (offline or up to date): the store says why and
		// changes nothing; no question to ask.
		return do
	}
	return OpenDialog(NewConfirm(c, fmt.Sprintf("Upgrade proxy server %d?", p.ID),
		fmt.Sprintf("%s (%s) runs %s; it downloads the latest release, checks it and restarts on it.", Clean(p.Hostname), p.IP, p.Version),
		"Upgrade", do))
}

func deleteProxyConfirm(c *Common, view int, p store.Proxy) tea.Cmd {
	if cmd := readOnly(c); cmd != nil {
		return cmd
	}
	body := fmt.Sprintf("Proxy server %d %s (%s) of cluster %s will be removed; agents that used it move to the cluster's other proxy servers.",
		p.ID, Clean(p.Hostname), p.IP, Clean(p.Cluster))
	if p.Status == store.StatusOnline {
		body += "\n\nIt is online: only an offline proxy server can be deleted. Stop its relay process on " + Clean(p.Hostname) +
			" first (kill the outpost relay PID); it shows offline within the proxy offline time."
	}
	return OpenDialog(NewConfirm(c, fmt.Sprintf("Delete proxy server %d?", p.ID), body, "Delete",
		c.Call(func(ctx context.Context, b Backend) tea.Msg {
			err := b.DeleteProxy(ctx, p.ID)
			return clusterActionMsg{view: view, action: "delete-proxy", err: err,
				text: fmt.Sprintf("proxy server %d (%s) deleted from cluster %s", p.ID, p.Hostname, p.Cluster)}
		})))
}

// ---------------------------------------------------------------------------
// Delete a cluster, guided through the deletion order

func deleteClusterConfirm(c *Common, view int, cl store.Cluster) tea.Cmd {
	if cmd := readOnly(c); cmd != nil {
		return cmd
	}
	body := fmt.Sprintf("Cluster %s (%s) will be deleted. The store refuses while agents are bound to it or it has proxy servers; "+
		"the dashboard then shows what is left and offers the next step.", Clean(cl.Name), cl.Address)
	return OpenDialog(NewConfirm(c, "Delete cluster "+Clean(cl.Name)+"?", body, "Delete", deleteClusterCmd(c, view, cl)))
}

func deleteClusterCmd(c *Common, view int, cl store.Cluster) tea.Cmd {
	return c.Call(func(ctx context.Context, b Backend) tea.Msg {
		err := b.DeleteCluster(ctx, cl.ID)
		return clusterActionMsg{view: view, action: "delete", cluster: cl, err: err, text: "cluster " + cl.Name + " deleted"}
	})
}

// guideMsg carries what is left in a cluster that could not be deleted.
type guideMsg struct {
	view    int
	cluster store.Cluster
	proxies []store.Proxy
	refusal string
	err     error
}

func loadGuide(c *Common, view int, id int64, refusal string) tea.Cmd {
	return c.Call(func(ctx context.Context, b Backend) tea.Msg {
		cl, err := b.GetCluster(ctx, id)
		if err != nil {
			return guideMsg{view: view, err: err}
		}
		ps, err := b.ListProxies(ctx, id)
		return guideMsg{view: view, cluster: cl, proxies: ps, refusal: refusal, err: err}
	})
}

// guideDialog shows what is left and offers the next step of the order:
// unbind all agents, then delete the offline proxy servers, then the
// cluster. Cancel has the focus.
func guideDialog(c *Common, m guideMsg) Dialog {
	cl := m.cluster
	var online, offline []store.Proxy
	for _, p := range m.proxies {
		if p.Status == store.StatusOnline {
			online = append(online, p)
		} else {
			offline = append(offline, p)
		}
	}
	var b strings.Builder
	if m.refusal != "" {
		b.WriteString(m.refusal + "\n\n")
	}
	fmt.Fprintf(&b, "Left: %d bound agent(s); %d proxy server(s), %d online.\n", cl.Agents, len(m.proxies), len(online))
	b.WriteString("Order: 1 unbind all agents (they stay installed, connect directly) -> 2 delete the offline proxy servers -> 3 delete the cluster.\n")
	view := m.view
	var next Button
	switch {
	case cl.Agents > 0:
		b.WriteString(fmt.Sprintf("\nNext: unbind the %d agent(s).", cl.Agents))
		next = Button{Label: fmt.Sprintf("Unbind all %d agents", cl.Agents), Cmd: c.Call(func(ctx context.Context, bk Backend) tea.Msg {
			ids, err := bk.Unbind(ctx, cl.ID, nil, true)
			return clusterActionMsg{view: view, action: "unbind-all", cluster: cl, err: err,
				text: fmt.Sprintf("%d agent(s) unbound from %s: they stay installed and connect directly", len(ids), cl.Name)}
		})}
	case len(offline) > 0:
		b.WriteString(fmt.Sprintf("\nNext: delete the %d offline proxy server(s).", len(offline)))
		next = Button{Label: fmt.Sprintf("Delete %d offline proxy servers", len(offline)), Cmd: c.Call(func(ctx context.Context, bk Backend) tea.Msg {
			n := 0
			for _, p := range offline {
				if err := bk.DeleteProxy(ctx, p.ID); err != nil {
					return clusterActionMsg{view: view, action: "delete-proxies", cluster: cl, err: err}
				}
				n++
			}
			return clusterActionMsg{view: view, action: "delete-proxies", cluster: cl,
				text: fmt.Sprintf("%d offline proxy server(s) of %s deleted", n, cl.Name)}
		})}
	case len(online) > 0:
		var hosts []string
		for _, p := range online {
			hosts = append(hosts, fmt.Sprintf("%d %s", p.ID, Clean(p.Hostname)))
		}
		b.WriteString("\nNext: stop the relay process on each online proxy server (" + strings.Join(hosts, ", ") +
			"); once offline, delete it here (ctrl+d on the cluster again).")
	default:
		b.WriteString("\nNext: the cluster is empty; delete it.")
		next = Button{Label: "Delete cluster " + Clean(cl.Name), Cmd: deleteClusterCmd(c, view, cl)}
	}
	if next.Label == "" {
		return NewChoice(c, "Cluster "+Clean(cl.Name)+" cannot be deleted yet", b.String(), Button{Label: "Close"})
	}
	return NewChoice(c, "Cluster "+Clean(cl.Name)+" cannot be deleted yet", b.String(), Button{Label: "Cancel"}, next)
}

// handleClusterAction turns an action result into the flash line and, for
// the deletion order, the next step.
func handleClusterAction(c *Common, view int, m clusterActionMsg) tea.Cmd {
	switch m.action {
	case "delete":
		if m.err != nil {
			if store.ErrorCode(m.err) == store.EConflict {
				return tea.Batch(FlashError(m.err), loadGuide(c, view, m.cluster.ID, errText(m.err)))
			}
			return FlashError(m.err)
		}
		return tea.Batch(Flash(m.text), RefreshNow())
	case "unbind-all", "delete-proxies":
		if m.err != nil {
			return tea.Batch(FlashError(m.err), RefreshNow())
		}
		return tea.Batch(Flash(m.text), RefreshNow(), loadGuide(c, view, m.cluster.ID, ""))
	}
	if m.err != nil {
		return FlashError(m.err)
	}
	return tea.Batch(Flash(m.text), RefreshNow())
}
