package tui

import (
	"context"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"outpost/store"
)

// fakeClock is a store.Clock tests move by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// fleet is a fresh store in a temp file with one account.
type fleet struct {
	t     *testing.T
	db    *store.DB
	clock *fakeClock
	path  string // the database file, for a second handle
	ctx   context.Context
	acct  store.Account
	n     int
}

func newFleet(t *testing.T) *fleet {
	t.Helper()
	clock := &fakeClock{now: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)}
	path := filepath.Join(t.TempDir(), "outpost.db")
	db, err := store.Open(path, clock)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	f := &fleet{t: t, db: db, path: path, clock: clock, ctx: store.WithActor(context.Background(), "tester")}
	if f.acct, _, err = db.CreateAccount(f.ctx, "acme"); err != nil {
		t.Fatalf("CreateAccount: %v", err)
	}
	return f
}

func (f *fleet) cluster(name, addr string) store.Cluster {
	f.t.Helper()
	c, err := f.db.CreateCluster(f.ctx, store.ClusterInput{AccountID: f.acct.ID, Name: name, Address: addr, Region: "华南"})
	if err != nil {
		f.t.Fatalf("CreateCluster %s: %v", name, err)
	}
	return c
}

// proxy joins a manual proxy server to cluster c; online unless stopped.
func (f *fleet) proxy(c store.Cluster, host string) store.Proxy {
	f.t.Helper()
	jt, err := f.db.CreateJoinToken(f.ctx, c.ID, store.DeployManual, "", time.Hour)
	if err != nil {
		f.t.Fatalf("CreateJoinToken: %v", err)
	}
	f.n++
	p, _, err := f.db.JoinProxy(f.ctx, store.JoinInput{Token: jt.Token, Hostname: host, IP: fmt.Sprintf("10.0.0.%d", f.n),
		Version: "1.0.0", URLs: []string{fmt.Sprintf("https://10.0.0.%d:8443", f.n)}})
	if err != nil {
		f.t.Fatalf("JoinProxy: %v", err)
	}
	return p
}

// agents enrols n agents (host-1...) straight into cluster c (0 = direct).
func (f *fleet) agents(clusterID int64, prefix string, n int) []store.Agent {
	f.t.Helper()
	ic, err := f.db.CreateInstallCommand(f.ctx, store.InstallInput{AccountID: f.acct.ID, ClusterID: clusterID, OS: "linux"})
	if err != nil {
		f.t.Fatalf("CreateInstallCommand: %v", err)
	}
	var out []store.Agent
	for i := 1; i <= n; i++ {
		f.n++
		e, err := f.db.Enrol(f.ctx, store.EnrolInput{Key: ic.Key, Host: store.HostFacts{Hostname: fmt.Sprintf("%s-%d", prefix, i),
			IPs: []string{fmt.Sprintf("192.168.%d.%d", f.n/250, f.n%250)}, OS: "linux", Arch: "amd64", Fingerprint: fmt.Sprintf("fp-%d", f.n), Version: "1.0.0"}})
		if err != nil {
			f.t.Fatalf("Enrol: %v", err)
		}
		out = append(out, e.Agent)
	}
	return out
}

// common is the dashboard's shared state over the fleet, without timers.
func (f *fleet) common(readOnly bool) *Common {
	c := NewCommon(Options{Backend: f.db, Clock: f.clock, Account: f.acct, ReadOnly: readOnly, Version: "1.2.3", NoColor: true,
		Relay: func(context.Context) RelayState {
			return RelayState{Running: true, Text: "running on https://127.0.0.1:8443"}
		}})
	c.Refresh, c.FlashFor = 0, 0
	return c
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

// harness drives a model synchronously: each command runs to completion
// and its messages are fed back, like the bubbletea loop but in the test.
type harness struct {
	t      *testing.T
	root   *Root
	quit   bool
	copied []string
}

func newHarness(t *testing.T, c *Common, w, h int) *harness {
	t.Helper()
	hs := &harness{t: t}
	c.Clipboard = func(text string) tea.Cmd {
		hs.copied = append(hs.copied, text)
		return nil
	}
	hs.root = NewRoot(c, NewClustersView(c))
	hs.send(tea.WindowSizeMsg{Width: w, Height: h})
	hs.run(hs.root.Init())
	return hs
}

// send delivers msg and runs what it returns.
func (hs *harness) send(msg tea.Msg) {
	hs.t.Helper()
	_, cmd := hs.root.Update(msg)
	hs.run(cmd)
}

var cmdSliceType = reflect.TypeOf([]tea.Cmd(nil))

func (hs *harness) run(cmd tea.Cmd) {
	hs.t.Helper()
	if cmd == nil {
		return
	}
	done := make(chan tea.Msg, 1)
	go func() { done <- cmd() }()
	var msg tea.Msg
	select {
	case msg = <-done:
	case <-time.After(30 * time.Second): // a 500-host bind under -race on a loaded machine takes seconds
		hs.t.Fatalf("a command did not return within 30 s (a timer in a test?)")
	}
	switch m := msg.(type) {
	case nil:
		return
	case tea.BatchMsg:
		for _, c := range m {
			hs.run(c)
		}
		return
	case tea.QuitMsg:
		hs.quit = true
		return
	}
	// tea.Sequence's message type is not exported: a slice of commands.
	if v := reflect.ValueOf(msg); v.Kind() == reflect.Slice && v.Type().ConvertibleTo(cmdSliceType) {
		for _, c := range v.Convert(cmdSliceType).Interface().([]tea.Cmd) {
			hs.run(c)
		}
		return
	}
	hs.send(msg)
}

// keys sends key presses: "enter", "ctrl+d", "esc", "tab", or text runes.
func (hs *harness) keys(keys ...string) {
	hs.t.Helper()
	for _, k := range keys {
		hs.send(keyMsg(k))
	}
}

func (hs *harness) typeText(s string) {
	hs.t.Helper()
	for _, r := range s {
		hs.send(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune{r}})
	}
}

func keyMsg(k string) tea.KeyMsg {
	switch k {
	case "enter":
		return tea.KeyMsg{Type: tea.KeyEnter}
	case "esc":
		return tea.KeyMsg{Type: tea.KeyEsc}
	case "tab":
		return tea.KeyMsg{Type: tea.KeyTab}
	case "shift+tab":
		return tea.KeyMsg{Type: tea.KeyShiftTab}
	case "up":
		return tea.KeyMsg{Type: tea.KeyUp}
	case "down":
		return tea.KeyMsg{Type: tea.KeyDown}
	case "left":
		return tea.KeyMsg{Type: tea.KeyLeft}
	case "right":
		return tea.KeyMsg{Type: tea.KeyRight}
	case "ctrl+d":
		return tea.KeyMsg{Type: tea.KeyCtrlD}
	case "ctrl+c":
		return tea.KeyMsg{Type: tea.KeyCtrlC}
	case "ctrl+r":
		return tea.KeyMsg{Type: tea.KeyCtrlR}
	case "backspace":
		return tea.KeyMsg{Type: tea.KeyBackspace}
	case "space":
		return tea.KeyMsg{Type: tea.KeySpace, Runes: []rune{' '}}
	case "pgdown":
		return tea.KeyMsg{Type: tea.KeyPgDown}
	case "end":
		return tea.KeyMsg{Type: tea.KeyEnd}
	}
	return tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(k)}
}

// screen is the current frame with styles removed.
func (hs *harness) screen() string {
	return stripANSI(hs.root.View())
}

func stripANSI(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == 0x1b && i+1 < len(s) && s[i+1] == '[' {
			j := i + 2
			for j < len(s) && (s[j] < 0x40 || s[j] > 0x7e) {
				j++
			}
			i = j
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// wantScreen fails unless the frame contains every want.
func (hs *harness) wantScreen(wants ...string) {
	hs.t.Helper()
	s := hs.screen()
	for _, w := range wants {
		if !strings.Contains(s, w) {
			hs.t.Fatalf("screen lacks %q:\n%s", w, s)
		}
	}
}

// flash is the current flash line.
func (hs *harness) flash() string {
	f, _ := hs.root.Flash()
	return f
}

func windowSize(w, h int) tea.WindowSizeMsg { return tea.WindowSizeMsg{Width: w, Height: h} }
