package tui

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"

	"outpost/store"
)

// ClustersView is the home view: every cluster of the account with its
// status, proxies, agents, transmission mode and warnings; the selected
// cluster's address kind and warnings are spelled out under the table.
type ClustersView struct {
	c  *Common
	id int
	tableBody
	cache *listCache[store.Cluster]
}

// NewClustersView returns the home view.
func NewClustersView(c *Common) *ClustersView {
	v := &ClustersView{c: c, id: c.NewID(), cache: newListCache[store.Cluster](time.Second)}
	v.below = detailLines
	acct, cache := c.Account.ID, v.cache
	v.table = NewTable(c, []Column{
		{Title: "NAME", Width: 10, Flex: 3, Sort: "name"},
		{Title: "ADDRESS", Width: 10, Flex: 3, Sort: "address"},
		{Title: "KIND", Width: 6, Sort: "kind"},
		{Title: "REGION", Width: 6, Flex: 2, Sort: "region"},
		{Title: "STATUS", Width: 7, Sort: "status"},
		{Title: "PROXIES", Width: 7, Sort: "proxies", Right: true},
		{Title: "AGENTS", Width: 9, Sort: "agents", Right: true},
		{Title: "NOW", Width: 5, Sort: "connected", Right: true, HideBelow: 90},
		{Title: "MODE", Width: 7, Sort: "mode"},
		{Title: "WARN", Width: 4, Flex: 1, Sort: "warnings"},
	}, func(ctx context.Context, b Backend, q Query) (Page, error) {
		cs, err := cache.get(ctx, func(ctx context.Context) ([]store.Cluster, error) { return b.ListClusters(ctx, acct) })
		if err != nil {
			return Page{}, err
		}
		return PageOf(cs, q, matchCluster, clusterSorts, clusterRow), nil
	})
	v.table.Empty = "no cluster yet: press n to create one"
	if c.ReadOnly {
		v.table.Empty = "no cluster yet"
	}
	return v
}

func matchCluster(c store.Cluster, f string) bool {
	return Contains(f, c.Name, c.Address, c.Region, c.Remark, string(c.Status), string(c.Policy.Mode), c.Account)
}

var clusterSorts = map[string]func(a, b store.Cluster) int{
	"name":      ByString(func(c store.Cluster) string { return c.Name }),
	"address":   ByString(func(c store.Cluster) string { return c.Address }),
	"kind":      ByString(func(c store.Cluster) string { return string(c.AddressKind) }),
	"region":    ByString(func(c store.Cluster) string { return c.Region }),
	"status":    ByString(func(c store.Cluster) string { return string(c.Status) }),
	"proxies":   ByInt(func(c store.Cluster) int { return c.ProxiesOnline }),
	"agents":    ByInt(func(c store.Cluster) int { return c.AgentsOnline }),
	"connected": ByInt(func(c store.Cluster) int { return c.AgentsConnected }),
	"mode":      ByString(func(c store.Cluster) string { return string(c.Policy.Mode) }),
	"warnings":  ByInt(func(c store.Cluster) int { return len(c.Warnings) }),
}

// kindText is the address kind in the operator's terms.
func kindText(c store.Cluster) string {
	if c.AddressKind == store.AddressIP {
		return "IP address: holds one proxy server"
	}
	return "domain name: holds any number of proxy servers"
}

func kindShort(c store.Cluster) string {
	if c.AddressKind == store.AddressIP {
		return "IP"
	}
	return "domain"
}

func statusTone(status store.Status) Tone {
	if status == store.StatusOnline {
		return ToneGood
	}
	return ToneBad
}

func clusterRow(c store.Cluster) Row {
	warn := "-"
	wt := ToneNone
	if n := len(c.Warnings); n > 0 {
		warn, wt = strconv.Itoa(n), ToneWarn
	}
	return Row{
		ID: strconv.FormatInt(c.ID, 10),
		Cells: []string{c.Name, c.Address, kindShort(c), orDash(c.Region), string(c.Status),
			fmt.Sprintf("%d/%d", c.ProxiesOnline, c.Proxies), fmt.Sprintf("%d/%d", c.AgentsOnline, c.Agents),
			strconv.Itoa(c.AgentsConnected), string(c.Policy.Mode), warn},
		Tones: []Tone{4: statusTone(c.Status), 9: wt},
		Data:  c,
	}
}

// Selected is the cluster under the cursor.
func (v *ClustersView) Selected() (store.Cluster, bool) {
	c, ok := v.table.SelectedData().(store.Cluster)
	return c, ok
}

// Refresh implements View.
func (v *ClustersView) Refresh() tea.Cmd {
	v.cache.invalidate()
	return v.table.Refresh()
}

// Title implements View.
func (v *ClustersView) Title() string { return "Clusters" }

// detailLines is how many lines the selected cluster's summary takes.
const detailLines = 3

// ShortHelp implements help.KeyMap.
func (v *ClustersView) ShortHelp() []key.Binding {
	k := v.c.Keys
	return []key.Binding{k.Enter, k.Create, k.Edit, k.Deploy, k.Delete, k.Filter, k.Sort}
}

// FullHelp implements help.KeyMap.
func (v *ClustersView) FullHelp() [][]key.Binding {
	k := v.c.Keys
	return [][]key.Binding{
		{withHelp(k.Enter, "open the cluster (proxy servers, agents)"), withHelp(k.Create, "create a cluster"),
			withHelp(k.Edit, "proxy settings (transmission policy)"), withHelp(k.Deploy, "deploy a proxy server"),
			withHelp(k.Delete, "delete the cluster (guided)")},
		tableHelp(k),
	}
}

// tableHelp are the keys every table has, in compact form.
func tableHelp(k *KeyMap) []key.Binding {
	nb := func(keys, desc string) key.Binding {
		return key.NewBinding(key.WithKeys(keys), key.WithHelp(keys, desc))
	}
	return []key.Binding{nb("↑/↓ j/k", "move"), nb("pgup/pgdn", "page"), nb("g/G", "top / bottom"),
		withHelp(k.Left, "select the column to sort by"), withHelp(k.Sort, "sort by the column / flip"),
		withHelp(k.Filter, "filter rows (esc clears)"), withHelp(k.Mark, "mark a row"), withHelp(k.Refresh, "refresh now")}
}

// withHelp returns b with another description (for the full help).
func withHelp(b key.Binding, desc string) key.Binding {
	b.SetHelp(b.Help().Key, desc)
	return b
}

// Update implements tea.Model.
func (v *ClustersView) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	if km, ok := msg.(tea.KeyMsg); ok && key.Matches(km, v.c.Keys.Refresh) {
		return v, v.Refresh()
	}
	if cmd, ok := v.table.Update(msg); ok {
		return v, cmd
	}
	switch msg := msg.(type) {
	case tea.KeyMsg:
		return v, v.key(msg)
	case clusterActionMsg:
		if msg.view == v.id {
			return v, v.actionDone(msg)
		}
	case guideMsg:
		if msg.view == v.id {
			if msg.err != nil {
				return v, FlashError(msg.err)
			}
			return v, OpenDialog(guideDialog(v.c, msg))
		}
	}
	return v, nil
}

func (v *ClustersView) key(msg tea.KeyMsg) tea.Cmd {
	k := v.c.Keys
	if key.Matches(msg, k.Create) {
		return createClusterForm(v.c)
	}
	c, ok := v.Selected()
	if !ok {
		return nil
	}
	switch {
	case key.Matches(msg, k.Enter):
		return Push(NewClusterView(v.c, c))
	case key.Matches(msg, k.Edit):
		return OpenDialog(policyForm(v.c, c))
	case key.Matches(msg, k.Deploy):
		return deployDialog(v.c, c)
	case key.Matches(msg, k.Delete):
		return deleteClusterConfirm(v.c, v.id, c)
	}
	return nil
}

// View implements tea.Model.
func (v *ClustersView) View() string {
	st := v.c.Styles
	var b strings.Builder
	table := v.table.View()
	b.WriteString(table)
	b.WriteString(strings.Repeat("\n", max(v.table.height-strings.Count(table, "\n")-1, 0)))
	c, ok := v.Selected()
	if !ok {
		return b.String()
	}
	b.WriteString("\n" + st.Muted.Render(Truncate(Clean(fmt.Sprintf("%s: %s, %s (%s); policy: %s", c.Name, c.Address, kindText(c),
		c.Status, c.Policy.Describe())), v.w)))
	switch len(c.Warnings) {
	case 0:
		b.WriteString("\n" + st.Muted.Render("no warnings"))
	default:
		for i, w := range c.Warnings {
			if i == detailLines-1 {
				break
			}
			b.WriteString("\n" + st.Warn.Render(Truncate("warning: "+Clean(w.Text()), v.w)))
		}
	}
	return b.String()
}

// clusterActionMsg is the result of an action started from a clusters or
// cluster view.
type clusterActionMsg struct {
	view    int
	action  string
	cluster store.Cluster
	err     error
	text    string
}

func (v *ClustersView) actionDone(m clusterActionMsg) tea.Cmd {
	return handleClusterAction(v.c, v.id, m)
}
