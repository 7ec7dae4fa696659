package main

// The two entry points of an upgrade that are not operator commands:
// `outpost --self-test`, run on a new binary before it replaces the
// current one, and the hidden `outpost upgrade-watch --dir DIR`, the
// watcher the previous binary runs during the new one's trial
// (relay/selfupdate).

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"

	"github.com/spf13/cobra"

	"outpost/relay/selfupdate"
	"outpost/store"
)

func init() { register("", newUpgradeWatchCmd) }

// selfTest checks that this binary works on this host (it opens and
// migrates a throwaway SQLite store) and prints its identity as one JSON
// line (selfupdate.Identity).
func selfTest(stdout, stderr io.Writer) int {
	dir, err := os.MkdirTemp("", "outpost-self-test-")
	if err == nil {
		defer os.RemoveAll(dir)
		var db *store.DB
		if db, err = store.Open(filepath.Join(dir, "self-test.db"), nil); err == nil {
			err = db.Close()
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "outpost: self-test: %v\n", err)
		return 1
	}
	b, _ := json.Marshal(selfupdate.Identity{Version: version, OS: runtime.GOOS, Arch: runtime.GOARCH})
	fmt.Fprintf(stdout, "%s\n", b)
	return 0
}

func newUpgradeWatchCmd(a *app) *cobra.Command {
	var dir string
	var detach bool
	cmd := &cobra.Command{
		Use:    "upgrade-watch --dir DIR",
		Short:  "Watch an upgrade on trial and roll it back if the new version is not healthy (run by the upgrade itself)",
		Hidden: true,
		Args:   nargs(0, 0, ""),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dir == "" {
				return usageErrorf("--dir DIR is required: the directory holding upgrade/trial.json")
			}
			if detach {
				pid, err := selfupdate.Detach(dir)
				if err != nil {
					return err
				}
				a.printf("upgrade watcher started (pid %d)\n", pid)
				return nil
			}
			return selfupdate.Watch(dir, a.logger())
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "the relay's data directory or the agent's directory")
	a.logFlag(cmd)
	cmd.Flags().BoolVar(&detach, "detach", false, "start the watcher in its own session and return")
	return cmd
}
