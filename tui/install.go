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
	"outpost/store/ops"
)

// InstallView lists install commands (seed 000 "Installation Command"):
// target, expiry, OS, group, provider, image mode, uses, state, and the
// command text of the selected one, built by ops exactly as `installcmd
// create` prints it. The key itself is shown once, when created (n).
type InstallView struct {
	c  *Common
	id int
	tableBody
}

// installItem is one row: the command and its text (key elided).
type installItem struct {
	ic      store.InstallCommand
	command string
	note    string
}

func newInstallView(c *Common) View { return NewInstallView(c) }

// NewInstallView lists the account's install commands, newest first.
func NewInstallView(c *Common) *InstallView {
	v := &InstallView{c: c, id: c.NewID()}
	v.below = footLines
	cols := []Column{
		{Title: "ID", Width: 3, Sort: "id", Right: true},
		{Title: "TARGET", Width: 8, Flex: 2, Sort: "target"},
		{Title: "KEY", Width: 11, HideBelow: 100},
		{Title: "OS", Width: 7, Sort: "os"},
		{Title: "GROUP", Width: 6, Flex: 1, HideBelow: 110},
		{Title: "PROVIDER", Width: 8, Flex: 1, HideBelow: 120},
		{Title: "IMAGE", Width: 5},
		{Title: "USES", Width: 4, Right: true, Sort: "uses"},
		{Title: "EXPIRES", Width: 11, Sort: "expires"},
		{Title: "STATE", Width: 7, Sort: "state"},
	}
	acct := c.Account.ID
	v.table = NewTable(c, cols, func(ctx context.Context, b Backend, q Query) (Page, error) {
		ics, err := b.ListInstallCommands(ctx, acct)
		if err != nil {
			return Page{}, err
		}
		now := c.Now()
		page := PageOf(ics, q, matchInstall, installSorts, func(ic store.InstallCommand) Row { return installRow(now, ic) })
		// The command text only for the page's rows (one URL lookup per cluster).
		// A command shown without its pin would be wrong, not just shorter:
		// say what is broken instead (as installcmd create does).
		mgr, err := ops.ManagerURL(c.DataDir, "")
		if err != nil {
			return Page{}, err
		}
		pin, err := ops.CAPin(c.DataDir)
		if err != nil {
			return Page{}, err
		}
		type target struct {
			urls []string
			note string
		}
		targets := map[int64]target{}
		for i, r := range page.Rows {
			it := r.Data.(installItem)
			tg, ok := targets[it.ic.ClusterID]
			if !ok {
				var cl *store.Cluster
				if it.ic.ClusterID != 0 {
					got, err := b.GetCluster(ctx, it.ic.ClusterID)
					if err != nil {
						return Page{}, err
					}
					cl = &got
				}
				if tg.urls, tg.note, err = ops.InstallURLs(ctx, b, cl, mgr); err != nil {
					return Page{}, err
				}
				targets[it.ic.ClusterID] = tg
			}
			it.command, it.note = ops.AgentCommand(tg.urls, it.ic.KeyPrefix+"…", pin), tg.note
			page.Rows[i].Data = it
		}
		return page, nil
	})
	v.table.Empty = "no install command yet"
	if !c.ReadOnly {
		v.table.Empty = "no install command yet: press n to create one"
	}
	return v
}

func installTarget(ic store.InstallCommand) string {
	if ic.ClusterID == 0 {
		return "(direct)"
	}
	return ic.Cluster
}

func matchInstall(ic store.InstallCommand, f string) bool {
	return Contains(f, strconv.FormatInt(ic.ID, 10), installTarget(ic), string(ic.OS), ic.Group, ic.Provider, ic.KeyPrefix, string(ic.State()))
}

var installSorts = map[string]func(a, b store.InstallCommand) int{
	"id":      ByInt(func(ic store.InstallCommand) int64 { return ic.ID }),
	"target":  ByString(installTarget),
	"os":      ByString(func(ic store.InstallCommand) string { return string(ic.OS) }),
	"uses":    ByInt(func(ic store.InstallCommand) int { return ic.Uses }),
	"expires": ByInt(func(ic store.InstallCommand) int64 { return ic.ExpiresAt.UnixMilli() }),
	"state":   ByString(func(ic store.InstallCommand) string { return string(ic.State()) }),
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// until renders a future time relative to now: "in 23h"; a past one as
// store.FormatAgo does ("5m ago").
func until(now, t time.Time) string {
	d := t.Sub(now)
	switch {
	case d <= 0:
		return store.FormatAgo(now, t)
	case d < time.Hour:
		return fmt.Sprintf("in %dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("in %dh", int(d.Hours()))
	}
	return fmt.Sprintf("in %dd", int(d.Hours()/24))
}

func installRow(now time.Time, ic store.InstallCommand) Row {
	state := ic.State()
	tone := ToneGood
	if state != store.InstallActive {
		tone = ToneMuted
	}
	return Row{
		ID: strconv.FormatInt(ic.ID, 10),
		Cells: []string{strconv.FormatInt(ic.ID, 10), installTarget(ic), ic.KeyPrefix + "…", string(ic.OS), orDash(ic.Group), orDash(ic.Provider),
			yesNo(ic.ImageMode), strconv.Itoa(ic.Uses), until(now, ic.ExpiresAt), string(state)},
		Tones: []Tone{9: tone},
		Data:  installItem{ic: ic},
	}
}

// Selected is the install command under the cursor.
func (v *InstallView) Selected() (store.InstallCommand, string, bool) {
	it, ok := v.table.SelectedData().(installItem)
	return it.ic, it.command, ok
}

// Title implements View.
func (v *InstallView) Title() string { return "Install commands" }

// footLines is the command text under the table.
const footLines = 3

// ShortHelp implements help.KeyMap.
func (v *InstallView) ShortHelp() []key.Binding {
	k := v.c.Keys
	return []key.Binding{withHelp(k.Create, "new install command"), k.Revoke, withHelp(k.Copy, "copy command"), k.Filter, k.Sort}
}

// FullHelp implements help.KeyMap.
func (v *InstallView) FullHelp() [][]key.Binding {
	k := v.c.Keys
	return [][]key.Binding{{withHelp(k.Create, "create an install command (cluster or direct, expiry, OS, group, provider, image mode)"),
		withHelp(k.Revoke, "revoke the selected command: it enrols nothing more (enrolled agents keep working)"),
		withHelp(k.Copy, "copy the selected command text (the key itself is shown only at creation)")}, tableHelp(k)}
}

// installActionMsg carries a revoke's result.
type installActionMsg struct {
	view int
	text string
	err  error
}

// Update implements tea.Model.
func (v *InstallView) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	if cmd, ok := v.table.Update(msg); ok {
		return v, cmd
	}
	switch msg := msg.(type) {
	case installActionMsg:
		if msg.view != v.id {
			return v, nil
		}
		if msg.err != nil {
			return v, FlashError(msg.err)
		}
		return v, tea.Batch(Flash(msg.text), RefreshNow())
	case tea.KeyMsg:
		k := v.c.Keys
		switch {
		case key.Matches(msg, k.Create):
			return v, createInstallForm(v.c)
		case key.Matches(msg, k.Revoke):
			if ic, _, ok := v.Selected(); ok {
				return v, revokeInstallConfirm(v.c, v.id, ic)
			}
		case key.Matches(msg, k.Copy):
			if _, cmd, ok := v.Selected(); ok {
				return v, tea.Batch(v.c.Clipboard(cmd), Flash("command copied (replace the elided key with the one shown at creation)"))
			}
		}
	}
	return v, nil
}

// View implements tea.Model.
func (v *InstallView) View() string {
	st := v.c.Styles
	var foot []string
	if it, ok := v.table.SelectedData().(installItem); ok {
		foot = append(foot, st.Title.Render(fmt.Sprintf("command %d", it.ic.ID))+st.Muted.Render(" (the key was shown once, at creation):"),
			Truncate(Clean(it.command), v.w))
		if it.note != "" {
			foot = append(foot, st.Warn.Render(Truncate("note: "+Clean(it.note), v.w)))
		}
	}
	body := clip(v.table.View(), v.w, max(v.h-footLines, 2))
	return body + "\n" + strings.Join(foot, "\n")
}

// ---------------------------------------------------------------------------
// Create and revoke

// installFormMsg carries what the create form chooses from.
func createInstallForm(c *Common) tea.Cmd {
	if cmd := readOnly(c); cmd != nil {
		return cmd
	}
	acct := c.Account.ID
	return c.Call(func(ctx context.Context, b Backend) tea.Msg {
		cs, err := b.ListClusters(ctx, acct)
		if err != nil {
			return FlashMsg{Text: errText(err), Err: true}
		}
		var as []store.Account
		if acct == 0 {
			if as, err = b.ListAccounts(ctx); err != nil {
				return FlashMsg{Text: errText(err), Err: true}
			}
			if len(as) == 0 {
				return FlashMsg{Text: "no account yet: create one with 'outpost account create NAME'", Err: true}
			}
		}
		return OpenDialogMsg{newInstallForm(c, cs, as)}
	})
}

const directTarget = "direct (management host)"

func newInstallForm(c *Common, cs []store.Cluster, accounts []store.Account) *Form {
	byLabel := map[string]store.Cluster{}
	targets := []string{directTarget}
	for _, cl := range cs {
		l := clusterLabel(c, cl)
		byLabel[l] = cl
		targets = append(targets, l)
	}
	fields := []Field{
		{Key: "target", Label: "Connect via", Kind: FieldChoice, Choices: targets, Value: targets[min(1, len(targets)-1)],
			Hint: "a cluster (its proxy servers) or directly to the management host"},
		{Key: "expires", Label: "Expires after", Value: "24h", Hint: "e.g. 30m, 24h, 7d"},
		{Key: "os", Label: "OS", Kind: FieldChoice, Choices: []string{string(wire.OSLinux), string(wire.OSWindows)}, Value: string(wire.OSLinux)},
		{Key: "group", Label: "Group", Hint: "default asset group of the agents"},
		{Key: "provider", Label: "Provider", Hint: "service provider label"},
		{Key: "image", Label: "Image mode", Kind: FieldChoice, Choices: []string{"no", "yes"}, Value: "no",
			Hint: "for baking into a machine image: each copy enrols on its own"},
	}
	if accounts != nil {
		var names []string
		for _, a := range accounts {
			names = append(names, a.Name)
		}
		fields = append(fields, Field{Key: "account", Label: "Account", Kind: FieldChoice, Choices: names, Value: names[0],
			Hidden: func(v Values) bool { return v["target"] != directTarget }, Hint: "direct agents' account"})
	}
	f := NewForm(c, "Create an install command", fields...)
	f.Note = "The key is shown once, after creation; an expired or revoked key enrols nothing."
	f.Live = func(v Values) []string {
		if cl, ok := byLabel[v["target"]]; ok && cl.ProxiesOnline == 0 {
			return []string{fmt.Sprintf("warning: cluster %s has no proxy server online: agents cannot enrol through it until one is", cl.Name)}
		}
		return nil
	}
	f.Submit = func(v Values) (tea.Cmd, error) {
		if err := readOnlyErr(c); err != nil {
			return nil, err
		}
		ttl, err := parseDuration(v["expires"])
		if err != nil {
			return nil, err
		}
		in := store.InstallInput{AccountID: c.Account.ID, TTL: ttl, OS: wire.OS(v["os"]), Group: v["group"], Provider: v["provider"], ImageMode: v["image"] == "yes"}
		var cl *store.Cluster
		if got, ok := byLabel[v["target"]]; ok {
			cl = &got
			in.AccountID, in.ClusterID = got.AccountID, got.ID
		}
		acctName := v["account"]
		dir := c.DataDir
		return c.Call(func(ctx context.Context, b Backend) tea.Msg {
			return createInstall(ctx, b, c, f, dir, acctName, cl, in)
		}), nil
	}
	return f
}

// createInstall creates the install command and the dialog that shows it;
// it runs inside a tea.Cmd.
func createInstall(ctx context.Context, b Backend, c *Common, f *Form, dir, acctName string, cl *store.Cluster, in store.InstallInput) tea.Msg {
	if in.AccountID == 0 {
		a, err := b.FindAccount(ctx, acctName)
		if err != nil {
			return f.Result(err, "", nil)
		}
		in.AccountID = a.ID
	}
	mgr, err := ops.ManagerURL(dir, "")
	if err != nil {
		return f.Result(err, "", nil)
	}
	urls, note, err := ops.InstallURLs(ctx, b, cl, mgr)
	if err != nil {
		return f.Result(err, "", nil)
	}
	pin, err := ops.CAPin(dir)
	if err != nil {
		return f.Result(err, "", nil)
	}
	keyPin, err := ops.ServerKeyPin(dir)
	if err != nil {
		return f.Result(err, "", nil)
	}
	ic, err := b.CreateInstallCommand(ctx, in)
	if err != nil {
		return f.Result(err, "", nil)
	}
	command := ops.AgentCommand(urls, ic.Key, pin)
	d := newKeyDialog(c, ic, command, note)
	// As 'installcmd create': the one-liner first, for Linux hosts.
	if line := ops.AgentInstallLine(mgr, keyPin, urls, ic.Key, pin); line != "" && ic.OS == wire.OSLinux {
		d.body = strings.Replace(d.body, "Run on each host:", "Run as root on each host (installs /usr/local/bin/outpost and the outpost-agent systemd service):", 1)
		d.command, d.alt = line, command
	}
	return f.Result(nil, fmt.Sprintf("install command %d created", ic.ID), OpenDialogMsg{d})
}

// parseDuration reads a positive duration: 30m, 24h or 7d (as the command
// line does).
func parseDuration(s string) (time.Duration, error) {
	d, err := store.ParseDuration(s)
	if err != nil {
		return 0, err
	}
	if d <= 0 {
		return 0, store.Errorf(store.EInvalid, "duration %q: must be positive", s)
	}
	return d, nil
}

func revokeInstallConfirm(c *Common, view int, ic store.InstallCommand) tea.Cmd {
	if cmd := readOnly(c); cmd != nil {
		return cmd
	}
	acct := c.Account.ID
	body := fmt.Sprintf("Install command %d (%s, %s, key %s…) will enrol nothing more. The %d agent(s) it enrolled keep working.",
		ic.ID, Clean(installTarget(ic)), ic.OS, ic.KeyPrefix, ic.Uses)
	return OpenDialog(NewConfirm(c, fmt.Sprintf("Revoke install command %d?", ic.ID), body, "Revoke",
		c.Call(func(ctx context.Context, b Backend) tea.Msg {
			err := b.RevokeInstallCommand(ctx, acct, ic.ID)
			return installActionMsg{view: view, err: err, text: fmt.Sprintf("install command %d revoked: it enrols nothing more", ic.ID)}
		})))
}

// keyDialog shows a new install command once: y copies it (OSC 52), and
// it stays open until enter or esc.
type keyDialog struct {
	c       *Common
	title   string
	body    string
	command string
	alt     string // the plain command, where outpost is installed ("" none)
	copied  bool
	width   int
}

func newKeyDialog(c *Common, ic store.InstallCommand, command, note string) *keyDialog {
	target := "direct connection"
	if ic.ClusterID != 0 {
		target = "cluster " + ic.Cluster
	}
	body := fmt.Sprintf("For %s, %s, expires %s. Run on each host:", target, ic.OS, ic.ExpiresAt.Local().Format("2006-01-02 15:04"))
	if note != "" {
		body += "\nnote: " + note
	}
	return &keyDialog{c: c, title: fmt.Sprintf("Install command %d: the key is shown only now", ic.ID), body: body, command: command, width: c.Width}
}

var (
	keyCopy  = key.NewBinding(key.WithKeys("y"), key.WithHelp("y", "copy to clipboard"))
	keyClose = key.NewBinding(key.WithKeys("enter", "esc"), key.WithHelp("enter/esc", "close"))
)

// SetSize implements Dialog.
func (d *keyDialog) SetSize(w, h int) { d.width = w }

// ShortHelp implements Dialog.
func (d *keyDialog) ShortHelp() []key.Binding { return []key.Binding{keyCopy, keyClose} }

// Update implements Dialog.
func (d *keyDialog) Update(msg tea.Msg) (Dialog, tea.Cmd) {
	km, ok := msg.(tea.KeyMsg)
	if !ok {
		return d, nil
	}
	switch {
	case key.Matches(km, keyCopy):
		d.copied = true
		return d, tea.Batch(d.c.Clipboard(d.command), Flash("install command copied to the clipboard"))
	case key.Matches(km, keyClose):
		return d, CloseDialog()
	}
	return d, nil
}

// View implements Dialog. The command wraps (never truncated: it must be
// copied whole, also by hand).
func (d *keyDialog) View() string {
	st := d.c.Styles
	inner := min(max(d.width-6, 20), 100)
	var b strings.Builder
	b.WriteString(st.Title.Render(Truncate(d.title, inner)) + "\n\n")
	b.WriteString(wrap(Clean(d.body), inner) + "\n\n")
	b.WriteString(strings.Join(hardWrap(d.command, inner), "\n") + "\n\n")
	if d.alt != "" {
		b.WriteString(st.Muted.Render("or, where outpost is already installed:") + "\n")
		b.WriteString(strings.Join(hardWrap(d.alt, inner), "\n") + "\n\n")
	}
	if d.copied {
		b.WriteString(st.Good.Render("copied (OSC 52)") + "  ")
	}
	b.WriteString(st.Muted.Render("y copy · enter/esc close: the key cannot be shown again"))
	return st.Dialog.Render(b.String())
}
