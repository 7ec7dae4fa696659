// Package tui is reserved for the full-screen dashboard (bubbletea), which
// is not part of this build: `outpost up` prints a live text summary of the
// fleet instead. The dashboard will talk to the store through an interface
// and never import relay internals (see DESIGN.md).
package tui
