package tui

import (
	"fmt"
	"strings"

	tea "github.com/charmbracelet/bubbletea"
)

// commands are the `:` commands, in completion order.
var commands = []struct {
	name, help string
}{
	{"clusters", "clusters (home)"},
	{"proxies", "proxy servers of every cluster"},
	{"agents", "all agents / assets"},
	{"install", "install commands"},
	{"audit", "audit log"},
	{"settings", "timing settings"},
	{"quit", "leave the dashboard"},
}

// complete returns the commands starting with prefix.
func complete(prefix string) []string {
	var out []string
	for _, c := range commands {
		if strings.HasPrefix(c.name, strings.ToLower(prefix)) {
			out = append(out, c.name)
		}
	}
	return out
}

func (r *Root) commandKey(msg tea.KeyMsg) tea.Cmd {
	switch msg.Type {
	case tea.KeyEsc:
		r.cmdMode = false
		r.cmdIn.Blur()
		return nil
	case tea.KeyTab:
		if m := complete(strings.TrimSpace(r.cmdIn.Value())); len(m) > 0 {
			r.cmdIn.SetValue(m[0])
			r.cmdIn.CursorEnd()
		}
		return nil
	case tea.KeyEnter:
		r.cmdMode = false
		r.cmdIn.Blur()
		return r.runCommand(strings.TrimSpace(r.cmdIn.Value()))
	}
	var cmd tea.Cmd
	r.cmdIn, cmd = r.cmdIn.Update(msg)
	return cmd
}

// runCommand opens the view a `:` command names; a unique prefix is enough.
func (r *Root) runCommand(s string) tea.Cmd {
	if s == "" {
		return nil
	}
	name := strings.ToLower(s)
	if name == "q" || name == "q!" {
		name = "quit"
	}
	if m := complete(name); len(m) == 1 || (len(m) > 0 && m[0] == name) {
		name = m[0]
	} else {
		var all []string
		for _, c := range commands {
			all = append(all, c.name)
		}
		return r.setFlash(fmt.Sprintf("unknown command %q: want %s", s, strings.Join(all, ", ")), true)
	}
	var v View
	switch name {
	case "quit":
		r.quitting = true
		return tea.Quit
	case "clusters":
		v = r.home
	case "proxies":
		v = NewProxiesView(r.c, 0)
	case "agents":
		v = newAgentsView(r.c, 0)
	case "install":
		v = newInstallView(r.c)
	case "audit":
		v = newAuditView(r.c)
	case "settings":
		v = newSettingsView(r.c)
	}
	return Switch(v)
}
