package tui

import (
	"context"
	"fmt"
	"strings"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"

	"outpost/store"
)

// ClusterView is one cluster: its address, status, policy and warnings,
// then two tabs, Proxy servers and Connected agents (the agents view with
// the cluster as filter).
type ClusterView struct {
	c       *Common
	id      int
	cluster store.Cluster
	err     error
	tabs    []View
	tab     int
	w, h    int
}

// clusterMsg carries the reloaded cluster.
type clusterMsg struct {
	view    int
	cluster store.Cluster
	err     error
}

// NewClusterView opens cluster cl (as last loaded; it reloads itself).
func NewClusterView(c *Common, cl store.Cluster) *ClusterView {
	return &ClusterView{c: c, id: c.NewID(), cluster: cl,
		tabs: []View{NewProxiesView(c, cl.ID), newAgentsView(c, cl.ID)}}
}

// Cluster is the cluster as last loaded.
func (v *ClusterView) Cluster() store.Cluster { return v.cluster }

// Tab is the active tab's view.
func (v *ClusterView) Tab() View { return v.tabs[v.tab] }

// Init implements tea.Model.
func (v *ClusterView) Init() tea.Cmd { return tea.Batch(v.load(), v.Tab().Init()) }

func (v *ClusterView) load() tea.Cmd {
	id, cid := v.id, v.cluster.ID
	return v.c.Call(func(ctx context.Context, b Backend) tea.Msg {
		cl, err := b.GetCluster(ctx, cid)
		return clusterMsg{view: id, cluster: cl, err: err}
	})
}

// Refresh implements View.
func (v *ClusterView) Refresh() tea.Cmd { return tea.Batch(v.load(), v.Tab().Refresh()) }

// Title implements View.
func (v *ClusterView) Title() string { return v.cluster.Name + " › " + v.Tab().Title() }

// Capturing implements View.
func (v *ClusterView) Capturing() bool { return v.Tab().Capturing() }

// Escape implements Escaper: the tab uses esc first (its filter).
func (v *ClusterView) Escape() (tea.Cmd, bool) {
	if e, ok := v.Tab().(Escaper); ok {
		return e.Escape()
	}
	return nil, false
}

// summary renders the lines above the tabs.
func (v *ClusterView) summary() []string {
	st := v.c.Styles
	cl := v.cluster
	w := v.w
	lines := []string{
		Truncate(Clean(fmt.Sprintf("%s  %s (%s)  region %s", cl.Name, cl.Address, kindText(cl), orDash(cl.Region))), w),
		Truncate(fmt.Sprintf("status %s: %d of %d proxy servers online; agents %d bound, %d online, %d connected now", cl.Status,
			cl.ProxiesOnline, cl.Proxies, cl.Agents, cl.AgentsOnline, cl.AgentsConnected), w),
		Truncate(Clean("policy: "+cl.Policy.Describe()), w),
	}
	lines[1] = toneStyle(st, statusTone(cl.Status)).Render(lines[1])
	if v.err != nil {
		lines = append(lines, st.Bad.Render(Truncate("error: "+Clean(errText(v.err)), w)))
	}
	ws := cl.Warnings
	if len(ws) > 3 {
		ws = ws[:3]
	}
	for _, x := range ws {
		lines = append(lines, st.Warn.Render(Truncate("warning: "+Clean(x.Text()), w)))
	}
	if len(cl.Warnings) == 0 {
		lines = append(lines, st.Muted.Render("no warnings"))
	}
	return lines
}

func (v *ClusterView) tabBar() string {
	st := v.c.Styles
	var parts []string
	for i, t := range v.tabs {
		label := t.Title()
		if i == 1 {
			// The tab lists every bound agent; the count says how many are
			// connected right now.
			label = fmt.Sprintf("%s (%d now, %d bound)", label, v.cluster.AgentsConnected, v.cluster.Agents)
		} else {
			label = fmt.Sprintf("%s (%d)", label, v.cluster.Proxies)
		}
		if i == v.tab {
			parts = append(parts, st.TabOn.Render("["+label+"]"))
		} else {
			parts = append(parts, st.Tab.Render(" "+label+" "))
		}
	}
	return strings.Join(parts, " ")
}

func (v *ClusterView) headLines() int { return len(v.summary()) + 1 }

// SetSize implements View.
func (v *ClusterView) SetSize(w, h int) {
	v.w, v.h = w, h
	for _, t := range v.tabs {
		t.SetSize(w, max(h-v.headLines(), 2))
	}
}

// ShortHelp implements help.KeyMap.
func (v *ClusterView) ShortHelp() []key.Binding {
	k := v.c.Keys
	return append([]key.Binding{k.NextTab, withHelp(k.Edit, "settings")}, v.Tab().ShortHelp()...)
}

// FullHelp implements help.KeyMap.
func (v *ClusterView) FullHelp() [][]key.Binding {
	k := v.c.Keys
	return append([][]key.Binding{{withHelp(k.NextTab, "switch tab (proxy servers / connected agents)"),
		withHelp(k.Edit, "proxy settings (transmission policy)"), withHelp(k.Deploy, "deploy a proxy server")}}, v.Tab().FullHelp()...)
}

// Update implements tea.Model.
func (v *ClusterView) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case clusterMsg:
		if msg.view == v.id {
			v.err = msg.err
			if msg.err == nil {
				v.cluster = msg.cluster
			}
			v.SetSize(v.w, v.h)
		}
		return v, nil
	case tea.KeyMsg:
		k := v.c.Keys
		if !v.Tab().Capturing() {
			switch {
			case key.Matches(msg, k.NextTab):
				v.tab = (v.tab + 1) % len(v.tabs)
				return v, v.Tab().Init()
			case key.Matches(msg, k.Edit):
				return v, OpenDialog(policyForm(v.c, v.cluster))
			case key.Matches(msg, k.Deploy):
				return v, deployDialog(v.c, v.cluster)
			}
		}
		m, cmd := v.Tab().Update(msg)
		v.tabs[v.tab] = m.(View)
		return v, cmd
	}
	// Results and pages go to both tabs; each takes its own.
	var cmds []tea.Cmd
	for i, t := range v.tabs {
		m, cmd := t.Update(msg)
		v.tabs[i] = m.(View)
		cmds = append(cmds, cmd)
	}
	return v, tea.Batch(cmds...)
}

// View implements tea.Model.
func (v *ClusterView) View() string {
	return strings.Join(v.summary(), "\n") + "\n" + v.tabBar() + "\n" + v.Tab().View()
}
