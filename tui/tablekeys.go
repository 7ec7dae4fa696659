package tui

import (
	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
)

func (t *Table) key(msg tea.KeyMsg) (tea.Cmd, bool) {
	k := t.c.Keys
	switch {
	case key.Matches(msg, k.Up):
		return t.move(t.cursor - 1), true
	case key.Matches(msg, k.Down):
		return t.move(t.cursor + 1), true
	case key.Matches(msg, k.PageUp):
		return t.move(t.cursor - t.visible()), true
	case key.Matches(msg, k.PageDown):
		return t.move(t.cursor + t.visible()), true
	case key.Matches(msg, k.Home):
		return t.move(0), true
	case key.Matches(msg, k.End):
		return t.move(t.total - 1), true
	case key.Matches(msg, k.Left):
		t.col = t.nextSortable(-1)
		return nil, true
	case key.Matches(msg, k.Right):
		t.col = t.nextSortable(1)
		return nil, true
	case key.Matches(msg, k.Sort):
		if t.cols[t.col].Sort == "" {
			return nil, true
		}
		if t.sort == t.col {
			t.desc = !t.desc
		} else {
			t.sort, t.desc = t.col, false
		}
		return t.Load(), true
	case key.Matches(msg, k.Mark):
		if id := t.SelectedID(); id != "" {
			t.SetMarked(!t.marks[id], id)
			return t.move(t.cursor + 1), true
		}
		return nil, true
	case key.Matches(msg, k.Filter):
		t.filtering = true
		t.input.SetValue(t.filter)
		t.input.CursorEnd()
		t.scrollTo()
		return t.input.Focus(), true
	case key.Matches(msg, k.Refresh):
		return t.Load(), true
	}
	return nil, false
}

func (t *Table) nextSortable(dir int) int {
	n := len(t.cols)
	for i, c := 1, t.col; i <= n; i++ {
		j := ((c+dir*i)%n + n) % n
		if t.cols[j].Sort != "" {
			return j
		}
	}
	return t.col
}

func (t *Table) filterKey(msg tea.KeyMsg) tea.Cmd {
	switch msg.Type {
	case tea.KeyEnter:
		t.filtering = false
		t.input.Blur()
		t.scrollTo()
		return nil
	case tea.KeyEsc:
		t.filtering = false
		t.input.Blur()
		return t.SetFilter("")
	}
	var cmd tea.Cmd
	t.input, cmd = t.input.Update(msg)
	if v := t.input.Value(); v != t.filter {
		t.filter = v
		t.cursor, t.top, t.selID = 0, 0, ""
		return tea.Batch(cmd, t.Load())
	}
	return cmd
}
