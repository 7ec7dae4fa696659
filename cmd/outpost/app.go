package main

// What every subcommand shares (app) and the registry of commands.

import (
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/spf13/cobra"

	"outpost/store"
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

	logFormat logFormat    // --log-format (logging.go)
	log       *slog.Logger // on stderr, from logger()

	db *store.DB
}

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
