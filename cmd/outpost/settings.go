package main

import (
	"strings"
	"time"

	"github.com/spf13/cobra"

	"outpost/store"
)

func init() { register("", newSettingsCmd) }

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
		Long: "Change timing settings. Keys:\n  " + strings.Join(settingKeys(), ", ") + `.
Values are durations such as 90s, 5h or 1d. inventory_interval must stay
shorter than offline_after. The running management host (outpost relay, outpost up)
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
			for _, arg := range args {
				key, val, ok := strings.Cut(arg, "=")
				if !ok {
					return usageErrorf("%q: want KEY=DURATION", arg)
				}
				var dst *time.Duration
				for _, f := range store.SettingFields() {
					if f.Key == key {
						dst = f.Of(&s)
					}
				}
				if dst == nil {
					return usageErrorf("unknown key %q: want one of %s", key, strings.Join(settingKeys(), ", "))
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

// settingKeys are the settings' keys in display order.
func settingKeys() []string {
	var keys []string
	for _, f := range store.SettingFields() {
		keys = append(keys, f.Key)
	}
	return keys
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
	fields := store.SettingFields()
	if a.jsonOut {
		out := map[string]string{}
		for _, f := range fields {
			out[f.Key] = store.FormatDuration(*f.Of(&s))
		}
		return a.printJSON(out)
	}
	var rows [][]string
	for _, f := range fields {
		rows = append(rows, []string{f.Key, store.FormatDuration(*f.Of(&s)), f.Meaning})
	}
	a.printTable([]string{"KEY", "VALUE", "MEANING"}, rows)
	return nil
}
