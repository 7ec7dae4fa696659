package store_test

import (
	"strings"
	"testing"
	"time"

	"outpost/store"
)

func TestParseDuration(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want time.Duration
		err  string
	}{
		{in: "90s", want: 90 * time.Second},
		{in: " 1h30m ", want: 90 * time.Minute},
		{in: "7d", want: 7 * 24 * time.Hour},
		{in: "0d", want: 0},
		{in: "-1d", want: -24 * time.Hour},
		{in: "106751d", want: 106751 * 24 * time.Hour},
		{in: "106752d", err: "is too large"}, // wrapped to a negative duration before
		{in: "300000d", err: "is too large"}, // wrapped
		{in: "99999999999999999999d", err: "is too large"},
		{in: "soon", err: "want e.g. 30m, 24h or 7d"},
		{in: "1.5d", err: "want e.g. 30m, 24h or 7d"},
		{in: "", err: "want e.g. 30m, 24h or 7d"},
	} {
		t.Run(tt.in, func(t *testing.T) {
			got, err := store.ParseDuration(tt.in)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) || store.ErrorCode(err) != store.EInvalid {
					t.Fatalf("got %v, %v; want an invalid error containing %q", got, err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("got %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

// The unit parsers take operator input from flags, forms and settings:
// they never panic, refuse with an invalid error, and what they accept is
// a limit that cannot be negative or past its bound.
func FuzzParseUnits(f *testing.F) {
	for _, s := range []string{"2Mbit", "250KB/s", "unlimited", "0", "1GiB", "10GB", "64KB", "50", "7d", "1h30m",
		"99999999999999999999Gbit", "2 Mbit/s", "-1", "1e9", "0.5Mbit", "1.5d", "300000d", "∞", "9223372036854775807"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		check := func(name string, v int64, err error, max int64) {
			if err != nil {
				if store.ErrorCode(err) != store.EInvalid || strings.Contains(err.Error(), "\n") {
					t.Fatalf("%s(%q): error %v: want one line with code invalid", name, s, err)
				}
				return
			}
			if v < 0 || v > max {
				t.Fatalf("%s(%q) = %d: want 0..%d", name, s, v, max)
			}
		}
		v, err := store.ParseBandwidth(s)
		check("ParseBandwidth", v, err, 125_000_000_000_000)
		v, err = store.ParseLink(s)
		check("ParseLink", v, err, 1_000_000_000_000_000)
		v, err = store.ParseFrequency(s)
		check("ParseFrequency", v, err, 1_000_000_000)
		v, err = store.ParseSize(s)
		check("ParseSize", v, err, 1<<62)
		if d, err := store.ParseDuration(s); err == nil {
			// What is accepted prints and reads back the same.
			back, err := store.ParseDuration(store.FormatDuration(d))
			if err != nil || back != d {
				t.Fatalf("ParseDuration(%q) = %v, printed %q, read back %v, %v", s, d, store.FormatDuration(d), back, err)
			}
		} else if store.ErrorCode(err) != store.EInvalid {
			t.Fatalf("ParseDuration(%q): %v: want code invalid", s, err)
		}
	})
}
