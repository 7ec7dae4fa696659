package tui

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"

	"outpost/store"
)

// tableView wraps a bare table as a View for the harness.
type tableView struct{ t *Table }

func (v *tableView) ShortHelp() []key.Binding  { return nil }
func (v *tableView) FullHelp() [][]key.Binding { return nil }
func (v *tableView) Title() string             { return "table" }
func (v *tableView) Capturing() bool           { return v.t.Capturing() }

func (v *tableView) Init() tea.Cmd    { return v.t.Load() }
func (v *tableView) Refresh() tea.Cmd { return v.t.Refresh() }
func (v *tableView) SetSize(w, h int) { v.t.SetSize(w, h) }
func (v *tableView) View() string     { return v.t.View() }
func (v *tableView) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	cmd, _ := v.t.Update(msg)
	return v, cmd
}

func TestTablePagesOnlyAWindow(t *testing.T) {
	const total = 100_000
	var mu sync.Mutex
	var asked []Query
	fetch := func(ctx context.Context, b Backend, q Query) (Page, error) {
		mu.Lock()
		asked = append(asked, q)
		mu.Unlock()
		p := Page{Total: total}
		for i := q.Offset; i < min(q.Offset+q.Limit, total); i++ {
			p.Rows = append(p.Rows, Row{ID: fmt.Sprint(i), Cells: []string{fmt.Sprintf("host-%06d", i)}})
		}
		return p, nil
	}
	f := newFleet(t)
	c := f.common(false)
	tbl := NewTable(c, []Column{{Title: "HOST", Width: 12, Flex: 1}}, fetch)
	hs := newHarness(t, c, 80, 24)
	hs.send(SwitchMsg{&tableView{t: tbl}})
	vis := tbl.visible()
	check := func(what string) {
		t.Helper()
		if n := len(tbl.rows); n > tbl.window() {
			t.Errorf("%s: table holds %d rows, more than its window of %d", what, n, tbl.window())
		}
		for _, q := range asked {
			if q.Limit > 3*vis+30 {
				t.Errorf("%s: asked for %d rows at once (screen %d)", what, q.Limit, vis)
			}
		}
		asked = nil
	}
	check("first page")
	hs.wantScreen("host-000000")
	for range 10 {
		hs.keys("pgdown")
	}
	check("after paging")
	hs.wantScreen(fmt.Sprintf("host-%06d", 10*vis))
	hs.keys("end")
	check("at the end")
	if got := tbl.SelectedID(); got != fmt.Sprint(total-1) {
		t.Fatalf("end selected %q, want the last row", got)
	}
	hs.wantScreen("host-099999")
	if strings.Contains(hs.screen(), "…") {
		t.Errorf("rows shown as not loaded after the page arrived:\n%s", hs.screen())
	}
}

func TestTableCancelsReplacedLoad(t *testing.T) {
	f := newFleet(t)
	c := f.common(false)
	var calls atomic.Int32
	cancelled, started := make(chan struct{}), make(chan struct{})
	tbl := NewTable(c, []Column{{Title: "X", Width: 4}}, func(ctx context.Context, b Backend, q Query) (Page, error) {
		if calls.Add(1) == 1 {
			close(started)
			select {
			case <-ctx.Done():
				close(cancelled)
				return Page{}, ctx.Err()
			case <-time.After(5 * time.Second):
				return Page{}, fmt.Errorf("first load was never cancelled")
			}
		}
		return Page{Total: 1, Rows: []Row{{ID: "a", Cells: []string{"a"}}}}, nil
	})
	tbl.SetSize(40, 10)
	first := tbl.Load()
	done := make(chan tea.Msg, 1)
	go func() { done <- first() }()
	<-started
	second := tbl.SetFilter("a") // typing replaces the load
	tbl.Update(second())
	select {
	case <-cancelled:
	case <-time.After(3 * time.Second):
		t.Fatalf("the replaced load was not cancelled")
	}
	tbl.Update(<-done) // the cancelled answer arrives late: ignored
	if tbl.Err() != nil || tbl.Total() != 1 {
		t.Fatalf("after the late cancelled answer: err %v, total %d; want the newer page kept", tbl.Err(), tbl.Total())
	}
}

// countingBackend counts ListClusters calls.
type countingBackend struct {
	Backend
	clusters atomic.Int32
}

func (b *countingBackend) ListClusters(ctx context.Context, acct int64) ([]store.Cluster, error) {
	b.clusters.Add(1)
	return b.Backend.ListClusters(ctx, acct)
}

func TestClustersPagingReusesTheList(t *testing.T) {
	f := newFleet(t)
	for i := range 120 {
		f.cluster(fmt.Sprintf("c-%03d", i), fmt.Sprintf("c%03d.example", i))
	}
	c := f.common(false)
	cb := &countingBackend{Backend: f.db}
	c.Backend = cb
	hs := newHarness(t, c, 80, 24)
	n := cb.clusters.Load()
	for range 8 {
		hs.keys("pgdown")
	}
	hs.keys("s", "s", "/")
	hs.typeText("c-1")
	hs.keys("enter")
	if got := cb.clusters.Load(); got != n {
		t.Errorf("paging, sorting and filtering 120 clusters asked the store %d more times", got-n)
	}
	hs.keys("ctrl+r")
	if got := cb.clusters.Load(); got != n+1 {
		t.Errorf("a refresh asked the store %d times, want once", got-n)
	}
	// The proxies of one account: the cluster -> account map is loaded once.
	hs.keys(":")
	hs.typeText("proxies")
	hs.keys("enter")
	m := cb.clusters.Load()
	hs.keys("ctrl+r", "ctrl+r")
	if got := cb.clusters.Load(); got != m {
		t.Errorf("refreshing :proxies listed the clusters %d more times", got-m)
	}
}

// TestLiveRefresh: the tick reloads the active view only, and nothing
// while a dialog is open.
func TestLiveRefresh(t *testing.T) {
	f := newFleet(t)
	f.cluster("gz", "gz.example")
	c := f.common(false)
	cb := &countingBackend{Backend: f.db}
	c.Backend = cb
	hs := newHarness(t, c, 100, 30)
	n := cb.clusters.Load()
	hs.send(refreshTickMsg{})
	if got := cb.clusters.Load(); got != n+1 {
		t.Fatalf("a tick on the clusters view listed them %d times, want once", got-n)
	}
	hs.keys("e") // a dialog
	n = cb.clusters.Load()
	hs.send(refreshTickMsg{})
	if got := cb.clusters.Load(); got != n {
		t.Errorf("a tick under an open dialog reloaded the view")
	}
	hs.keys("esc", "enter") // the cluster on top: the clusters view is not active
	n = cb.clusters.Load()
	hs.send(refreshTickMsg{})
	if got := cb.clusters.Load(); got != n {
		t.Errorf("a tick reloaded the clusters view under the cluster view")
	}
}

// TestKeysAfterADialogKeyReachTheDialog: keys that arrive together (typed
// fast, pasted, sent by a script) reach the dialog the first one opens,
// not the view under it.
func TestKeysAfterADialogKeyReachTheDialog(t *testing.T) {
	f := newFleet(t)
	f.cluster("gz", "gz.example")
	hs := newHarness(t, f.common(false), 100, 30)
	hs.root.Update(keyMsg("p")) // its command is not run: the next key comes first
	if _, ok := hs.root.Dialog().(*Choice); !ok {
		t.Fatalf("after p the deploy dialog is not open yet (%T): the next keys would go to the clusters view", hs.root.Dialog())
	}
	hs.root.Update(keyMsg("esc"))
	hs.root.Update(keyMsg("enter"))
	if _, ok := hs.root.Active().(*ClusterView); !ok {
		t.Fatalf("enter did not open the cluster at once: %T", hs.root.Active())
	}
}

// TestSettingsChangedElsewhereReachTheDashboard: a setting changed by
// another process (here a second handle on the same file, as the CLI is)
// is in force at the next refresh, so statuses use it.
func TestSettingsChangedElsewhereReachTheDashboard(t *testing.T) {
	f := newFleet(t)
	hs := newHarness(t, f.common(false), 100, 30)
	other, err := store.Open(f.path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	s := other.Settings()
	s.OfflineAfter = 7 * time.Hour
	if err := other.SetSettings(f.ctx, s); err != nil {
		t.Fatal(err)
	}
	hs.send(refreshTickMsg{})
	if got, want := f.db.Settings().OfflineAfter, 7*time.Hour; got != want {
		t.Errorf("offline_after after a refresh: got %s, want %s (set by another process)", got, want)
	}
}

// TestHeaderShowsDamage: what the relay's recovery dropped from damaged
// files is in the header, in words, and nothing is said when nothing was.
func TestHeaderShowsDamage(t *testing.T) {
	for _, tt := range []struct {
		name, damage string
		want         bool
	}{
		{"damage", "spool 1 record (99 bytes)", true},
		{"none", "", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFleet(t)
			c := f.common(false)
			c.Relay = func(context.Context) RelayState { return RelayState{Running: true, Text: "running", Damage: tt.damage} }
			hs := newHarness(t, c, 120, 30)
			hs.send(refreshTickMsg{})
			head := strings.Split(hs.screen(), "\n")[0]
			if got := strings.Contains(head, "DAMAGE spool 1 record (99 bytes)"); got != tt.want {
				t.Errorf("header %q: damage shown %v, want %v", head, got, tt.want)
			}
			if !tt.want && strings.Contains(head, "DAMAGE") {
				t.Errorf("header %q: want no damage", head)
			}
		})
	}
}

// TestInstallListSaysWhenThePinIsUnreadable: with a damaged DATA/tls/ca.pem
// the install commands are not listed without their --ca-sha256 (agents
// would then trust any certificate): the view says what is wrong.
func TestInstallListSaysWhenThePinIsUnreadable(t *testing.T) {
	f := newFleet(t)
	if _, err := f.db.CreateInstallCommand(f.ctx, store.InstallInput{AccountID: f.acct.ID}); err != nil {
		t.Fatal(err)
	}
	c := f.common(false)
	c.DataDir = t.TempDir()
	if err := os.MkdirAll(filepath.Join(c.DataDir, "tls"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(c.DataDir, "tls", "ca.pem"), []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	hs := newHarness(t, c, 120, 30)
	hs.send(SwitchMsg{NewInstallView(c)})
	s := hs.screen()
	if strings.Contains(s, "outpost agent run") {
		t.Errorf("an install command is shown without its pin:\n%s", s)
	}
	if !strings.Contains(s, "holds no PEM certificate") {
		t.Errorf("screen does not say what is wrong with ca.pem:\n%s", s)
	}
}
