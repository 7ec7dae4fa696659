package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"outpost/store"
	"outpost/store/ops"
)

// agent upgrade: upgrade commands to agents, batched and paced as binds
// are (ops.PacedUpgrade); the agent carries the upgrade out at its next
// check-in and reports its stages, shown by agent show.

func newAgentUpgradeCmd(a *app) *cobra.Command {
	var cluster, account, version string
	var all, force bool
	cmd := &cobra.Command{
		Use:   "upgrade (HOST... | --cluster N | --all) [--version V] [--force]",
		Short: "Upgrade agents to a published release, in paced batches of at most 500",
		Long: `Queue an upgrade to the latest published release (or --version V) for agents:
HOST... (agent id, host name or IP), every agent of a cluster (--cluster N),
or every agent (--all, within --account when given). Each agent gets the
command at its next check-in, downloads the release through its relay,
checks its signature and SHA-256, restarts into it and reports back; an
offline agent gets it when it comes back. Follow it with 'outpost agent show
HOST': queued, delivered, downloading, verifying, restarting, done, failed
(reason) or rolled back (reason: the new version did not come up healthy,
the previous one runs again). A stage with no news for 10 minutes fails.

Refused, with the reason: no release is published; an agent already runs
that version or a newer one (--force installs it anyway, a downgrade,
audited as agent.upgrade.force); an upgrade is under way; the agent is
uninstalled or being uninstalled. With HOST... one refusal queues nothing;
with --cluster and --all those agents are skipped and listed.

Like binds, at most 500 agents per batch and bind_batch_gap (one minute)
between batches, so a fleet does not download a release all at once.
Ctrl-C stops between batches.`,
		Args: nargs(0, -1, "HOST"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if n := btoi(len(args) > 0) + btoi(cluster != "") + btoi(all); n != 1 {
				return usageErrorf("give HOST..., --cluster N or --all (exactly one)")
			}
			db, acct, err := a.storeAccount(cmd, account)
			if err != nil {
				return err
			}
			hosts, what := args, fmt.Sprintf("%d host(s)", len(args))
			if cluster != "" || all {
				var cid int64
				what = "all agents"
				if cluster != "" {
					c, err := a.resolveCluster(cmd, account, cluster)
					if err != nil {
						return err
					}
					cid, what = c.ID, "cluster "+clean(c.Name)
				}
				if hosts, err = db.UpgradeCandidates(ctx(cmd), acct, cid); err != nil {
					return err
				}
				if len(hosts) == 0 && cid == 0 {
					return failf("no agent to upgrade: none is enrolled (uninstalled agents are left out)")
				} else if len(hosts) == 0 {
					return failf("no agent to upgrade in %s: none is bound to it (uninstalled agents are left out)", what)
				}
			}
			in := store.UpgradeAgentsInput{AccountID: acct, Version: version, Force: force, Skip: len(args) == 0}
			u := &upgrader{p: ops.NewPacedUpgrade(db, in, ops.BindBatches(hosts), db.Settings().BindBatchGap, wallClock{}),
				out: a.stderr, tty: isTerminal(a.stderr)}
			pr, err := u.run(context.WithoutCancel(ctx(cmd)), cmd.Context())
			if err != nil {
				return err
			}
			if a.jsonOut {
				return a.printJSON(pr)
			}
			a.printUpgradeSummary(pr, what)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&cluster, "cluster", "", "upgrade every agent bound to this cluster")
	f.BoolVar(&all, "all", false, "upgrade every agent (of --account when given)")
	f.StringVar(&version, "version", "", "the release to upgrade to (default the latest)")
	f.BoolVar(&force, "force", false, "also agents that run this release or a newer one (a downgrade; audited)")
	f.StringVar(&account, "account", "", "account of the agents")
	return cmd
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (a *app) printUpgradeSummary(pr ops.UpgradeProgress, what string) {
	a.printf("%d agent(s) of %s queued for upgrade to %s", len(pr.Queued), what, clean(pr.Version))
	if n := len(pr.Skipped); n > 0 {
		a.printf("; %d skipped", n)
	}
	a.printf("\n")
	const shown = 20
	for i, s := range pr.Skipped {
		if i == shown {
			a.printf("  ... and %d more skipped (--json lists them all)\n", len(pr.Skipped)-shown)
			break
		}
		a.printf("  skipped: %s\n", clean(s.Reason))
	}
	if len(pr.Queued) > 0 {
		a.printf("each agent upgrades at its next check-in; follow one: outpost agent show %s\n", shellQuote(pr.Queued[0].Hostname))
	}
}

// upgrader drives a paced agent upgrade and reports its progress as the
// binder does: a bar on a terminal, one line per batch otherwise.
type upgrader struct {
	p   *ops.PacedUpgrade
	out io.Writer
	tty bool
}

func (u *upgrader) run(ctx, interrupt context.Context) (ops.UpgradeProgress, error) {
	first := u.p.Progress()
	if first.Batches > 1 {
		u.bar(first, "upgrading")
	}
	pr, err := u.p.Run(ctx, interrupt, func(pr ops.UpgradeProgress) {
		if pr.Batches <= 1 {
			return // one batch: the summary says it all
		}
		switch {
		case pr.Last != nil && !u.tty:
			fmt.Fprintf(u.out, "batch %d/%d: %d agents queued, %d skipped (%d/%d)\n", pr.Batch, pr.Batches, len(pr.Last.Queued), len(pr.Last.Skipped), pr.Done, pr.Total)
		case pr.Finished && pr.Err == nil:
			u.bar(pr, "done")
		case pr.Wait > 0:
			u.bar(pr, "")
		}
	})
	if u.tty && first.Batches > 1 {
		fmt.Fprintln(u.out)
	}
	if err != nil && !u.p.Progress().Finished {
		return pr, failf("%s", store.ErrorMessage(err)) // interrupted
	}
	return pr, err
}

func (u *upgrader) bar(pr ops.UpgradeProgress, state string) {
	if u.tty {
		fmt.Fprintf(u.out, "\r%s\x1b[K", pr.Line(state))
	}
}
