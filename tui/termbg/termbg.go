// Package termbg tells lipgloss the terminal background before bubbletea's
// package initialisation asks the terminal for it.
//
// bubbletea v1 calls lipgloss.HasDarkBackground in an init function, which
// sends an OSC 11 query on a foreground terminal and waits up to 5 s for an
// answer. Linked into the outpost binary, that stalled every command, not
// only the dashboard, on a terminal that never answers. Go initialises
// packages in import-path order among those whose imports are ready; this
// module's path sorts before github.com/charmbracelet/bubbletea, so its init
// runs first and the query never happens. The dashboard uses fixed colours
// only, so the answer was never needed.
//
// It is a separate module (replaced by a local path in outpost's go.mod)
// only because its import path must sort before bubbletea's.
package termbg

import "github.com/charmbracelet/lipgloss"

func init() { lipgloss.SetHasDarkBackground(true) }
