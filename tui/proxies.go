package tui

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"

	"outpost/relay/wire"
	"outpost/store"
)

// ProxiesView lists proxy servers: one cluster's (the "Proxy servers" tab
// of a cluster) or every cluster's (`:proxies`). Upgrade and delete act on
// the selected proxy; both go through the store, which refuses with its
// reason (offline, up to date, still online).
type ProxiesView struct {
	c         *Common
	id        int
	clusterID int64
	tableBody
	upgrade key.Binding // its help says why it would be refused
}

// NewProxiesView lists clusterID's proxy servers, or all with 0.
func NewProxiesView(c *Common, clusterID int64) *ProxiesView {
	v := &ProxiesView{c: c, id: c.NewID(), clusterID: clusterID, upgrade: c.Keys.Upgrade}
	v.below = 2 // one line about the selected proxy server: what the narrow table hides, its commands, its last error
	acct := c.Account.ID
	cols := []Column{
		{Title: "ID", Width: 3, Sort: "id", Right: true},
		{Title: "CLUSTER", Width: 8, Flex: 2, Sort: "cluster"},
		{Title: "HOST", Width: 10, Flex: 3, Sort: "host"},
		{Title: "IP", Width: 9, Flex: 2, Sort: "ip", HideBelow: 90},
		{Title: "VERSION", Width: 9, Sort: "version"},
		{Title: "DEPLOY", Width: 6, Sort: "deploy", HideBelow: 100},
		{Title: "STATUS", Width: 7, Sort: "status"},
		{Title: "LAST SEEN", Width: 9, Sort: "seen"},
		{Title: "AGENTS", Width: 6, Sort: "agents", Right: true},
		{Title: "LOAD", Width: 4, Sort: "load", Right: true, HideBelow: 110},
		{Title: "SECURITY", Width: 10, Sort: "security"},
		{Title: "COMMAND", Width: 8, Flex: 1, HideBelow: 120},
	}
	if clusterID != 0 {
		cols[1].HideBelow = 1 << 30 // always hidden: it is this cluster
	}
	v.table = NewTable(c, cols, func(ctx context.Context, b Backend, q Query) (Page, error) {
		ps, err := b.ListProxies(ctx, clusterID)
		if err != nil {
			return Page{}, err
		}
		if clusterID == 0 && acct != 0 {
			if ps, err = accountProxies(ctx, c, b, acct, ps); err != nil {
				return Page{}, err
			}
		}
		now := c.Now()
		return PageOf(ps, q, matchProxy, proxySorts, func(p store.Proxy) Row { return proxyRow(now, p) }), nil
	})
	v.table.Empty = "no proxy server yet"
	if !c.ReadOnly && clusterID != 0 {
		v.table.Empty = "no proxy server yet: press p to deploy one"
	}
	return v
}

// accountProxies keeps the proxies of one account's clusters.
func accountProxies(ctx context.Context, c *Common, b Backend, acct int64, ps []store.Proxy) ([]store.Proxy, error) {
	ids := make([]int64, len(ps))
	for i, p := range ps {
		ids[i] = p.ClusterID
	}
	owner, err := c.clusterAccounts.accountOf(ctx, b, ids)
	if err != nil {
		return nil, err
	}
	out := ps[:0:0]
	for _, p := range ps {
		if owner[p.ClusterID] == acct {
			out = append(out, p)
		}
	}
	return out, nil
}

func matchProxy(p store.Proxy, f string) bool {
	return Contains(f, p.Hostname, p.IP, p.Cluster, p.Version, string(p.Status), string(p.Deploy), strconv.FormatInt(p.ID, 10))
}

var proxySorts = map[string]func(a, b store.Proxy) int{
	"id":       ByInt(func(p store.Proxy) int64 { return p.ID }),
	"cluster":  ByString(func(p store.Proxy) string { return p.Cluster }),
	"host":     ByString(func(p store.Proxy) string { return p.Hostname }),
	"ip":       ByString(func(p store.Proxy) string { return p.IP }),
	"version":  func(a, b store.Proxy) int { return store.CompareVersions(a.Version, b.Version) },
	"deploy":   ByString(func(p store.Proxy) string { return string(p.Deploy) }),
	"status":   ByString(func(p store.Proxy) string { return string(p.Status) }),
	"seen":     ByInt(func(p store.Proxy) int64 { return p.LastSeen.UnixMilli() }),
	"agents":   ByInt(func(p store.Proxy) int { return p.Agents }),
	"load":     ByInt(func(p store.Proxy) float64 { return p.Load }),
	"security": ByString(func(p store.Proxy) string { return securityText(p) }),
}

// securityText: a quick-deployed proxy runs on an asset with the agent
// (protected); a manual one is a proxy only.
func securityText(p store.Proxy) string {
	if p.Protected {
		return string(store.Protected)
	}
	return "proxy only"
}

// upgradeText says whether the proxy can be upgraded, and if not why.
func upgradeText(p store.Proxy) string {
	switch {
	case p.Upgrade:
		return "upgrade available"
	case p.Status != store.StatusOnline:
		return string(store.StatusOffline)
	}
	return "up to date"
}

// commandText is the COMMAND column: the newest command still under way
// or failed ("upgrade: running", "policy: failed: ..."), else whether an
// upgrade is available.
func commandText(p store.Proxy) string {
	for _, c := range p.Commands {
		if c.State != wire.StateDone {
			return string(c.Type) + ": " + c.Describe()
		}
	}
	if p.Upgrade {
		return "upgradable"
	}
	return "-"
}

func proxyRow(now time.Time, p store.Proxy) Row {
	cmd := commandText(p)
	return Row{
		ID: strconv.FormatInt(p.ID, 10),
		Cells: []string{strconv.FormatInt(p.ID, 10), p.Cluster, p.Hostname, orDash(p.IP), orDash(p.Version), string(p.Deploy), string(p.Status),
			store.FormatAgo(now, p.LastSeen), strconv.Itoa(p.Agents), fmt.Sprintf("%.2f", p.Load), securityText(p), cmd},
		Tones: []Tone{6: statusTone(p.Status), 11: commandTone(p)},
		Data:  p,
	}
}

func commandTone(p store.Proxy) Tone {
	for _, c := range p.Commands {
		switch c.State {
		case wire.StateDone:
			continue
		case wire.StateFailed, wire.StateRolledBack:
			return ToneBad
		}
		return ToneWarn
	}
	return ToneNone
}

// Selected is the proxy under the cursor.
func (v *ProxiesView) Selected() (store.Proxy, bool) {
	p, ok := v.table.SelectedData().(store.Proxy)
	return p, ok
}

// Title implements View.
func (v *ProxiesView) Title() string {
	if v.clusterID != 0 {
		return "Proxy servers"
	}
	return "Proxy servers (all clusters)"
}

// upgradeKey is the upgrade binding with the reason it would be refused.
func (v *ProxiesView) upgradeKey() key.Binding {
	b := v.upgrade
	if p, ok := v.Selected(); ok && !p.Upgrade {
		b.SetHelp(b.Help().Key, "upgrade ("+upgradeText(p)+")")
	}
	return b
}

// ShortHelp implements help.KeyMap.
func (v *ProxiesView) ShortHelp() []key.Binding {
	k := v.c.Keys
	out := []key.Binding{v.upgradeKey(), k.Delete}
	if v.clusterID != 0 {
		out = append(out, k.Deploy)
	} else {
		out = append([]key.Binding{withHelp(k.Enter, "cluster")}, out...)
	}
	return append(out, k.Filter, k.Sort)
}

// FullHelp implements help.KeyMap.
func (v *ProxiesView) FullHelp() [][]key.Binding {
	k := v.c.Keys
	acts := []key.Binding{withHelp(v.upgradeKey(), v.upgradeKey().Help().Desc+": queue an upgrade to the latest release"),
		withHelp(k.Delete, "delete the proxy server (only when offline)")}
	if v.clusterID != 0 {
		acts = append(acts, withHelp(k.Deploy, "deploy a proxy server (quick or manual)"))
	} else {
		acts = append(acts, withHelp(k.Enter, "open the proxy's cluster"))
	}
	return [][]key.Binding{acts, tableHelp(k)}
}

// Update implements tea.Model.
func (v *ProxiesView) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	if cmd, ok := v.table.Update(msg); ok {
		return v, cmd
	}
	switch msg := msg.(type) {
	case tea.KeyMsg:
		return v, v.key(msg)
	case clusterActionMsg:
		if msg.view == v.id {
			return v, handleClusterAction(v.c, v.id, msg)
		}
	case openClusterMsg:
		if msg.view == v.id {
			if msg.err != nil {
				return v, FlashError(msg.err)
			}
			return v, Push(NewClusterView(v.c, msg.cluster))
		}
	}
	return v, nil
}

// openClusterMsg carries a cluster loaded to be opened.
type openClusterMsg struct {
	view    int
	cluster store.Cluster
	err     error
}

func (v *ProxiesView) key(msg tea.KeyMsg) tea.Cmd {
	k := v.c.Keys
	if key.Matches(msg, k.Deploy) && v.clusterID != 0 {
		return v.c.Call(func(ctx context.Context, b Backend) tea.Msg {
			c, err := b.GetCluster(ctx, v.clusterID)
			if err != nil {
				return FlashMsg{Text: errText(err), Err: true}
			}
			return OpenDialogMsg{deployChoice(v.c, c)}
		})
	}
	p, ok := v.Selected()
	if !ok {
		return nil
	}
	switch {
	case key.Matches(msg, k.Enter) && v.clusterID == 0:
		id := v.id
		return v.c.Call(func(ctx context.Context, b Backend) tea.Msg {
			c, err := b.GetCluster(ctx, p.ClusterID)
			return openClusterMsg{view: id, cluster: c, err: err}
		})
	case key.Matches(msg, k.Upgrade):
		return upgradeProxyConfirm(v.c, v.id, p)
	case key.Matches(msg, k.Delete):
		return deleteProxyConfirm(v.c, v.id, p)
	}
	return nil
}

// View implements tea.Model.
func (v *ProxiesView) View() string {
	out := v.table.View()
	lines := strings.Count(out, "\n") + 1
	out += strings.Repeat("\n", max(v.table.height-lines, 0))
	p, ok := v.Selected()
	if !ok {
		return out
	}
	st := v.c.Styles
	var cmds []string
	for _, c := range p.Commands {
		cmds = append(cmds, string(c.Type)+" "+c.Describe())
	}
	text := fmt.Sprintf("proxy %d %s: ", p.ID, p.Hostname)
	if len(cmds) > 0 {
		text += "commands: " + strings.Join(cmds, ", ") + "; "
	}
	text += fmt.Sprintf("%s v%s, %s deployment, %s, last seen %s; %s", orDash(p.IP), orDash(p.Version),
		p.Deploy, p.Status, store.FormatAgo(v.c.Now(), p.LastSeen), upgradeText(p))
	out += "\n" + st.Muted.Render(Truncate(Clean(text), v.w))
	if p.LastError != "" {
		out += "\n" + st.Bad.Render(Truncate("last error: "+Clean(p.LastError), v.w))
	}
	return out
}
