package ops

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"outpost/store"
)

// Paced binding: the command line (agent bind --file) and the dashboard
// (b on marked agents) bind many hosts to a cluster the same way. The hosts
// are cut into batches of at most store.BindBatchMax and each batch waits
// out the cluster's bind gap (store.Settings.BindBatchGap) since the one
// before. store.Bind enforces both rules itself; the pacer only avoids
// asking too early, and when the store still says "wait" (another operator
// bound a batch meanwhile) it waits the RetryAfter the store names.
//
// The pacer never sleeps: Step either binds the next batch or says how long
// to wait, so a blocking loop (Run, for the CLI) and an event loop (the
// dashboard's timer messages) drive the same code, and a test drives it
// with a fake clock.

// Binder is the store method paced binding needs; *store.DB satisfies it.
type Binder interface {
	Bind(ctx context.Context, clusterID int64, hosts []string) (store.BindResult, error)
}

// RetrySlack is added to every wait: the store keeps millisecond
// timestamps, so waiting exactly the gap could be refused by a hair.
const RetrySlack = 25 * time.Millisecond

// BindBatches cuts ids into batches of at most store.BindBatchMax.
func BindBatches(ids []string) [][]string {
	var out [][]string
	for len(ids) > 0 {
		n := min(len(ids), store.BindBatchMax)
		out = append(out, ids[:n:n])
		ids = ids[n:]
	}
	return out
}

// BindProgress is where a paced bind stands.
type BindProgress struct {
	Cluster string `json:"cluster"`
	Total   int    `json:"hosts"`   // hosts in every batch
	Done    int    `json:"done"`    // hosts of the finished batches
	Batch   int    `json:"batch"`   // batches finished
	Batches int    `json:"batches"` // batches in all
	Bound   int    `json:"bound"`   // newly bound
	Already int    `json:"already"` // were bound to this cluster already
	// Wait > 0: the next batch starts after it (Notice may say why).
	Wait   time.Duration `json:"-"`
	Notice string        `json:"-"` // the store's "wait" refusal, when it gave one
	// Last is the result of the batch Step just bound (nil otherwise).
	Last *store.BindResult `json:"-"`
	// Finished: every batch is bound, or Err stopped the run.
	Finished bool  `json:"-"`
	Err      error `json:"-"`
}

// Line renders the progress as "[#####.....] 1000/2300 hosts, batch 3/5,
// next in 42s"; state ("binding", "done") is shown when not waiting.
func (p BindProgress) Line(state string) string {
	next := min(p.Batch+1, max(p.Batches, 1))
	return ProgressLine(p.Done, p.Total, next, p.Batches, p.Wait, state)
}

// ProgressLine renders "[#####.....] 1000/2300 hosts, batch 3/5, next in 42s".
func ProgressLine(done, total, batch, batches int, next time.Duration, state string) string {
	const w = 20
	fill := 0
	if total > 0 {
		fill = min(w, done*w/total)
	}
	s := fmt.Sprintf("[%s%s] %d/%d hosts, batch %d/%d", strings.Repeat("#", fill), strings.Repeat(".", w-fill), done, total, batch, batches)
	switch {
	case next > 0:
		s += fmt.Sprintf(", next in %ds", max(1, int(next.Round(time.Second)/time.Second)))
	case state != "":
		s += ", " + state
	}
	return s
}

// PacedBind binds batches of hosts to one cluster, one batch per gap.
type PacedBind struct {
	db        Binder
	clusterID int64
	batches   [][]string
	gap       time.Duration
	clock     store.Clock

	next time.Time // earliest start of the next batch (zero: now)
	prog BindProgress
}

// NewPacedBind prepares binding batches (see BindBatches) to cluster c,
// gap apart, timed by clock (the store's clock).
func NewPacedBind(db Binder, c store.Cluster, batches [][]string, gap time.Duration, clock store.Clock) *PacedBind {
	p := &PacedBind{db: db, clusterID: c.ID, batches: batches, gap: gap, clock: clock}
	p.prog = BindProgress{Cluster: c.Name, Batches: len(batches)}
	for _, b := range batches {
		p.prog.Total += len(b)
	}
	p.prog.Finished = len(batches) == 0
	return p
}

// Progress is where the run stands, without doing anything.
func (p *PacedBind) Progress() BindProgress {
	pr := p.prog
	pr.Last, pr.Notice = nil, ""
	if !pr.Finished {
		pr.Wait = max(p.next.Sub(p.clock.Now()), 0)
	}
	return pr
}

// Step binds the next batch if its time has come; otherwise it returns
// the wait. A refusal other than "wait" ends the run (Finished, Err): with
// several batches Err says how many hosts were bound before it. A batch
// under way always completes: ctx should not be the operator's interrupt.
func (p *PacedBind) Step(ctx context.Context) BindProgress {
	if p.prog.Finished {
		return p.Progress()
	}
	if wait := p.next.Sub(p.clock.Now()); wait > 0 {
		return p.Progress()
	}
	i := p.prog.Batch
	batch := p.batches[i]
	res, err := p.db.Bind(ctx, p.clusterID, batch)
	if err != nil {
		var se *store.Error
		if errors.As(err, &se) && se.Code == store.ELimit && se.RetryAfter > 0 {
			p.next = p.clock.Now().Add(se.RetryAfter + RetrySlack)
			pr := p.Progress()
			pr.Notice = se.Message
			return pr
		}
		p.prog.Finished = true
		p.prog.Err = err
		if len(p.batches) > 1 {
			p.prog.Err = store.Errorf(store.ErrorCode(err), "batch %d/%d refused: %s; %d of %d hosts were bound before it",
				i+1, len(p.batches), store.ErrorMessage(err), p.prog.Done, p.prog.Total)
		}
		return p.Progress()
	}
	p.next = p.clock.Now().Add(p.gap + RetrySlack)
	p.prog.Batch++
	p.prog.Done += len(batch)
	p.prog.Bound += len(res.Bound)
	p.prog.Already += len(res.Already)
	p.prog.Finished = p.prog.Batch == len(p.batches)
	pr := p.Progress()
	pr.Last = &res
	return pr
}

// Interrupted is the error of a run stopped by the operator before its
// next batch.
func (p *PacedBind) Interrupted() error {
	pr := p.prog
	return store.Errorf(store.EConflict, "interrupted before batch %d/%d: %d of %d hosts bound; run the same command again to bind the rest",
		pr.Batch+1, pr.Batches, pr.Done, pr.Total)
}

// Run drives Step to the end, sleeping between batches (report gets every
// progress, and a tick every second while waiting). interrupt ends the
// run between batches with Interrupted; ctx is for the store calls.
func (p *PacedBind) Run(ctx, interrupt context.Context, report func(BindProgress)) (BindProgress, error) {
	return runPaced(ctx, interrupt, p, report)
}

func (p *PacedBind) finished() bool { return p.prog.Finished }

func (pr BindProgress) state() (bool, time.Duration, error) { return pr.Finished, pr.Wait, pr.Err }
