package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"outpost/relay"
	"outpost/relay/collector"
	"outpost/relay/wire"
)

// newCenterCmd is `outpost center`: the collector on its own, what a
// relay forwards to when the management centre is elsewhere.
func newCenterCmd(a *app) *cobra.Command {
	var listen, out, tokenFile, cpuProfile string
	cmd := &cobra.Command{
		Use:   "center",
		Short: "Run a standalone collector (the management centre's ingest)",
		Args:  nargs(0, 0, ""),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				out = filepath.Join(a.dataDir(), "center")
			}
			ingestTok, from, err := centerToken(a, tokenFile)
			if err != nil {
				return err
			}
			statsTok, err := collector.LoadOrCreateToken(filepath.Join(a.dataDir(), "stats.token"), "st_")
			if err != nil {
				return err
			}
			if cpuProfile != "" {
				stop, err := startCPUProfile(cpuProfile)
				if err != nil {
					return err
				}
				defer stop()
			}
			col, err := collector.New(out, a.logger())
			if err != nil {
				return err
			}
			defer col.Close()
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return fmt.Errorf("listen %s: %w", listen, err)
			}
			hs := &http.Server{Handler: collector.RequireTokens(col.Handler(), ingestTok, statsTok), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 60 * time.Second,
				WriteTimeout: 60 * time.Second, IdleTimeout: 120 * time.Second}
			url := "http://" + ln.Addr().String()
			relay.WriteRunFile(a.dataDir(), "center", relay.RunInfo{URLs: []string{url + wire.PathIngest}})
			defer relay.RemoveRunFile(a.dataDir(), "center")
			a.logger().Info("collector listening", "url", url, "dir", out, "token_from", from)
			go hs.Serve(ln)
			<-cmd.Context().Done()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			return hs.Shutdown(ctx)
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:9090", "listen address")
	cmd.Flags().StringVar(&out, "out", "", "directory for NDJSON segments (default DATA/center)")
	a.logFlag(cmd)
	cmd.Flags().StringVar(&tokenFile, "token-file", "", "file holding the ingest token relays send (default DATA/center.token, created when missing; $OUTPOST_CENTER_TOKEN overrides)")
	cmd.Flags().StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile to this file until the collector stops")
	cmd.Flags().MarkHidden("cpuprofile")
	return cmd
}

// centerToken is the standalone collector's ingest token: $OUTPOST_CENTER_TOKEN,
// else the --token-file (DATA/center.token by default, created on first
// start). Ingest without it is refused: anyone reaching the port could
// otherwise write events under any agent id.
func centerToken(a *app, file string) (tok, from string, err error) {
	if v := strings.TrimSpace(os.Getenv("OUTPOST_CENTER_TOKEN")); v != "" {
		return v, "$OUTPOST_CENTER_TOKEN", nil
	}
	if file == "" {
		file = filepath.Join(a.dataDir(), "center.token")
	} else if _, err := os.Stat(file); err != nil {
		return "", "", fmt.Errorf("--token-file: %w", err)
	}
	tok, err = collector.LoadOrCreateToken(file, "ct_")
	return tok, file, err
}
