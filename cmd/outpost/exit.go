package main

// Errors and exit codes: usage errors exit 2, refused or failed actions 1,
// and the one line printed for each.

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"outpost/store"
)

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
