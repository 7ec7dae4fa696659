package tui

import (
	"database/sql"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"outpost/store"
)

// Tests of the agents, agent, install, audit and settings views.

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

// pacer replaces the job timer: ticks wait in pending until fired.
type pacer struct {
	hs      *harness
	pending []tea.Msg
}

func newPacer(hs *harness, c *Common) *pacer {
	p := &pacer{hs: hs}
	c.Jobs.After = func(d time.Duration, msg tea.Msg) tea.Cmd {
		p.pending = append(p.pending, msg)
		return nil
	}
	return p
}

// fire delivers the pending ticks (as the timer would once due).
func (p *pacer) fire() {
	p.hs.t.Helper()
	msgs := p.pending
	p.pending = nil
	for _, m := range msgs {
		p.hs.send(m)
	}
}

// seedDirect writes n direct agents (prefix-1...) straight into the
// table in one transaction: enrolling a thousand one by one is slow under
// the race detector.
func (f *fleet) seedDirect(prefix string, n int) {
	f.t.Helper()
	raw, err := sql.Open("sqlite", "file:"+(&url.URL{Path: f.db.Path}).EscapedPath()+"?_pragma=busy_timeout(5000)")
	if err != nil {
		f.t.Fatal(err)
	}
	defer raw.Close()
	tx, err := raw.Begin()
	if err != nil {
		f.t.Fatal(err)
	}
	defer tx.Rollback()
	now := f.clock.Now().UnixMilli()
	for i := 1; i <= n; i++ {
		id := fmt.Sprintf("ag_%s%05d", prefix, i)
		if _, err := tx.Exec(`INSERT INTO agents (id, account_id, secret_hash, fingerprint, hostname, ips, os, arch, version, enrolled_at, last_checkin)
			VALUES (?, ?, ?, ?, ?, ?, 'linux', 'amd64', '1.0.0', ?, ?)`, id, f.acct.ID, store.HashSecret("s-"+id), "fp-"+id,
			fmt.Sprintf("%s-%d", prefix, i), fmt.Sprintf("10.9.%d.%d", i/250, i%250), now, now); err != nil {
			f.t.Fatalf("seed agent: %v", err)
		}
	}
	if err := tx.Commit(); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fleet) bound(clusterID int64) int {
	f.t.Helper()
	page, err := f.db.ListAgents(f.ctx, store.AgentFilter{ClusterID: clusterID, Limit: 1})
	if err != nil {
		f.t.Fatalf("ListAgents: %v", err)
	}
	return page.Total
}

func (f *fleet) audits() int {
	f.t.Helper()
	es, err := f.db.ListAuditPage(f.ctx, 0, 1)
	if err != nil {
		f.t.Fatalf("ListAuditPage: %v", err)
	}
	return es.Total
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

func TestAgentsMarkRangeAndAll(t *testing.T) {
	f := newFleet(t)
	f.agents(0, "h", 12)
	c := f.common(false)
	hs := newHarness(t, c, 100, 30)
	v := openAgents(hs, c)
	hs.keys("s") // by host name: h-1, h-10, h-11, h-12, h-2, ...
	hs.keys("space", "down", "down", "V")
	if got := len(v.Table().Marked()); got != 4 {
		t.Errorf("space then V three rows down: %d marked, want 4", got)
	}
	hs.keys("esc")
	if got := len(v.Table().Marked()); got != 0 {
		t.Errorf("esc: %d marks left", got)
	}
	hs.keys("/")
	hs.typeText("h-1")
	hs.keys("enter", "ctrl+a")
	if got := len(v.Table().Marked()); got != 4 { // h-1, h-10, h-11, h-12
		t.Errorf("ctrl+a with filter h-1: %d marked, want 4", got)
	}
	hs.wantScreen("4 marked")
}

func TestBindMarkedPaced(t *testing.T) {
	f := newFleet(t)
	gz := f.cluster("gz", "gz.example.com")
	f.proxy(gz, "edge-1")
	f.seedDirect("h", 1001)
	c := f.common(false)
	hs := newHarness(t, c, 120, 30)
	p := newPacer(hs, c)
	v := openAgents(hs, c)
	hs.keys("ctrl+a")
	if got := len(v.Table().Marked()); got != 1001 {
		t.Fatalf("ctrl+a: %d marked, want 1001", got)
	}
	hs.keys("b")
	dialogAs[*Form](t, hs)
	hs.wantScreen("Bind 1001 agent(s) to a cluster", "3 batch(es) of at most 500", "gz")
	hs.keys("enter")
	confirm := dialogAs[*Choice](t, hs)
	if confirm.Focused() != "Cancel" {
		t.Fatalf("confirm focus %q, want Cancel", confirm.Focused())
	}
	hs.wantScreen("Bind 1001 agent(s) to gz?", "about 2m in all")
	hs.keys("right", "enter")

	// The first batch goes at once: 500, then the gap.
	if got := f.bound(gz.ID); got != 500 {
		t.Fatalf("after the first batch %d bound, want 500", got)
	}
	hs.wantScreen("bind gz 500/1001", "batch 2/3, next in 60s", "ctrl+x stop")
	// The progress survives switching views.
	hs.keys(":")
	hs.typeText("clusters")
	hs.keys("enter")
	hs.wantScreen("Clusters", "bind gz 500/1001")

	// 30 s later: still waiting, nothing more bound.
	f.clock.Advance(30 * time.Second)
	p.fire()
	if got := f.bound(gz.ID); got != 500 {
		t.Fatalf("30 s after the first batch %d bound, want 500 (the 60 s gap)", got)
	}
	hs.wantScreen("next in 30s")
	f.clock.Advance(31 * time.Second)
	p.fire()
	if got := f.bound(gz.ID); got != 1000 {
		t.Fatalf("61 s after the first batch %d bound, want 1000", got)
	}
	hs.wantScreen("bind gz 1000/1001", "batch 3/3")

	// q asks first while a bind runs (Keep focused).
	hs.keys("q")
	if d := dialogAs[*Choice](t, hs); d.Focused() != "Keep the dashboard" || hs.quit {
		t.Fatalf("q during a bind: focus %q, quit %v", d.Focused(), hs.quit)
	}
	hs.keys("enter")
	if hs.quit || !c.Jobs.Binding() {
		t.Fatal("Keep the dashboard quit or stopped the bind")
	}

	// ctrl+x stops it between batches, after a confirmation.
	hs.keys("ctrl+x")
	stop := dialogAs[*Choice](t, hs)
	if stop.Focused() != "Keep binding" {
		t.Fatalf("stop dialog focus %q, want Keep binding", stop.Focused())
	}
	hs.keys("right", "enter")
	hs.wantScreen("stopping")
	f.clock.Advance(time.Minute)
	p.fire()
	if c.Jobs.Binding() {
		t.Fatal("bind still running after the stop")
	}
	if got := f.bound(gz.ID); got != 1000 {
		t.Errorf("after stopping %d bound, want 1000", got)
	}
	if got := hs.flash(); !strings.Contains(got, "bind stopped before batch 3/3") || !strings.Contains(got, "1000 of 1001 agent(s) bound") {
		t.Errorf("flash %q, want the stop said with the count", got)
	}
	if strings.Contains(hs.screen(), "bind gz") {
		t.Errorf("progress still shown after the stop:\n%s", hs.screen())
	}
}

// TestBindRunsToTheEnd: a small bind is one batch and says so.
func TestBindRunsToTheEnd(t *testing.T) {
	f := newFleet(t)
	gz := f.cluster("gz", "gz.example.com")
	f.proxy(gz, "edge-1")
	f.agents(0, "h", 3)
	c := f.common(false)
	hs := newHarness(t, c, 100, 30)
	newPacer(hs, c)
	v := openAgents(hs, c)
	hs.keys("space", "space", "b", "enter", "right", "enter")
	if got := f.bound(gz.ID); got != 2 {
		t.Fatalf("%d bound, want 2", got)
	}
	if got := hs.flash(); !strings.Contains(got, "2 of 2 agent(s) bound to cluster gz in 1 batch(es)") {
		t.Errorf("flash %q", got)
	}
	if c.Jobs.Binding() {
		t.Error("job still running after its only batch")
	}
	if n := len(v.Table().Marked()); n != 0 {
		t.Errorf("%d marks left after the bind took them", n)
	}
}

func TestUnbindMarked(t *testing.T) {
	f := newFleet(t)
	gz := f.cluster("gz", "gz.example.com")
	f.proxy(gz, "edge-1")
	f.agents(gz.ID, "h", 3)
	c := f.common(false)
	hs := newHarness(t, c, 100, 30)
	v := NewAgentsView(c, gz.ID)
	hs.send(SwitchMsg{v})
	hs.keys("space", "space", "U")
	confirm := dialogAs[*Choice](t, hs)
	hs.wantScreen("Unbind 2 agent(s)?", "They stay installed")
	// enter by habit on Cancel changes nothing.
	if confirm.Focused() != "Cancel" {
		t.Fatalf("focus %q, want Cancel", confirm.Focused())
	}
	hs.keys("enter")
	if got := f.bound(gz.ID); got != 3 {
		t.Fatalf("Cancel unbound agents: %d left, want 3", got)
	}
	hs.keys("U", "right", "enter")
	if got := f.bound(gz.ID); got != 1 {
		t.Fatalf("after unbind %d bound, want 1", got)
	}
	if got := f.bound(-1); got != 2 {
		t.Errorf("%d direct agents, want 2", got)
	}
	if got := hs.flash(); !strings.Contains(got, "2 agent(s) unbound: they stay installed") {
		t.Errorf("flash %q", got)
	}
}

func TestUninstallOfflineRefused(t *testing.T) {
	f := newFleet(t)
	ags := f.agents(0, "h", 1)
	f.clock.Advance(13 * time.Hour) // past offline_after
	c := f.common(false)
	hs := newHarness(t, c, 100, 30)
	openAgents(hs, c)
	before := f.audits()
	hs.keys("X")
	dialogAs[*Choice](t, hs)
	hs.wantScreen("Uninstall the agent from 1 host(s)?", "grace period (6h)")
	hs.keys("right", "enter")
	if got, want := hs.flash(), `host "`+ags[0].ID+`" is offline: an offline agent cannot receive the uninstall command`; got != want {
		t.Errorf("flash %q, want the store's refusal %q", got, want)
	}
	a, err := f.db.GetAgent(f.ctx, ags[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if !a.UninstallAt.IsZero() || f.audits() != before {
		t.Errorf("the refused uninstall changed something: uninstall_at %v, audit %d -> %d", a.UninstallAt, before, f.audits())
	}
}

func TestUninstallOnline(t *testing.T) {
	f := newFleet(t)
	ags := f.agents(0, "h", 1)
	c := f.common(false)
	hs := newHarness(t, c, 100, 30)
	openAgents(hs, c)
	hs.keys("X", "right", "enter")
	if got := hs.flash(); !strings.Contains(got, "uninstall command queued for 1 agent(s)") {
		t.Errorf("flash %q", got)
	}
	if a, _ := f.db.GetAgent(f.ctx, ags[0].ID); a.UninstallAt.IsZero() {
		t.Error("uninstall not requested")
	}
	// The agent view shows the command and its state.
	hs.keys("enter")
	hs.wantScreen("Commands", "uninstall: queued, just now", "not acknowledged by the agent yet")
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

func TestInstallCreateAndRevoke(t *testing.T) {
	f := newFleet(t)
	gz := f.cluster("gz", "gz.example.com")
	f.proxy(gz, "edge-1")
	c := f.common(false)
	hs := newHarness(t, c, 120, 36)
	hs.send(SwitchMsg{NewInstallView(c)})
	hs.wantScreen("press n to create one")
	hs.keys("n")
	form := dialogAs[*Form](t, hs)
	form.Set("group", "web")
	form.Set("expires", "2d")
	hs.keys("enter")
	kd := dialogAs[*keyDialog](t, hs)
	hs.wantScreen("the key is shown only now", "outpost agent run --proxy", "--key ik_")
	hs.keys("y")
	if len(hs.copied) != 1 || !strings.Contains(hs.copied[0], "--key ik_") || hs.copied[0] != kd.command {
		t.Fatalf("copied %q, want the whole command %q", hs.copied, kd.command)
	}
	ics, err := f.db.ListInstallCommands(f.ctx, f.acct.ID)
	if err != nil || len(ics) != 1 {
		t.Fatalf("ListInstallCommands: %v %+v", err, ics)
	}
	ic := ics[0]
	if ic.ClusterID != gz.ID || ic.Group != "web" || ic.OS != "linux" || !ic.ExpiresAt.Equal(f.clock.Now().Add(48*time.Hour)) {
		t.Errorf("created %+v, want gz, group web, linux, 48 h", ic)
	}
	if !strings.Contains(kd.command, "--key "+ic.KeyPrefix) {
		t.Errorf("command %q lacks the key", kd.command)
	}
	hs.keys("esc")
	hs.wantScreen("gz", "web", "active", "command "+itoaF(ic.ID))

	// A bad expiry is refused in the form.
	hs.keys("n")
	form = dialogAs[*Form](t, hs)
	form.Set("expires", "soon")
	hs.keys("enter")
	if !strings.Contains(form.Err(), `duration "soon"`) {
		t.Errorf("form error %q, want the duration refusal", form.Err())
	}
	hs.keys("esc")

	hs.keys("R")
	confirm := dialogAs[*Choice](t, hs)
	if confirm.Focused() != "Cancel" {
		t.Fatalf("revoke focus %q", confirm.Focused())
	}
	hs.keys("right", "enter")
	ics, _ = f.db.ListInstallCommands(f.ctx, f.acct.ID)
	if !ics[0].Revoked {
		t.Fatal("not revoked")
	}
	hs.wantScreen("revoked")
	hs.keys("R", "right", "enter")
	if got := hs.flash(); got != "install command "+itoaF(ic.ID)+" is already revoked" {
		t.Errorf("second revoke: flash %q, want the store's refusal", got)
	}
}

func itoaF(n int64) string { return fmt.Sprint(n) }

func TestSettingsEdit(t *testing.T) {
	f := newFleet(t)
	c := f.common(false)
	hs := newHarness(t, c, 100, 30)
	hs.send(SwitchMsg{NewSettingsView(c)})
	hs.wantScreen("offline_after", "12h", "bind_batch_gap", "1m", "poll_timeout")
	agFrame(t, hs.screen(), 100, 30)

	edit := func(row int, value string) *Form {
		hs.keys("g")
		for i := 0; i < row; i++ {
			hs.keys("down")
		}
		hs.keys("e")
		form := dialogAs[*Form](t, hs)
		form.Set("value", value)
		hs.keys("enter")
		return form
	}
	t.Run("valid", func(t *testing.T) {
		edit(4, "2m")
		if hs.root.Dialog() != nil {
			t.Fatalf("form still open:\n%s", hs.screen())
		}
		if got := f.db.Settings().BindBatchGap; got != 2*time.Minute {
			t.Errorf("bind_batch_gap = %s, want 2m", got)
		}
		hs.wantScreen("bind_batch_gap = 2m")
	})
	refusals := []struct {
		name       string
		row        int
		value      string
		want       string
		storeCheck bool
	}{
		{"not a duration", 0, "soon", `duration "soon"`, false},
		{"inventory not shorter than offline", 1, "13h", "must be shorter than offline_after", true},
		{"zero", 2, "0s", "must be positive", false},
	}
	for _, r := range refusals {
		t.Run(r.name, func(t *testing.T) {
			before, audits := f.db.Settings(), f.audits()
			form := edit(r.row, r.value)
			if !strings.Contains(form.Err(), r.want) {
				t.Errorf("form error %q, want %q", form.Err(), r.want)
			}
			if hs.root.Dialog() == nil {
				t.Error("the form closed on a refusal")
			}
			if f.db.Settings() != before || f.audits() != audits {
				t.Error("a refused setting changed the store")
			}
			hs.keys("esc")
		})
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
