package tui

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/textinput"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"

	"outpost/store"
)

// commands are the `:` commands, in completion order.
var commands = []struct {
	name, help string
}{
	{"clusters", "clusters (home)"},
	{"proxies", "proxy servers of every cluster"},
	{"agents", "all agents / assets"},
	{"install", "install commands"},
	{"audit", "audit log"},
	{"settings", "timing settings"},
	{"quit", "leave the dashboard"},
}

// headerMsg carries the header's fleet counts.
type headerMsg struct {
	counts store.AgentCounts
	relay  *RelayState
	err    error
}

// Root is the top model: header, the view stack, a dialog on top, the
// command line, the flash line and the footer. It routes keys: a dialog
// first, then the command line, the help screen, a capturing view, then
// the global keys (q, :, ?, esc), then the active view.
type Root struct {
	c      *Common
	stack  []View
	home   View // kept: `:clusters` comes back to it with its cursor and rows
	dialog Dialog

	cmdMode bool
	cmdIn   textinput.Model
	help    bool

	flash    string
	flashErr bool
	flashSeq int

	counts    store.AgentCounts
	countsErr error
	relay     *RelayState

	quitting bool
}

// NewRoot returns the root with home as the first view (normally
// NewClustersView(c)).
func NewRoot(c *Common, home View) *Root {
	in := newInput(c.Styles)
	in.Prompt = ":"
	in.CharLimit = 32
	in.ShowSuggestions = true
	var names []string
	for _, cmd := range commands {
		names = append(names, cmd.name)
	}
	in.SetSuggestions(names)
	r := &Root{c: c, cmdIn: in, home: home}
	r.stack = []View{home}
	return r
}

// Active is the view on top of the stack.
func (r *Root) Active() View { return r.stack[len(r.stack)-1] }

// Dialog is the open dialog, nil when none.
func (r *Root) Dialog() Dialog { return r.dialog }

// Stack returns the open views, home first.
func (r *Root) Stack() []View { return r.stack }

// Flash is the current flash line and whether it is an error.
func (r *Root) Flash() (string, bool) { return r.flash, r.flashErr }

// Init implements tea.Model.
func (r *Root) Init() tea.Cmd {
	cmds := []tea.Cmd{r.Active().Init(), r.loadHeader()}
	if r.c.Refresh > 0 {
		cmds = append(cmds, r.tick())
	}
	return tea.Batch(cmds...)
}

func (r *Root) tick() tea.Cmd {
	return tea.Tick(r.c.Refresh, func(t time.Time) tea.Msg { return refreshTickMsg{t} })
}

func (r *Root) loadHeader() tea.Cmd {
	acct, relay := r.c.Account.ID, r.c.Relay
	return r.c.Call(func(ctx context.Context, b Backend) tea.Msg {
		m := headerMsg{}
		// Settings may be changed by another process (the CLI, another
		// dashboard): statuses are derived with the current ones.
		if _, err := b.ReloadSettings(ctx); err != nil {
			m.err = err
			return m
		}
		m.counts, m.err = b.CountAgents(ctx, acct)
		if relay != nil {
			st := relay(ctx)
			m.relay = &st
		}
		return m
	})
}

// bodyHeight is what the active view gets: everything but the header,
// the crumb line, the flash line and the footer.
func (r *Root) bodyHeight() int { return max(r.c.Height-4, 1) }

func (r *Root) resize() {
	for _, v := range r.stack {
		v.SetSize(r.c.Width, r.bodyHeight())
	}
	if r.dialog != nil {
		r.dialog.SetSize(r.c.Width, r.bodyHeight())
	}
	r.cmdIn.Width = max(r.c.Width-4, 8)
}

// Update implements tea.Model.
func (r *Root) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		r.c.Width, r.c.Height = msg.Width, msg.Height
		r.resize()
		return r, nil
	case tea.KeyMsg:
		return r, r.key(msg)
	case refreshTickMsg:
		var cmds []tea.Cmd
		if r.c.Refresh > 0 {
			cmds = append(cmds, r.tick())
		}
		// Only the active view, and not while a dialog is open: its values
		// must not change under the operator.
		if r.dialog == nil {
			cmds = append(cmds, r.Active().Refresh(), r.loadHeader())
		}
		return r, tea.Batch(cmds...)
	case RefreshMsg:
		return r, tea.Batch(r.Active().Refresh(), r.loadHeader())
	case headerMsg:
		r.counts, r.countsErr, r.relay = msg.counts, msg.err, msg.relay
		return r, nil
	case PushMsg:
		msg.View.SetSize(r.c.Width, r.bodyHeight())
		r.stack = append(r.stack, msg.View)
		return r, msg.View.Init()
	case PopMsg:
		if len(r.stack) > 1 {
			r.stack = r.stack[:len(r.stack)-1]
			return r, r.Active().Refresh()
		}
		return r, nil
	case SwitchMsg:
		msg.View.SetSize(r.c.Width, r.bodyHeight())
		r.stack = []View{msg.View}
		return r, msg.View.Init()
	case FlashMsg:
		return r, r.setFlash(msg.Text, msg.Err)
	case flashClearMsg:
		if msg.seq == r.flashSeq {
			r.flash, r.flashErr = "", false
		}
		return r, nil
	case OpenDialogMsg:
		r.dialog = msg.Dialog
		r.dialog.SetSize(r.c.Width, r.bodyHeight())
		if in, ok := r.dialog.(interface{ Init() tea.Cmd }); ok {
			return r, in.Init()
		}
		return r, nil
	case CloseDialogMsg:
		r.dialog = nil
		return r, nil
	case FormResultMsg:
		if r.dialog != nil {
			var cmd tea.Cmd
			r.dialog, cmd = r.dialog.Update(msg)
			return r, cmd
		}
		// The form was closed meanwhile: still say what happened.
		if msg.Err != nil {
			return r, FlashError(msg.Err)
		}
		return r, tea.Batch(Flash(msg.Flash), RefreshNow())
	}
	// Background jobs (a paced bind) belong to no view.
	if cmd, ok := updateJobs(r.c, msg); ok {
		return r, cmd
	}
	// Everything else (pages, action results) goes to the dialog and to
	// every view on the stack: each picks the messages tagged with its id.
	var cmds []tea.Cmd
	if r.dialog != nil {
		var cmd tea.Cmd
		r.dialog, cmd = r.dialog.Update(msg)
		cmds = append(cmds, cmd)
	}
	for i := len(r.stack) - 1; i >= 0; i-- {
		m, cmd := r.stack[i].Update(msg)
		r.stack[i] = m.(View)
		cmds = append(cmds, cmd)
	}
	return r, tea.Batch(cmds...)
}

func (r *Root) setFlash(text string, isErr bool) tea.Cmd {
	r.flashSeq++
	r.flash, r.flashErr = Clean(text), isErr
	seq := r.flashSeq
	d := r.c.FlashFor
	if d <= 0 {
		return nil
	}
	if isErr {
		d *= 2
	}
	return tea.Tick(d, func(time.Time) tea.Msg { return flashClearMsg{seq} })
}

func (r *Root) key(msg tea.KeyMsg) tea.Cmd {
	k := r.c.Keys
	if key.Matches(msg, k.ForceQuit) {
		r.quitting = true
		return tea.Quit
	}
	if r.dialog != nil {
		var cmd tea.Cmd
		r.dialog, cmd = r.dialog.Update(msg)
		return r.settle(cmd)
	}
	if r.cmdMode {
		return r.commandKey(msg)
	}
	if r.help {
		if key.Matches(msg, k.Help, k.Back, k.Quit) {
			r.help = false
		}
		return nil
	}
	v := r.Active()
	if !v.Capturing() {
		switch {
		case key.Matches(msg, k.Quit):
			if r.c.Jobs.Binding() {
				return quitBindConfirm(r.c) // q by habit must not drop a bind
			}
			r.quitting = true
			return tea.Quit
		case key.Matches(msg, k.Command):
			r.cmdMode = true
			r.cmdIn.SetValue("")
			return r.cmdIn.Focus()
		case key.Matches(msg, k.Help):
			r.help = true
			return nil
		case key.Matches(msg, cancelKey) && r.c.Jobs.Binding():
			return stopBindConfirm(r.c)
		case key.Matches(msg, k.Back):
			if e, ok := v.(Escaper); ok {
				if cmd, used := e.Escape(); used {
					return cmd
				}
			}
			if len(r.stack) > 1 {
				r.stack = r.stack[:len(r.stack)-1]
				return r.Active().Refresh()
			}
			return nil
		}
	}
	m, cmd := v.Update(msg)
	r.stack[len(r.stack)-1] = m.(View)
	return r.settle(cmd)
}

// settle applies at once a key's result that only drives the root (open
// a dialog, push a view, ...; see isUI) instead of returning it as a
// command: keys typed or pasted right after it then reach what it opened,
// not the view underneath.
func (r *Root) settle(cmd tea.Cmd) tea.Cmd {
	if !isUI(cmd) {
		return cmd
	}
	_, next := r.Update(cmd())
	return next
}

// complete returns the commands starting with prefix.
func complete(prefix string) []string {
	var out []string
	for _, c := range commands {
		if strings.HasPrefix(c.name, strings.ToLower(prefix)) {
			out = append(out, c.name)
		}
	}
	return out
}

func (r *Root) commandKey(msg tea.KeyMsg) tea.Cmd {
	switch msg.Type {
	case tea.KeyEsc:
		r.cmdMode = false
		r.cmdIn.Blur()
		return nil
	case tea.KeyTab:
		if m := complete(strings.TrimSpace(r.cmdIn.Value())); len(m) > 0 {
			r.cmdIn.SetValue(m[0])
			r.cmdIn.CursorEnd()
		}
		return nil
	case tea.KeyEnter:
		r.cmdMode = false
		r.cmdIn.Blur()
		return r.runCommand(strings.TrimSpace(r.cmdIn.Value()))
	}
	var cmd tea.Cmd
	r.cmdIn, cmd = r.cmdIn.Update(msg)
	return cmd
}

// runCommand opens the view a `:` command names; a unique prefix is enough.
func (r *Root) runCommand(s string) tea.Cmd {
	if s == "" {
		return nil
	}
	name := strings.ToLower(s)
	if name == "q" || name == "q!" {
		name = "quit"
	}
	if m := complete(name); len(m) == 1 || (len(m) > 0 && m[0] == name) {
		name = m[0]
	} else {
		var all []string
		for _, c := range commands {
			all = append(all, c.name)
		}
		return r.setFlash(fmt.Sprintf("unknown command %q: want %s", s, strings.Join(all, ", ")), true)
	}
	var v View
	switch name {
	case "quit":
		r.quitting = true
		return tea.Quit
	case "clusters":
		v = r.home
	case "proxies":
		v = NewProxiesView(r.c, 0)
	case "agents":
		v = newAgentsView(r.c, 0)
	case "install":
		v = newInstallView(r.c)
	case "audit":
		v = newAuditView(r.c)
	case "settings":
		v = newSettingsView(r.c)
	}
	return Switch(v)
}

// View implements tea.Model.
func (r *Root) View() string {
	if r.quitting {
		return ""
	}
	w := r.c.Width
	st := r.c.Styles
	var b strings.Builder
	b.WriteString(r.header(w))
	b.WriteByte('\n')
	if r.cmdMode {
		b.WriteString(clipLine(r.cmdIn.View(), w) + st.Muted.Render(clipLine("   "+strings.Join(complete(r.cmdIn.Value()), " "), max(w-Width(r.cmdIn.Value())-4, 0))))
	} else {
		crumbs := r.crumbs()
		room := w - Width(stripStyle(crumbs)) - 2
		rt, style := r.relayText(room), r.relayStyle()
		if bl := bindLine(r.c); bl != "" {
			rt, style = Truncate(bl, room), st.Warn // a running bind matters more than the relay line
		}
		if room > 0 && rt != "" {
			crumbs += strings.Repeat(" ", max(w-Width(stripStyle(crumbs))-Width(rt), 1)) + style.Render(rt)
		}
		b.WriteString(clipLine(crumbs, w))
	}
	b.WriteByte('\n')
	bh := r.bodyHeight()
	var body string
	switch {
	case r.help:
		body = r.fullHelp(w)
	case r.dialog != nil:
		body = lipgloss.Place(w, bh, lipgloss.Center, lipgloss.Center, r.dialog.View())
	default:
		body = r.Active().View()
	}
	b.WriteString(clip(body, w, bh))
	b.WriteByte('\n')
	if r.flash != "" {
		style, prefix := st.Flash, ""
		if r.flashErr {
			style, prefix = st.FlashErr, "error: "
		}
		b.WriteString(style.Render(Truncate(prefix+r.flash, w)))
	}
	b.WriteByte('\n')
	b.WriteString(r.footer(w))
	return b.String()
}

func (r *Root) header(w int) string {
	st := r.c.Styles
	parts := []string{"outpost " + r.c.Version, "account " + Clean(r.c.AccountLabel())}
	if r.countsErr != nil {
		parts = append(parts, "counts: "+Clean(errText(r.countsErr)))
	} else {
		c := r.counts
		parts = append(parts, fmt.Sprintf("agents %d/%d online", c.Online, c.Total), fmt.Sprintf("at risk %d", c.AtRisk),
			fmt.Sprintf("duplicates %d", c.Duplicates))
	}
	if r.c.ReadOnly {
		parts = append(parts, "READ-ONLY")
	}
	if r.relay != nil && r.relay.Damage != "" {
		parts = append(parts, "DAMAGE "+Clean(r.relay.Damage))
	}
	return st.Header.Render(Fit(" "+strings.Join(parts, " │ "), w))
}

// relayText is the local relay's state, shown right of the crumbs.
func (r *Root) relayText(room int) string {
	if r.relay == nil {
		return "relay unknown"
	}
	t := "relay " + Clean(r.relay.Text)
	if d := Clean(r.relay.Detail); d != "" && Width(t)+1+Width(d) <= room {
		t += " " + d
	}
	return Truncate(t, room)
}

func (r *Root) relayStyle() lipgloss.Style {
	if r.relay != nil && r.relay.Running {
		return r.c.Styles.Good
	}
	return r.c.Styles.Bad
}

func (r *Root) crumbs() string {
	st := r.c.Styles
	var names []string
	for _, v := range r.stack {
		names = append(names, Clean(v.Title()))
	}
	return st.Crumb.Render(strings.Join(names, " › "))
}

func (r *Root) footer(w int) string {
	st := r.c.Styles
	var binds, tail []key.Binding
	if r.dialog != nil {
		binds = r.dialog.ShortHelp()
	} else if r.help {
		binds = []key.Binding{r.c.Keys.Back}
	} else {
		binds = r.Active().ShortHelp()
		tail = []key.Binding{r.c.Keys.Help, r.c.Keys.Command, r.c.Keys.Quit}
	}
	item := func(b key.Binding) (string, int) {
		hp := b.Help()
		if !b.Enabled() || hp.Key == "" {
			return "", 0
		}
		return st.HelpKey.Render(hp.Key) + " " + st.HelpDesc.Render(hp.Desc), Width(hp.Key) + 1 + Width(hp.Desc) + 2
	}
	// The global keys are always shown; the view's fill what is left.
	var end []string
	used := 0
	for _, b := range tail {
		if s, n := item(b); n > 0 && used+n <= w {
			end = append(end, s)
			used += n
		}
	}
	var parts []string
	for _, b := range binds {
		s, n := item(b)
		if n == 0 {
			continue
		}
		if used+n > w {
			break
		}
		used += n
		parts = append(parts, s)
	}
	return strings.Join(append(parts, end...), "  ")
}

// fullHelp is the `?` screen: the view's keys on the left, the global
// keys and the commands on the right (one column when narrow).
func (r *Root) fullHelp(w int) string {
	st := r.c.Styles
	colW := w
	if w >= 80 {
		colW = w / 2
	}
	keyW := 10 // "q / ctrl+c"
	for _, group := range r.Active().FullHelp() {
		for _, kb := range group {
			if kb.Enabled() {
				keyW = max(keyW, Width(kb.Help().Key))
			}
		}
	}
	keyW = min(keyW, 14)
	line := func(b *strings.Builder, k, d string) {
		b.WriteString(clipLine(" "+st.HelpKey.Render(Fit(k, keyW))+" "+st.HelpDesc.Render(Truncate(d, max(colW-keyW-3, 4))), colW) + "\n")
	}
	var left, right strings.Builder
	left.WriteString(st.Title.Render(Truncate("Keys of "+Clean(r.Active().Title()), colW)) + "\n")
	seen := map[string]bool{}
	for _, group := range r.Active().FullHelp() {
		for _, kb := range group {
			if !kb.Enabled() || kb.Help().Key == "" || seen[kb.Help().Key] {
				continue
			}
			seen[kb.Help().Key] = true
			line(&left, kb.Help().Key, kb.Help().Desc)
		}
	}
	right.WriteString(st.Title.Render("Everywhere") + "\n")
	line(&right, "esc", "back (clears a filter first)")
	line(&right, ":", "command mode (tab completes)")
	line(&right, "?", "this help (esc closes)")
	line(&right, "q / ctrl+c", "quit")
	right.WriteString(st.Title.Render("Commands") + "\n")
	for _, c := range commands {
		line(&right, ":"+c.name, c.help)
	}
	if r.c.ReadOnly {
		right.WriteString(st.Warn.Render("read-only: no key changes anything") + "\n")
	}
	if colW == w {
		return left.String() + "\n" + right.String()
	}
	l := strings.Split(strings.TrimSuffix(left.String(), "\n"), "\n")
	rt := strings.Split(strings.TrimSuffix(right.String(), "\n"), "\n")
	var b strings.Builder
	for i := 0; i < max(len(l), len(rt)); i++ {
		a, c := "", ""
		if i < len(l) {
			a = l[i]
		}
		if i < len(rt) {
			c = rt[i]
		}
		b.WriteString(a + strings.Repeat(" ", max(colW-Width(stripStyle(a)), 0)) + c + "\n")
	}
	return b.String()
}
