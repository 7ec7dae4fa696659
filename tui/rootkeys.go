package tui

import (
	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
)

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
