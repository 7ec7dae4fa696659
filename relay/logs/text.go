package logs

import (
	"context"
	"encoding"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"
)

// TimeOfDay is the text format's default time layout.
const TimeOfDay = "15:04:05"

// TextHandler writes "15:04:05 message key=value ...": the time, the
// level only when it is WARN or ERROR, the message, then the attributes
// as slog's text handler writes them (group keys joined by dots, values
// quoted when they hold spaces, '=' or '"'), except that a []string is
// joined with commas. One Write per record, under a
// lock shared with its derived handlers, so lines never interleave.
type TextHandler struct {
	w      io.Writer
	mu     *sync.Mutex
	layout string
	level  slog.Leveler
	pre    []byte // attributes from WithAttrs, already formatted
	group  string // open groups from WithGroup, "a.b." or ""
}

// NewTextHandler returns a TextHandler writing to w; o.Format is ignored.
func NewTextHandler(w io.Writer, o Options) *TextHandler {
	h := &TextHandler{w: w, mu: new(sync.Mutex), layout: o.TimeLayout, level: o.Level}
	if h.layout == "" {
		h.layout = TimeOfDay
	}
	if h.level == nil {
		h.level = slog.LevelInfo
	}
	return h
}

// Enabled reports whether level reaches the handler's minimum.
func (h *TextHandler) Enabled(_ context.Context, level slog.Level) bool {
	return level >= h.level.Level()
}

// Handle writes one line for r.
func (h *TextHandler) Handle(_ context.Context, r slog.Record) error {
	buf := make([]byte, 0, 128)
	t := r.Time
	if t.IsZero() {
		t = time.Now()
	}
	buf = t.AppendFormat(buf, h.layout)
	buf = append(buf, ' ')
	if r.Level >= slog.LevelWarn {
		buf = append(buf, r.Level.String()...)
		buf = append(buf, ' ')
	}
	buf = append(buf, r.Message...)
	buf = append(buf, h.pre...)
	r.Attrs(func(a slog.Attr) bool {
		buf = appendAttr(buf, h.group, a)
		return true
	})
	buf = append(buf, '\n')
	h.mu.Lock()
	defer h.mu.Unlock()
	_, err := h.w.Write(buf)
	return err
}

// WithAttrs returns a handler that writes attrs on every line.
func (h *TextHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	h2 := *h
	h2.pre = append([]byte(nil), h.pre...)
	for _, a := range attrs {
		h2.pre = appendAttr(h2.pre, h.group, a)
	}
	return &h2
}

// WithGroup returns a handler that puts later attributes under name.
func (h *TextHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	h2 := *h
	h2.group = h.group + name + "."
	return &h2
}

// appendAttr appends " key=value" (or each member of a group) to buf.
func appendAttr(buf []byte, prefix string, a slog.Attr) []byte {
	a.Value = a.Value.Resolve()
	if a.Equal(slog.Attr{}) {
		return buf
	}
	if a.Value.Kind() == slog.KindGroup {
		if a.Key != "" {
			prefix += a.Key + "."
		}
		for _, g := range a.Value.Group() {
			buf = appendAttr(buf, prefix, g)
		}
		return buf
	}
	buf = append(buf, ' ')
	buf = appendString(buf, prefix+a.Key)
	buf = append(buf, '=')
	return appendString(buf, valueString(a.Value))
}

// valueString is the text of v as slog's text handler would write it.
func valueString(v slog.Value) string {
	switch v.Kind() {
	case slog.KindTime:
		return v.Time().Format(time.RFC3339Nano)
	case slog.KindAny:
		switch x := v.Any().(type) {
		case error:
			return x.Error()
		case encoding.TextMarshaler:
			if b, err := x.MarshalText(); err == nil {
				return string(b)
			}
		case []byte:
			return string(x)
		case []string: // URL and host lists: one word when they hold no spaces
			return strings.Join(x, ",")
		}
		return fmt.Sprintf("%+v", v.Any())
	}
	return v.String()
}

// appendString appends s, quoted when it would not read back as one word.
func appendString(buf []byte, s string) []byte {
	if needsQuoting(s) {
		return strconv.AppendQuote(buf, s)
	}
	return append(buf, s...)
}

func needsQuoting(s string) bool {
	if s == "" {
		return true
	}
	for _, r := range s {
		if r == '=' || r == '"' || r == utf8.RuneError || unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return true
		}
	}
	return false
}
