package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"outpost/agentsim"
	"outpost/relay/wire"
)

func init() { register("", newAgentsimCmd) }

func newAgentsimCmd(a *app) *cobra.Command {
	var cfg agentsim.SimConfig
	var proxies, tokenFile string
	var keys []string
	cmd := &cobra.Command{
		Use:   "agentsim",
		Short: "Run N simulated agents through relays and report load and loss",
		Long: "Run N simulated agents in this process, sharing the reference agent's client code:\n" +
			"varied inventories, events with per-agent sequence numbers, compressed timing and churn.\n" +
			"At the end it prints a report (--json for one JSON document); with --collector it\n" +
			"checks that every acknowledged event reached the collector (without it, loss is\n" +
			"\"not checked\", null in JSON).\n\n" +
			"Install commands are per OS: --key linux=KEY --key windows=KEY simulates the usual mix\n" +
			"(about 20 % Windows); one OS's key makes every host that OS; a bare --key KEY makes Linux\n" +
			"hosts, or Windows ones if the relay says the key is for Windows.\n\n" +
			"Exit status 1 when any acknowledged event is lost, any agent failed for good (refused),\n" +
			"or events are still unacknowledged at the end; the report counts each reason.",
		Args: nargs(0, 0, ""),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg.Proxies = splitList(proxies)
			if len(cfg.Proxies) == 0 {
				return usageErrorf("--proxy URL[,URL] is required")
			}
			if len(keys) == 0 {
				return usageErrorf("--key KEY is required")
			}
			var err error
			if cfg.Keys, err = parseSimKeys(keys); err != nil {
				return err
			}
			if cfg.Agents <= 0 {
				return usageErrorf("--agents must be positive")
			}
			if cfg.Churn < 0 || cfg.Churn > 1 {
				return usageErrorf("--churn must be between 0 and 1")
			}
			if cfg.CollectorURL != "" {
				tok, err := collectorToken(a, tokenFile)
				if err != nil {
					return err
				}
				cfg.CollectorToken = tok
			}
			cfg.Version = version
			rep, err := agentsim.RunSim(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			return a.simResult(rep)
		},
	}
	f := cmd.Flags()
	f.StringVar(&proxies, "proxy", "", "relay URL(s), comma-separated; agents fail over in order")
	f.StringArrayVar(&keys, "key", nil, "install key, repeatable per OS: KEY, linux=KEY or windows=KEY (or an account verification key)")
	f.StringVar(&cfg.CASHA256, "ca-sha256", "", "pinned CA fingerprint for https relays")
	f.IntVar(&cfg.Agents, "agents", 100, "number of simulated agents")
	f.Float64Var(&cfg.EventsPerSec, "events-per-sec", 1, "events per second per agent (0 = none)")
	f.DurationVar(&cfg.Duration, "duration", time.Minute, "how long to run (0 = until interrupted)")
	f.Int64Var(&cfg.Seed, "seed", 1, "seed for host names and inventories")
	f.DurationVar(&cfg.Wait, "wait", 30*time.Second, "long-poll hold asked for")
	f.DurationVar(&cfg.InventoryEvery, "inventory-every", 20*time.Second, "inventory interval (compressed from 5 h)")
	f.Float64Var(&cfg.Churn, "churn", 0, "fraction of agents that go away and come back during the run")
	f.IntVar(&cfg.SourceIPs, "source-ips", 0, "spread connections over this many 127.0.0.x source addresses (0 = automatic)")
	f.StringVar(&cfg.CollectorURL, "collector", "", "collector URL for the loss check (a relay with the built-in collector, or outpost center)")
	f.StringVar(&tokenFile, "collector-token-file", "", "file holding the token that reads the collector's stats (default DATA/stats.token; $OUTPOST_COLLECTOR_TOKEN overrides)")
	f.DurationVar(&cfg.DrainTimeout, "drain-timeout", time.Minute, "longest wait for buffered events at the end")
	f.Float64Var(&cfg.EnrolRate, "enrol-rate", 500, "enrolments per second")
	return cmd
}

// parseSimKeys reads --key: KEY, linux=KEY or windows=KEY, one per OS.
func parseSimKeys(keys []string) (map[wire.OS]string, error) {
	out := map[wire.OS]string{}
	for _, k := range keys {
		name, key, ok := strings.Cut(k, "=")
		if !ok {
			name, key = "", k
		}
		os, err := wire.ParseOS(name)
		if err != nil && name != "" {
			return nil, usageErrorf("invalid --key %q: want KEY, linux=KEY or windows=KEY", k)
		}
		if key = strings.TrimSpace(key); key == "" {
			return nil, usageErrorf("invalid --key %q: the key is empty", k)
		}
		if _, dup := out[os]; dup {
			return nil, usageErrorf("--key given twice for the same OS (%q)", k)
		}
		out[os] = key
	}
	return out, nil
}

// simResult prints the report and fails the run on what the report calls
// a problem.
func (a *app) simResult(rep agentsim.Report) error {
	if a.jsonOut {
		if err := a.printJSON(rep); err != nil {
			return err
		}
	} else {
		a.printf("%s", rep.String())
	}
	if rep.Enrolled == 0 && rep.FirstError != "" {
		return failf("no agent could enrol: %s", rep.FirstError)
	}
	if len(rep.Problems) > 0 {
		return failf("%s", strings.Join(rep.Problems, "; "))
	}
	return nil
}

// collectorToken is what the loss check sends to read /v1/stats:
// $OUTPOST_COLLECTOR_TOKEN, else the --collector-token-file, else
// DATA/stats.token (written by the management host and by outpost center
// on this DATA directory). None is not an error here: the collector then
// says what it needs.
func collectorToken(a *app, file string) (string, error) {
	if v := strings.TrimSpace(os.Getenv("OUTPOST_COLLECTOR_TOKEN")); v != "" {
		return v, nil
	}
	explicit := file != ""
	if !explicit {
		file = filepath.Join(a.dataDir(), "stats.token")
	}
	b, err := os.ReadFile(file)
	if err != nil {
		if !explicit && errors.Is(err, os.ErrNotExist) {
			return "", nil
		}
		return "", fmt.Errorf("--collector-token-file: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
