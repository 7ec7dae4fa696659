package main

// Shared plumbing for every subcommand: the registry of commands, the data
// directory and the store, the audit actor, exit codes, JSON and table
// output, and the values that generated commands carry (manager URL, CA pin).

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/mattn/go-runewidth"
	"github.com/spf13/cobra"

	"outpost/store"
	"outpost/store/ops"
)

// Exit codes (DESIGN.md "Command line").
const (
	exitOK      = 0
	exitFailed  = 1 // a refused or failed action
	exitUsage   = 2 // bad usage: unknown command or flag, missing argument, bad value
	dbFileName  = "outpost.db"
	defaultDir  = "/var/lib/outpost"
	homeDirName = ".outpost"
)

// app is what every command shares: global flags, output streams and the
// store, opened on first use and closed when the command returns.
type app struct {
	stdout, stderr io.Writer

	dataFlag string // --data
	jsonOut  bool   // --json

	db *store.DB
}

// ---------------------------------------------------------------------------
// Command registry

type registration struct {
	parent string // "" = root, else a space-separated path such as "agent"
	build  func(*app) *cobra.Command
}

var registry []registration

// register adds a subcommand built by build under parent ("" for the root,
// "agent" for `outpost agent ...`). Call it from an init function of the
// file that implements the command.
func register(parent string, build func(*app) *cobra.Command) {
	registry = append(registry, registration{parent: parent, build: build})
}

// group returns a command that only holds subcommands: run without one, or
// with an unknown one, it is a usage error (exit 2) rather than help text
// with exit 0.
func group(use, short string) *cobra.Command {
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return unknownCommand(cmd, args[0])
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			var names []string
			for _, c := range cmd.Commands() {
				if c.IsAvailableCommand() && c.Name() != "help" && c.Name() != "completion" {
					names = append(names, c.Name())
				}
			}
			return usageErrorf("missing command: want %s (see '%s --help')", strings.Join(names, ", "), cmd.CommandPath())
		},
	}
}

func unknownCommand(cmd *cobra.Command, name string) error {
	msg := fmt.Sprintf("unknown command %q", name)
	if cmd.SuggestionsMinimumDistance <= 0 {
		cmd.SuggestionsMinimumDistance = 2
	}
	if s := cmd.SuggestionsFor(name); len(s) > 0 {
		msg += fmt.Sprintf(" (did you mean %s?)", strings.Join(s, " or "))
	}
	return usageErrorf("%s", msg)
}

// ---------------------------------------------------------------------------
// Errors and exit codes

// usageError is bad usage: exit 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usageErrorf(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// exitError carries an explicit exit status; RunE errors that are not usage
// errors are wrapped in one with status 1 (see wrapRunE).
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// failf is a refused or failed action the CLI itself detects: exit 1.
func failf(format string, args ...any) error {
	return &exitError{code: exitFailed, err: fmt.Errorf(format, args...)}
}

// wrapRunE marks every error a command's RunE (and its pre- and post-run
// hooks) returns as exit 1 unless it is already a usage or exit error.
// Errors cobra raises itself (unknown flag, bad flag value, required flag)
// are not wrapped and therefore map to exit 2.
func wrapRunE(c *cobra.Command) {
	for _, fn := range []*func(*cobra.Command, []string) error{
		&c.PersistentPreRunE, &c.PreRunE, &c.RunE, &c.PostRunE, &c.PersistentPostRunE,
	} {
		if run := *fn; run != nil {
			*fn = func(cmd *cobra.Command, args []string) error {
				err := run(cmd, args)
				if err == nil {
					return nil
				}
				var ue *usageError
				var ee *exitError
				if errors.As(err, &ue) || errors.As(err, &ee) {
					return err
				}
				return &exitError{code: exitFailed, err: err}
			}
		}
	}
	for _, sub := range c.Commands() {
		wrapRunE(sub)
	}
}

// exitCode maps an error returned by Execute to the process status.
func exitCode(err error) int {
	var ue *usageError
	var ee *exitError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ue):
		return exitUsage
	case errors.As(err, &ee):
		return ee.code
	}
	return exitUsage // raised by cobra while parsing the command line
}

// errorLine renders err as the one line printed after "outpost: ". Usage
// errors are prefixed with the command ("cluster show: missing NAME").
func errorLine(cmd *cobra.Command, err error) string {
	msg := store.ErrorMessage(err)
	if exitCode(err) == exitUsage && cmd != nil && cmd.HasParent() {
		name := strings.TrimPrefix(cmd.CommandPath(), cmd.Root().Name()+" ")
		if !strings.HasPrefix(msg, name+":") {
			msg = name + ": " + msg
		}
	}
	// cobra's "Did you mean this?" block and any other multi-line text.
	if i := strings.Index(msg, "\n\nDid you mean this?"); i >= 0 {
		var s []string
		for _, l := range strings.Split(msg[i:], "\n")[3:] {
			if l = strings.TrimSpace(l); l != "" {
				s = append(s, l)
			}
		}
		msg = msg[:i]
		if len(s) > 0 {
			msg += " (did you mean " + strings.Join(s, " or ") + "?)"
		}
	}
	var parts []string
	for _, l := range strings.Split(msg, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			parts = append(parts, l)
		}
	}
	return clean(strings.Join(parts, "; "))
}

// ---------------------------------------------------------------------------
// Data directory and store

// dataDir resolves the data directory: --data, then $OUTPOST_DATA, then
// /var/lib/outpost when it is (or can be created) writable, then
// $HOME/.outpost, then ./outpost-data.
func (a *app) dataDir() string {
	if a.dataFlag != "" {
		return a.dataFlag
	}
	if v := os.Getenv("OUTPOST_DATA"); v != "" {
		return v
	}
	if st, err := os.Stat(defaultDir); err == nil {
		if st.IsDir() && writable(defaultDir) {
			return defaultDir
		}
	} else if errors.Is(err, os.ErrNotExist) && writable(filepath.Dir(defaultDir)) {
		return defaultDir
	}
	if home, err := os.UserHomeDir(); err == nil && home != "" {
		return filepath.Join(home, homeDirName)
	}
	return "outpost-data"
}

// store opens DATA/outpost.db on first use (creating the directory and the
// database if needed).
func (a *app) store() (*store.DB, error) {
	if a.db != nil {
		return a.db, nil
	}
	path := filepath.Join(a.dataDir(), dbFileName)
	db, err := store.Open(path, nil)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	a.db = db
	return db, nil
}

func (a *app) close() {
	if a.db != nil {
		a.db.Close()
		a.db = nil
	}
}

// actor names the operator in the audit log: $SUDO_USER or $USER, "@cli".
func actor() string {
	u := os.Getenv("SUDO_USER")
	if u == "" {
		u = os.Getenv("USER")
	}
	if u == "" {
		u = "operator"
	}
	return u + "@cli"
}

// ctx is the context for store calls: the command's (cancelled by SIGINT or
// SIGTERM) with the audit actor.
func ctx(cmd *cobra.Command) context.Context {
	return store.WithActor(cmd.Context(), actor())
}

// resolveAccount returns the --account account; an empty name picks the
// only account.
func (a *app) resolveAccount(cmd *cobra.Command, name string) (store.Account, error) {
	db, err := a.store()
	if err != nil {
		return store.Account{}, err
	}
	return db.FindAccount(ctx(cmd), name)
}

// accountID is 0 (every account) when name is empty.
func (a *app) accountID(cmd *cobra.Command, name string) (int64, error) {
	if name == "" {
		return 0, nil
	}
	acct, err := a.resolveAccount(cmd, name)
	return acct.ID, err
}

// storeAccount opens the store and resolves --account (0 = every account),
// the opening of most list and show commands.
func (a *app) storeAccount(cmd *cobra.Command, account string) (*store.DB, int64, error) {
	db, err := a.store()
	if err != nil {
		return nil, 0, err
	}
	id, err := a.accountID(cmd, account)
	return db, id, err
}

// resolveCluster finds a cluster by name, inside --account when given;
// without it a name that is unique across accounts is enough.
func (a *app) resolveCluster(cmd *cobra.Command, account, name string) (store.Cluster, error) {
	db, err := a.store()
	if err != nil {
		return store.Cluster{}, err
	}
	id, err := a.accountID(cmd, account)
	if err != nil {
		return store.Cluster{}, err
	}
	return db.FindCluster(ctx(cmd), id, name)
}

// ---------------------------------------------------------------------------
// Argument and flag helpers

// nargs returns an Args validator for commands taking between min and max
// positional arguments (max < 0: no upper bound); what names them.
func nargs(min, max int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		switch {
		case len(args) < min:
			return usageErrorf("missing %s", what)
		case max >= 0 && len(args) > max:
			if max == 0 {
				return usageErrorf("takes no arguments, got %q", args[0])
			}
			return usageErrorf("too many arguments: want %s, got %d", what, len(args))
		}
		return nil
	}
}

// parseDuration reads a positive flag duration (see store.ParseDuration).
func parseDuration(flag, s string) (time.Duration, error) {
	d, err := store.ParseDuration(s)
	if err != nil {
		return 0, usageErrorf("invalid --%s %q: %s", flag, s, durationProblem(err, "30m, 24h or 7d"))
	}
	if d <= 0 {
		return 0, usageErrorf("invalid --%s %q: must be positive", flag, s)
	}
	return d, nil
}

// durationProblem says what is wrong with a duration store.ParseDuration
// refused.
func durationProblem(err error, examples string) string {
	if strings.Contains(store.ErrorMessage(err), "too large") {
		return "too large (at most 106751d)"
	}
	return "want a duration such as " + examples
}

// parseID reads a numeric id argument.
func parseID(what, s string) (int64, error) {
	id, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || id <= 0 {
		return 0, usageErrorf("invalid %s %q: want a number", what, s)
	}
	return id, nil
}

// asUsage turns the coded error of a pure parser (store.ParseBandwidth and
// friends) into a usage error naming the flag.
func asUsage(flag string, err error) error {
	if err == nil {
		return nil
	}
	return usageErrorf("invalid --%s: %s", flag, store.ErrorMessage(err))
}

// ---------------------------------------------------------------------------
// Output

// printJSON writes v as one JSON document on stdout.
func (a *app) printJSON(v any) error {
	enc := json.NewEncoder(a.stdout)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// printf writes human output on stdout.
func (a *app) printf(format string, args ...any) {
	fmt.Fprintf(a.stdout, format, args...)
}

// notef writes a note or warning line on stderr.
func (a *app) notef(format string, args ...any) {
	fmt.Fprintf(a.stderr, format+"\n", args...)
}

// nonNil makes an empty list marshal as [] rather than null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// clean makes untrusted text (host names come from agents) safe to print
// on a terminal: control characters and bidirectional overrides become '?'.
func clean(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\t':
			return ' '
		case unicode.IsControl(r), r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069, r == 0xfeff:
			return '?'
		}
		return r
	}, s)
}

// width is the display width of s in terminal cells (CJK characters take
// two), which text/tabwriter does not know about.
func width(s string) int { return runewidth.StringWidth(s) }

func pad(s string, w int) string {
	if n := width(s); n < w {
		return s + strings.Repeat(" ", w-n)
	}
	return s
}

// printTable writes rows under head with columns aligned by display width,
// two spaces apart, no trailing spaces. Cells are plain text.
func (a *app) printTable(head []string, rows [][]string) { a.printTableIndent("", head, rows) }

// printTableIndent is printTable with every line prefixed by indent.
func (a *app) printTableIndent(indent string, head []string, rows [][]string) {
	widths := make([]int, len(head))
	all := make([][]string, 0, len(rows)+1)
	for _, r := range append([][]string{head}, rows...) {
		cells := make([]string, len(r))
		for i, c := range r {
			cells[i] = clean(c)
			if i < len(widths) {
				widths[i] = max(widths[i], width(cells[i]))
			}
		}
		all = append(all, cells)
	}
	var b strings.Builder
	for _, r := range all {
		line := ""
		for i, c := range r {
			if i == len(r)-1 {
				line += c
			} else {
				line += pad(c, widths[i]) + "  "
			}
		}
		b.WriteString(indent + strings.TrimRight(line, " "))
		b.WriteByte('\n')
	}
	io.WriteString(a.stdout, b.String())
}

// printFields writes "Label  value" lines with the values aligned.
func (a *app) printFields(fields [][2]string) {
	w := 0
	for _, f := range fields {
		w = max(w, width(f[0]))
	}
	for _, f := range fields {
		fmt.Fprintf(a.stdout, "%s  %s\n", pad(f[0], w), clean(f[1]))
	}
}

// ---------------------------------------------------------------------------
// Formatting

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04:05")
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// ---------------------------------------------------------------------------
// Generated commands: manager URL and CA pin (built in store/ops, shared
// with the dashboard)

// managerURL is the URL remote relays and direct agents use to reach the
// management host: --manager, else the first https URL of a running relay
// (DATA/run/relay.json), else https://HOSTNAME:8443.
func (a *app) managerURL(flag string) (string, error) {
	u, err := ops.ManagerURL(a.dataDir(), flag)
	if err != nil {
		return "", usageErrorf("invalid --manager %q: want an https:// URL", flag)
	}
	return u, nil
}

// caPin returns the hex SHA-256 of the first certificate in DATA/tls/ca.pem,
// "" when there is none.
func (a *app) caPin() (string, error) { return ops.CAPin(a.dataDir()) }

// keyPin is the curl --pinnedpubkey value of the server key in
// DATA/tls/server.pem, "" when there is none.
func (a *app) keyPin() (string, error) { return ops.ServerKeyPin(a.dataDir()) }
