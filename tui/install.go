package tui

// PLACEHOLDER (engineer F replaces this file): install commands (list,
// create, revoke) and the command text.
func newInstallView(c *Common) View {
	return newPlaceholder(c, "Install commands", "install commands view")
}
