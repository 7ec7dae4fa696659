package logs

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// The values of --log-format.
const (
	FormatText = "text"
	FormatJSON = "json"
)

// Formats lists the values --log-format takes, for help texts and errors.
var Formats = []string{FormatText, FormatJSON}

// Options choose a logger's shape. The zero value is the text format with
// the time of day.
type Options struct {
	Format     string // FormatText (""), FormatJSON
	TimeLayout string // text only; "" is TimeOfDay
	Level      slog.Leveler
}

// New returns the logger every outpost process writes with: format is
// "text" (or "") for the compact operator shape, "json" for one JSON
// object a line.
func New(w io.Writer, format string) (*slog.Logger, error) {
	return Options{Format: format}.New(w)
}

// New returns a logger writing to w in the options' shape.
func (o Options) New(w io.Writer) (*slog.Logger, error) {
	if err := CheckFormat(o.Format); err != nil {
		return nil, err
	}
	if o.Format == FormatJSON {
		return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: o.Level})), nil
	}
	return slog.New(NewTextHandler(w, o)), nil
}

// CheckFormat refuses a format other than the allowed ones, naming them.
func CheckFormat(format string) error {
	switch format {
	case "", FormatText, FormatJSON:
		return nil
	}
	return fmt.Errorf("unknown log format %q: want %s", format, strings.Join(Formats, " or "))
}

// Discard returns a logger that writes nothing.
func Discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// OrDiscard returns l, or a logger that writes nothing when l is nil, so
// a nil *slog.Logger in a config means "no logs".
func OrDiscard(l *slog.Logger) *slog.Logger {
	if l == nil {
		return Discard()
	}
	return l
}
