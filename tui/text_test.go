package tui

import (
	"testing"

	"github.com/mattn/go-runewidth"
)

// TestWidthsInACJKLocale: in a CJK locale runewidth counts East Asian
// ambiguous characters ("…", box drawing) as two cells, but terminals and
// lipgloss draw them as one; the dashboard must count one, or every
// truncated cell and every dialog border tears the line.
func TestWidthsInACJKLocale(t *testing.T) {
	old := runewidth.EastAsianWidth
	runewidth.EastAsianWidth = true // what runewidth finds with LANG=zh_CN.UTF-8
	saved := cells
	cells = newCells()
	t.Cleanup(func() { runewidth.EastAsianWidth, cells = old, saved })
	for _, tc := range []struct {
		s    string
		want int
	}{{"…", 1}, {"─│╭", 3}, {"腾讯云", 6}, {"腾讯云-web-01", 13}, {"a·b", 3}} {
		if got := Width(tc.s); got != tc.want {
			t.Errorf("Width(%q) = %d, want %d", tc.s, got, tc.want)
		}
	}
	if got := Fit("腾讯云-广州-生产", 10); Width(got) != 10 || got != "腾讯云-广…" {
		t.Errorf("Fit = %q (%d cells), want 腾讯云-广… in 10 cells", got, Width(got))
	}
	if got := Fit("腾讯云", 7); got != "腾讯云 " {
		t.Errorf("Fit pads to %q", got)
	}
}
