package main

import (
	"runtime"

	"github.com/spf13/cobra"
)

// version is this build's release; set with
// go build -ldflags "-X main.version=1.2.3". Relays report it in their
// heartbeat and `proxy upgrade` compares it with the latest release.
var version = "0.1.0-dev"

func init() { register("", newVersionCmd) }

func newVersionCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  nargs(0, 0, ""),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if a.jsonOut {
				return a.printJSON(map[string]string{"version": version, "go": runtime.Version(), "os": runtime.GOOS, "arch": runtime.GOARCH})
			}
			a.printf("outpost %s (%s %s/%s)\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
			return nil
		},
	}
}
