package tui

import (
	tea "github.com/charmbracelet/bubbletea"

	"outpost/store"
)

// deployDialog opens the deploy choice for cluster cl.
func deployDialog(c *Common, cl store.Cluster) tea.Cmd {
	if cmd := readOnly(c); cmd != nil {
		return cmd
	}
	return OpenDialog(deployChoice(c, cl))
}

// deployChoice asks quick or manual.
func deployChoice(c *Common, cl store.Cluster) Dialog {
	return NewChoice(c, "Deploy a proxy server into "+Clean(cl.Name), "not built yet", Button{Label: "Cancel"})
}
