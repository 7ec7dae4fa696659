package tui

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/charmbracelet/lipgloss"
	"github.com/muesli/termenv"

	"outpost/store"
)

// colOf is the terminal column where sub starts in line (-1 if absent).
func colOf(line, sub string) int {
	i := strings.Index(line, sub)
	if i < 0 {
		return -1
	}
	return Width(line[:i])
}

// lineWith returns the first screen line containing sub.
func lineWith(t *testing.T, screen, sub string) string {
	t.Helper()
	for _, l := range strings.Split(screen, "\n") {
		if strings.Contains(l, sub) {
			return l
		}
	}
	t.Fatalf("no line with %q in:\n%s", sub, screen)
	return ""
}

// checkFrame: exactly h lines, none wider than w.
func checkFrame(t *testing.T, screen string, w, h int) {
	t.Helper()
	lines := strings.Split(screen, "\n")
	if len(lines) != h {
		t.Errorf("frame has %d lines, want %d:\n%s", len(lines), h, screen)
	}
	for i, l := range lines {
		if n := Width(l); n > w {
			t.Errorf("line %d is %d cells wide, more than %d: %q", i, n, w, l)
		}
	}
}

// checkAligned: in every line holding one of rows, col starts where the
// header's title does.
func checkAligned(t *testing.T, screen, header, title string, rows map[string]string) {
	t.Helper()
	head := lineWith(t, screen, header)
	want := colOf(head, title)
	for row, cell := range rows {
		l := lineWith(t, screen, row)
		if got := colOf(l, cell); got != want {
			t.Errorf("row %q: %q starts at column %d, header %q at %d\n%s\n%s", row, cell, got, title, want, head, l)
		}
	}
}

func TestClustersTableCJKAligned(t *testing.T) {
	for _, size := range []struct{ w, h int }{{80, 24}, {120, 40}} {
		t.Run(fmt.Sprintf("%dx%d", size.w, size.h), func(t *testing.T) {
			f := newFleet(t)
			gz := f.cluster("腾讯云-广州", "relay.gz.example")
			f.proxy(gz, "腾讯云-web-01")
			f.agents(gz.ID, "腾讯云-web", 3)
			f.cluster("beijing", "10.1.1.1")
			f.cluster("阿里云-杭州-生产环境-非常长的名字", "hz.example")
			hs := newHarness(t, f.common(false), size.w, size.h)
			s := hs.screen()
			checkFrame(t, s, size.w, size.h)
			checkAligned(t, s, "NAME", "STATUS", map[string]string{"腾讯云-广州": "online", "beijing": "offline", "阿里云": "offline"})
			checkAligned(t, s, "NAME", "MODE", map[string]string{"腾讯云-广州": "forward", "beijing": "forward", "阿里云": "forward"})
			hs.wantScreen("domain", "IP", "1/1", "3/3", "agents 3/3 online")
		})
	}
}

func TestProxiesTableCJKAligned(t *testing.T) {
	for _, size := range []struct{ w, h int }{{80, 24}, {120, 40}} {
		t.Run(fmt.Sprintf("%dx%d", size.w, size.h), func(t *testing.T) {
			f := newFleet(t)
			gz := f.cluster("腾讯云-广州", "relay.gz.example")
			f.proxy(gz, "腾讯云-web-01")
			f.proxy(gz, "edge-2")
			hs := newHarness(t, f.common(false), size.w, size.h)
			hs.keys("enter") // the only cluster
			s := hs.screen()
			checkFrame(t, s, size.w, size.h)
			hs.wantScreen("Proxy servers (2)", "proxy only")
			checkAligned(t, s, "HOST", "STATUS", map[string]string{"腾讯云-web": "online", "edge-2": "online"})
			checkAligned(t, s, "HOST", "SECURITY", map[string]string{"腾讯云-web": "proxy only", "edge-2": "proxy only"})
			if size.w >= 120 {
				checkAligned(t, s, "HOST", "IP", map[string]string{"腾讯云-web": "10.0.0.", "edge-2": "10.0.0."})
				hs.wantScreen("manual")
			}
		})
	}
}

func TestResize(t *testing.T) {
	f := newFleet(t)
	gz := f.cluster("腾讯云-广州", "relay.gz.example")
	f.proxy(gz, "腾讯云-web-01")
	hs := newHarness(t, f.common(false), 120, 40)
	checkFrame(t, hs.screen(), 120, 40)
	for _, sz := range [][2]int{{80, 24}, {60, 15}, {200, 50}, {80, 24}} {
		hs.send(teaSize(sz[0], sz[1]))
		checkFrame(t, hs.screen(), sz[0], sz[1])
		hs.keys("enter")
		checkFrame(t, hs.screen(), sz[0], sz[1])
		hs.keys("e") // a dialog at this size
		checkFrame(t, hs.screen(), sz[0], sz[1])
		hs.keys("esc", "esc")
		if _, ok := hs.root.Active().(*ClustersView); !ok {
			t.Fatalf("esc esc did not come back to the clusters: %T", hs.root.Active())
		}
	}
}

func TestNoColor(t *testing.T) {
	old := lipgloss.ColorProfile()
	lipgloss.SetColorProfile(termenv.TrueColor) // as on a colour terminal
	t.Cleanup(func() { lipgloss.SetColorProfile(old) })
	f := newFleet(t)
	gz := f.cluster("腾讯云-广州", "relay.gz.example")
	f.proxy(gz, "web-01")
	f.cluster("beijing", "10.1.1.1")

	t.Setenv("NO_COLOR", "")
	cc := NewCommon(Options{Backend: f.db, Clock: f.clock, Account: f.acct})
	cc.Refresh, cc.FlashFor = 0, 0
	colour := newHarness(t, cc, 100, 30)
	if raw := colour.root.View(); colourSGR(raw) == "" {
		t.Fatalf("colour styles drew no colour (the test would prove nothing): %q", raw[:200])
	}
	t.Setenv("NO_COLOR", "1")
	c := NewCommon(Options{Backend: f.db, Clock: f.clock, Account: f.acct})
	c.Refresh, c.FlashFor = 0, 0
	if !c.Styles.NoColor {
		t.Fatalf("NO_COLOR set but the styles have colour")
	}
	hs := newHarness(t, c, 100, 30)
	for _, keys := range [][]string{nil, {"enter"}, {"e"}} {
		hs.keys(keys...)
		if sgr := colourSGR(hs.root.View()); sgr != "" {
			t.Fatalf("NO_COLOR frame has the colour sequence %q", sgr)
		}
	}
	hs.keys("esc", "esc")
	hs.wantScreen("online", "offline") // states as words
}

func teaSize(w, h int) any { return windowSize(w, h) }

// colourSGR returns the first SGR sequence in s that sets a colour.
func colourSGR(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] != 0x1b || i+1 >= len(s) || s[i+1] != '[' {
			continue
		}
		j := i + 2
		for j < len(s) && (s[j] < 0x40 || s[j] > 0x7e) {
			j++
		}
		if j >= len(s) || s[j] != 'm' {
			continue
		}
		for _, p := range strings.Split(s[i+2:j], ";") {
			n, err := strconv.Atoi(p)
			if err == nil && (n >= 30 && n <= 38 || n >= 40 && n <= 48 || n >= 90 && n <= 97 || n >= 100 && n <= 107) {
				return s[i : j+1]
			}
		}
	}
	return ""
}

func TestCursorStaysOnRowAcrossRefresh(t *testing.T) {
	f := newFleet(t)
	f.cluster("b-cluster", "b.example")
	f.cluster("c-cluster", "c.example")
	hs := newHarness(t, f.common(false), 100, 30)
	hs.keys("down") // c-cluster
	cv := hs.root.Active().(*ClustersView)
	if c, _ := cv.Selected(); c.Name != "c-cluster" {
		t.Fatalf("selected %q, want c-cluster", c.Name)
	}
	f.cluster("a-cluster", "a.example") // sorts first: c moves down a row
	hs.keys("ctrl+r")
	if c, _ := cv.Selected(); c.Name != "c-cluster" {
		t.Fatalf("after a refresh the cursor is on %q, want it to stay on c-cluster", c.Name)
	}
	if got := lineWith(t, hs.screen(), "c-cluster"); !strings.HasPrefix(got, " >") {
		t.Errorf("cursor mark not on c-cluster: %q", got)
	}
}

func TestSortAndFilter(t *testing.T) {
	f := newFleet(t)
	for _, n := range []string{"bravo", "alpha", "charlie"} {
		f.cluster(n, n+".example")
	}
	hs := newHarness(t, f.common(false), 100, 30)
	order := func() string {
		s := hs.screen()
		var got []string
		for _, l := range strings.Split(s, "\n") {
			for _, n := range []string{"alpha", "bravo", "charlie"} {
				if strings.HasPrefix(strings.TrimLeft(l, " >*"), n+" ") {
					got = append(got, n)
				}
			}
		}
		return strings.Join(got, ",")
	}
	hs.keys("s") // by NAME, ascending
	if got, want := order(), "alpha,bravo,charlie"; got != want {
		t.Errorf("sorted by name: %s, want %s", got, want)
	}
	hs.wantScreen("NAME↑")
	hs.keys("s") // flip
	if got, want := order(), "charlie,bravo,alpha"; got != want {
		t.Errorf("flipped: %s, want %s", got, want)
	}
	hs.keys("/")
	hs.typeText("rav")
	if !hs.root.Active().Capturing() {
		t.Fatalf("typing a filter: the view should capture keys")
	}
	hs.typeText("q") // a letter, not quit, while typing
	if hs.quit {
		t.Fatalf("q quit while typing a filter")
	}
	hs.keys("backspace", "enter")
	if got, want := order(), "bravo"; got != want {
		t.Errorf("filtered on rav: %s, want %s", got, want)
	}
	hs.keys("esc") // clears the filter, stays
	if got := order(); got != "charlie,bravo,alpha" {
		t.Errorf("after esc: %s, want every cluster", got)
	}
	if _, ok := hs.root.Active().(*ClustersView); !ok {
		t.Fatalf("esc with a filter left the view")
	}
}

func TestCommandModeAndHelp(t *testing.T) {
	f := newFleet(t)
	gz := f.cluster("gz", "gz.example")
	f.proxy(gz, "web-01")
	hs := newHarness(t, f.common(false), 100, 30)
	hs.keys(":")
	hs.typeText("pro")
	hs.wantScreen(":pro", "proxies")
	hs.keys("tab")
	if got := hs.root.cmdIn.Value(); got != "proxies" {
		t.Fatalf("tab completed to %q, want proxies", got)
	}
	hs.keys("enter")
	if v, ok := hs.root.Active().(*ProxiesView); !ok || v.clusterID != 0 {
		t.Fatalf(":proxies opened %T, want the proxies of every cluster", hs.root.Active())
	}
	hs.wantScreen("Proxy servers (all clusters)", "web-01", "gz")
	hs.keys("enter") // the proxy's cluster
	if v, ok := hs.root.Active().(*ClusterView); !ok || v.Cluster().Name != "gz" {
		t.Fatalf("enter on a proxy opened %T, want its cluster", hs.root.Active())
	}
	hs.keys(":")
	hs.typeText("nope")
	hs.keys("enter")
	if got := hs.flash(); !strings.Contains(got, `unknown command "nope"`) {
		t.Errorf("flash %q, want the unknown command named", got)
	}
	for _, cmd := range []string{"clusters", "agents", "install", "audit", "settings"} {
		hs.keys(":")
		hs.typeText(cmd)
		hs.keys("enter")
		if len(hs.root.Stack()) != 1 {
			t.Errorf(":%s: stack of %d views, want it replaced", cmd, len(hs.root.Stack()))
		}
	}
	hs.keys(":")
	hs.typeText("clu")
	hs.keys("enter") // a unique prefix is enough
	if _, ok := hs.root.Active().(*ClustersView); !ok {
		t.Fatalf(":clu opened %T", hs.root.Active())
	}
	hs.keys("?")
	hs.wantScreen("Keys of Clusters", "create a cluster", ":proxies")
	hs.keys("esc")
	hs.keys("q")
	if !hs.quit {
		t.Fatalf("q did not quit")
	}
}

// advance moves the fleet's clock; the proxies stop heartbeating, so past
// the proxy offline time they are offline.
func (f *fleet) advance(d time.Duration) { f.clock.Advance(d) }

func (f *fleet) auditCount() int {
	f.t.Helper()
	es, err := f.db.ListAudit(f.ctx, 10000)
	if err != nil {
		f.t.Fatalf("ListAudit: %v", err)
	}
	return len(es)
}

func (f *fleet) clusters() []store.Cluster {
	f.t.Helper()
	cs, err := f.db.ListClusters(f.ctx, 0)
	if err != nil {
		f.t.Fatalf("ListClusters: %v", err)
	}
	return cs
}
