package tui

import (
	"strings"

	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/textinput"
	tea "github.com/charmbracelet/bubbletea"
)

// Field kinds.
const (
	FieldText   = iota // free text
	FieldChoice        // one of Choices, changed with ←/→
)

// Field is one form field.
type Field struct {
	Key, Label  string
	Kind        int
	Value       string   // initial value
	Choices     []string // FieldChoice
	Placeholder string
	Hint        string // shown after the label, e.g. "fixed after creation"
	// Hidden hides the field for the current values (e.g. cache fields in
	// forward mode); hidden fields are still in Values.
	Hidden func(v Values) bool
}

// Values are a form's field values by Key.
type Values map[string]string

// FormResultMsg is what a form's Submit command returns. Err (a store
// refusal) keeps the form open with the message; otherwise the form
// closes, Flash is shown and Then (if any) is delivered to the views.
type FormResultMsg struct {
	Form  int // Form.ID()
	Err   error
	Flash string
	Then  tea.Msg
}

// Form is a small modal form: text and choice fields, a fixed note, live
// warnings computed from the values as they change, and a validation
// message. Submit parses the values; it returns either an error (shown,
// nothing sent) or a command that calls the store and returns a
// FormResultMsg (use Form.Result to build it).
type Form struct {
	c      *Common
	id     int
	title  string
	fields []Field
	inputs []textinput.Model
	focus  int

	// Note is fixed text under the title (a rule to know before submitting).
	Note string
	// Live returns lines (warnings, derived facts) for the current values,
	// redrawn on each change; say "warning: " in the line where it is one.
	Live func(v Values) []string
	// Submit validates v and returns the store call.
	Submit func(v Values) (tea.Cmd, error)

	err     string
	pending bool
	width   int
}

// NewForm builds a form; set Note, Live and Submit before opening it.
func NewForm(c *Common, title string, fields ...Field) *Form {
	f := &Form{c: c, id: c.NewID(), title: title, fields: fields, width: c.Width}
	for _, fd := range fields {
		in := newInput(c.Styles)
		in.Prompt = ""
		in.CharLimit = 256
		in.Placeholder = fd.Placeholder
		in.SetValue(fd.Value)
		f.inputs = append(f.inputs, in)
	}
	f.focus = -1
	f.next(1)
	return f
}

// ID tags the FormResultMsg of this form.
func (f *Form) ID() int { return f.id }

// Err is the validation or refusal message shown ("" when none).
func (f *Form) Err() string { return f.err }

// Values returns every field's current value.
func (f *Form) Values() Values {
	v := Values{}
	for i, fd := range f.fields {
		v[fd.Key] = strings.TrimSpace(f.inputs[i].Value())
	}
	return v
}

// Set changes a field's value (tests, and views prefilling a form).
func (f *Form) Set(k, value string) {
	for i, fd := range f.fields {
		if fd.Key == k {
			f.inputs[i].SetValue(value)
		}
	}
}

// Result builds the message a Submit command returns.
func (f *Form) Result(err error, flash string, then tea.Msg) FormResultMsg {
	return FormResultMsg{Form: f.id, Err: err, Flash: flash, Then: then}
}

// SetSize implements Dialog.
func (f *Form) SetSize(w, h int) { f.width = w }

var (
	formNext   = key.NewBinding(key.WithKeys("tab", "down"), key.WithHelp("tab/↓", "next field"))
	formPrev   = key.NewBinding(key.WithKeys("shift+tab", "up"), key.WithHelp("shift+tab/↑", "previous"))
	formChoose = key.NewBinding(key.WithKeys("left", "right"), key.WithHelp("←/→", "choose"))
	formSubmit = key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "submit"))
	formCancel = key.NewBinding(key.WithKeys("esc"), key.WithHelp("esc", "cancel"))
)

// ShortHelp implements Dialog.
func (f *Form) ShortHelp() []key.Binding {
	return []key.Binding{formNext, formPrev, formChoose, formSubmit, formCancel}
}

func (f *Form) hidden(i int, v Values) bool {
	return f.fields[i].Hidden != nil && f.fields[i].Hidden(v)
}

// next moves the focus to the next visible field in direction dir.
func (f *Form) next(dir int) {
	v := f.Values()
	n := len(f.fields)
	for step := 1; step <= n; step++ {
		j := ((f.focus+dir*step)%n + n) % n
		if !f.hidden(j, v) {
			f.setFocus(j)
			return
		}
	}
}

func (f *Form) setFocus(j int) {
	for i := range f.inputs {
		if i == j && f.fields[i].Kind == FieldText {
			f.inputs[i].Focus()
		} else {
			f.inputs[i].Blur()
		}
	}
	f.focus = j
}

// Update implements Dialog.
func (f *Form) Update(msg tea.Msg) (Dialog, tea.Cmd) {
	switch msg := msg.(type) {
	case FormResultMsg:
		if msg.Form != f.id {
			return f, nil
		}
		f.pending = false
		if msg.Err != nil {
			f.err = errText(msg.Err)
			return f, FlashError(msg.Err)
		}
		cmds := []tea.Cmd{CloseDialog(), RefreshNow()}
		if msg.Flash != "" {
			cmds = append(cmds, Flash(msg.Flash))
		}
		if msg.Then != nil {
			then := msg.Then
			cmds = append(cmds, func() tea.Msg { return then })
		}
		return f, tea.Sequence(cmds...)
	case tea.KeyMsg:
		return f, f.key(msg)
	}
	return f, nil
}

func (f *Form) key(msg tea.KeyMsg) tea.Cmd {
	switch {
	case key.Matches(msg, formCancel):
		return CloseDialog()
	case key.Matches(msg, formNext):
		f.next(1)
		return nil
	case key.Matches(msg, formPrev):
		f.next(-1)
		return nil
	case key.Matches(msg, formSubmit):
		if f.pending || f.Submit == nil {
			return nil
		}
		cmd, err := f.Submit(f.Values())
		if err != nil {
			f.err = errText(err)
			return nil
		}
		f.err = ""
		f.pending = true
		return cmd
	}
	if f.focus < 0 {
		return nil
	}
	fd := f.fields[f.focus]
	if fd.Kind == FieldChoice {
		if key.Matches(msg, formChoose) && len(fd.Choices) > 0 {
			dir := 1
			if msg.String() == "left" {
				dir = -1
			}
			cur := 0
			for i, ch := range fd.Choices {
				if ch == f.inputs[f.focus].Value() {
					cur = i
				}
			}
			cur = ((cur+dir)%len(fd.Choices) + len(fd.Choices)) % len(fd.Choices)
			f.inputs[f.focus].SetValue(fd.Choices[cur])
			f.err = ""
		}
		return nil
	}
	var cmd tea.Cmd
	f.inputs[f.focus], cmd = f.inputs[f.focus].Update(msg)
	f.err = ""
	return cmd
}

// View implements Dialog.
func (f *Form) View() string {
	st := f.c.Styles
	inner := min(max(f.width-6, 30), 78)
	v := f.Values()
	labelW := 0
	for i, fd := range f.fields {
		if !f.hidden(i, v) {
			labelW = max(labelW, Width(fd.Label))
		}
	}
	inputW := max(inner-labelW-3, 10)
	var b strings.Builder
	b.WriteString(st.Title.Render(Truncate(f.title, inner)))
	if f.Note != "" {
		b.WriteString("\n" + st.Muted.Render(wrap(f.Note, inner)))
	}
	b.WriteString("\n")
	for i, fd := range f.fields {
		if f.hidden(i, v) {
			continue
		}
		mark := "  "
		if i == f.focus {
			mark = "> "
		}
		b.WriteString("\n" + mark + st.Label.Render(Fit(fd.Label, labelW)) + " ")
		var val string
		if fd.Kind == FieldChoice {
			val = "< " + f.inputs[i].Value() + " >"
			if i == f.focus {
				val = st.InputOn.Render(val)
			}
		} else {
			in := f.inputs[i]
			in.Width = inputW - 1
			val = in.View()
			if i != f.focus && f.inputs[i].Value() == "" && fd.Placeholder == "" {
				val = st.Muted.Render("-")
			}
		}
		b.WriteString(val)
		if fd.Hint != "" && i == f.focus {
			b.WriteString("\n  " + strings.Repeat(" ", labelW+1) + st.Muted.Render(Truncate(fd.Hint, inputW)))
		}
	}
	if f.Live != nil {
		for _, w := range f.Live(v) {
			b.WriteString("\n" + st.Warn.Render(wrap(w, inner)))
		}
	}
	if f.err != "" {
		b.WriteString("\n" + st.FlashErr.Render(wrap("refused: "+Clean(f.err), inner)))
	}
	if f.pending {
		b.WriteString("\n" + st.Muted.Render("saving…"))
	}
	return st.Dialog.Render(b.String())
}
