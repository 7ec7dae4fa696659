package wire

import "testing"

func TestFormat(t *testing.T) {
	tests := []struct {
		name string
		got  string
		want string
	}{
		{"zero bytes", FormatBytes(0), "0 B"},
		{"under a KB", FormatBytes(999), "999 B"},
		{"one KB", FormatBytes(1000), "1 KB"},
		{"fraction", FormatBytes(1_500_000), "1.5 MB"},
		{"cache cap", FormatBytes(MaxCacheBytes), "10 GB"},
		{"past the last unit", FormatBytes(9_000_000_000_000_000), "9000 TB"},
		{"reserved per host", FormatBits(10_000), "10 Kbit/s"},
		{"link", FormatBits(100_000_000), "100 Mbit/s"},
		{"bits", FormatBits(800), "800 bit/s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %q, want %q", tt.got, tt.want)
			}
		})
	}
}

func TestAllDigits(t *testing.T) {
	for _, tt := range []struct {
		s    string
		want bool
	}{{"", false}, {"0", true}, {"0042", true}, {"12a", false}, {"-1", false}, {"١", false}} {
		if got := AllDigits(tt.s); got != tt.want {
			t.Errorf("AllDigits(%q): got %v, want %v", tt.s, got, tt.want)
		}
	}
}
