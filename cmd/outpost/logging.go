package main

// --log-format on the commands that run and log (relay, up, center,
// agent run, upgrade-watch): every line goes through log/slog
// (relay/logs), text by default, json for journald and log shippers.

import (
	"errors"
	"io"
	"log/slog"
	"strings"

	"github.com/spf13/cobra"

	"outpost/relay/logs"
)

// logFormat is the --log-format value, checked when the flag is parsed so
// a bad value is a usage error before the command does anything.
type logFormat string

func (f *logFormat) String() string { return string(*f) }
func (f *logFormat) Type() string   { return strings.Join(logs.Formats, "|") }

func (f *logFormat) Set(v string) error {
	if v == "" || logs.CheckFormat(v) != nil { // "" is text to logs.New, not a value to type
		return errors.New("want " + strings.Join(logs.Formats, " or "))
	}
	*f = logFormat(v)
	return nil
}

// logFlag adds --log-format to cmd.
func (a *app) logFlag(cmd *cobra.Command) {
	a.logFormat = logs.FormatText
	cmd.Flags().Var(&a.logFormat, "log-format", "log lines: text (15:04:05 message key=value) or json (one object a line, for journald and log shippers)")
}

// logger is the process's logger on stderr, made once.
func (a *app) logger() *slog.Logger {
	if a.log == nil {
		a.log = a.loggerTo(a.stderr, "")
	}
	return a.log
}

// loggerTo is a logger in --log-format writing to w; layout "" is the
// time of day (text only).
func (a *app) loggerTo(w io.Writer, layout string) *slog.Logger {
	l, err := logs.Options{Format: string(a.logFormat), TimeLayout: layout}.New(w)
	if err != nil { // Set let only a known format through
		panic(err)
	}
	return l
}
