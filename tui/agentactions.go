package tui

import (
	"context"
	"fmt"
	"slices"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"outpost/store"
)

// Actions on agents: bind (paced, see bindjob.go), unbind and uninstall.
// Each goes through the store method the command line calls and shows its
// refusal unchanged; each asks first with Cancel focused.

// unmarkMsg unmarks ids in a view (handed to a bind).
type unmarkMsg struct {
	view int
	ids  []string
}

// refuseTargets is why an action on the marked agents cannot start (a
// read-only dashboard, no agent marked), nil when it can.
func refuseTargets(c *Common, ids []string) tea.Cmd {
	if cmd := readOnly(c); cmd != nil {
		return cmd
	}
	if len(ids) == 0 {
		return FlashError(store.Errorf(store.EInvalid, "no agent selected: mark agents with space (V range, ctrl+a all in filter)"))
	}
	return nil
}

// bindForm asks for the cluster, then confirms, then starts the paced bind.
func bindForm(c *Common, view int, ids []string) tea.Cmd {
	if cmd := refuseTargets(c, ids); cmd != nil {
		return cmd
	}
	if c.Jobs.Binding() {
		return FlashError(store.Errorf(store.EConflict, "a bind is already running: wait for it or stop it (ctrl+x)"))
	}
	ids = slices.Clone(ids)
	acct := c.Account.ID
	return c.Call(func(ctx context.Context, b Backend) tea.Msg {
		cs, err := b.ListClusters(ctx, acct)
		if err != nil {
			return FlashMsg{Text: errText(err), Err: true}
		}
		if len(cs) == 0 {
			return FlashMsg{Text: "no cluster yet: create one first (:clusters, then n)", Err: true}
		}
		return OpenDialogMsg{newBindForm(c, view, cs, ids, b.Settings().BindBatchGap)}
	})
}

func clusterLabel(c *Common, cl store.Cluster) string {
	if c.Account.ID == 0 {
		return cl.Name + " (" + cl.Account + ")"
	}
	return cl.Name
}

func newBindForm(c *Common, view int, cs []store.Cluster, ids []string, gap time.Duration) *Form {
	byLabel := map[string]store.Cluster{}
	var labels []string
	for _, cl := range cs {
		l := clusterLabel(c, cl)
		byLabel[l] = cl
		labels = append(labels, l)
	}
	n, nb := len(ids), batches(len(ids))
	f := NewForm(c, fmt.Sprintf("Bind %d agent(s) to a cluster", n),
		Field{Key: "cluster", Label: "Cluster", Kind: FieldChoice, Choices: labels, Value: labels[0], Hint: "←/→ to choose"})
	f.Note = fmt.Sprintf("%d agent(s) in %d batch(es) of at most %d, one batch per bind gap (%s). The progress shows on the top line and survives switching views; ctrl+x stops between batches.",
		n, nb, store.BindBatchMax, store.FormatDuration(gap))
	f.Live = func(v Values) []string {
		cl := byLabel[v["cluster"]]
		line := fmt.Sprintf("%s: %d proxy server(s), %d online; %d agent(s) bound now", cl.Address, cl.Proxies, cl.ProxiesOnline, cl.Agents)
		if cl.ProxiesOnline == 0 {
			line = "warning: " + line + ": bound agents cannot connect until a proxy server is online"
		}
		return []string{line}
	}
	f.Submit = func(v Values) (tea.Cmd, error) {
		cl, ok := byLabel[v["cluster"]]
		if !ok {
			return nil, store.Errorf(store.EInvalid, "choose a cluster")
		}
		body := fmt.Sprintf("%d agent(s) will connect through cluster %s (%s) from their next check-in: %d batch(es) of at most %d, %s apart",
			n, Clean(cl.Name), cl.Address, nb, store.BindBatchMax, store.FormatDuration(gap))
		if nb > 1 {
			body += fmt.Sprintf(", about %s in all", store.FormatDuration(gap*time.Duration(nb-1)))
		}
		body += "."
		// The marks go to the job: the view unmarks them.
		confirm := NewConfirm(c, fmt.Sprintf("Bind %d agent(s) to %s?", n, Clean(cl.Name)), body, "Bind", tea.Batch(
			func() tea.Msg { return bindStartMsg{cluster: cl, ids: ids} },
			func() tea.Msg { return unmarkMsg{view: view, ids: ids} }))
		return func() tea.Msg { return f.Result(nil, "", OpenDialogMsg{confirm}) }, nil
	}
	return f
}

// unbindConfirm returns agents to direct connection (they stay installed).
func unbindConfirm(c *Common, view int, ids []string) tea.Cmd {
	if cmd := refuseTargets(c, ids); cmd != nil {
		return cmd
	}
	ids = slices.Clone(ids)
	body := fmt.Sprintf("%d agent(s) will leave their cluster and connect to the management host directly from their next check-in. "+
		"They stay installed: nothing is uninstalled.", len(ids))
	do := c.Call(func(ctx context.Context, b Backend) tea.Msg {
		byCluster := map[int64][]string{}
		var order []int64
		direct := 0
		for _, id := range ids {
			a, err := b.GetAgent(ctx, id)
			if err != nil {
				return agentsActionMsg{view: view, err: err}
			}
			if a.ClusterID == 0 {
				direct++
				continue
			}
			if _, ok := byCluster[a.ClusterID]; !ok {
				order = append(order, a.ClusterID)
			}
			byCluster[a.ClusterID] = append(byCluster[a.ClusterID], a.ID)
		}
		if len(order) == 0 {
			return agentsActionMsg{view: view, err: store.Errorf(store.EInvalid, "the %d agent(s) connect directly already: nothing to unbind", direct)}
		}
		var done []string
		for _, cid := range order {
			got, err := b.Unbind(ctx, cid, byCluster[cid], false)
			if err != nil {
				if len(done) > 0 {
					err = store.Errorf(store.ErrorCode(err), "%s (%d agent(s) of other clusters were unbound before it)", errText(err), len(done))
				}
				return agentsActionMsg{view: view, err: err, ids: done}
			}
			done = append(done, got...)
		}
		text := fmt.Sprintf("%d agent(s) unbound: they stay installed and connect directly", len(done))
		if direct > 0 {
			text += fmt.Sprintf("; %d were direct already", direct)
		}
		return agentsActionMsg{view: view, text: text, ids: ids}
	})
	return OpenDialog(NewConfirm(c, fmt.Sprintf("Unbind %d agent(s)?", len(ids)), body, "Unbind", do))
}

// uninstallConfirm sends the uninstall command; the store refuses the
// whole request when one agent cannot receive it (offline).
func uninstallConfirm(c *Common, view int, ids []string) tea.Cmd {
	if cmd := refuseTargets(c, ids); cmd != nil {
		return cmd
	}
	ids = slices.Clone(ids)
	grace := c.Backend.Settings().UninstallGrace
	body := fmt.Sprintf("The uninstall command goes to %d agent(s); the agent removes itself from the host. Only an online agent can receive it: "+
		"if one is offline, nothing is sent. Each asset turns uninstalled and Unprotected when its agent acknowledges, "+
		"at the latest after the grace period (%s) without contact.", len(ids), store.FormatDuration(grace))
	acct := c.Account.ID
	do := c.Call(func(ctx context.Context, b Backend) tea.Msg {
		got, err := b.Uninstall(ctx, acct, ids)
		if err != nil {
			return agentsActionMsg{view: view, err: err}
		}
		return agentsActionMsg{view: view, ids: ids, text: fmt.Sprintf("uninstall command queued for %d agent(s); each turns Unprotected when it acknowledges (at the latest after %s without contact)",
			len(got), store.FormatDuration(grace))}
	})
	return OpenDialog(NewConfirm(c, fmt.Sprintf("Uninstall the agent from %d host(s)?", len(ids)), body, "Uninstall", do))
}
