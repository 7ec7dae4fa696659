package tui

import (
	"strings"
	"unicode"

	"github.com/charmbracelet/bubbles/cursor"
	"github.com/charmbracelet/bubbles/textinput"
	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"
	"github.com/mattn/go-runewidth"

	"outpost/store"
)

// cells measures terminal cells. East Asian ambiguous characters (box
// drawing, "…", "·") count as one cell whatever the locale says: terminals
// and lipgloss draw them narrow, and a CJK locale would otherwise make
// runewidth count them as two and tear every table line.
var cells = newCells()

func newCells() *runewidth.Condition {
	c := runewidth.NewCondition() // the locale's: LANG, RUNEWIDTH_EASTASIAN
	c.EastAsianWidth = false
	return c
}

// Width is the display width of plain text s in terminal cells (CJK
// characters take two).
func Width(s string) int { return cells.StringWidth(s) }

// Truncate cuts plain text s to at most w cells, ending in "…" when cut.
func Truncate(s string, w int) string {
	if w <= 0 {
		return ""
	}
	if cells.StringWidth(s) <= w {
		return s
	}
	return cells.Truncate(s, w, "…")
}

// Fit truncates or pads plain text s to exactly w cells.
func Fit(s string, w int) string {
	s = Truncate(s, w)
	if n := cells.StringWidth(s); n < w {
		s += strings.Repeat(" ", w-n)
	}
	return s
}

// FitRight is Fit aligned to the right (numbers).
func FitRight(s string, w int) string {
	s = Truncate(s, w)
	if n := cells.StringWidth(s); n < w {
		s = strings.Repeat(" ", w-n) + s
	}
	return s
}

// Clean makes untrusted text (host names come from agents) safe to draw:
// control characters, bidirectional overrides and line breaks become '?'
// or a space, so one value can never move the cursor or add a line.
func Clean(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\t' || r == '\n' || r == '\r':
			return ' '
		case unicode.IsControl(r), r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069, r == 0xfeff:
			return '?'
		}
		return r
	}, s)
}

// orDash shows "-" for an empty value.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// clip makes every line of a rendered block exactly h lines of at most w
// cells, so a view can never push the footer off the screen.
func clip(block string, w, h int) string {
	lines := strings.Split(block, "\n")
	if len(lines) > h {
		lines = lines[:h]
	}
	for len(lines) < h {
		lines = append(lines, "")
	}
	for i, l := range lines {
		lines[i] = clipLine(l, w)
	}
	return strings.Join(lines, "\n")
}

// clipLine cuts one styled line to w cells (escape sequences kept).
func clipLine(l string, w int) string {
	if ansi.StringWidth(l) <= w {
		return l
	}
	return ansi.Truncate(l, w, "")
}

// errText is the operator-facing message of err.
func errText(err error) string { return store.ErrorMessage(err) }

// newInput is a text input with a steady cursor: a blinking one redraws
// the screen twice a second over SSH for nothing.
// Its default styles have colours; they follow the dashboard's styles.
func newInput(st *Styles) textinput.Model {
	in := textinput.New()
	in.Cursor.SetMode(cursor.CursorStatic)
	in.PlaceholderStyle = st.Muted
	in.CompletionStyle = st.Muted
	in.TextStyle, in.PromptStyle = st.Input, st.Input
	in.Cursor.TextStyle = st.Input
	if st.NoColor {
		in.Cursor.Style = lipgloss.NewStyle()
	}
	return in
}

// stripStyle removes escape sequences from a rendered string.
func stripStyle(s string) string { return ansi.Strip(s) }
