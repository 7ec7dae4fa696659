// Package tui is the full-screen dashboard (bubbletea v1, bubbles, lipgloss
// v1) that `outpost tui` and `outpost up` on a terminal run.
//
// # Architecture
//
// The dashboard talks to the store only through Backend, a small interface
// that *store.DB satisfies; it never imports relay internals. Every store
// call runs inside a tea.Cmd built with Common.Call and comes back as a
// typed message, so Update never blocks and a slow disk never freezes keys.
//
// Common is shared by everything: terminal size, Styles, the KeyMap, the
// Backend, the Clock, the Account (ID 0 = every account), ReadOnly, the
// version and the local relay's state. Views keep a pointer to it.
//
// Root is the top model. It draws the header (account, agents online/total,
// at risk, duplicates), a crumb line (the view stack, the relay's state on
// the right), the active view, a flash line that clears itself and the
// footer (the active view's short help). It routes keys in this order: an
// open Dialog, the `:` command line, the `?` help screen, a view that is
// Capturing (typing a filter), the global keys (q, :, ?, esc), then the
// active view. Every other message goes to the dialog and to every view on
// the stack; views pick the ones tagged with their own id (Common.NewID),
// since several views of one kind can be open at once.
//
// Views are one component per screen (clusters.go, cluster.go, proxies.go,
// agents.go, install.go, audit.go, settings.go): tea.Model plus SetSize,
// ShortHelp/FullHelp (help.KeyMap), Title, Capturing and Refresh; the
// views whose body is one Table embed tableBody (table.go) for Init,
// Refresh, Capturing, SetSize and Escape, each setting below, the lines it
// shows around the table. A view drives the root with messages: Push
// (enter), Pop (esc), Switch (`:` commands), Flash/FlashError,
// OpenDialog/CloseDialog and RefreshNow. These
// only drive the root, so it applies them at once rather than in a
// goroutine (Root.settle): keys pasted or typed right after the one that
// opened a dialog reach the dialog. The root refreshes the active view
// only, every Common.Refresh (2 s), and not while a dialog is open.
//
// Table pages from the backend: it holds a window of three screens around
// the cursor, asks its PageFunc for another when the cursor leaves it, and
// keeps the cursor on the same row ID across refreshes; a newer load
// cancels the one it replaces (typing a filter). Lists the store
// returns whole (clusters, a cluster's proxies) are filtered, sorted and
// sliced with PageOf so only the page becomes rows (the clusters view keeps
// the list for a second, so paging does not ask again); agents page in SQL
// (store.ListAgents with Offset/Limit), so the fleet is never in memory.
// Widths are terminal cells from go-runewidth with East Asian ambiguous
// characters counted as one cell (box drawing, "…"), as lipgloss and
// terminals draw them; CJK host names take two cells each and line up.
//
// Dialogs are modal: Choice/NewConfirm (Cancel first and focused: enter by
// habit changes nothing) and Form (text and choice fields, a fixed note,
// live lines recomputed as values change, a validation or refusal message;
// its Submit returns the store call, whose FormResultMsg either keeps the
// form open with the store's refusal or closes it with a flash line).
//
// Rules live in the store, never here: actions call the same store method
// as the command line (CreateCluster, SetPolicy with NormalizePolicy and
// Warnings, CreateJoinToken, UpgradeProxy, DeleteProxy, DeleteCluster,
// Unbind, ...) and show its refusal unchanged. In --readonly mode the
// changing keys (KeyMap.ChangeKeys) are disabled, so they neither match
// nor show in the help, and each action refuses as well (readOnly).
//
// Background work belongs to no view: a paced bind (Jobs, bindjob.go) is
// started from the agents view, but its steps are messages the root hands
// to Common.Jobs, its progress is drawn on the crumb line and ctrl+x stops
// it between batches, so switching views loses nothing. Its pacing is
// ops.PacedBind, the one `agent bind --file` runs (500 per batch, the bind
// gap, the store's RetryAfter); Jobs.After is its timer, replaced in tests
// to drive it with the fake clock.
//
// Agent marks are agent ids. Space marks a row and sets the start of a
// range (V marks from there to the cursor); ctrl+a marks the whole filter.
// Ranges and "all" page the ids from the store (at most maxMarks) in the
// table's filter and sort, so rows outside the loaded window count too.
// Why an agent is offline is store.DiagnoseAgent, which `agent show`
// prints as well.
//
// Colour is never needed: states are words (online/offline, Protected),
// NO_COLOR gives a colourless style set, and only fixed colours are used
// so lipgloss never asks the terminal for its background.
//
// # Adding a view
//
// Write a type with the View methods (copy the shape of ProxiesView: a
// Table with columns and a PageFunc, keys from Common.Keys, actions as
// tea.Cmds), give it a constructor taking *Common, add a `:` command in
// root.go's commands and runCommand if it is a top-level view, and a model
// test driving it with the harness in helpers_test.go. A key that changes
// anything goes into KeyMap and ChangeKeys so --readonly drops it.
package tui
