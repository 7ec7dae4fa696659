package main

// Argument and flag helpers: positional arguments, durations, ids.

import (
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"outpost/store"
)

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
