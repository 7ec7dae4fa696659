package tui

import (
	"fmt"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"

	"outpost/store"
)

// AgentView is one agent: host facts, inventory, the duplicate-identity
// flag with its fix, and why it is offline (store.DiagnoseAgent, the same
// derivation `agent show` can print). ↑/↓ scroll when it does not fit.
type AgentView struct {
	c      *Common
	id     int
	d      store.AgentDiagnosis
	cmds   []store.Command
	err    error
	scroll int
	w, h   int
}

// NewAgentView shows the agent of d (as loaded; it reloads itself).
func NewAgentView(c *Common, d store.AgentDiagnosis) *AgentView {
	return &AgentView{c: c, id: c.NewID(), d: d}
}

// Agent is the agent as last loaded.
func (v *AgentView) Agent() store.Agent { return v.d.Agent }

// Init implements tea.Model.
func (v *AgentView) Init() tea.Cmd { return nil }

// Refresh implements View.
func (v *AgentView) Refresh() tea.Cmd { return openAgent(v.c, v.id, v.d.Agent.ID) }

// Title implements View.
func (v *AgentView) Title() string { return v.d.Agent.Hostname }

// Capturing implements View.
func (v *AgentView) Capturing() bool { return false }

// SetSize implements View.
func (v *AgentView) SetSize(w, h int) { v.w, v.h = w, h }

// ShortHelp implements help.KeyMap.
func (v *AgentView) ShortHelp() []key.Binding {
	k := v.c.Keys
	return []key.Binding{k.Back, k.Up, k.Down, k.Unbind, k.Uninstall, withHelp(k.Copy, "copy id")}
}

// FullHelp implements help.KeyMap.
func (v *AgentView) FullHelp() [][]key.Binding {
	k := v.c.Keys
	return [][]key.Binding{{withHelp(k.Up, "scroll up"), withHelp(k.Down, "scroll down"),
		withHelp(k.Unbind, "unbind from its cluster (stays installed, connects directly)"),
		withHelp(k.Uninstall, "uninstall (online agents only; grace period applies)"),
		withHelp(k.Copy, "copy the agent id to the clipboard (OSC 52)"), withHelp(k.Refresh, "reload")}}
}

// Update implements tea.Model.
func (v *AgentView) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case agentDetailMsg:
		if msg.view == v.id {
			v.err = msg.err
			if msg.err == nil {
				v.d, v.cmds = msg.d, msg.cmds
			}
		}
	case agentsActionMsg:
		if msg.view != v.id {
			return v, nil
		}
		if msg.err != nil {
			return v, tea.Batch(FlashError(msg.err), v.Refresh())
		}
		return v, tea.Batch(Flash(msg.text), v.Refresh())
	case tea.KeyMsg:
		k := v.c.Keys
		ids := []string{v.d.Agent.ID}
		switch {
		case key.Matches(msg, k.Up):
			v.scroll = max(v.scroll-1, 0)
		case key.Matches(msg, k.Down):
			v.scroll = min(v.scroll+1, max(len(v.lines())-v.h, 0))
		case key.Matches(msg, k.Refresh):
			return v, v.Refresh()
		case key.Matches(msg, k.Copy):
			return v, tea.Batch(v.c.Clipboard(v.d.Agent.ID), Flash("agent id "+v.d.Agent.ID+" copied to the clipboard"))
		case key.Matches(msg, k.Unbind):
			return v, unbindConfirm(v.c, v.id, ids)
		case key.Matches(msg, k.Uninstall):
			return v, uninstallConfirm(v.c, v.id, ids)
		}
	}
	return v, nil
}

// stateLines head the agent page: its state, then why it is offline.
func (v *AgentView) stateLines() []string {
	st := v.c.Styles
	a := v.d.Agent
	var out []string
	title := a.Hostname + "  " + string(a.Status) + ", " + string(a.SecurityStatus) + ", " + string(a.RiskStatus)
	out = append(out, toneStyle(st, statusTone(a.Status)).Render(Clean(title)))
	if v.err != nil {
		out = append(out, st.Bad.Render("error: "+Clean(errText(v.err))))
	}
	if a.Duplicate {
		out = append(out, st.Bad.Render("DUPLICATE IDENTITY: two machines use this agent's identity"),
			st.Warn.Render("  fix: "+store.DuplicateFix))
	}
	// Why it is offline comes first: it is what the operator opened this for.
	if len(v.d.Reasons) == 0 {
		out = append(out, st.Good.Render("online and connected now: nothing to fix"))
	} else {
		head := "Why it is offline (what the management side knows)"
		if a.Online {
			head = "Why it is not connected now"
		}
		out = append(out, st.Title.Render(head))
		for _, r := range v.d.Reasons {
			out = append(out, "  - "+Clean(r))
		}
		if v.d.Next != "" {
			out = append(out, st.Warn.Render("  next: "+Clean(v.d.Next)))
		}
	}
	return out
}

func (v *AgentView) lines() []string {
	st := v.c.Styles
	a := v.d.Agent
	now := v.c.Now()
	at := func(t time.Time) string {
		if t.IsZero() {
			return "never"
		}
		return t.Local().Format("2006-01-02 15:04:05") + " (" + store.FormatAgo(now, t) + ")"
	}
	kw := 15
	field := func(k, val string) string { return st.Label.Render(Fit(k, kw)) + " " + Clean(val) }
	out := v.stateLines()
	out = append(out, "",
		field("ID", a.ID),
		field("IPs", orDash(strings.Join(a.IPs, ", "))),
		field("System", a.SystemText()),
		field("Region", orDash(a.Region)),
		field("Provider", orDash(a.Provider)),
		field("Group", orDash(a.Group)),
		field("Tags", orDash(strings.Join(a.Tags, ", "))),
		field("Version", orDash(a.Version)),
		field("Upgrade", store.UpgradeText(a.Upgrade)),
		field("Cluster", a.ClusterText()),
		field("Last relay", a.ViaText()),
		field("Connected now", a.ConnectedText()),
		field("Enrolled", at(a.EnrolledAt)),
		field("Last check-in", at(a.LastCheckin)),
		field("Last inventory", at(a.LastInventory)),
		field("Inventory", fmt.Sprintf("%d processes, %d listening ports, %d root / %d accounts", a.Processes, a.Ports, a.RootAccounts, a.Accounts)),
		field("Risks", fmt.Sprintf("%d vulnerabilities, %d baseline risks, %d alerts", a.Vulns, a.BaselineRisks, a.Alerts)),
		field("Load", fmt.Sprintf("cpu %.0f%%, mem %.0f%%", a.CPU, a.Mem)),
	)
	for i, c := range v.cmds {
		k := ""
		if i == 0 {
			k = "Commands"
		}
		// Describe: the stage of a running upgrade, a failure's reason.
		text := fmt.Sprintf("%s: %s, %s", c.Type, c.Describe(), store.FormatAgo(now, c.CreatedAt))
		out = append(out, field(k, text))
	}
	if u := a.UninstallText(func(t time.Time) string { return t.Local().Format("2006-01-02 15:04:05") }); u != "" {
		out = append(out, field("Uninstall", u))
	}
	return out
}

// View implements tea.Model.
func (v *AgentView) View() string {
	var out []string
	for _, l := range v.lines() {
		// Long lines (reasons) wrap at the view's width instead of tearing.
		if Width(stripStyle(l)) > v.w && v.w > 8 {
			for i, wl := range strings.Split(wrap(stripStyle(l), v.w-4), "\n") {
				if i > 0 {
					wl = "    " + wl
				}
				out = append(out, wl)
			}
			continue
		}
		out = append(out, l)
	}
	if v.scroll > 0 && v.scroll < len(out) {
		out = out[v.scroll:]
	}
	return strings.Join(out, "\n")
}
