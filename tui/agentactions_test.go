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
