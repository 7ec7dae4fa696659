package tui

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"

	"outpost/relay/wire"
	"outpost/store"
	"outpost/store/ops"
)

// Deploying a proxy server (seed 000, step 2): quick, onto an online Linux
// asset of the cluster's account whose agent starts the relay; or manual,
// a one-time expiring command the operator runs on the proxy host (the
// same text the CLI prints, from store/ops), copyable with OSC 52.

// deployDialog opens the deploy choice for cluster cl.
func deployDialog(c *Common, cl store.Cluster) tea.Cmd {
	if cmd := readOnly(c); cmd != nil {
		return cmd
	}
	return OpenDialog(deployChoice(c, cl))
}

// deployChoice asks quick or manual; Cancel has the focus.
func deployChoice(c *Common, cl store.Cluster) Dialog {
	body := "Quick: pick an online Linux asset of the account; its agent starts the relay at its next check-in.\n" +
		"Manual: get a one-time command (expires in " + store.FormatDuration(store.DefaultJoinTTL) + ") to run on the proxy host."
	if cl.AddressKind == store.AddressIP {
		body += "\n\nThis cluster uses an IP address: it holds one proxy server."
		if cl.Proxies > 0 {
			body += " It already has it, so the store will refuse another."
		}
	}
	return NewChoice(c, "Deploy a proxy server into "+Clean(cl.Name), body,
		Button{Label: "Cancel"},
		Button{Label: "Quick: onto an asset", Cmd: func() tea.Msg { return OpenDialogMsg{newAssetPicker(c, cl)} }},
		Button{Label: "Manual: one-time command", Cmd: manualDeploy(c, cl)})
}

// ---------------------------------------------------------------------------
// Quick: pick an online Linux asset

// assetPicker is a dialog with a table of the account's online Linux
// agents (filtered in the store); enter deploys onto the selected one.
type assetPicker struct {
	c     *Common
	cl    store.Cluster
	table *Table
	w, h  int
}

func newAssetPicker(c *Common, cl store.Cluster) *assetPicker {
	d := &assetPicker{c: c, cl: cl}
	acct := cl.AccountID
	d.table = NewTable(c, []Column{
		{Title: "HOST", Width: 12, Flex: 3, Sort: "hostname"},
		{Title: "IP", Width: 9, Flex: 2},
		{Title: "CLUSTER", Width: 8, Flex: 2, Sort: "cluster"},
		{Title: "LAST CHECK-IN", Width: 13, Sort: "last_checkin"},
	}, func(ctx context.Context, b Backend, q Query) (Page, error) {
		pg, err := b.ListAgents(ctx, store.AgentFilter{AccountID: acct, Status: store.StatusOnline, OS: wire.OSLinux,
			Query: q.Filter, Sort: q.Sort, Desc: q.Desc, Offset: q.Offset, Limit: q.Limit})
		if err != nil {
			return Page{}, err
		}
		now := c.Now()
		p := Page{Total: pg.Total}
		for _, a := range pg.Agents {
			ip := ""
			if len(a.IPs) > 0 {
				ip = a.IPs[0]
			}
			p.Rows = append(p.Rows, Row{ID: a.ID, Cells: []string{a.Hostname, orDash(ip), orDash(a.Cluster), store.FormatAgo(now, a.LastCheckin)}, Data: a})
		}
		return p, nil
	})
	d.table.Empty = "no online Linux asset in this account: use the manual deployment"
	d.SetSize(c.Width, max(c.Height-4, 6))
	return d
}

// Init loads the first page (the root calls it when the dialog opens).
func (d *assetPicker) Init() tea.Cmd { return d.table.Load() }

func (d *assetPicker) SetSize(w, h int) {
	d.w, d.h = w, h
	d.table.SetSize(min(max(w-6, 30), 100), max(min(h-6, 16), 3))
}

var pickKey = key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "deploy here"))

func (d *assetPicker) ShortHelp() []key.Binding {
	k := d.c.Keys
	return []key.Binding{pickKey, k.Filter, k.Up, k.Down, withHelp(k.Back, "cancel")}
}

func (d *assetPicker) Update(msg tea.Msg) (Dialog, tea.Cmd) {
	if cmd, ok := d.table.Update(msg); ok {
		return d, cmd
	}
	km, ok := msg.(tea.KeyMsg)
	if !ok {
		return d, nil
	}
	switch {
	case key.Matches(km, d.c.Keys.Back):
		if cmd, used := d.table.Escape(); used {
			return d, cmd
		}
		return d, CloseDialog()
	case key.Matches(km, pickKey):
		a, ok := d.table.SelectedData().(store.Agent)
		if !ok {
			return d, nil
		}
		return d, tea.Sequence(CloseDialog(), quickDeploy(d.c, d.cl, a))
	}
	return d, nil
}

func (d *assetPicker) View() string {
	st := d.c.Styles
	title := st.Title.Render("Quick deployment into " + Clean(d.cl.Name) + ": pick an online Linux asset")
	return st.Dialog.Render(title + "\n" + d.table.View())
}

func quickDeploy(c *Common, cl store.Cluster, a store.Agent) tea.Cmd {
	if cmd := readOnly(c); cmd != nil {
		return cmd
	}
	return c.Call(func(ctx context.Context, b Backend) tea.Msg {
		jt, err := b.CreateJoinToken(ctx, cl.ID, store.DeployQuick, a.ID, store.DefaultJoinTTL)
		if err != nil {
			return FlashMsg{Text: errText(err), Err: true}
		}
		return FlashMsg{Text: fmt.Sprintf("deploy command queued for asset %s: its agent starts the relay at its next check-in (join token expires %s)",
			a.Hostname, jt.ExpiresAt.Local().Format("15:04"))}
	})
}

// ---------------------------------------------------------------------------
// Manual: the one-time command

func manualDeploy(c *Common, cl store.Cluster) tea.Cmd {
	if cmd := readOnly(c); cmd != nil {
		return cmd
	}
	dir := c.DataDir
	return c.Call(func(ctx context.Context, b Backend) tea.Msg {
		mgr, err := ops.ManagerURL(dir, "")
		if err != nil {
			return FlashMsg{Text: errText(err), Err: true}
		}
		pin, err := ops.CAPin(dir)
		if err != nil {
			return FlashMsg{Text: errText(err), Err: true}
		}
		keyPin, err := ops.ServerKeyPin(dir)
		if err != nil {
			return FlashMsg{Text: errText(err), Err: true}
		}
		jt, err := b.CreateJoinToken(ctx, cl.ID, store.DeployManual, "", store.DefaultJoinTTL)
		if err != nil {
			return FlashMsg{Text: errText(err), Err: true}
		}
		note := fmt.Sprintf("One use; expires at %s (in %s). Then watch it come online in the Proxy servers tab.",
			jt.ExpiresAt.Local().Format("2006-01-02 15:04"), store.FormatDuration(jt.ExpiresAt.Sub(c.Now()).Round(time.Minute)))
		command := ops.JoinCommand(mgr, jt.Token, pin)
		// The same choice as 'proxy deploy --manual': the one-liner first.
		if line := ops.JoinInstallLine(mgr, keyPin, jt.Token, pin); line != "" {
			d := newCommandDialog(c, "Run this as root on the proxy host of "+cl.Name, note+
				" It installs /usr/local/bin/outpost and the outpost-relay systemd service.", line)
			d.alt = command
			return OpenDialogMsg{d}
		}
		return OpenDialogMsg{newCommandDialog(c, "Run this on the proxy host of "+cl.Name,
			note+" ("+ops.InstallLineMissing(mgr, keyPin)+".)", command)}
	})
}

// CommandDialog shows a generated command in full (wrapped, never cut) with
// a copy button: OSC 52 puts it on the operator's clipboard, also over SSH.
type CommandDialog struct {
	c           *Common
	title, note string
	command     string
	alt         string // the plain command, where outpost is installed ("" none)
	focus       int    // 0 Close, 1 Copy
	width       int
}

// newCommandDialog is exported through NewCommandDialog for other views.
func newCommandDialog(c *Common, title, note, command string) *CommandDialog {
	return &CommandDialog{c: c, title: title, note: note, command: command, focus: 1, width: c.Width}
}

// NewCommandDialog shows command with Close and Copy buttons (install
// commands use it too).
func NewCommandDialog(c *Common, title, note, command string) Dialog {
	return newCommandDialog(c, title, note, command)
}

// Command is the text shown.
func (d *CommandDialog) Command() string { return d.command }

func (d *CommandDialog) SetSize(w, h int) { d.width = w }

var copyKey = key.NewBinding(key.WithKeys("y", "c"), key.WithHelp("y", "copy (OSC 52)"))

func (d *CommandDialog) ShortHelp() []key.Binding {
	return []key.Binding{copyKey, choiceNext, choiceOK, withHelp(choiceEsc, "close")}
}

func (d *CommandDialog) copy() tea.Cmd {
	return tea.Batch(d.c.Clipboard(d.command), Flash("command copied to your clipboard (OSC 52: the terminal must allow it); it is also shown in full here"))
}

func (d *CommandDialog) Update(msg tea.Msg) (Dialog, tea.Cmd) {
	km, ok := msg.(tea.KeyMsg)
	if !ok {
		return d, nil
	}
	switch {
	case key.Matches(km, copyKey):
		return d, d.copy()
	case key.Matches(km, choiceNext), key.Matches(km, choicePrev):
		d.focus = 1 - d.focus
	case key.Matches(km, choiceEsc):
		return d, CloseDialog()
	case key.Matches(km, choiceOK):
		if d.focus == 1 {
			return d, d.copy()
		}
		return d, CloseDialog()
	}
	return d, nil
}

func (d *CommandDialog) View() string {
	st := d.c.Styles
	inner := min(max(d.width-6, 20), 100)
	var b strings.Builder
	b.WriteString(st.Title.Render(Truncate(Clean(d.title), inner)) + "\n\n")
	// The command is cut at inner cells, never shortened: every line is
	// part of it, to be copied whole.
	for i, line := range hardWrap(d.command, inner) {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(line)
	}
	if d.alt != "" {
		b.WriteString("\n\n" + st.Muted.Render("or, where outpost is already installed:") + "\n")
		b.WriteString(strings.Join(hardWrap(d.alt, inner), "\n"))
	}
	b.WriteString("\n\n" + st.Muted.Render(wrap(Clean(d.note), inner)) + "\n\n")
	labels := []string{"[Close]", "[Copy]"}
	for i, l := range labels {
		if i == d.focus {
			b.WriteString(st.ButtonOn.Render(l))
		} else {
			b.WriteString(st.Button.Render(l))
		}
	}
	return st.Dialog.Render(b.String())
}

// hardWrap cuts s into lines of exactly w cells (the last shorter).
func hardWrap(s string, w int) []string {
	var out []string
	line, n := "", 0
	for _, r := range s {
		rw := cells.RuneWidth(r)
		if n+rw > w {
			out = append(out, line)
			line, n = "", 0
		}
		line += string(r)
		n += rw
	}
	return append(out, line)
}
