package relay_test

import (
	"regexp"
	"strings"
	"testing"

	"outpost/relay"
)

func TestLogf(t *testing.T) {
	for _, tt := range []struct {
		name, prefix, format string
		args                 []any
		want                 string // after the time of day
	}{
		{"plain", "", "relay: listening on %s", []any{"127.0.0.1:1"}, "relay: listening on 127.0.0.1:1"},
		{"prefix", "demo: ", "%d agents", []any{3}, "demo: 3 agents"},
		{"percent in an argument", "", "%s", []any{"100%"}, "100%"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var b strings.Builder
			relay.Logf(&b, tt.prefix)(tt.format, tt.args...)
			if got := b.String(); !regexp.MustCompile(`^\d\d:\d\d:\d\d ` + regexp.QuoteMeta(tt.want) + "\n$").MatchString(got) {
				t.Errorf("got %q, want HH:MM:SS %q and a newline", got, tt.want)
			}
		})
	}
}
