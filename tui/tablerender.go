package tui

import (
	"strings"

	"github.com/charmbracelet/lipgloss"
)

// widths lays the columns out in w cells: minimum widths first, the
// spare shared by Flex; when too narrow, flexible columns shrink first.
func (t *Table) widths(w int) []int {
	out := make([]int, len(t.cols))
	avail := w - 2 - (len(t.cols) - 1) // marker, one space between columns
	sum, flex := 0, 0
	for i, c := range t.cols {
		if t.hidden(i) {
			avail++ // no separator either
			continue
		}
		out[i] = c.Width
		sum += c.Width
		flex += c.Flex
	}
	spare := avail - sum
	if spare > 0 && flex > 0 {
		given := 0
		last := -1
		for i, c := range t.cols {
			if c.Flex > 0 && !t.hidden(i) {
				add := spare * c.Flex / flex
				out[i] += add
				given += add
				last = i
			}
		}
		if last >= 0 {
			out[last] += spare - given
		}
	}
	for spare < 0 {
		// Shrink the widest flexible column (not below 4 cells).
		best := -1
		for i, c := range t.cols {
			if c.Flex > 0 && !t.hidden(i) && out[i] > 4 && (best < 0 || out[i] > out[best]) {
				best = i
			}
		}
		if best < 0 {
			break // the line is clipped at the edge
		}
		out[best]--
		spare++
	}
	return out
}

func (t *Table) hidden(i int) bool { return t.cols[i].HideBelow > 0 && t.width < t.cols[i].HideBelow }

// join puts the visible cells one space apart.
func (t *Table) join(cells []string) string {
	var b strings.Builder
	first := true
	for i, s := range cells {
		if t.hidden(i) {
			continue
		}
		if !first {
			b.WriteByte(' ')
		}
		first = false
		b.WriteString(s)
	}
	return b.String()
}

// View renders the header, the visible rows and the filter line.
func (t *Table) View() string {
	st := t.c.Styles
	ws := t.widths(t.width)
	var b strings.Builder
	head := make([]string, len(t.cols))
	for i, c := range t.cols {
		title := c.Title
		if i == t.sort {
			if t.desc {
				title += "↓"
			} else {
				title += "↑"
			}
		}
		cell := Fit(title, ws[i])
		if c.Right {
			cell = FitRight(title, ws[i])
		}
		if i == t.col && c.Sort != "" {
			head[i] = st.SortedHead.Render(cell)
		} else {
			head[i] = st.TableHead.Render(cell)
		}
	}
	b.WriteString("  " + t.join(head))
	v := t.visible()
	lines := 0
	switch {
	case t.err != nil && !t.loaded:
		b.WriteString("\n" + st.Bad.Render(Truncate("  error: "+Clean(errText(t.err)), t.width)))
		lines++
	case !t.loaded:
		b.WriteString("\n" + st.Muted.Render("  loading…"))
		lines++
	case t.total == 0:
		msg := t.Empty
		if t.filter != "" || msg == "" {
			msg = "nothing matches"
			if t.filter != "" {
				msg += " the filter " + quoteText(t.filter) + " (esc clears it)"
			}
		}
		b.WriteString("\n" + st.Muted.Render(Truncate("  "+msg, t.width)))
		lines++
	default:
		for abs := t.top; abs < t.top+v && abs < t.total; abs++ {
			b.WriteByte('\n')
			lines++
			i := abs - t.offset
			if i < 0 || i >= len(t.rows) {
				b.WriteString(st.Muted.Render("  …"))
				continue
			}
			b.WriteString(t.renderRow(t.rows[i], ws, abs == t.cursor))
		}
	}
	if t.filtering {
		for ; lines < v; lines++ {
			b.WriteByte('\n')
		}
		b.WriteString("\n" + clipLine(t.input.View(), t.width))
	}
	return b.String()
}

func (t *Table) renderRow(r Row, ws []int, cur bool) string {
	st := t.c.Styles
	prefix := []byte("  ")
	if t.marks[r.ID] {
		prefix[0] = '*'
	}
	if cur {
		prefix[1] = '>'
	}
	parts := make([]string, len(t.cols))
	for i, c := range t.cols {
		text := ""
		if i < len(r.Cells) {
			text = Clean(r.Cells[i])
		}
		if c.Right {
			text = FitRight(text, ws[i])
		} else {
			text = Fit(text, ws[i])
		}
		if !cur && i < len(r.Tones) {
			text = toneStyle(st, r.Tones[i]).Render(text)
		}
		parts[i] = text
	}
	line := string(prefix) + t.join(parts)
	switch {
	case cur:
		return st.Selected.Render(Fit(line, max(Width(line), t.width)))
	case t.marks[r.ID]:
		return st.Marked.Render(string(prefix)) + line[2:]
	}
	return line
}

func toneStyle(st *Styles, tone Tone) lipgloss.Style {
	switch tone {
	case ToneGood:
		return st.Good
	case ToneBad:
		return st.Bad
	case ToneWarn:
		return st.Warn
	case ToneMuted:
		return st.Muted
	}
	return lipgloss.NewStyle()
}

func quoteText(s string) string { return "\"" + Clean(s) + "\"" }
