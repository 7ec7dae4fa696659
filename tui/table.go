package tui

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/charmbracelet/bubbles/textinput"
	tea "github.com/charmbracelet/bubbletea"
)

// Column describes one table column.
type Column struct {
	Title string
	Width int    // minimum width in cells
	Flex  int    // share of the spare width (0 = fixed at Width)
	Sort  string // sort key handed to the PageFunc; "" = not sortable
	Right bool   // right-aligned (numbers)
	// HideBelow hides the column when the table is narrower than this.
	HideBelow int
}

// Tone colours a cell; the text itself always says the state too.
type Tone int

// Tones.
const (
	ToneNone Tone = iota
	ToneGood
	ToneBad
	ToneWarn
	ToneMuted
)

// Row is one table row. ID identifies it across refreshes (the cursor
// stays on it) and for marks.
type Row struct {
	ID    string
	Cells []string // plain text; Clean is applied when drawn
	Tones []Tone   // optional, by cell index
	Data  any      // the item the row shows (a store.Cluster, ...)
}

// Query is what the table asks its PageFunc for.
type Query struct {
	Offset, Limit int
	Filter        string
	Sort          string
	Desc          bool
}

// Page is one slice of the rows plus the total number that match.
type Page struct {
	Rows  []Row
	Total int
}

// PageFunc loads one page; it runs inside a tea.Cmd.
type PageFunc func(ctx context.Context, b Backend, q Query) (Page, error)

// pageMsg carries a loaded page back to its table.
type pageMsg struct {
	table, seq int
	q          Query
	page       Page
	err        error
}

// Table is a paging table: it holds only a window of rows around what is
// on screen (three screens' worth) and asks its PageFunc for another
// window when the cursor leaves it, so it never holds the fleet. The
// cursor follows its row by ID across refreshes; marks (space) are kept
// by ID too.
type Table struct {
	c     *Common
	id    int
	cols  []Column
	fetch PageFunc

	// Empty is shown when nothing matches (no filter); say what to do.
	Empty string

	rows    []Row // loaded window
	offset  int   // absolute index of rows[0]
	total   int
	loaded  bool
	err     error
	seq     int // last request
	applied int // last applied response
	cancel  context.CancelFunc

	cursor int    // absolute index
	top    int    // first visible absolute index
	selID  string // ID under the cursor, to find it again
	col    int    // selected column (for sort)
	sort   int    // sorted column, -1 = PageFunc's default
	desc   bool

	marks map[string]bool

	filtering bool
	filter    string
	input     textinput.Model

	width, height int
}

// NewTable returns a table over fetch. Call Load (or Refresh) to fill it.
func NewTable(c *Common, cols []Column, fetch PageFunc) *Table {
	in := newInput(c.Styles)
	in.Prompt = "/"
	in.CharLimit = 128
	t := &Table{c: c, id: c.NewID(), cols: cols, fetch: fetch, sort: -1, marks: map[string]bool{}, input: in}
	for i, col := range cols {
		if col.Sort != "" {
			t.col = i
			break
		}
	}
	return t
}

// SetSize sets the table's box: one header line, then rows.
func (t *Table) SetSize(w, h int) {
	t.width, t.height = w, max(h, 2)
	t.scrollTo()
}

// visible is the number of row lines on screen.
func (t *Table) visible() int {
	n := t.height - 1
	if t.filtering {
		n--
	}
	return max(n, 1)
}

// window is how many rows one fetch asks for.
func (t *Table) window() int { return max(3*t.visible(), 30) }

// Load fetches the window around the cursor; Refresh is the same.
func (t *Table) Load() tea.Cmd {
	t.seq++
	off := max(0, t.top-t.visible())
	q := Query{Offset: off, Limit: t.window(), Filter: t.filter, Desc: t.desc}
	if t.sort >= 0 {
		q.Sort = t.cols[t.sort].Sort
	}
	seq, id, fetch := t.seq, t.id, t.fetch
	// A newer load replaces an older one still running: cancel it, so
	// that typing a filter does not pile up scans of the fleet.
	if t.cancel != nil {
		t.cancel()
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.cancel = cancel
	return t.c.CallContext(ctx, func(ctx context.Context, b Backend) tea.Msg {
		p, err := fetch(ctx, b, q)
		return pageMsg{table: id, seq: seq, q: q, page: p, err: err}
	})
}

// Refresh reloads the current window.
func (t *Table) Refresh() tea.Cmd { return t.Load() }

// Selected returns the row under the cursor.
func (t *Table) Selected() (Row, bool) {
	i := t.cursor - t.offset
	if !t.loaded || i < 0 || i >= len(t.rows) {
		return Row{}, false
	}
	return t.rows[i], true
}

// SelectedData is the Data of the row under the cursor (nil when none).
func (t *Table) SelectedData() any {
	r, _ := t.Selected()
	return r.Data
}

// SelectedID is the ID of the row under the cursor ("" when none).
func (t *Table) SelectedID() string {
	r, _ := t.Selected()
	return r.ID
}

// Cursor is the absolute index of the row under the cursor (marking a
// range server-side).
func (t *Table) Cursor() int { return t.cursor }

// Total is the number of rows that match the filter.
func (t *Table) Total() int { return t.total }

// Err is the last load error.
func (t *Table) Err() error { return t.err }

// Loaded is true once a page arrived.
func (t *Table) Loaded() bool { return t.loaded }

// Filter is the applied filter text.
func (t *Table) Filter() string { return t.filter }

// SetFilter applies a filter and reloads from the top.
func (t *Table) SetFilter(s string) tea.Cmd {
	t.filter = s
	t.input.SetValue(s)
	t.cursor, t.top, t.selID = 0, 0, ""
	return t.Load()
}

// SortKey returns the sort key in use ("" = default) and its direction.
func (t *Table) SortKey() (string, bool) {
	if t.sort < 0 {
		return "", t.desc
	}
	return t.cols[t.sort].Sort, t.desc
}

// Marked returns the marked row IDs in no particular order.
func (t *Table) Marked() []string {
	out := make([]string, 0, len(t.marks))
	for id := range t.marks {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

// IsMarked reports whether id is marked.
func (t *Table) IsMarked(id string) bool { return t.marks[id] }

// SetMarked marks or unmarks ids.
func (t *Table) SetMarked(on bool, ids ...string) {
	for _, id := range ids {
		if on {
			t.marks[id] = true
		} else {
			delete(t.marks, id)
		}
	}
}

// ClearMarks unmarks every row.
func (t *Table) ClearMarks() { clear(t.marks) }

// Capturing is true while the filter is being typed.
func (t *Table) Capturing() bool { return t.filtering }

// Escape clears an applied filter (k9s: esc first clears, then goes back).
func (t *Table) Escape() (tea.Cmd, bool) {
	if t.filtering || t.filter != "" {
		t.filtering = false
		t.input.Blur()
		return t.SetFilter(""), true
	}
	return nil, false
}

// Update handles the table's keys and its pages. handled reports whether
// msg was the table's (a key it used or one of its pages).
func (t *Table) Update(msg tea.Msg) (cmd tea.Cmd, handled bool) {
	switch msg := msg.(type) {
	case pageMsg:
		if msg.table != t.id {
			return nil, false
		}
		t.apply(msg)
		return nil, true
	case tea.KeyMsg:
		if t.filtering {
			return t.filterKey(msg), true
		}
		return t.key(msg)
	}
	return nil, false
}

func (t *Table) apply(m pageMsg) {
	if m.seq <= t.applied || (m.err != nil && m.seq < t.seq && errors.Is(m.err, context.Canceled)) {
		return // older than what is shown, or replaced and cancelled
	}
	t.applied = m.seq
	if m.err != nil {
		t.err = m.err
		return
	}
	t.err = nil
	t.loaded = true
	t.rows, t.offset, t.total = m.page.Rows, m.q.Offset, m.page.Total
	if m.page.Total == 0 {
		t.offset = 0
	}
	// Keep the cursor on its row, at the same place on screen.
	if t.selID != "" {
		for i, r := range t.rows {
			if r.ID == t.selID {
				abs := t.offset + i
				t.top += abs - t.cursor
				t.cursor = abs
				break
			}
		}
	}
	t.clamp()
	t.selID = t.SelectedID()
}

func (t *Table) clamp() {
	if t.cursor >= t.total {
		t.cursor = t.total - 1
	}
	if t.cursor < 0 {
		t.cursor = 0
	}
	t.scrollTo()
}

// scrollTo moves the viewport so that the cursor is visible.
func (t *Table) scrollTo() {
	v := t.visible()
	if t.cursor < t.top {
		t.top = t.cursor
	}
	if t.cursor >= t.top+v {
		t.top = t.cursor - v + 1
	}
	if t.top > t.total-v {
		t.top = t.total - v
	}
	if t.top < 0 {
		t.top = 0
	}
}

// move sets the cursor and fetches another window when the screen leaves
// the loaded one.
func (t *Table) move(to int) tea.Cmd {
	t.cursor = to
	t.clamp()
	t.selID = t.SelectedID()
	end := min(t.top+t.visible(), t.total)
	if t.top < t.offset || end > t.offset+len(t.rows) {
		return t.Load()
	}
	return nil
}

// PageOf filters, sorts and pages a list the backend returns whole (the
// clusters, a cluster's proxies); only the page becomes Rows. match says
// whether an item matches the filter text; sorts maps Column.Sort keys to
// comparisons.
func PageOf[T any](items []T, q Query, match func(T, string) bool, sorts map[string]func(a, b T) int, row func(T) Row) Page {
	if q.Filter != "" && match != nil {
		f := strings.ToLower(q.Filter)
		kept := make([]T, 0, len(items))
		for _, it := range items {
			if match(it, f) {
				kept = append(kept, it)
			}
		}
		items = kept
	}
	if less, ok := sorts[q.Sort]; ok && less != nil {
		items = slices.Clone(items)
		slices.SortStableFunc(items, func(a, b T) int {
			if q.Desc {
				return less(b, a)
			}
			return less(a, b)
		})
	} else if q.Desc {
		items = slices.Clone(items)
		slices.Reverse(items)
	}
	p := Page{Total: len(items)}
	lo := min(max(q.Offset, 0), len(items))
	hi := len(items)
	if q.Limit > 0 {
		hi = min(lo+q.Limit, len(items))
	}
	for _, it := range items[lo:hi] {
		p.Rows = append(p.Rows, row(it))
	}
	return p
}

// Contains reports whether any of the fields contains f (lower case).
func Contains(f string, fields ...string) bool {
	for _, s := range fields {
		if strings.Contains(strings.ToLower(s), f) {
			return true
		}
	}
	return false
}

// ByString and ByInt build PageOf comparisons (strings case-insensitive).
func ByString[T any](get func(T) string) func(a, b T) int {
	return func(a, b T) int { return cmp.Compare(strings.ToLower(get(a)), strings.ToLower(get(b))) }
}

func ByInt[T any, N cmp.Ordered](get func(T) N) func(a, b T) int {
	return func(a, b T) int { return cmp.Compare(get(a), get(b)) }
}

// tableBody is embedded by the views whose body is one Table: the View
// methods they would otherwise each spell out the same way.
type tableBody struct {
	table *Table
	w, h  int // the view's size (SetSize)
	below int // lines the view shows under (or above) the table
}

// SetSize implements View: the table takes all but below lines.
func (b *tableBody) SetSize(w, h int) {
	b.w, b.h = w, h
	b.table.SetSize(w, max(h-b.below, 2))
}

// Escape implements Escaper: esc clears the filter.
func (b *tableBody) Escape() (tea.Cmd, bool) { return b.table.Escape() }

// Table is the view's table (tests).
func (b *tableBody) Table() *Table { return b.table }

// Init implements tea.Model: the first page.
func (b *tableBody) Init() tea.Cmd { return b.table.Load() }

// Refresh implements View: reload the page in view.
func (b *tableBody) Refresh() tea.Cmd { return b.table.Refresh() }

// Capturing implements View: the filter line is open.
func (b *tableBody) Capturing() bool { return b.table.Capturing() }
