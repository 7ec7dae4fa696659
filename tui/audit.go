package tui

import (
	"context"
	"strconv"
	"strings"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"

	"outpost/store"
)

// AuditView is the audit log, newest first, paged from the store
// (store.ListAuditPage); `/` filters the loaded page's text.
type AuditView struct {
	c *Common
	tableBody
}

func newAuditView(c *Common) View { return NewAuditView(c) }

// NewAuditView lists the audit log.
func NewAuditView(c *Common) *AuditView {
	v := &AuditView{c: c}
	v.below = 1 // the last line shows the selected entry whole
	cols := []Column{
		{Title: "ID", Width: 4, Right: true, HideBelow: 90},
		{Title: "AT", Width: 19},
		{Title: "ACTOR", Width: 8, Flex: 1},
		{Title: "ACTION", Width: 12, Flex: 1},
		{Title: "TARGET", Width: 10, Flex: 2},
		{Title: "DETAIL", Width: 10, Flex: 4, HideBelow: 100},
	}
	v.table = NewTable(c, cols, func(ctx context.Context, b Backend, q Query) (Page, error) {
		if q.Filter != "" {
			// The filter reads a bounded window of the newest entries.
			p, err := b.ListAuditPage(ctx, 0, 1000)
			if err != nil {
				return Page{}, err
			}
			return PageOf(p.Entries, q, matchAudit, nil, auditRow), nil
		}
		p, err := b.ListAuditPage(ctx, q.Offset, q.Limit)
		if err != nil {
			return Page{}, err
		}
		page := Page{Total: p.Total}
		for _, e := range p.Entries {
			page.Rows = append(page.Rows, auditRow(e))
		}
		return page, nil
	})
	v.table.Empty = "the audit log is empty: every change made with the CLI or the dashboard is recorded here"
	return v
}

func matchAudit(e store.AuditEntry, f string) bool {
	return Contains(f, e.Actor, e.Action, e.Target, e.Detail)
}

func auditRow(e store.AuditEntry) Row {
	id := strconv.FormatInt(e.ID, 10)
	return Row{ID: id, Cells: []string{id, e.At.Local().Format("2006-01-02 15:04:05"), e.Actor, e.Action, e.Target, e.Detail}, Data: e}
}

// Title implements View.
func (v *AuditView) Title() string { return "Audit log" }

// ShortHelp implements help.KeyMap.
func (v *AuditView) ShortHelp() []key.Binding {
	k := v.c.Keys
	return []key.Binding{k.Up, k.Down, k.PageDown, k.Filter}
}

// FullHelp implements help.KeyMap.
func (v *AuditView) FullHelp() [][]key.Binding {
	k := v.c.Keys
	return [][]key.Binding{{withHelp(k.Filter, "filter the newest 1000 entries by actor, action, target or detail")}, tableHelp(k)}
}

// Update implements tea.Model.
func (v *AuditView) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	if cmd, ok := v.table.Update(msg); ok {
		return v, cmd
	}
	return v, nil
}

// View implements tea.Model.
func (v *AuditView) View() string {
	line := ""
	if e, ok := v.table.SelectedData().(store.AuditEntry); ok {
		line = v.c.Styles.Muted.Render(Truncate(Clean(strings.TrimSpace(e.Action+" "+e.Target+" "+e.Detail)), v.w))
	}
	return clip(v.table.View(), v.w, max(v.h-1, 2)) + "\n" + line
}
