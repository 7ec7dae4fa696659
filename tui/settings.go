package tui

import (
	"context"
	"fmt"
	"time"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"

	"outpost/store"
)

// SettingsView shows the timing settings (store.Settings) with their
// defaults and meaning; `e` edits the selected one in a form. The store
// validates (Settings.Validate) and running relays pick the change up
// within about a second.
type SettingsView struct {
	c *Common
	tableBody
}

// settingItem is a row's data.
type settingItem struct {
	store.SettingField
	value, def time.Duration
}

func newSettingsView(c *Common) View { return NewSettingsView(c) }

// NewSettingsView lists the settings.
func NewSettingsView(c *Common) *SettingsView {
	v := &SettingsView{c: c}
	v.below = 2
	cols := []Column{
		{Title: "SETTING", Width: 19},
		{Title: "VALUE", Width: 8},
		{Title: "DEFAULT", Width: 8, HideBelow: 90},
		{Title: "MEANING", Width: 20, Flex: 1},
	}
	v.table = NewTable(c, cols, func(ctx context.Context, b Backend, q Query) (Page, error) {
		cur, def := b.Settings(), store.DefaultSettings()
		var items []settingItem
		for _, s := range store.SettingFields() {
			items = append(items, settingItem{SettingField: s, value: *s.Of(&cur), def: *s.Of(&def)})
		}
		return PageOf(items, q, func(it settingItem, f string) bool { return Contains(f, it.Key, it.Meaning) }, nil,
			func(it settingItem) Row {
				tone := ToneNone
				if it.value != it.def {
					tone = ToneWarn
				}
				return Row{ID: it.Key, Cells: []string{it.Key, store.FormatDuration(it.value), store.FormatDuration(it.def), it.Meaning}, Tones: []Tone{1: tone}, Data: it}
			}), nil
	})
	return v
}

// Title implements View.
func (v *SettingsView) Title() string { return "Settings" }

// ShortHelp implements help.KeyMap.
func (v *SettingsView) ShortHelp() []key.Binding {
	k := v.c.Keys
	return []key.Binding{withHelp(k.Edit, "edit value"), k.Up, k.Down}
}

// FullHelp implements help.KeyMap.
func (v *SettingsView) FullHelp() [][]key.Binding {
	k := v.c.Keys
	return [][]key.Binding{{withHelp(k.Edit, "edit the selected setting (validated by the store; running relays apply it within a second)")}, tableHelp(k)}
}

// Update implements tea.Model.
func (v *SettingsView) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	if cmd, ok := v.table.Update(msg); ok {
		return v, cmd
	}
	if km, ok := msg.(tea.KeyMsg); ok && key.Matches(km, v.c.Keys.Edit) {
		if it, ok := v.table.SelectedData().(settingItem); ok {
			return v, editSetting(v.c, it)
		}
	}
	return v, nil
}

// editSetting opens the form for one setting.
func editSetting(c *Common, it settingItem) tea.Cmd {
	if cmd := readOnly(c); cmd != nil {
		return cmd
	}
	f := NewForm(c, "Setting "+it.Key, Field{Key: "value", Label: "Value", Value: store.FormatDuration(it.value), Hint: "e.g. 30s, 12h or 7d"})
	f.Note = it.Meaning + fmt.Sprintf(" (default %s).", store.FormatDuration(it.def))
	f.Submit = func(v Values) (tea.Cmd, error) {
		if err := readOnlyErr(c); err != nil {
			return nil, err
		}
		d, err := parseDuration(v["value"])
		if err != nil {
			return nil, err
		}
		return c.Call(func(ctx context.Context, b Backend) tea.Msg {
			s := b.Settings()
			*it.Of(&s) = d
			if err := s.Validate(); err != nil {
				return f.Result(err, "", nil)
			}
			if err := b.SetSettings(ctx, s); err != nil {
				return f.Result(err, "", nil)
			}
			return f.Result(nil, fmt.Sprintf("%s = %s: running relays apply it within a second", it.Key, store.FormatDuration(d)), nil)
		}), nil
	}
	return OpenDialog(f)
}

// View implements tea.Model.
func (v *SettingsView) View() string {
	st := v.c.Styles
	note := "e edits the selected value; the command line: outpost settings set NAME=VALUE."
	return clip(v.table.View(), v.w, max(v.h-2, 2)) + "\n\n" + st.Muted.Render(Truncate(note, v.w))
}
