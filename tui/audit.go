package tui

// PLACEHOLDER (engineer F replaces this file): the audit log, newest first.
func newAuditView(c *Common) View { return newPlaceholder(c, "Audit log", "audit log view") }
