package main

import (
	"strings"
	"time"

	"github.com/spf13/cobra"

	"outpost/store"
)

func init() { register("", newSettingsCmd) }

// settingFields lists the timing settings in display order with their field.
func settingFields(s *store.Settings) []struct {
	key  string
	v    *time.Duration
	help string
} {
	return []struct {
		key  string
		v    *time.Duration
		help string
	}{
		{"offline_after", &s.OfflineAfter, "an agent is offline (Unprotected) after this long without contact"},
		{"inventory_interval", &s.InventoryInterval, "how often an agent sends its full inventory (online data)"},
		{"uninstall_grace", &s.UninstallGrace, "after an uninstall, the asset turns Unprotected after this"},
		{"proxy_offline_after", &s.ProxyOfflineAfter, "a proxy server is offline after this long without a heartbeat"},
		{"bind_batch_gap", &s.BindBatchGap, "minimum time between two bind batches of a cluster"},
		{"poll_timeout", &s.PollTimeout, "how long a relay holds an agent's check-in open"},
	}
}

func newSettingsCmd(a *app) *cobra.Command {
	cmd := group("settings", "Show and change the timing settings")
	cmd.AddCommand(&cobra.Command{
		Use:   "show",
		Short: "Show the timing settings",
		Args:  nargs(0, 0, ""),
		RunE: func(cmd *cobra.Command, _ []string) error {
			db, err := a.store()
			if err != nil {
				return err
			}
			return a.printSettings(db.Settings())
		},
	}, &cobra.Command{
		Use:   "set KEY=DURATION...",
		Short: "Change timing settings, e.g. bind_batch_gap=1m offline_after=12h",
		Long: `Change timing settings. Keys: offline_after, inventory_interval,
uninstall_grace, proxy_offline_after, bind_batch_gap, poll_timeout. Values are
durations such as 90s, 5h or 1d. inventory_interval must stay shorter than
offline_after. The running management host (outpost relay, outpost up)
reloads the settings every second and answers held check-ins at once, so
connected agents, direct or through joined relays, take inventory_interval
and poll_timeout from their next check-in answer (within seconds), and
offline_after counts at once in every listing and the live summary.`,
		Args: nargs(1, -1, "KEY=DURATION"),
		RunE: func(cmd *cobra.Command, args []string) error {
			db, err := a.store()
			if err != nil {
				return err
			}
			s := db.Settings()
			fields := settingFields(&s)
			for _, arg := range args {
				key, val, ok := strings.Cut(arg, "=")
				if !ok {
					return usageErrorf("%q: want KEY=DURATION", arg)
				}
				var dst *time.Duration
				var keys []string
				for _, f := range fields {
					keys = append(keys, f.key)
					if f.key == key {
						dst = f.v
					}
				}
				if dst == nil {
					return usageErrorf("unknown key %q: want one of %s", key, strings.Join(keys, ", "))
				}
				d, err := parseSettingDuration(key, val)
				if err != nil {
					return err
				}
				*dst = d
			}
			if err := db.SetSettings(ctx(cmd), s); err != nil {
				return err
			}
			return a.printSettings(db.Settings())
		},
	})
	return cmd
}

// parseSettingDuration reads a value; the store decides whether it is
// acceptable (positive, consistent with the others).
func parseSettingDuration(key, s string) (time.Duration, error) {
	d, err := store.ParseDuration(s)
	if err != nil {
		return 0, usageErrorf("invalid %s %q: %s", key, s, durationProblem(err, "90s, 5h or 1d"))
	}
	return d, nil
}

func (a *app) printSettings(s store.Settings) error {
	fields := settingFields(&s)
	if a.jsonOut {
		out := map[string]string{}
		for _, f := range fields {
			out[f.key] = store.FormatDuration(*f.v)
		}
		return a.printJSON(out)
	}
	var rows [][]string
	for _, f := range fields {
		rows = append(rows, []string{f.key, store.FormatDuration(*f.v), f.help})
	}
	a.printTable([]string{"KEY", "VALUE", "MEANING"}, rows)
	return nil
}
