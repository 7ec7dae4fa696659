package tui

import (
	"fmt"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"outpost/store"
)

// Tests of the agents, agent and audit views; bind, unbind and uninstall
// from the agents view are in agentactions_test.go, the install and
// settings views in installsettings_test.go.

// agCol is the terminal column where sub starts in line (-1 if absent).
func agCol(line, sub string) int {
	i := strings.Index(line, sub)
	if i < 0 {
		return -1
	}
	return Width(line[:i])
}

// agLine is the first screen line containing sub.
func agLine(t *testing.T, screen, sub string) string {
	t.Helper()
	for _, l := range strings.Split(screen, "\n") {
		if strings.Contains(l, sub) {
			return l
		}
	}
	t.Fatalf("no line with %q in:\n%s", sub, screen)
	return ""
}

// agFrame fails unless the frame is h lines of at most w cells.
func agFrame(t *testing.T, screen string, w, h int) {
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

// openAgents switches the harness to the all-agents view.
func openAgents(hs *harness, c *Common) *AgentsView {
	v := NewAgentsView(c, 0)
	hs.send(SwitchMsg{v})
	return v
}

func TestAgentsViewRendersCJKAligned(t *testing.T) {
	for _, size := range []struct{ w, h int }{{80, 24}, {120, 40}} {
		t.Run(fmt.Sprintf("%dx%d", size.w, size.h), func(t *testing.T) {
			f := newFleet(t)
			gz := f.cluster("腾讯云-广州", "relay.gz.example")
			f.proxy(gz, "edge-1")
			f.agents(gz.ID, "腾讯云-web", 2)
			f.agents(0, "plain-db", 2)
			c := f.common(false)
			hs := newHarness(t, c, size.w, size.h)
			openAgents(hs, c)
			s := hs.screen()
			agFrame(t, s, size.w, size.h)
			head := agLine(t, s, "ASSET")
			for _, title := range []string{"IP", "SYSTEM", "SECURITY", "CHECK-IN"} {
				want := agCol(head, title)
				if want < 0 {
					t.Fatalf("header lacks %s at %d columns: %q", title, size.w, head)
				}
				cell := map[string]string{"IP": "192.168.", "SYSTEM": "linux", "SECURITY": "Protected", "CHECK-IN": "just now"}[title]
				for _, row := range []string{"腾讯云-web-1", "腾讯云-web-2", "plain-db-1"} {
					l := agLine(t, s, row)
					if got := agCol(l, cell); got != want {
						t.Errorf("row %q: %s cell %q at column %d, header at %d\n%s\n%s", row, title, cell, got, want, head, l)
					}
				}
			}
			if size.w >= 120 {
				hs.wantScreen("CLUSTER", "腾讯云-广州", "(direct)", "VULN")
			} else if strings.Contains(head, "VULN") {
				t.Errorf("VULN shown at 80 columns: %q", head)
			}
		})
	}
}

func TestAgentsFilterAndSortServerSide(t *testing.T) {
	f := newFleet(t)
	f.agents(0, "web", 100)
	f.agents(0, "db", 3)
	c := f.common(false)
	hs := newHarness(t, c, 100, 24)
	v := openAgents(hs, c)
	if got := v.Table().Total(); got != 103 {
		t.Fatalf("total %d, want 103", got)
	}
	if n := len(v.Table().rows); n >= 103 {
		t.Errorf("the table loaded %d rows of 103: it must load a window, not the fleet", n)
	}
	hs.keys("/")
	hs.typeText("db-")
	hs.keys("enter")
	if got := v.Table().Total(); got != 3 {
		t.Fatalf("filter db-: total %d, want 3\n%s", got, hs.screen())
	}
	s := hs.screen()
	if strings.Contains(s, "web-") {
		t.Errorf("filtered screen shows web agents:\n%s", s)
	}
	hs.wantScreen("db-1", "db-2", "db-3", `3 agent(s) matching "db-"`)

	// Sort by the asset column, then flip it.
	hs.keys("s")
	if id, _ := v.Table().SortKey(); id != "hostname" {
		t.Fatalf("sort key %q, want hostname", id)
	}
	first := func() string { a, _ := v.Selected(); return a.Hostname }
	if got := first(); got != "db-1" {
		t.Errorf("ascending: first %q, want db-1", got)
	}
	hs.keys("s")
	if _, desc := v.Table().SortKey(); !desc {
		t.Fatal("s twice: want descending")
	}
	hs.keys("g")
	if got := first(); got != "db-3" {
		t.Errorf("descending: first %q, want db-3", got)
	}
	hs.keys("esc")
	if got := v.Table().Total(); got != 103 {
		t.Errorf("after esc: total %d, want 103", got)
	}
}

func TestAgentDetailWhyOffline(t *testing.T) {
	f := newFleet(t)
	gz := f.cluster("gz", "gz.example.com")
	f.agents(gz.ID, "腾讯云-web", 1)
	f.clock.Advance(13 * time.Hour)
	c := f.common(false)
	hs := newHarness(t, c, 100, 30)
	openAgents(hs, c)
	hs.keys("enter")
	if _, ok := hs.root.Active().(*AgentView); !ok {
		t.Fatalf("enter opened %T, want the agent view", hs.root.Active())
	}
	hs.wantScreen("腾讯云-web-1", "offline, Unprotected", "Why it is offline", "no check-in for 13h0m0s, longer than offline_after (12h0m0s)",
		"its cluster gz has no proxy server", "next: on the host: outpost doctor")
	agFrame(t, hs.screen(), 100, 30)
	hs.keys("y")
	if len(hs.copied) != 1 || !strings.HasPrefix(hs.copied[0], "ag_") {
		t.Errorf("y copied %q, want the agent id", hs.copied)
	}
	hs.keys("esc")
	if _, ok := hs.root.Active().(*AgentsView); !ok {
		t.Errorf("esc: active %T, want the agents view", hs.root.Active())
	}
}

func TestAuditNewestFirst(t *testing.T) {
	f := newFleet(t)
	f.cluster("first", "first.example.com")
	f.cluster("second", "second.example.com")
	c := f.common(false)
	hs := newHarness(t, c, 120, 30)
	hs.send(SwitchMsg{NewAuditView(c)})
	s := hs.screen()
	i, j := strings.Index(s, "cluster/acme/second"), strings.Index(s, "cluster/acme/first")
	if i < 0 || j < 0 || i > j {
		t.Errorf("want second above first (newest first):\n%s", s)
	}
	agFrame(t, s, 120, 30)
}

// TestReadOnlyAgentViews: no changing key of these views does anything.
func TestReadOnlyAgentViews(t *testing.T) {
	f := newFleet(t)
	gz := f.cluster("gz", "gz.example.com")
	f.proxy(gz, "edge-1")
	f.agents(gz.ID, "h", 2)
	f.db.CreateInstallCommand(f.ctx, store.InstallInput{AccountID: f.acct.ID, OS: "linux"})
	c := f.common(true)
	hs := newHarness(t, c, 100, 30)
	audits, settings := f.audits(), f.db.Settings()
	views := []struct {
		name string
		view View
		keys []string
	}{
		{"agents", NewAgentsView(c, 0), []string{"space", "b", "U", "X", "ctrl+a", "b"}},
		{"cluster agents", NewAgentsView(c, gz.ID), []string{"space", "U", "X"}},
		{"install", NewInstallView(c), []string{"n", "R"}},
		{"settings", NewSettingsView(c), []string{"e"}},
	}
	for _, v := range views {
		t.Run(v.name, func(t *testing.T) {
			hs.send(SwitchMsg{v.view})
			for _, k := range v.keys {
				hs.keys(k)
				if d := hs.root.Dialog(); d != nil {
					t.Fatalf("read-only: key %q opened %T\n%s", k, d, hs.screen())
				}
			}
		})
	}
	// Defence in depth: the actions refuse even when called.
	for name, cmd := range map[string]tea.Cmd{
		"bind":      bindForm(c, 0, []string{"x"}),
		"unbind":    unbindConfirm(c, 0, []string{"x"}),
		"uninstall": uninstallConfirm(c, 0, []string{"x"}),
		"install":   createInstallForm(c),
		"revoke":    revokeInstallConfirm(c, 0, store.InstallCommand{ID: 1}),
		"setting":   editSetting(c, settingItem{SettingField: store.SettingFields()[0]}),
		"start":     startBind(c, bindStartMsg{cluster: gz, ids: []string{"x"}}),
	} {
		msg, ok := cmd().(FlashMsg)
		if !ok || !msg.Err || !strings.Contains(msg.Text, "read-only") {
			t.Errorf("%s in read-only mode: %#v, want the read-only refusal", name, msg)
		}
	}
	if f.audits() != audits || f.db.Settings() != settings || f.bound(gz.ID) != 2 {
		t.Error("read-only dashboard changed the store")
	}
}

// TestFViewsRender: every view of this file renders whole at 80x24 and
// 120x40 with CJK names, nothing wider than the terminal.
func TestFViewsRender(t *testing.T) {
	for _, size := range []struct{ w, h int }{{80, 24}, {120, 40}} {
		f := newFleet(t)
		gz := f.cluster("腾讯云-广州", "relay.gz.example")
		f.proxy(gz, "腾讯云-edge-01")
		ags := f.agents(gz.ID, "腾讯云-web", 3)
		f.clock.Advance(13 * time.Hour)
		c := f.common(false)
		d, err := f.db.DiagnoseAgent(f.ctx, ags[0].ID)
		if err != nil {
			t.Fatal(err)
		}
		views := []struct {
			name  string
			view  View
			wants []string
		}{
			{"agents", NewAgentsView(c, 0), []string{"腾讯云-web-1", "Unprotected"}},
			{"cluster agents", NewAgentsView(c, gz.ID), []string{"腾讯云-web-3", "Connected agents"}},
			{"agent", NewAgentView(c, d), []string{"腾讯云-web-1", "Why it is offline"}},
			{"install", NewInstallView(c), []string{"腾讯云-广州", "outpost agent run --proxy"}},
			{"audit", NewAuditView(c), []string{"installcmd.create", "cluster.create", "account/acme"}},
			{"settings", NewSettingsView(c), []string{"offline_after", "uninstall_grace"}},
		}
		for _, v := range views {
			t.Run(fmt.Sprintf("%s %dx%d", v.name, size.w, size.h), func(t *testing.T) {
				hs := newHarness(t, c, size.w, size.h)
				hs.send(SwitchMsg{v.view})
				hs.wantScreen(v.wants...)
				agFrame(t, hs.screen(), size.w, size.h)
			})
		}
	}
}

// TestDuplicateIdentityShown: a cloned identity is flagged in the table
// and the agent view gives the fix.
func TestDuplicateIdentityShown(t *testing.T) {
	f := newFleet(t)
	ags := f.agents(0, "web", 1)
	if err := f.db.RecordCheckins(f.ctx, []store.Checkin{{AgentID: ags[0].ID, Fingerprint: "fp-of-a-copy"}}); err != nil {
		t.Fatal(err)
	}
	if a, _ := f.db.GetAgent(f.ctx, ags[0].ID); !a.Duplicate {
		t.Fatal("the store did not flag a check-in with another fingerprint as a duplicate identity")
	}
	c := f.common(false)
	hs := newHarness(t, c, 100, 30)
	openAgents(hs, c)
	hs.wantScreen("DUP web-1")
	hs.keys("enter")
	hs.wantScreen("DUPLICATE IDENTITY", "fix: "+store.DuplicateFix[:40])
}
