package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/spf13/cobra"

	"outpost/store"
	"outpost/store/ops"
)

// agent bind: hosts given as arguments go to the store as one batch; a host
// file is resolved in full first (so a typo binds nothing), then bound in
// batches of at most store.BindBatchMax, waiting out the cluster's batch gap
// between them. SIGINT stops between batches.

func newAgentBindCmd(a *app) *cobra.Command {
	var cluster, account, file string
	cmd := &cobra.Command{
		Use:   "bind --cluster N (HOST... | --file F)",
		Short: "Bind agents to a cluster, in paced batches of at most 500",
		Long: `Bind agents (agent id, host name or IP) to a cluster: they connect through
its proxy servers from their next check-in.

A cluster takes at most 500 hosts per batch and one batch per bind_batch_gap
(one minute by default). Hosts given as arguments are one batch (at most 500;
if the cluster took a batch too recently, the command waits). With --file
(one host per line, '#' comments and blank lines ignored, '-' for stdin) every
host is resolved first, then the hosts are bound in batches of 500 with the
gap waited out in between: a progress bar on a terminal, one line per batch
otherwise. Ctrl-C stops between batches; run the same command again to bind
the rest (hosts already bound are skipped).`,
		Args: nargs(0, -1, "HOST"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if (file != "") == (len(args) > 0) {
				return usageErrorf("give hosts as arguments or --file F (not both)")
			}
			db, c, err := a.storeCluster(cmd, account, cluster)
			if err != nil {
				return err
			}
			var batches [][]string
			total := len(args)
			if len(args) > 0 {
				batches = [][]string{args}
			} else {
				hosts, err := readHostFile(file, cmd.InOrStdin())
				if err != nil {
					return err
				}
				ids, err := resolveHosts(ctx(cmd), db, c.AccountID, hosts, file)
				if err != nil {
					return err
				}
				total = len(ids)
				for len(ids) > 0 {
					n := min(len(ids), store.BindBatchMax)
					batches = append(batches, ids[:n])
					ids = ids[n:]
				}
			}
			b := &binder{db: db, cluster: c, batches: batches, total: total, out: a.stderr, tty: isTerminal(a.stderr),
				interrupt: cmd.Context(), ctx: context.WithoutCancel(ctx(cmd)), gap: db.Settings().BindBatchGap}
			sum, err := b.run()
			if err != nil {
				return err
			}
			if a.jsonOut {
				return a.printJSON(sum)
			}
			a.printf("%d host(s) bound to cluster %s in %d batch(es)", sum.Bound, clean(c.Name), sum.Batches)
			if sum.Already > 0 {
				a.printf("; %d were bound already", sum.Already)
			}
			a.printf("\n")
			return nil
		},
	}
	cmd.Flags().StringVar(&cluster, "cluster", "", "cluster to bind to")
	cmd.Flags().StringVar(&file, "file", "", "file with one host per line ('-' for stdin)")
	cmd.Flags().StringVar(&account, "account", "", "account of the cluster")
	cmd.MarkFlagRequired("cluster")
	return cmd
}

type hostLine struct {
	line int
	host string
}

// readHostFile reads one host per line; '#' starts a comment.
func readHostFile(path string, stdin io.Reader) ([]hostLine, error) {
	var r io.Reader = stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	var out []hostLine
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if n == 1 {
			line = strings.TrimPrefix(line, "\ufeff")
		}
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		if line = strings.TrimSpace(line); line != "" {
			out = append(out, hostLine{n, line})
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(out) == 0 {
		return nil, failf("%s lists no hosts", path)
	}
	return out, nil
}

// resolveHosts maps every host to its agent id (deduplicated, in order) or
// refuses the whole file, naming the first bad line.
func resolveHosts(ctx context.Context, db *store.DB, accountID int64, hosts []hostLine, path string) ([]string, error) {
	seen := map[string]bool{}
	var ids []string
	bad := 0
	var first error
	for _, h := range hosts {
		if ctx.Err() != nil {
			return nil, failf("interrupted while resolving hosts; nothing was bound")
		}
		ag, err := db.FindAgent(ctx, accountID, h.host)
		if err != nil {
			if store.ErrorCode(err) == store.EInternal {
				return nil, err
			}
			if bad++; first == nil {
				first = fmt.Errorf("%s line %d: %s", path, h.line, store.ErrorMessage(err))
			}
			continue
		}
		if !seen[ag.ID] {
			seen[ag.ID] = true
			ids = append(ids, ag.ID)
		}
	}
	if bad > 0 {
		return nil, failf("%v (%d of %d hosts cannot be bound); nothing was bound", first, bad, len(hosts))
	}
	return ids, nil
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd()))
}

// bindSummary is the result of agent bind (its --json document).
type bindSummary struct {
	Cluster string `json:"cluster"`
	Hosts   int    `json:"hosts"`
	Bound   int    `json:"bound"`   // newly bound
	Already int    `json:"already"` // were bound to this cluster already
	Batches int    `json:"batches"`
}

// binder runs the batches with the shared pacing (ops.PacedBind, which the
// dashboard uses too) and reports progress: a bar on a terminal, one line
// per batch otherwise.
type binder struct {
	db        *store.DB
	cluster   store.Cluster
	batches   [][]string
	total     int
	out       io.Writer
	tty       bool
	interrupt context.Context // cancelled by SIGINT: stop between batches
	ctx       context.Context // for the store: a batch under way completes
	gap       time.Duration
}

func (b *binder) run() (bindSummary, error) {
	p := ops.NewPacedBind(b.db, b.cluster, b.batches, b.gap, wallClock{})
	n := len(b.batches)
	b.bar(p.Progress(), "binding")
	pr, err := p.Run(b.ctx, b.interrupt, func(pr ops.BindProgress) {
		switch {
		case pr.Last != nil && !b.tty:
			msg := fmt.Sprintf("batch %d/%d: %d hosts bound", pr.Batch, n, len(pr.Last.Bound))
			if len(pr.Last.Already) > 0 {
				msg += fmt.Sprintf(", %d already bound", len(pr.Last.Already))
			}
			fmt.Fprintf(b.out, "%s (%d/%d)\n", msg, pr.Done, pr.Total)
		case pr.Notice != "" && !b.tty:
			fmt.Fprintf(b.out, "batch %d/%d: %s\n", pr.Batch+1, n, clean(pr.Notice))
		case pr.Finished && pr.Err == nil:
			b.bar(pr, "done")
		case pr.Wait > 0:
			b.bar(pr, "")
		}
	})
	b.endBar()
	sum := bindSummary{Cluster: b.cluster.Name, Hosts: b.total, Bound: pr.Bound, Already: pr.Already, Batches: pr.Batch}
	if err != nil {
		if p.Progress().Finished {
			return sum, err // the store's refusal
		}
		return sum, failf("%s", store.ErrorMessage(err)) // interrupted
	}
	return sum, nil
}

// wallClock is the store's clock: the system time.
type wallClock struct{}

func (wallClock) Now() time.Time { return time.Now() }

// bar redraws the terminal progress line (no-op when not a terminal).
func (b *binder) bar(pr ops.BindProgress, state string) {
	if b.tty {
		fmt.Fprintf(b.out, "\r%s\x1b[K", pr.Line(state))
	}
}

func (b *binder) endBar() {
	if b.tty {
		fmt.Fprintln(b.out)
		b.tty = false // later output is plain lines
	}
}

// progressLine renders "[#####.....] 1000/2300 hosts, batch 3/5, next in 42s".
func progressLine(done, total, batch, batches int, next time.Duration, state string) string {
	return ops.ProgressLine(done, total, batch, batches, next, state)
}
