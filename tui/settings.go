package tui

// PLACEHOLDER (engineer F replaces this file): the timing settings and
// their form.
func newSettingsView(c *Common) View { return newPlaceholder(c, "Settings", "settings view") }
