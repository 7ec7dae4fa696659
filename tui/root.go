package tui

import (
	"context"
	"time"

	"github.com/charmbracelet/bubbles/textinput"
	tea "github.com/charmbracelet/bubbletea"

	"outpost/store"
)

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

// Update implements tea.Model: it routes msg by type to the small
// methods below; keys go through key, which checks the input modes first.
func (r *Root) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		r.c.Width, r.c.Height = msg.Width, msg.Height
		r.resize()
		return r, nil
	case tea.KeyMsg:
		return r, r.key(msg)
	case refreshTickMsg:
		return r, r.refreshTick()
	case RefreshMsg:
		return r, tea.Batch(r.Active().Refresh(), r.loadHeader())
	case headerMsg:
		r.counts, r.countsErr, r.relay = msg.counts, msg.err, msg.relay
		return r, nil
	case PushMsg, PopMsg, SwitchMsg:
		return r, r.navigate(msg)
	case FlashMsg:
		return r, r.setFlash(msg.Text, msg.Err)
	case flashClearMsg:
		if msg.seq == r.flashSeq {
			r.flash, r.flashErr = "", false
		}
		return r, nil
	case OpenDialogMsg, CloseDialogMsg, FormResultMsg:
		return r, r.dialogMsg(msg)
	}
	// Background jobs (a paced bind) belong to no view.
	if cmd, ok := updateJobs(r.c, msg); ok {
		return r, cmd
	}
	return r, r.broadcast(msg)
}

func (r *Root) refreshTick() tea.Cmd {
	var cmds []tea.Cmd
	if r.c.Refresh > 0 {
		cmds = append(cmds, r.tick())
	}
	// Only the active view, and not while a dialog is open: its values
	// must not change under the operator.
	if r.dialog == nil {
		cmds = append(cmds, r.Active().Refresh(), r.loadHeader())
	}
	return tea.Batch(cmds...)
}

// navigate handles PushMsg, PopMsg and SwitchMsg: the view stack.
func (r *Root) navigate(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case PushMsg:
		msg.View.SetSize(r.c.Width, r.bodyHeight())
		r.stack = append(r.stack, msg.View)
		return msg.View.Init()
	case PopMsg:
		if len(r.stack) > 1 {
			r.stack = r.stack[:len(r.stack)-1]
			return r.Active().Refresh()
		}
	case SwitchMsg:
		msg.View.SetSize(r.c.Width, r.bodyHeight())
		r.stack = []View{msg.View}
		return msg.View.Init()
	}
	return nil
}

// dialogMsg handles OpenDialogMsg, CloseDialogMsg and FormResultMsg.
func (r *Root) dialogMsg(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case OpenDialogMsg:
		r.dialog = msg.Dialog
		r.dialog.SetSize(r.c.Width, r.bodyHeight())
		if in, ok := r.dialog.(interface{ Init() tea.Cmd }); ok {
			return in.Init()
		}
	case CloseDialogMsg:
		r.dialog = nil
	case FormResultMsg:
		if r.dialog != nil {
			var cmd tea.Cmd
			r.dialog, cmd = r.dialog.Update(msg)
			return cmd
		}
		// The form was closed meanwhile: still say what happened.
		if msg.Err != nil {
			return FlashError(msg.Err)
		}
		return tea.Batch(Flash(msg.Flash), RefreshNow())
	}
	return nil
}

// broadcast gives everything else (pages, action results) to the dialog
// and to every view on the stack: each picks the messages tagged with its
// id.
func (r *Root) broadcast(msg tea.Msg) tea.Cmd {
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
	return tea.Batch(cmds...)
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
