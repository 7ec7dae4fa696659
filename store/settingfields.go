package store

import (
	"strings"
	"time"
)

// SettingField is one timing setting: its key (the settings table, the JSON
// form, `outpost settings set` and the dashboard all use it) and its meaning
// as the command line and the dashboard show it.
type SettingField struct {
	Key, Meaning string
	Of           func(*Settings) *time.Duration // the field in s
}

var settingFields = []SettingField{
	{"offline_after", "an agent is offline (Unprotected) after this long without contact", func(s *Settings) *time.Duration { return &s.OfflineAfter }},
	{"inventory_interval", "how often an agent sends its full inventory (online data)", func(s *Settings) *time.Duration { return &s.InventoryInterval }},
	{"uninstall_grace", "an uninstall not acknowledged counts as done after this without contact", func(s *Settings) *time.Duration { return &s.UninstallGrace }},
	{"proxy_offline_after", "a proxy server is offline after this long without a heartbeat", func(s *Settings) *time.Duration { return &s.ProxyOfflineAfter }},
	{"bind_batch_gap", "least time between two bind batches (500 hosts) to one cluster", func(s *Settings) *time.Duration { return &s.BindBatchGap }},
	{"poll_timeout", "how long a relay holds an agent's check-in open (long poll)", func(s *Settings) *time.Duration { return &s.PollTimeout }},
}

// SettingFields lists the timing settings in display order.
func SettingFields() []SettingField { return append([]SettingField(nil), settingFields...) }

// field is the setting named key, nil for an unknown key.
func (s *Settings) field(key string) *time.Duration {
	for _, f := range settingFields {
		if f.Key == key {
			return f.Of(s)
		}
	}
	return nil
}

// String is every setting as key=value, in display order (the audit detail).
func (s Settings) String() string {
	parts := make([]string, len(settingFields))
	for i, f := range settingFields {
		parts[i] = f.Key + "=" + f.Of(&s).String()
	}
	return strings.Join(parts, " ")
}
