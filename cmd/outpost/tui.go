package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"outpost/relay"
	"outpost/relay/wire"
	"outpost/store"
	"outpost/tui"
)

func init() { register("", newTUICmd) }

func newTUICmd(a *app) *cobra.Command {
	var account string
	var readOnly bool
	cmd := &cobra.Command{
		Use:   "tui [--data DIR] [--readonly] [--account A]",
		Short: "Open the dashboard on the store of a running up or relay",
		Long: `Open the full-screen dashboard on the data directory of a running 'outpost up'
or 'outpost relay' (the store is shared safely between processes). Changes made
here reach the running relay within seconds. --readonly binds no key that
changes anything. Keys: ? shows them all, : switches views, q quits.`,
		Args: nargs(0, 0, ""),
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir := a.dataDir()
			// Opening would create an empty store: a mistyped --data
			// would show an empty fleet instead of saying so.
			if _, err := os.Stat(filepath.Join(dir, dbFileName)); err != nil {
				return failf("no store in %s: start 'outpost up' or 'outpost relay' there first, or give --data DIR", dir)
			}
			if !isTerminal(a.stdout) {
				return failf("the dashboard needs a terminal; use the list commands (with --json) otherwise")
			}
			return runDashboard(cmd.Context(), a, account, readOnly, func(context.Context) tui.RelayState { return runFileState(dir) })
		},
	}
	cmd.Flags().StringVar(&account, "account", "", "account to show (default: the only account, else every account)")
	cmd.Flags().BoolVar(&readOnly, "readonly", false, "look only: no key changes anything")
	return cmd
}

// runDashboard opens the store and runs the dashboard until it quits.
func runDashboard(ctx context.Context, a *app, account string, readOnly bool, relayState func(context.Context) tui.RelayState) error {
	db, err := a.store()
	if err != nil {
		return err
	}
	acct, err := db.FindAccount(ctx, account)
	switch {
	case err == nil:
	case account == "" && (store.ErrorCode(err) == store.EInvalid || store.ErrorCode(err) == store.ENotFound):
		acct = store.Account{} // several accounts (or none yet): show every one
	default:
		return err
	}
	user := strings.TrimSuffix(actor(), "@cli")
	return tui.Run(ctx, tui.Options{Backend: db, Account: acct, ReadOnly: readOnly, Version: version, Actor: user + "@tui",
		Relay: relayState, DataDir: a.dataDir()}, nil, a.stdout)
}

// runFileState reads the run file a relay on this host keeps in DATA/run.
func runFileState(dir string) tui.RelayState {
	info, err := relay.ReadRunFile(dir, "relay")
	if err != nil {
		if os.IsNotExist(err) {
			return tui.RelayState{Text: "not running here"}
		}
		return tui.RelayState{Text: "unknown (" + err.Error() + ")"}
	}
	if !pidRunning(info.PID) {
		return tui.RelayState{Text: fmt.Sprintf("stopped (pid %d gone)", info.PID)}
	}
	return tui.RelayState{Running: true, Text: "running", Detail: fmt.Sprintf("pid %d %s", info.PID, strings.Join(info.URLs, " ")),
		Damage: healthDamage(info.URLs)}
}

// healthDamage asks a relay of this host what its recovery dropped (the
// damage_text of /healthz on a plain listener); "" when nothing was or
// it cannot tell.
func healthDamage(urls []string) string {
	for _, u := range urls {
		if !strings.HasPrefix(u, "http://") {
			continue
		}
		hc := &http.Client{Timeout: time.Second}
		resp, err := hc.Get(strings.TrimRight(u, "/") + wire.PathHealth)
		if err != nil {
			continue
		}
		var h struct {
			Damage string `json:"damage_text"`
		}
		err = json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&h)
		resp.Body.Close()
		if err == nil {
			return h.Damage
		}
	}
	return ""
}

// runUpDashboard is `up` on a terminal: the dashboard in place of the text
// summary. The relay's log lines go to DATA/up.log meanwhile (they would
// tear the screen); when the dashboard quits, up stops the relay.
func runUpDashboard(ctx context.Context, a *app, r *relayRun) error {
	logPath := a.dataDir() + string(os.PathSeparator) + "up.log"
	restore, err := redirectStderr(logPath)
	if err != nil {
		return fmt.Errorf("relay log %s: %w", logPath, err)
	}
	started := time.Now()
	urls := strings.Join(r.urls, " ")
	err = runDashboard(ctx, a, "", false, func(context.Context) tui.RelayState {
		return tui.RelayState{Running: true, Text: "running", Detail: "up " + store.FormatDuration(time.Since(started).Round(time.Second)) + " " + urls,
			Damage: relay.FormatDamage(r.srv.Damage())}
	})
	restore()
	if err == nil {
		fmt.Fprintf(a.stderr, "dashboard closed: stopping the relay (its log: %s)\n", logPath)
	}
	return err
}
