package tui

import (
	"strings"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
)

// Button is one choice of a Choice dialog. Cmd runs when it is chosen
// (after the dialog closes); nil only closes.
type Button struct {
	Label string
	Cmd   tea.Cmd
}

// Choice is a modal question with buttons. The first button is the safe
// one (Cancel) and has the focus when the dialog opens, so enter pressed
// by habit changes nothing; esc is always Cancel.
type Choice struct {
	c       *Common
	title   string
	body    string
	buttons []Button
	focus   int
	width   int
}

// NewConfirm asks before a dangerous action: [Cancel] [yes]; onYes runs
// only when the operator moves to yes and presses enter.
func NewConfirm(c *Common, title, body, yes string, onYes tea.Cmd) *Choice {
	return NewChoice(c, title, body, Button{Label: "Cancel"}, Button{Label: yes, Cmd: onYes})
}

// NewChoice is a dialog with several buttons, the first being Cancel (it
// has the focus).
func NewChoice(c *Common, title, body string, buttons ...Button) *Choice {
	return &Choice{c: c, title: title, body: body, buttons: buttons, width: c.Width}
}

// Focused is the label of the focused button.
func (d *Choice) Focused() string { return d.buttons[d.focus].Label }

// SetSize implements Dialog.
func (d *Choice) SetSize(w, h int) { d.width = w }

var (
	choiceNext = key.NewBinding(key.WithKeys("right", "l", "tab"), key.WithHelp("←/→", "choose"))
	choicePrev = key.NewBinding(key.WithKeys("left", "h", "shift+tab"))
	choiceOK   = key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "select"))
	choiceEsc  = key.NewBinding(key.WithKeys("esc"), key.WithHelp("esc", "cancel"))
)

// ShortHelp implements Dialog.
func (d *Choice) ShortHelp() []key.Binding { return []key.Binding{choiceNext, choiceOK, choiceEsc} }

// Update implements Dialog.
func (d *Choice) Update(msg tea.Msg) (Dialog, tea.Cmd) {
	km, ok := msg.(tea.KeyMsg)
	if !ok {
		return d, nil
	}
	switch {
	case key.Matches(km, choiceNext):
		d.focus = (d.focus + 1) % len(d.buttons)
	case key.Matches(km, choicePrev):
		d.focus = (d.focus + len(d.buttons) - 1) % len(d.buttons)
	case key.Matches(km, choiceEsc):
		return d, CloseDialog()
	case key.Matches(km, choiceOK):
		if cmd := d.buttons[d.focus].Cmd; cmd != nil {
			return d, tea.Sequence(CloseDialog(), cmd)
		}
		return d, CloseDialog()
	}
	return d, nil
}

// View implements Dialog.
func (d *Choice) View() string {
	st := d.c.Styles
	inner := min(max(d.width-6, 20), 76)
	var b strings.Builder
	b.WriteString(st.Title.Render(Truncate(d.title, inner)))
	b.WriteString("\n\n")
	b.WriteString(wrap(d.body, inner))
	b.WriteString("\n\n")
	var btn []string
	for i, bt := range d.buttons {
		label := "[" + bt.Label + "]"
		if i == d.focus {
			btn = append(btn, st.ButtonOn.Render(label))
		} else {
			btn = append(btn, st.Button.Render(label))
		}
	}
	b.WriteString(lipgloss.JoinHorizontal(lipgloss.Top, btn...))
	return st.Dialog.Render(b.String())
}

// wrap breaks plain text into lines of at most w cells at spaces (a word
// longer than w is cut), keeping the text's own line breaks.
func wrap(s string, w int) string {
	var out []string
	for _, para := range strings.Split(s, "\n") {
		line := ""
		for _, word := range strings.Fields(para) {
			for Width(word) > w {
				if line != "" {
					out = append(out, line)
					line = ""
				}
				cut := Truncate(word, w)
				cut = strings.TrimSuffix(cut, "…")
				if cut == "" {
					break
				}
				out = append(out, cut)
				word = word[len(cut):]
			}
			switch {
			case line == "":
				line = word
			case Width(line)+1+Width(word) <= w:
				line += " " + word
			default:
				out = append(out, line)
				line = word
			}
		}
		out = append(out, line)
	}
	return strings.Join(out, "\n")
}
