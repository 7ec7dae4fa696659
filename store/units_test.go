package store_test

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"outpost/relay/wire"
	"outpost/store"
)

func TestParseBandwidth(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr bool
	}{
		{in: "2Mbit", want: 250000},
		{in: "2 Mbit/s", want: 250000},
		{in: "2Mbps", want: 250000},
		{in: "10Kbit", want: 1250},
		{in: "1Gbit", want: 125000000},
		{in: "8bit", want: 1},
		{in: "0.5Mbit", want: 62500},
		{in: "unlimited", want: 0},
		{in: "Unlimited", want: 0},
		{in: "0", want: 0},
		{in: "", want: 0},
		{in: "500KB", want: 500000},
		{in: "500KB/s", want: 500000},
		{in: "2MB", want: 2000000},
		{in: "1GB", want: 1000000000},
		{in: "1KiB", want: 1024},
		{in: "1GiB", want: 1 << 30},
		{in: "1000", wantErr: true}, // a bare number needs a unit (it used to be bytes/s)
		{in: "0.0", want: 0},
		{in: "1B/s", want: 1},
		{in: "2Mb", wantErr: true}, // bits or bytes? refused rather than guessed
		{in: "2Kb", wantErr: true},
		{in: "abc", wantErr: true},
		{in: "-1", wantErr: true},
		{in: "-1Mbit", wantErr: true},
		{in: "5 parsecs", wantErr: true},
		{in: "Mbit", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := store.ParseBandwidth(tt.in)
			if tt.wantErr {
				wantCode(t, err, store.EInvalid)
				return
			}
			if err != nil {
				t.Fatalf("got error %v, want %d", err, tt.want)
			}
			if got != tt.want {
				t.Errorf("got %d, want %d", got, tt.want)
			}
		})
	}
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr bool
	}{
		{in: "500KB", want: 500000},
		{in: "512MB", want: 512000000},
		{in: "512MiB", want: 512 << 20},
		{in: "1GiB", want: 1 << 30},
		{in: "10GB", want: store.MaxCacheBytes},
		{in: "20GB", want: 20000000000}, // parses; the policy refuses it (TestSetPolicyCacheCapRefused)
		{in: "1048576", want: 1048576},
		{in: "64 KiB", want: 65536},
		{in: "1.5GB", want: 1500000000},
		{in: "abc", wantErr: true},
		{in: "", wantErr: true},
		{in: "-1", wantErr: true},
		{in: "-1GB", wantErr: true},
		{in: "10XB", wantErr: true},
		{in: "1e30GB", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := store.ParseSize(tt.in)
			if tt.wantErr {
				wantCode(t, err, store.EInvalid)
				return
			}
			if err != nil {
				t.Fatalf("got error %v, want %d", err, tt.want)
			}
			if got != tt.want {
				t.Errorf("got %d, want %d", got, tt.want)
			}
		})
	}
}

func TestParseFrequency(t *testing.T) {
	tests := []struct {
		in      string
		want    int64
		wantErr bool
	}{
		{in: "100", want: 100},
		{in: "100/s", want: 100},
		{in: " 7 ", want: 7},
		{in: "unlimited", want: 0},
		{in: "", want: 0},
		{in: "0", want: 0},
		{in: "-1", wantErr: true},
		{in: "1.5", wantErr: true},
		{in: "abc", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := store.ParseFrequency(tt.in)
			if tt.wantErr {
				wantCode(t, err, store.EInvalid)
				return
			}
			if err != nil {
				t.Fatalf("got error %v, want %d", err, tt.want)
			}
			if got != tt.want {
				t.Errorf("got %d, want %d", got, tt.want)
			}
		})
	}
}

func TestFormatBytesAndBandwidth(t *testing.T) {
	for _, tt := range []struct {
		got, want string
	}{
		{store.FormatBytes(store.MaxCacheBytes), "10 GB"},
		{store.FormatBytes(1500), "1.5 KB"},
		{store.FormatBytes(12), "12 B"},
		{store.FormatBandwidth(0), "unlimited"},
		{store.FormatBandwidth(250000), "2 Mbit/s"},
		{store.FormatBandwidth(937500), "7.5 Mbit/s"},
	} {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}

func TestClassifyAddress(t *testing.T) {
	tests := []struct {
		addr string
		want store.AddressKind // "" = refused
	}{
		{"10.0.0.5", "ip"},
		{"::1", "ip"},
		{"2001:db8::7", "ip"},
		{"relay.example.com", "domain"},
		{"relay.example.com.", "domain"},
		{"localhost", "domain"},
		{"r-1.example.com", "domain"},
		{"", ""},
		{" ", ""},
		{"10.0.0.256", ""},
		{"10.0.0", ""},
		{"10.0.0.5.7", ""},
		{"exa mple.com", ""},
		{" relay.example.com", ""},
		{"-bad.com", ""},
		{"bad-.com", ""},
		{"a..b", ""},
		{".example.com", ""},
		{"http://x.com", ""},
		{"x.com:8443", ""},
		{"under_score.com", ""},
		{"0.0.0.0", ""},
		{"224.0.0.1", ""},
		{strings.Repeat("a", 64) + ".com", ""},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			got, err := store.ClassifyAddress(tt.addr)
			if tt.want == "" {
				wantCode(t, err, store.EInvalid)
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("got %q, %v, want %q", got, err, tt.want)
			}
		})
	}
}

func TestDefaultSettings(t *testing.T) {
	s := store.DefaultSettings()
	for _, tt := range []struct {
		name      string
		got, want time.Duration
	}{
		{"offline_after", s.OfflineAfter, 12 * time.Hour},
		{"inventory_interval", s.InventoryInterval, 5 * time.Hour},
		{"uninstall_grace", s.UninstallGrace, 6 * time.Hour},
		{"bind_batch_gap", s.BindBatchGap, time.Minute},
	} {
		if tt.got != tt.want {
			t.Errorf("%s: got %v, want %v", tt.name, tt.got, tt.want)
		}
	}
	if err := s.Validate(); err != nil {
		t.Errorf("defaults: got %v, want valid", err)
	}
}

func TestSettingsValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(*store.Settings)
		field  string // must appear in the message
	}{
		{"offline_after zero", func(s *store.Settings) { s.OfflineAfter = 0 }, "offline_after"},
		{"offline_after negative", func(s *store.Settings) { s.OfflineAfter = -time.Hour }, "offline_after"},
		{"inventory_interval zero", func(s *store.Settings) { s.InventoryInterval = 0 }, "inventory_interval"},
		{"uninstall_grace negative", func(s *store.Settings) { s.UninstallGrace = -1 }, "uninstall_grace"},
		{"proxy_offline_after zero", func(s *store.Settings) { s.ProxyOfflineAfter = 0 }, "proxy_offline_after"},
		{"bind_batch_gap zero", func(s *store.Settings) { s.BindBatchGap = 0 }, "bind_batch_gap"},
		{"poll_timeout zero", func(s *store.Settings) { s.PollTimeout = 0 }, "poll_timeout"},
		{"inventory not shorter than offline", func(s *store.Settings) { s.InventoryInterval = s.OfflineAfter }, "inventory_interval"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := store.DefaultSettings()
			tt.change(&s)
			err := s.Validate()
			if !wantCode(t, err, store.EInvalid) {
				return
			}
			if !strings.Contains(err.Error(), tt.field) {
				t.Errorf("got message %q, want it to name %s", err, tt.field)
			}
		})
	}
	t.Run("short simulator timings", func(t *testing.T) {
		s := store.DefaultSettings()
		s.OfflineAfter, s.InventoryInterval, s.UninstallGrace = 30*time.Second, 10*time.Second, 20*time.Second
		if err := s.Validate(); err != nil {
			t.Errorf("got %v, want valid", err)
		}
	})
}

func TestNormalizePolicy(t *testing.T) {
	tests := []struct {
		name     string
		in       store.Policy
		want     store.Policy
		wantCode string
	}{
		{"empty is forward unlimited", store.Policy{}, store.Policy{Mode: wire.ModeForward}, ""},
		{"forward with limits", store.Policy{Mode: wire.ModeForward, BandwidthBps: 250000, FrequencyRPS: 100},
			store.Policy{Mode: wire.ModeForward, BandwidthBps: 250000, FrequencyRPS: 100}, ""},
		{"forward drops cache fields", store.Policy{Mode: wire.ModeForward, CacheDir: "x", CacheMax: 1 << 30},
			store.Policy{Mode: wire.ModeForward}, ""},
		{"forward upstream https", store.Policy{Upstream: "https://soc.example.com/ingest"},
			store.Policy{Mode: wire.ModeForward, Upstream: "https://soc.example.com/ingest"}, ""},
		{"forward upstream not a URL", store.Policy{Upstream: "soc.example.com"}, store.Policy{}, store.EInvalid},
		{"cache defaults", store.Policy{Mode: wire.ModeCache},
			store.Policy{Mode: wire.ModeCache, CacheDir: filepath.Join(store.DefaultCacheDir, "edge"), CacheMax: store.MaxCacheBytes}, ""},
		{"cache drops forward limits", store.Policy{Mode: wire.ModeCache, BandwidthBps: 5, FrequencyRPS: 5, CacheDir: "/var/spool/o", CacheMax: 1 << 30},
			store.Policy{Mode: wire.ModeCache, CacheDir: "/var/spool/o", CacheMax: 1 << 30}, ""},
		{"cache exactly 10 GB", store.Policy{Mode: wire.ModeCache, CacheMax: 10000000000},
			store.Policy{Mode: wire.ModeCache, CacheDir: filepath.Join(store.DefaultCacheDir, "edge"), CacheMax: store.MaxCacheBytes}, ""},
		{"cache 20 GB", store.Policy{Mode: wire.ModeCache, CacheMax: 20000000000}, store.Policy{}, store.ELimit},
		{"cache 10 GB + 1", store.Policy{Mode: wire.ModeCache, CacheMax: store.MaxCacheBytes + 1}, store.Policy{}, store.ELimit},
		{"cache tiny", store.Policy{Mode: wire.ModeCache, CacheMax: 1000}, store.Policy{}, store.EInvalid},
		{"cache dir escapes", store.Policy{Mode: wire.ModeCache, CacheDir: "../../etc"}, store.Policy{}, store.EInvalid},
		{"negative bandwidth", store.Policy{BandwidthBps: -1}, store.Policy{}, store.EInvalid},
		{"negative frequency", store.Policy{FrequencyRPS: -1}, store.Policy{}, store.EInvalid},
		{"unknown mode", store.Policy{Mode: "drop"}, store.Policy{}, store.EInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := store.NormalizePolicy(tt.in, "edge")
			if tt.wantCode != "" {
				wantCode(t, err, tt.wantCode)
				return
			}
			if err != nil {
				t.Fatalf("got error %v, want %+v", err, tt.want)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestWarnings(t *testing.T) {
	const mbit = 1000 * 1000 / 8 // bytes/s in one Mbit/s
	const link10 = 10 * 1000 * 1000
	tests := []struct {
		name    string
		p       store.Policy
		agents  int
		proxies int      // online
		offline int      // proxy servers of the cluster that are offline
		want    []string // substrings, one per expected warning, in order
	}{
		{"7.5 Mbit on 10 Mbit link warns", store.Policy{Mode: wire.ModeForward, BandwidthBps: 937500, LinkBps: link10}, 0, 1, 0,
			[]string{"more than 60% of the 10 Mbit/s link"}},
		{"5 Mbit on 10 Mbit link is fine", store.Policy{Mode: wire.ModeForward, BandwidthBps: 5 * mbit, LinkBps: link10}, 0, 1, 0, nil},
		{"exactly 60% is fine", store.Policy{Mode: wire.ModeForward, BandwidthBps: 6 * mbit, LinkBps: link10}, 0, 1, 0, nil},
		{"unlimited on a known link warns", store.Policy{Mode: wire.ModeForward, LinkBps: link10}, 0, 1, 0,
			[]string{"bandwidth is unlimited"}},
		{"unknown link never warns on limits", store.Policy{Mode: wire.ModeForward, BandwidthBps: 1000 * mbit}, 0, 1, 0, nil},
		{"cache mode ignores link share", store.Policy{Mode: wire.ModeCache, LinkBps: link10}, 0, 1, 0, nil},
		{"6,000 agents on one proxy is fine", store.Policy{Mode: wire.ModeForward}, 6000, 1, 0, nil},
		{"6,001 agents on one proxy warns", store.Policy{Mode: wire.ModeForward}, 6001, 1, 0,
			[]string{"6001 agents exceed what 1 online proxy server(s) carry (6,000 hosts each)"}},
		{"6,001 agents on two proxies is fine", store.Policy{Mode: wire.ModeForward}, 6001, 2, 0, nil},
		{name: "agents with every proxy offline: proxy down, not capacity", p: store.Policy{Mode: wire.ModeForward}, agents: 60, offline: 1,
			want: []string{"proxy down: all 1 proxy server(s) offline: agents cannot connect through this cluster"}},
		{name: "agents with no proxy at all", p: store.Policy{Mode: wire.ModeForward}, agents: 3,
			want: []string{"no proxy server: the 3 bound agent(s) cannot connect"}},
		{name: "one of two proxies down is capacity as usual", p: store.Policy{Mode: wire.ModeForward}, agents: 6001, proxies: 1, offline: 1,
			want: []string{"6001 agents exceed what 1 online proxy server(s) carry"}},
		{name: "proxies down without agents is fine", p: store.Policy{Mode: wire.ModeForward}, offline: 2},
		{"no agents no proxies is fine", store.Policy{Mode: wire.ModeForward}, 0, 0, 0, nil},
		{"100 hosts need more than 800 Kbit/s limit", store.Policy{Mode: wire.ModeForward, BandwidthBps: 100000}, 100, 1, 0,
			[]string{"100 hosts need 1 Mbit/s reserved (10 Kbit/s each) but the bandwidth limit is 800 Kbit/s"}},
		{"100 hosts fit in 1 Mbit/s limit", store.Policy{Mode: wire.ModeForward, BandwidthBps: 1 * mbit}, 100, 1, 0, nil},
		{"reserve above 60% of link", store.Policy{Mode: wire.ModeForward, BandwidthBps: 5 * mbit, LinkBps: link10}, 650, 1, 0,
			[]string{"650 hosts need 6.5 Mbit/s reserved (10 Kbit/s each), more than 60% of the 10 Mbit/s link", "but the bandwidth limit is 5 Mbit/s"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := store.Warnings(tt.p, tt.agents, tt.proxies+tt.offline, tt.proxies)
			if len(got) != len(tt.want) {
				t.Fatalf("got %d warnings %q, want %d %q", len(got), got, len(tt.want), tt.want)
			}
			for i := range got {
				if !strings.Contains(got[i].Text(), tt.want[i]) {
					t.Errorf("warning %d: got %q, want it to contain %q", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestNormalizePolicyRefusesParentDirs(t *testing.T) {
	for _, dir := range []string{"..", "a/..", "../x", "cache/../../etc"} {
		t.Run(dir, func(t *testing.T) {
			_, err := store.NormalizePolicy(store.Policy{Mode: wire.ModeCache, CacheDir: dir}, "edge")
			if got, want := store.ErrorCode(err), store.EInvalid; got != want {
				t.Errorf("got %q (%v), want %q", got, err, want)
			}
		})
	}
}

func TestFormatAgoAndDuration(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		name string
		t    time.Time
		want string
	}{
		{"zero", time.Time{}, "never"},
		{"future", now.Add(time.Second), "just now"},
		{"under a second", now.Add(-500 * time.Millisecond), "just now"},
		{"seconds", now.Add(-12 * time.Second), "12s ago"},
		{"minutes", now.Add(-3 * time.Minute), "3m ago"},
		{"hours", now.Add(-47 * time.Hour), "47h ago"},
		{"days", now.Add(-72 * time.Hour), "3d ago"},
	} {
		t.Run("ago "+tt.name, func(t *testing.T) {
			if got := store.FormatAgo(now, tt.t); got != tt.want {
				t.Errorf("FormatAgo: got %q, want %q", got, tt.want)
			}
		})
	}
	for _, tt := range []struct {
		d    time.Duration
		want string
	}{{12 * time.Hour, "12h"}, {90 * time.Second, "1m30s"}, {time.Minute, "1m"}, {500 * time.Millisecond, "500ms"}, {36 * time.Hour, "36h"}} {
		t.Run("duration "+tt.want, func(t *testing.T) {
			if got := store.FormatDuration(tt.d); got != tt.want {
				t.Errorf("FormatDuration(%v): got %q, want %q", tt.d, got, tt.want)
			}
		})
	}
}

// TestTooLarge: values past what the limits can hold are refused as too
// large, never wrapped into a negative or zero limit.
func TestTooLarge(t *testing.T) {
	for _, tt := range []struct {
		name  string
		parse func(string) (int64, error)
		in    string
		want  string
	}{
		{"bandwidth overflows int64", store.ParseBandwidth, "99999999999999999999Gbit", `bandwidth "99999999999999999999Gbit" is too large`},
		{"bandwidth past 1 Pbit/s", store.ParseBandwidth, "2000000Gbit", "is too large"},
		{"bandwidth 400 digits", store.ParseBandwidth, strings.Repeat("9", 400) + "Mbit", "is too large"},
		{"link overflows", store.ParseLink, "99999999999999999999Gbit", `link "99999999999999999999Gbit" is too large`},
		{"frequency past int64", store.ParseFrequency, "99999999999999999999", `frequency "99999999999999999999" is too large`},
		{"frequency past the bound", store.ParseFrequency, "5000000000", "is too large"},
		{"size 400 digits", store.ParseSize, strings.Repeat("9", 400) + "GB", "is too large"},
		{"size past int64", store.ParseSize, "99999999999999999999GB", "is too large"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.parse(tt.in)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %d, %v; want an error containing %q", got, err, tt.want)
			}
			if code := store.ErrorCode(err); code != store.EInvalid {
				t.Errorf("error code: got %q, want %q", code, store.EInvalid)
			}
		})
	}
	t.Run("largest accepted", func(t *testing.T) {
		if got, err := store.ParseBandwidth("1000000Gbit"); err != nil || got != 125_000_000_000_000 {
			t.Errorf("1 Pbit/s: got %d, %v; want 125000000000000", got, err)
		}
	})
}

// TestCacheMinimumSaysBytes: 64KB is decimal (64,000 bytes), below the
// 64 KiB minimum; the refusal says so instead of "64 KB is below 64 KB".
func TestCacheMinimumSaysBytes(t *testing.T) {
	size, err := store.ParseSize("64KB")
	if err != nil {
		t.Fatal(err)
	}
	_, err = store.NormalizePolicy(store.Policy{Mode: wire.ModeCache, CacheMax: size}, "edge")
	want := "cache-max 64 KB (64000 bytes) is below the minimum of 64 KiB (65536 bytes)"
	if err == nil || err.Error() != want {
		t.Errorf("got %v, want %q", err, want)
	}
	if _, err := store.NormalizePolicy(store.Policy{Mode: wire.ModeCache, CacheMax: 64 << 10}, "edge"); err != nil {
		t.Errorf("64 KiB: got %v, want accepted", err)
	}
}
