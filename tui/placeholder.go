package tui

import (
	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
)

// placeholder is a view that is not built yet. It exists so the root
// compiles while a view is being written; delete it when none is left.
type placeholder struct {
	c             *Common
	title, what   string
	width, height int
}

func newPlaceholder(c *Common, title, what string) *placeholder {
	return &placeholder{c: c, title: title, what: what}
}

func (p *placeholder) Init() tea.Cmd                       { return nil }
func (p *placeholder) Update(tea.Msg) (tea.Model, tea.Cmd) { return p, nil }
func (p *placeholder) SetSize(w, h int)                    { p.width, p.height = w, h }
func (p *placeholder) ShortHelp() []key.Binding            { return []key.Binding{p.c.Keys.Back} }
func (p *placeholder) FullHelp() [][]key.Binding           { return [][]key.Binding{p.ShortHelp()} }
func (p *placeholder) Title() string                       { return p.title }
func (p *placeholder) Capturing() bool                     { return false }
func (p *placeholder) Refresh() tea.Cmd                    { return nil }
func (p *placeholder) View() string {
	return p.c.Styles.Muted.Render("  " + p.what + ": not built yet")
}
