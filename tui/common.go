package tui

import (
	"context"
	"os"
	"strings"
	"time"

	osc52pkg "github.com/aymanbagabas/go-osc52/v2"
	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"

	"outpost/store"
)

// RelayState is what the header says about the relay of this host.
type RelayState struct {
	Running bool
	Text    string // short: "running", "not running here"
	Detail  string // shown when the header has room: pid, URLs
	// Damage says what the relay's recovery dropped from damaged spool,
	// cache or collector files ("" = nothing); the header shows it.
	Damage string
}

// Common is shared by the root and every view and dialog: size, styles,
// keys, the backend and the session's facts. Views keep a *Common and never
// copy it, so a resize or a setting reaches all of them.
type Common struct {
	Width, Height int // the whole terminal

	Styles  *Styles
	Keys    *KeyMap
	Backend Backend
	Clock   store.Clock
	// Account is the operator's account; ID 0 means every account (the
	// store has several and no --account was given).
	Account  store.Account
	ReadOnly bool
	Version  string
	Actor    string // audit actor, e.g. "alice@tui"
	DataDir  string

	// Relay reports the local relay's state for the header; nil = unknown.
	Relay func(ctx context.Context) RelayState
	// Clipboard writes text to the operator's clipboard (OSC 52 by
	// default); tests replace it.
	Clipboard func(text string) tea.Cmd
	// Refresh is the live-refresh period of the active view (0 = off).
	Refresh time.Duration
	// CallTimeout bounds every store call.
	CallTimeout time.Duration
	// FlashFor is how long a flash line stays (errors twice as long);
	// 0 keeps it until the next one.
	FlashFor time.Duration
	// Jobs is the background work (a paced bind) shown whatever the view.
	Jobs *Jobs

	nextID          int
	clusterAccounts clusterAccounts // for the proxies of one account
}

// Options configure a new Common.
type Options struct {
	Backend  Backend
	Clock    store.Clock
	Account  store.Account
	ReadOnly bool
	Version  string
	Actor    string
	Relay    func(ctx context.Context) RelayState
	NoColor  bool   // default: $NO_COLOR set
	DataDir  string // the data directory (CA pin, manager URL for join commands)
}

// NewCommon builds the shared state. NO_COLOR (https://no-color.org) is
// respected unless opt.NoColor is already true.
func NewCommon(opt Options) *Common {
	noColor := opt.NoColor || os.Getenv("NO_COLOR") != ""
	c := &Common{
		Width: 80, Height: 24,
		Styles:      NewStyles(noColor),
		Backend:     opt.Backend,
		Clock:       opt.Clock,
		Account:     opt.Account,
		ReadOnly:    opt.ReadOnly,
		Version:     opt.Version,
		Actor:       opt.Actor,
		Relay:       opt.Relay,
		DataDir:     opt.DataDir,
		Refresh:     2 * time.Second,
		CallTimeout: 10 * time.Second,
		FlashFor:    5 * time.Second,
	}
	if c.Clock == nil {
		c.Clock = sysClock{}
	}
	if c.Actor == "" {
		c.Actor = "operator@tui"
	}
	c.Keys = NewKeyMap(c.ReadOnly)
	c.Jobs = newJobs()
	c.Clipboard = osc52
	return c
}

type sysClock struct{}

func (sysClock) Now() time.Time { return time.Now() }

// Now is the dashboard's clock.
func (c *Common) Now() time.Time { return c.Clock.Now() }

// NewID returns an id unique in this session, for views and tables to tag
// the messages their commands return (several views of one kind can be on
// the stack at once).
func (c *Common) NewID() int {
	c.nextID++
	return c.nextID
}

// Call runs fn as a tea.Cmd with a bounded context carrying the audit
// actor. It is the only way views reach the backend: Update never blocks.
func (c *Common) Call(fn func(ctx context.Context, b Backend) tea.Msg) tea.Cmd {
	return c.CallContext(context.Background(), fn)
}

// CallContext is Call under parent, which the caller may cancel (a table
// cancels the page load a newer one replaces).
func (c *Common) CallContext(parent context.Context, fn func(ctx context.Context, b Backend) tea.Msg) tea.Cmd {
	b, timeout, actor := c.Backend, c.CallTimeout, c.Actor
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(store.WithActor(parent, actor), timeout)
		defer cancel()
		return fn(ctx, b)
	}
}

// AccountLabel names the account in the header.
func (c *Common) AccountLabel() string {
	if c.Account.ID == 0 {
		return "all accounts"
	}
	return c.Account.Name
}

// Styles are the dashboard's lipgloss styles. With NoColor every style is
// colourless (bold, reverse and underline only), and every state is also
// written as a word, so nothing depends on colour.
type Styles struct {
	NoColor bool

	Header     lipgloss.Style
	HeaderKey  lipgloss.Style
	Crumb      lipgloss.Style
	Title      lipgloss.Style
	TableHead  lipgloss.Style
	SortedHead lipgloss.Style
	Selected   lipgloss.Style
	Marked     lipgloss.Style
	Good       lipgloss.Style // online, protected, done
	Bad        lipgloss.Style // offline, failed, errors
	Warn       lipgloss.Style // warnings, at risk
	Muted      lipgloss.Style
	Flash      lipgloss.Style
	FlashErr   lipgloss.Style
	Dialog     lipgloss.Style
	Button     lipgloss.Style
	ButtonOn   lipgloss.Style
	Label      lipgloss.Style
	Input      lipgloss.Style
	InputOn    lipgloss.Style
	Tab        lipgloss.Style
	TabOn      lipgloss.Style
	HelpKey    lipgloss.Style
	HelpDesc   lipgloss.Style
}

// NewStyles returns the colour or the colourless set. Only fixed colours
// are used (no adaptive ones), so lipgloss never needs to ask the terminal
// for its background.
func NewStyles(noColor bool) *Styles {
	s := &Styles{NoColor: noColor}
	n := lipgloss.NewStyle()
	if noColor {
		s.Header = n.Bold(true)
		s.HeaderKey = n
		s.Crumb = n.Bold(true)
		s.Title = n.Bold(true)
		s.TableHead = n.Bold(true)
		s.SortedHead = n.Bold(true).Underline(true)
		s.Selected = n.Reverse(true)
		s.Marked = n.Bold(true)
		s.Good, s.Bad, s.Warn, s.Muted = n, n.Bold(true), n.Bold(true), n
		s.Flash = n
		s.FlashErr = n.Bold(true)
		s.Dialog = n.Border(lipgloss.NormalBorder()).Padding(0, 1)
		s.Button = n.Padding(0, 1)
		s.ButtonOn = n.Reverse(true).Padding(0, 1)
		s.Label = n
		s.Input = n
		s.InputOn = n.Underline(true)
		s.Tab = n.Padding(0, 1)
		s.TabOn = n.Reverse(true).Padding(0, 1)
		s.HelpKey = n.Bold(true)
		s.HelpDesc = n
		return s
	}
	accent := lipgloss.Color("39")
	s.Header = n.Background(lipgloss.Color("236")).Foreground(lipgloss.Color("252"))
	s.HeaderKey = n.Background(lipgloss.Color("236")).Foreground(accent).Bold(true)
	s.Crumb = n.Foreground(accent).Bold(true)
	s.Title = n.Foreground(accent).Bold(true)
	s.TableHead = n.Foreground(lipgloss.Color("250")).Bold(true)
	s.SortedHead = n.Foreground(accent).Bold(true).Underline(true)
	s.Selected = n.Background(lipgloss.Color("24")).Foreground(lipgloss.Color("255"))
	s.Marked = n.Foreground(lipgloss.Color("213")).Bold(true)
	s.Good = n.Foreground(lipgloss.Color("42"))
	s.Bad = n.Foreground(lipgloss.Color("203"))
	s.Warn = n.Foreground(lipgloss.Color("214"))
	s.Muted = n.Foreground(lipgloss.Color("244"))
	s.Flash = n.Foreground(lipgloss.Color("42"))
	s.FlashErr = n.Foreground(lipgloss.Color("203")).Bold(true)
	s.Dialog = n.Border(lipgloss.RoundedBorder()).BorderForeground(accent).Padding(0, 1)
	s.Button = n.Foreground(lipgloss.Color("250")).Padding(0, 1)
	s.ButtonOn = n.Background(accent).Foreground(lipgloss.Color("232")).Bold(true).Padding(0, 1)
	s.Label = n.Foreground(lipgloss.Color("250"))
	s.Input = n.Foreground(lipgloss.Color("252"))
	s.InputOn = n.Foreground(lipgloss.Color("255")).Underline(true)
	s.Tab = n.Foreground(lipgloss.Color("250")).Padding(0, 1)
	s.TabOn = n.Background(accent).Foreground(lipgloss.Color("232")).Bold(true).Padding(0, 1)
	s.HelpKey = n.Foreground(accent).Bold(true)
	s.HelpDesc = n.Foreground(lipgloss.Color("250"))
	return s
}

// KeyMap holds every binding. Bindings that change anything are disabled
// in --readonly mode (NewKeyMap), so they neither match nor show in help;
// a view that adds a changing key must add it to ChangeKeys as well.
type KeyMap struct {
	Up, Down, PageUp, PageDown, Home, End key.Binding
	Left, Right                           key.Binding // column (sort) or tab
	Enter, Back, Filter, Command, Help    key.Binding
	Quit, ForceQuit                       key.Binding
	Sort, Mark, NextTab, Refresh, Copy    key.Binding

	// Changing keys (disabled with --readonly).
	Create, Edit, Deploy, Upgrade, Delete key.Binding
	Bind, Unbind, Uninstall, Revoke       key.Binding
}

// NewKeyMap returns the k9s-style bindings.
func NewKeyMap(readOnly bool) *KeyMap {
	b := key.NewBinding
	k := &KeyMap{
		Up:        b(key.WithKeys("up", "k"), key.WithHelp("↑/k", "up")),
		Down:      b(key.WithKeys("down", "j"), key.WithHelp("↓/j", "down")),
		PageUp:    b(key.WithKeys("pgup", "ctrl+b"), key.WithHelp("pgup", "page up")),
		PageDown:  b(key.WithKeys("pgdown", "ctrl+f"), key.WithHelp("pgdn", "page down")),
		Home:      b(key.WithKeys("home", "g"), key.WithHelp("g/home", "top")),
		End:       b(key.WithKeys("end", "G"), key.WithHelp("G/end", "bottom")),
		Left:      b(key.WithKeys("left", "h"), key.WithHelp("←/→", "column")),
		Right:     b(key.WithKeys("right", "l"), key.WithHelp("→", "column")),
		Enter:     b(key.WithKeys("enter"), key.WithHelp("enter", "open")),
		Back:      b(key.WithKeys("esc"), key.WithHelp("esc", "back")),
		Filter:    b(key.WithKeys("/"), key.WithHelp("/", "filter")),
		Command:   b(key.WithKeys(":"), key.WithHelp(":", "command")),
		Help:      b(key.WithKeys("?"), key.WithHelp("?", "help")),
		Quit:      b(key.WithKeys("q"), key.WithHelp("q", "quit")),
		ForceQuit: b(key.WithKeys("ctrl+c"), key.WithHelp("ctrl+c", "quit")),
		Sort:      b(key.WithKeys("s"), key.WithHelp("s", "sort/flip")),
		Mark:      b(key.WithKeys(" "), key.WithHelp("space", "mark")),
		NextTab:   b(key.WithKeys("tab"), key.WithHelp("tab", "next tab")),
		Refresh:   b(key.WithKeys("ctrl+r"), key.WithHelp("ctrl+r", "refresh")),
		Copy:      b(key.WithKeys("y"), key.WithHelp("y", "copy")),

		Create:    b(key.WithKeys("n"), key.WithHelp("n", "new")),
		Edit:      b(key.WithKeys("e"), key.WithHelp("e", "edit")),
		Deploy:    b(key.WithKeys("p"), key.WithHelp("p", "deploy proxy")),
		Upgrade:   b(key.WithKeys("u"), key.WithHelp("u", "upgrade")),
		Delete:    b(key.WithKeys("ctrl+d"), key.WithHelp("ctrl+d", "delete")),
		Bind:      b(key.WithKeys("b"), key.WithHelp("b", "bind")),
		Unbind:    b(key.WithKeys("U"), key.WithHelp("U", "unbind")),
		Uninstall: b(key.WithKeys("X"), key.WithHelp("X", "uninstall")),
		Revoke:    b(key.WithKeys("R"), key.WithHelp("R", "revoke")),
	}
	if readOnly {
		for _, kb := range k.ChangeKeys() {
			kb.SetEnabled(false)
		}
	}
	return k
}

// ChangeKeys are the bindings that change the fleet.
func (k *KeyMap) ChangeKeys() []*key.Binding {
	return []*key.Binding{&k.Create, &k.Edit, &k.Deploy, &k.Upgrade, &k.Delete, &k.Bind, &k.Unbind, &k.Uninstall, &k.Revoke}
}

// osc52 copies text to the clipboard of the operator's terminal, also over
// SSH, with the OSC 52 escape sequence.
func osc52(text string) tea.Cmd {
	return func() tea.Msg {
		seq := osc52Seq(text)
		os.Stdout.WriteString(seq)
		return nil
	}
}

// osc52Seq is the escape sequence setting the clipboard to text; inside
// tmux or screen it is wrapped so the multiplexer passes it on.
func osc52Seq(text string) string {
	s := osc52pkg.New(text)
	term := os.Getenv("TERM")
	switch {
	case os.Getenv("TMUX") != "" || strings.HasPrefix(term, "tmux"):
		s = s.Tmux()
	case strings.HasPrefix(term, "screen"):
		s = s.Screen()
	}
	return s.String()
}
