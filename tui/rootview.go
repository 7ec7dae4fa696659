package tui

import (
	"fmt"
	"strings"

	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/lipgloss"
)

// View implements tea.Model.
func (r *Root) View() string {
	if r.quitting {
		return ""
	}
	w := r.c.Width
	st := r.c.Styles
	var b strings.Builder
	b.WriteString(r.header(w))
	b.WriteByte('\n')
	if r.cmdMode {
		b.WriteString(clipLine(r.cmdIn.View(), w) + st.Muted.Render(clipLine("   "+strings.Join(complete(r.cmdIn.Value()), " "), max(w-Width(r.cmdIn.Value())-4, 0))))
	} else {
		crumbs := r.crumbs()
		room := w - Width(stripStyle(crumbs)) - 2
		rt, style := r.relayText(room), r.relayStyle()
		if bl := bindLine(r.c); bl != "" {
			rt, style = Truncate(bl, room), st.Warn // a running bind matters more than the relay line
		}
		if room > 0 && rt != "" {
			crumbs += strings.Repeat(" ", max(w-Width(stripStyle(crumbs))-Width(rt), 1)) + style.Render(rt)
		}
		b.WriteString(clipLine(crumbs, w))
	}
	b.WriteByte('\n')
	bh := r.bodyHeight()
	var body string
	switch {
	case r.help:
		body = r.fullHelp(w)
	case r.dialog != nil:
		body = lipgloss.Place(w, bh, lipgloss.Center, lipgloss.Center, r.dialog.View())
	default:
		body = r.Active().View()
	}
	b.WriteString(clip(body, w, bh))
	b.WriteByte('\n')
	if r.flash != "" {
		style, prefix := st.Flash, ""
		if r.flashErr {
			style, prefix = st.FlashErr, "error: "
		}
		b.WriteString(style.Render(Truncate(prefix+r.flash, w)))
	}
	b.WriteByte('\n')
	b.WriteString(r.footer(w))
	return b.String()
}

func (r *Root) header(w int) string {
	st := r.c.Styles
	parts := []string{"outpost " + r.c.Version, "account " + Clean(r.c.AccountLabel())}
	if r.countsErr != nil {
		parts = append(parts, "counts: "+Clean(errText(r.countsErr)))
	} else {
		c := r.counts
		parts = append(parts, fmt.Sprintf("agents %d/%d online", c.Online, c.Total), fmt.Sprintf("at risk %d", c.AtRisk),
			fmt.Sprintf("duplicates %d", c.Duplicates))
	}
	if r.c.ReadOnly {
		parts = append(parts, "READ-ONLY")
	}
	if r.relay != nil && r.relay.Damage != "" {
		parts = append(parts, "DAMAGE "+Clean(r.relay.Damage))
	}
	return st.Header.Render(Fit(" "+strings.Join(parts, " │ "), w))
}

// relayText is the local relay's state, shown right of the crumbs.
func (r *Root) relayText(room int) string {
	if r.relay == nil {
		return "relay unknown"
	}
	t := "relay " + Clean(r.relay.Text)
	if d := Clean(r.relay.Detail); d != "" && Width(t)+1+Width(d) <= room {
		t += " " + d
	}
	return Truncate(t, room)
}

func (r *Root) relayStyle() lipgloss.Style {
	if r.relay != nil && r.relay.Running {
		return r.c.Styles.Good
	}
	return r.c.Styles.Bad
}

func (r *Root) crumbs() string {
	st := r.c.Styles
	var names []string
	for _, v := range r.stack {
		names = append(names, Clean(v.Title()))
	}
	return st.Crumb.Render(strings.Join(names, " › "))
}

func (r *Root) footer(w int) string {
	st := r.c.Styles
	var binds, tail []key.Binding
	if r.dialog != nil {
		binds = r.dialog.ShortHelp()
	} else if r.help {
		binds = []key.Binding{r.c.Keys.Back}
	} else {
		binds = r.Active().ShortHelp()
		tail = []key.Binding{r.c.Keys.Help, r.c.Keys.Command, r.c.Keys.Quit}
	}
	item := func(b key.Binding) (string, int) {
		hp := b.Help()
		if !b.Enabled() || hp.Key == "" {
			return "", 0
		}
		return st.HelpKey.Render(hp.Key) + " " + st.HelpDesc.Render(hp.Desc), Width(hp.Key) + 1 + Width(hp.Desc) + 2
	}
	// The global keys are always shown; the view's fill what is left.
	var end []string
	used := 0
	for _, b := range tail {
		if s, n := item(b); n > 0 && used+n <= w {
			end = append(end, s)
			used += n
		}
	}
	var parts []string
	for _, b := range binds {
		s, n := item(b)
		if n == 0 {
			continue
		}
		if used+n > w {
			break
		}
		used += n
		parts = append(parts, s)
	}
	return strings.Join(append(parts, end...), "  ")
}

// fullHelp is the `?` screen: the view's keys on the left, the global
// keys and the commands on the right (one column when narrow).
func (r *Root) fullHelp(w int) string {
	st := r.c.Styles
	colW := w
	if w >= 80 {
		colW = w / 2
	}
	keyW := 10 // "q / ctrl+c"
	for _, group := range r.Active().FullHelp() {
		for _, kb := range group {
			if kb.Enabled() {
				keyW = max(keyW, Width(kb.Help().Key))
			}
		}
	}
	keyW = min(keyW, 14)
	line := func(b *strings.Builder, k, d string) {
		b.WriteString(clipLine(" "+st.HelpKey.Render(Fit(k, keyW))+" "+st.HelpDesc.Render(Truncate(d, max(colW-keyW-3, 4))), colW) + "\n")
	}
	var left, right strings.Builder
	left.WriteString(st.Title.Render(Truncate("Keys of "+Clean(r.Active().Title()), colW)) + "\n")
	seen := map[string]bool{}
	for _, group := range r.Active().FullHelp() {
		for _, kb := range group {
			if !kb.Enabled() || kb.Help().Key == "" || seen[kb.Help().Key] {
				continue
			}
			seen[kb.Help().Key] = true
			line(&left, kb.Help().Key, kb.Help().Desc)
		}
	}
	right.WriteString(st.Title.Render("Everywhere") + "\n")
	line(&right, "esc", "back (clears a filter first)")
	line(&right, ":", "command mode (tab completes)")
	line(&right, "?", "this help (esc closes)")
	line(&right, "q / ctrl+c", "quit")
	right.WriteString(st.Title.Render("Commands") + "\n")
	for _, c := range commands {
		line(&right, ":"+c.name, c.help)
	}
	if r.c.ReadOnly {
		right.WriteString(st.Warn.Render("read-only: no key changes anything") + "\n")
	}
	if colW == w {
		return left.String() + "\n" + right.String()
	}
	l := strings.Split(strings.TrimSuffix(left.String(), "\n"), "\n")
	rt := strings.Split(strings.TrimSuffix(right.String(), "\n"), "\n")
	var b strings.Builder
	for i := 0; i < max(len(l), len(rt)); i++ {
		a, c := "", ""
		if i < len(l) {
			a = l[i]
		}
		if i < len(rt) {
			c = rt[i]
		}
		b.WriteString(a + strings.Repeat(" ", max(colW-Width(stripStyle(a)), 0)) + c + "\n")
	}
	return b.String()
}
