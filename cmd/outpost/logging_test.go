package main

import (
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestLogFormatRefused: a --log-format other than text or json is a usage
// error on every command that logs, before it starts anything.
func TestLogFormatRefused(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"relay", "--log-format", "xml", "--listen", "http://127.0.0.1:0"},
		{"up", "--no-tui", "--log-format", "JSON", "--listen", "http://127.0.0.1:0"},
		{"center", "--log-format", "", "--listen", "127.0.0.1:0"},
		{"agent", "run", "--log-format", "logfmt", "--proxy", "http://127.0.0.1:1", "--key", "k"},
		{"upgrade-watch", "--log-format", "yaml", "--dir", "x"},
	} {
		t.Run(strings.Join(args[:2], " "), func(t *testing.T) {
			t.Parallel()
			newCLI(t).fails(2, `for "--log-format" flag: want text or json`, args...)
		})
	}
}

// TestLogFormatLines runs the relay in each format and reads its
// "listening" line back: text is the compact operator line, json one
// object a line with the attributes as JSON values.
func TestLogFormatLines(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		format string
		check  func(t *testing.T, stderr string, urls []string)
	}{
		{"text", func(t *testing.T, stderr string, urls []string) {
			want := regexp.MustCompile(`(?m)^\d\d:\d\d:\d\d relay listening urls=` + regexp.QuoteMeta(strings.Join(urls, ",")) + ` ca_sha256=[0-9a-f]{64}$`)
			if !want.MatchString(stderr) {
				t.Errorf("stderr: got\n%s\nwant a line matching %s", stderr, want)
			}
		}},
		{"json", func(t *testing.T, stderr string, urls []string) {
			found := false
			for _, line := range strings.Split(strings.TrimSpace(stderr), "\n") {
				var rec struct {
					Time  time.Time `json:"time"`
					Level string    `json:"level"`
					Msg   string    `json:"msg"`
					URLs  []string  `json:"urls"`
				}
				if err := json.Unmarshal([]byte(line), &rec); err != nil {
					t.Fatalf("stderr line %q: %v, want one JSON object a line", line, err)
				}
				if rec.Msg == "relay listening" {
					found = true
					if rec.Level != "INFO" || rec.Time.IsZero() || !slices.Equal(rec.URLs, urls) {
						t.Errorf("listening record: got %+v, want INFO with a time and urls %q", rec, urls)
					}
				}
			}
			if !found {
				t.Errorf("stderr: no \"relay listening\" record in\n%s", stderr)
			}
		}},
	} {
		t.Run(tc.format, func(t *testing.T) {
			t.Parallel()
			c := newCLI(t)
			p := svStart(t, c, append([]string{"relay", "--log-format", tc.format}, svRelayListen...)...)
			info := svRunFile(t, p, c.data, "relay")
			waitCond(t, p, 5*time.Second, "the listening line", func() bool { return strings.Contains(p.stderr.String(), "relay listening") })
			p.signal(syscall.SIGTERM)
			p.wantExit0(5 * time.Second)
			tc.check(t, p.stderr.String(), info.URLs)
		})
	}
}
