package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run executes one command line and returns the exit status. The first
// SIGINT/SIGTERM cancels the command's context (long-running commands stop
// cleanly); a second one kills the process as usual.
func run(argv []string, stdout, stderr io.Writer) int {
	if len(argv) == 1 && argv[0] == "--self-test" {
		return selfTest(stdout, stderr) // before anything else can fail
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop()
	}()

	a := &app{stdout: stdout, stderr: stderr}
	defer a.close()
	root := newRoot(a)
	root.SetArgs(argv)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd, err := root.ExecuteContextC(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "outpost: %s\n", errorLine(cmd, err))
	}
	return exitCode(err)
}

// newRoot builds the command tree from the registry.
func newRoot(a *app) *cobra.Command {
	root := &cobra.Command{
		Use:           "outpost",
		Short:         "Outpost: proxy access for security agents in restricted networks",
		Long:          "Outpost gives security agents in restricted networks a way to reach their\nmanagement centre through proxy servers, and the operator a way to run that\nproxy fleet: clusters, proxy servers, agents, policies.",
		Version:       version,
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	root.SetVersionTemplate("outpost {{.Version}}\n")
	root.PersistentFlags().StringVar(&a.dataFlag, "data", "", "data directory (default $OUTPOST_DATA, else /var/lib/outpost if writable, else ~/.outpost)")
	root.PersistentFlags().BoolVar(&a.jsonOut, "json", false, "print one JSON document on stdout")
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		// `invalid argument "x" for "--limit" flag: strconv.ParseInt: parsing "x": invalid syntax`
		msg := err.Error()
		if i := strings.Index(msg, ": strconv."); i >= 0 {
			msg = msg[:i] + ": want a number"
		}
		return usageErrorf("%s", msg)
	})
	// The root itself runs only to refuse a missing or unknown command.
	g := group("outpost", "")
	root.Args, root.RunE = g.Args, g.RunE

	var nested []registration
	for _, r := range registry {
		if r.parent == "" {
			root.AddCommand(r.build(a))
		} else {
			nested = append(nested, r)
		}
	}
	for _, r := range nested {
		parent := root
		for _, name := range strings.Fields(r.parent) {
			var next *cobra.Command
			for _, c := range parent.Commands() {
				if c.Name() == name {
					next = c
				}
			}
			if next == nil {
				panic(fmt.Sprintf("outpost: command %q registered under unknown parent %q", r.build(a).Name(), r.parent))
			}
			parent = next
		}
		parent.AddCommand(r.build(a))
	}
	wrapRunE(root)
	return root
}
