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

// AgentsView is the asset table of seed 002 (all agents, or one cluster's
// "Connected agents" tab). It pages, filters and sorts in SQL through
// store.ListAgents, so it never holds the fleet; marks are agent ids.
//
// Marking: space marks the row under the cursor (and sets the range
// anchor), V marks every row from the anchor to the cursor, ctrl+a marks
// every agent that matches the filter (paged from the store, at most
// maxMarks), esc with marks and no filter clears them.
type AgentsView struct {
	c         *Common
	id        int
	clusterID int64
	tableBody
	anchor int // absolute row index of the last space, -1 = none
}

// maxMarks bounds "mark all" and ranges: the ids are held in memory and
// binding them takes one batch of 500 per bind gap. markWarn warns.
const (
	maxMarks = 10000
	markWarn = 5000
)

// Keys of the agents view that only it has.
var (
	markRangeKey = key.NewBinding(key.WithKeys("V"), key.WithHelp("V", "mark range"))
	markAllKey   = key.NewBinding(key.WithKeys("ctrl+a"), key.WithHelp("ctrl+a", "mark all in filter"))
)

func newAgentsView(c *Common, clusterID int64) View { return NewAgentsView(c, clusterID) }

// NewAgentsView lists clusterID's agents, or every agent with 0.
func NewAgentsView(c *Common, clusterID int64) *AgentsView {
	v := &AgentsView{c: c, id: c.NewID(), clusterID: clusterID, anchor: -1}
	v.below = 1 // the count and marks
	cols := []Column{
		{Title: "ASSET", Width: 10, Flex: 3, Sort: "hostname"},
		{Title: "IP", Width: 13, Flex: 1},
		{Title: "TAG", Width: 6, Flex: 1, HideBelow: 170},
		{Title: "SYSTEM", Width: 7, Sort: "os"},
		{Title: "REGION", Width: 8, Flex: 1, HideBelow: 140},
		{Title: "SECURITY", Width: 11},
		{Title: "VULN", Width: 4, Right: true, HideBelow: 100},
		{Title: "BASE", Width: 4, Right: true, HideBelow: 100},
		{Title: "ALRT", Width: 4, Right: true, HideBelow: 100},
		{Title: "PROC", Width: 4, Right: true, HideBelow: 130},
		{Title: "PORT", Width: 4, Right: true, HideBelow: 130},
		{Title: "ROOT/ALL", Width: 8, Right: true, HideBelow: 130},
		{Title: "RISK", Width: 7, Sort: "risk"},
		{Title: "GROUP", Width: 6, Flex: 1, HideBelow: 160},
		{Title: "PROVIDER", Width: 8, Flex: 1, HideBelow: 160},
		{Title: "CLUSTER", Width: 8, Flex: 2, Sort: "cluster", HideBelow: 110},
		{Title: "VIA", Width: 8, Flex: 1, HideBelow: 120},
		{Title: "CHECK-IN", Width: 8, Sort: "last_checkin"},
		{Title: "CONN", Width: 4, HideBelow: 90},
	}
	if clusterID != 0 {
		cols[15].HideBelow = 1 << 30 // always hidden: it is this cluster
	}
	acct := c.Account.ID
	v.table = NewTable(c, cols, func(ctx context.Context, b Backend, q Query) (Page, error) {
		page, err := b.ListAgents(ctx, v.filter(acct, q))
		if err != nil {
			return Page{}, err
		}
		p := Page{Total: page.Total}
		for _, a := range page.Agents {
			p.Rows = append(p.Rows, agentRow(c, a))
		}
		return p, nil
	})
	v.table.Empty = "no agent yet: create an install command (:install, then n) and run it on the hosts"
	if clusterID != 0 {
		v.table.Empty = "no agent bound to this cluster: bind agents from :agents (mark with space, then b)"
	}
	return v
}

// filter maps a table query to the store's.
func (v *AgentsView) filter(acct int64, q Query) store.AgentFilter {
	return store.AgentFilter{AccountID: acct, ClusterID: v.clusterID, Query: q.Filter, Sort: q.Sort, Desc: q.Desc,
		Offset: q.Offset, Limit: q.Limit}
}

// count shows "-" where the seed does: no inventory yet.
func count(a store.Agent, n int) string {
	if a.LastInventory.IsZero() {
		return "-"
	}
	return strconv.Itoa(n)
}

func agentRow(c *Common, a store.Agent) Row {
	conn := "no"
	if a.Connected {
		conn = "yes"
	}
	ip := "-"
	if len(a.IPs) > 0 {
		ip = a.IPs[0]
	}
	sys := string(a.OS)
	security := string(a.SecurityStatus)
	if a.Status == store.StatusUninstalled {
		security = "Uninstalled"
	}
	cluster := "(direct)"
	if a.ClusterID != 0 {
		cluster = a.Cluster
	}
	via := a.Via
	if via == "" {
		via = store.ViaDirect
	}
	asset := a.Hostname
	if a.Duplicate {
		asset = "DUP " + asset
	}
	root := "-"
	if !a.LastInventory.IsZero() {
		root = fmt.Sprintf("%d/%d", a.RootAccounts, a.Accounts)
	}
	risk := string(a.RiskStatus)
	if a.LastInventory.IsZero() {
		risk = "-"
	}
	secTone, riskTone := ToneGood, ToneGood
	if a.SecurityStatus != store.Protected { // an uninstalled agent is Unprotected too
		secTone = ToneBad
	}
	if a.LastInventory.IsZero() || a.RiskStatus != store.RiskSafe {
		riskTone = ToneWarn
	}
	return Row{
		ID: a.ID,
		Cells: []string{asset, ip, orDash(strings.Join(a.Tags, ",")), sys, orDash(a.Region), security,
			count(a, a.Vulns), count(a, a.BaselineRisks), count(a, a.Alerts), count(a, a.Processes), count(a, a.Ports), root,
			risk, orDash(a.Group), orDash(a.Provider), cluster, via, store.FormatAgo(c.Now(), a.LastCheckin), conn},
		Tones: []Tone{5: secTone, 12: riskTone, 18: connTone(a.Connected)},
		Data:  a,
	}
}

func connTone(on bool) Tone {
	if on {
		return ToneGood
	}
	return ToneMuted
}

// Selected is the agent under the cursor.
func (v *AgentsView) Selected() (store.Agent, bool) {
	a, ok := v.table.SelectedData().(store.Agent)
	return a, ok
}

// Title implements View.
func (v *AgentsView) Title() string {
	if v.clusterID != 0 {
		return "Connected agents"
	}
	return "Agents"
}

// Escape implements Escaper: the filter first, then the marks.
func (v *AgentsView) Escape() (tea.Cmd, bool) {
	if cmd, ok := v.table.Escape(); ok {
		return cmd, true
	}
	if n := len(v.table.Marked()); n > 0 {
		v.table.ClearMarks()
		v.anchor = -1
		return Flash(fmt.Sprintf("%d mark(s) cleared", n)), true
	}
	return nil, false
}

// ShortHelp implements help.KeyMap.
func (v *AgentsView) ShortHelp() []key.Binding {
	k := v.c.Keys
	return []key.Binding{withHelp(k.Enter, "details"), k.Mark, withHelp(k.Bind, "bind marked"), k.Unbind, k.Uninstall, k.Filter, k.Sort}
}

// FullHelp implements help.KeyMap.
func (v *AgentsView) FullHelp() [][]key.Binding {
	k := v.c.Keys
	return [][]key.Binding{
		{withHelp(k.Enter, "agent details: host facts, inventory, why it is offline"),
			withHelp(k.Mark, "mark / unmark the agent (and set the range start)"),
			withHelp(markRangeKey, "mark every agent from the last space to the cursor"),
			withHelp(markAllKey, fmt.Sprintf("mark every agent matching the filter (at most %d)", maxMarks)),
			withHelp(k.Bind, "bind the marked agents to a cluster: 500 per batch, one batch per bind gap"),
			withHelp(cancelKey, "stop a running bind between batches (from any view)"),
			withHelp(k.Unbind, "unbind the marked agents (they stay installed and connect directly)"),
			withHelp(k.Uninstall, "uninstall the marked agents (online ones only; grace period applies)")},
		tableHelp(k),
	}
}

// agentsActionMsg carries an action's result to its view.
type agentsActionMsg struct {
	view int
	text string
	err  error
	ids  []string // to unmark on success
}

// marksMsg carries ids found server-side (range, mark all).
type marksMsg struct {
	view int
	ids  []string
	note string
	err  error
}

// agentDetailMsg opens the detail of an agent.
type agentDetailMsg struct {
	view int
	d    store.AgentDiagnosis
	cmds []store.Command // its latest commands, newest first
	err  error
}

// Update implements tea.Model.
func (v *AgentsView) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	if km, ok := msg.(tea.KeyMsg); ok && !v.table.Capturing() && key.Matches(km, v.c.Keys.Mark) {
		v.anchor = v.table.Cursor()
	}
	if cmd, ok := v.table.Update(msg); ok {
		return v, cmd
	}
	switch msg := msg.(type) {
	case tea.KeyMsg:
		return v, v.key(msg)
	case marksMsg:
		if msg.view != v.id {
			return v, nil
		}
		if msg.err != nil {
			return v, FlashError(msg.err)
		}
		v.table.SetMarked(true, msg.ids...)
		text := fmt.Sprintf("%d agent(s) marked (%d in all)", len(msg.ids), len(v.table.Marked()))
		if msg.note != "" {
			text += "; " + msg.note
		}
		if n := len(v.table.Marked()); n > markWarn {
			text += fmt.Sprintf("; warning: binding %d agents takes %d batches, at least %s", n, batches(n),
				store.FormatDuration(v.c.Backend.Settings().BindBatchGap*time.Duration(batches(n)-1)))
		}
		return v, Flash(text)
	case agentsActionMsg:
		if msg.view != v.id {
			return v, nil
		}
		if msg.err != nil {
			return v, tea.Batch(FlashError(msg.err), RefreshNow())
		}
		v.table.SetMarked(false, msg.ids...)
		return v, tea.Batch(Flash(msg.text), RefreshNow())
	case unmarkMsg:
		if msg.view == v.id {
			v.table.SetMarked(false, msg.ids...)
			v.anchor = -1
		}
		return v, nil
	case agentDetailMsg:
		if msg.view != v.id {
			return v, nil
		}
		if msg.err != nil {
			return v, FlashError(msg.err)
		}
		av := NewAgentView(v.c, msg.d)
		av.cmds = msg.cmds
		return v, Push(av)
	}
	return v, nil
}

func batches(n int) int { return (n + store.BindBatchMax - 1) / store.BindBatchMax }

// targets are the marked agents, or the one under the cursor.
func (v *AgentsView) targets() []string {
	if m := v.table.Marked(); len(m) > 0 {
		return m
	}
	if id := v.table.SelectedID(); id != "" {
		return []string{id}
	}
	return nil
}

func (v *AgentsView) key(msg tea.KeyMsg) tea.Cmd {
	k := v.c.Keys
	switch {
	case key.Matches(msg, markAllKey):
		return v.markQuery(0, -1, "")
	case key.Matches(msg, markRangeKey):
		if v.anchor < 0 {
			return Flash("press space on the first agent of the range, move, then V")
		}
		lo, hi := min(v.anchor, v.table.Cursor()), max(v.anchor, v.table.Cursor())
		return v.markQuery(lo, hi-lo+1, "")
	case key.Matches(msg, k.Enter):
		a, ok := v.Selected()
		if !ok {
			return nil
		}
		return openAgent(v.c, v.id, a.ID)
	case key.Matches(msg, k.Bind):
		return bindForm(v.c, v.id, v.targets())
	case key.Matches(msg, k.Unbind):
		return unbindConfirm(v.c, v.id, v.targets())
	case key.Matches(msg, k.Uninstall):
		return uninstallConfirm(v.c, v.id, v.targets())
	}
	return nil
}

// openAgent loads an agent with its diagnosis and opens its view.
func openAgent(c *Common, view int, id string) tea.Cmd {
	return c.Call(func(ctx context.Context, b Backend) tea.Msg {
		d, err := b.DiagnoseAgent(ctx, id)
		if err != nil {
			return agentDetailMsg{view: view, err: err}
		}
		cmds, err := b.ListCommands(ctx, store.TargetAgent, id, 5)
		return agentDetailMsg{view: view, d: d, cmds: cmds, err: err}
	})
}

// markQuery marks n rows from offset (n < 0: all) of the current filter
// and sort, paging ids from the store; more than maxMarks is refused.
func (v *AgentsView) markQuery(offset, n int, note string) tea.Cmd {
	sortKey, desc := v.table.SortKey()
	q := Query{Offset: offset, Filter: v.table.Filter(), Sort: sortKey, Desc: desc}
	f := v.filter(v.c.Account.ID, q)
	id := v.id
	return v.c.Call(func(ctx context.Context, b Backend) tea.Msg {
		f.Limit = 1
		first, err := b.ListAgents(ctx, f)
		if err != nil {
			return marksMsg{view: id, err: err}
		}
		want := first.Total - offset
		if n >= 0 {
			want = min(n, want)
		}
		if want > maxMarks {
			return marksMsg{view: id, err: store.Errorf(store.ELimit, "%d agents match: at most %d can be marked at once; narrow the filter (/)", want, maxMarks)}
		}
		ids := make([]string, 0, max(want, 0))
		for len(ids) < want {
			f.Offset, f.Limit = offset+len(ids), min(1000, want-len(ids))
			page, err := b.ListAgents(ctx, f)
			if err != nil {
				return marksMsg{view: id, err: err}
			}
			if len(page.Agents) == 0 {
				break // the fleet shrank meanwhile
			}
			for _, a := range page.Agents {
				ids = append(ids, a.ID)
			}
		}
		return marksMsg{view: id, ids: ids, note: note}
	})
}

// View implements tea.Model: a status line (count, marks), then the table.
func (v *AgentsView) View() string {
	st := v.c.Styles
	line := fmt.Sprintf("%d agent(s)", v.table.Total())
	if f := v.table.Filter(); f != "" {
		line += " matching " + quoteText(f)
	}
	if n := len(v.table.Marked()); n > 0 {
		line += fmt.Sprintf(" · %d marked (b bind, U unbind, X uninstall, esc clears)", n)
		return st.Marked.Render(Truncate(line, v.c.Width)) + "\n" + v.table.View()
	}
	return st.Muted.Render(Truncate(line, v.c.Width)) + "\n" + v.table.View()
}
