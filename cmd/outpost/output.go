package main

// Output: JSON, human lines and tables, untrusted text made safe, and the
// formatting of times.

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode"

	"github.com/mattn/go-runewidth"
)

// printJSON writes v as one JSON document on stdout.
func (a *app) printJSON(v any) error {
	enc := json.NewEncoder(a.stdout)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// printf writes human output on stdout.
func (a *app) printf(format string, args ...any) {
	fmt.Fprintf(a.stdout, format, args...)
}

// notef writes a note or warning line on stderr.
func (a *app) notef(format string, args ...any) {
	fmt.Fprintf(a.stderr, format+"\n", args...)
}

// listed prints xs as JSON under --json, or the note none when there are
// none: the opening of every list command; done says there is nothing
// more to print.
func listed[T any](a *app, xs []T, none string) (done bool, err error) {
	if a.jsonOut {
		return true, a.printJSON(nonNil(xs))
	}
	if len(xs) == 0 {
		a.notef("%s", none)
		return true, nil
	}
	return false, nil
}

// nonNil makes an empty list marshal as [] rather than null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// clean makes untrusted text (host names come from agents) safe to print
// on a terminal: control characters and bidirectional overrides become '?'.
func clean(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\t':
			return ' '
		case unicode.IsControl(r), r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069, r == 0xfeff:
			return '?'
		}
		return r
	}, s)
}

// width is the display width of s in terminal cells (CJK characters take
// two), which text/tabwriter does not know about.
func width(s string) int { return runewidth.StringWidth(s) }

func pad(s string, w int) string {
	if n := width(s); n < w {
		return s + strings.Repeat(" ", w-n)
	}
	return s
}

// printTable writes rows under head with columns aligned by display width,
// two spaces apart, no trailing spaces. Cells are plain text.
func (a *app) printTable(head []string, rows [][]string) { a.printTableIndent("", head, rows) }

// printTableIndent is printTable with every line prefixed by indent.
func (a *app) printTableIndent(indent string, head []string, rows [][]string) {
	widths := make([]int, len(head))
	all := make([][]string, 0, len(rows)+1)
	for _, r := range append([][]string{head}, rows...) {
		cells := make([]string, len(r))
		for i, c := range r {
			cells[i] = clean(c)
			if i < len(widths) {
				widths[i] = max(widths[i], width(cells[i]))
			}
		}
		all = append(all, cells)
	}
	var b strings.Builder
	for _, r := range all {
		line := ""
		for i, c := range r {
			if i == len(r)-1 {
				line += c
			} else {
				line += pad(c, widths[i]) + "  "
			}
		}
		b.WriteString(indent + strings.TrimRight(line, " "))
		b.WriteByte('\n')
	}
	io.WriteString(a.stdout, b.String())
}

// printFields writes "Label  value" lines with the values aligned.
func (a *app) printFields(fields [][2]string) {
	w := 0
	for _, f := range fields {
		w = max(w, width(f[0]))
	}
	for _, f := range fields {
		fmt.Fprintf(a.stdout, "%s  %s\n", pad(f[0], w), clean(f[1]))
	}
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04:05")
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
