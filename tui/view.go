package tui

import (
	"reflect"
	"time"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"

	"outpost/store"
)

// View is one screen of the dashboard (clusters, a cluster, agents, ...).
// The root keeps a stack of them: enter pushes, esc pops, a `:` command
// replaces the stack.
type View interface {
	tea.Model // Init, Update (returns the View itself), View
	SetSize(width, height int)
	ShortHelp() []key.Binding  // footer
	FullHelp() [][]key.Binding // `?`
	Title() string             // breadcrumb segment, plain text
	// Capturing is true while the view takes every key itself (a filter
	// being typed): the root then handles no global key but ctrl+c.
	Capturing() bool
	// Refresh reloads the view's data; the root calls it about every 2 s
	// for the active view only, never while a dialog is open.
	Refresh() tea.Cmd
}

// Escaper is implemented by views that use esc themselves before it means
// "back" (clear an applied filter, leave a tab). Escape reports whether it
// consumed the key.
type Escaper interface {
	Escape() (tea.Cmd, bool)
}

// Messages a view (or a dialog) returns from its commands to drive the
// root. Use the helper functions below rather than building them.
type (
	// PushMsg opens View on top of the current one (enter / drill down).
	PushMsg struct{ View View }
	// PopMsg goes back one view (esc); the home view is never popped.
	PopMsg struct{}
	// SwitchMsg replaces the whole stack (`:` commands).
	SwitchMsg struct{ View View }
	// FlashMsg shows a line that clears itself after a few seconds.
	FlashMsg struct {
		Text string
		Err  bool
	}
	// OpenDialogMsg shows a modal dialog (confirm, form); keys go to it
	// and live refresh pauses until it closes.
	OpenDialogMsg struct{ Dialog Dialog }
	// CloseDialogMsg closes the open dialog.
	CloseDialogMsg struct{}
	// RefreshMsg asks the active view (and the header) to reload now, e.g.
	// after an action succeeded.
	RefreshMsg struct{}
)

// Push returns a command opening v.
func Push(v View) tea.Cmd { return ui(PushMsg{v}) }

// Pop returns a command going back one view.
func Pop() tea.Cmd { return ui(PopMsg{}) }

// Switch returns a command replacing the stack with v.
func Switch(v View) tea.Cmd { return ui(SwitchMsg{v}) }

// Flash returns a command showing an informational line.
func Flash(text string) tea.Cmd { return ui(FlashMsg{Text: text}) }

// FlashError returns a command showing err's operator-facing message (the
// store's refusal) as an error line.
func FlashError(err error) tea.Cmd {
	return ui(FlashMsg{Text: store.ErrorMessage(err), Err: true})
}

// OpenDialog returns a command showing d.
func OpenDialog(d Dialog) tea.Cmd { return ui(OpenDialogMsg{d}) }

// CloseDialog returns a command closing the open dialog.
func CloseDialog() tea.Cmd { return ui(CloseDialogMsg{}) }

// RefreshNow returns a command asking the active view to reload.
func RefreshNow() tea.Cmd { return ui(RefreshMsg{}) }

// Dialog is a modal box drawn over the body: a confirmation, a choice or
// a form. Update returns the dialog itself. A dialog with an Init() tea.Cmd
// method has it run when it opens (to load its data).
type Dialog interface {
	Update(tea.Msg) (Dialog, tea.Cmd)
	View() string
	SetSize(width, height int)
	ShortHelp() []key.Binding
}

// uiMsg is the command of the helpers above. They only drive the root,
// so the root runs them at once instead of in a goroutine (Root.settle);
// a method value has one code pointer wherever it is made, which is how
// isUI recognises them.
type uiMsg struct{ msg tea.Msg }

func (u uiMsg) run() tea.Msg { return u.msg }

func ui(m tea.Msg) tea.Cmd { return uiMsg{m}.run }

var uiCode = reflect.ValueOf(ui(nil)).Pointer()

// isUI reports whether cmd is one of the helpers' commands.
func isUI(cmd tea.Cmd) bool { return cmd != nil && reflect.ValueOf(cmd).Pointer() == uiCode }

// refreshTickMsg drives live refresh.
type refreshTickMsg struct{ at time.Time }

// flashClearMsg clears the flash line if it is still flash seq.
type flashClearMsg struct{ seq int }
