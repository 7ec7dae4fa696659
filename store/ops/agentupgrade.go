package ops

import (
	"context"
	"errors"
	"time"

	"outpost/store"
)

// Paced agent upgrades: agent upgrade HOST...|--cluster N|--all cuts the
// agents into batches of at most store.BindBatchMax and queues one batch
// per gap (the bind gap), as binds are paced, so a fleet does not download
// a release through its relays all at once. Every batch goes to the
// version the first one resolved, even if a newer release is published
// meanwhile. Like PacedBind, Step never sleeps; Run drives it.

// AgentUpgrader is the store method paced upgrades need; *store.DB
// satisfies it.
type AgentUpgrader interface {
	UpgradeAgents(ctx context.Context, in store.UpgradeAgentsInput) (store.AgentUpgradeResult, error)
}

// UpgradeProgress is where a paced agent upgrade stands.
type UpgradeProgress struct {
	Version string `json:"version"` // "" until the first batch resolved it
	Total   int    `json:"hosts"`
	Done    int    `json:"done"` // hosts of the finished batches
	Batch   int    `json:"batch"`
	Batches int    `json:"batches"`
	// Queued are the agents given an upgrade command; Skipped those left
	// out, each with its reason (only with Skip).
	Queued  []store.AgentUpgrade `json:"queued"`
	Skipped []store.AgentUpgrade `json:"skipped,omitempty"`

	Wait     time.Duration             `json:"-"`
	Last     *store.AgentUpgradeResult `json:"-"` // the batch Step just queued
	Finished bool                      `json:"-"`
	Err      error                     `json:"-"`
}

// Line renders the progress as ProgressLine does.
func (p UpgradeProgress) Line(state string) string {
	next := min(p.Batch+1, max(p.Batches, 1))
	return ProgressLine(p.Done, p.Total, next, p.Batches, p.Wait, state)
}

// PacedUpgrade queues agent upgrades, one batch per gap.
type PacedUpgrade struct {
	db      AgentUpgrader
	in      store.UpgradeAgentsInput // Hosts is set per batch
	batches [][]string
	gap     time.Duration
	clock   store.Clock

	next time.Time
	prog UpgradeProgress
}

// NewPacedUpgrade prepares upgrading the agents of batches (BindBatches)
// with in's account, version, Force and Skip, gap apart.
func NewPacedUpgrade(db AgentUpgrader, in store.UpgradeAgentsInput, batches [][]string, gap time.Duration, clock store.Clock) *PacedUpgrade {
	p := &PacedUpgrade{db: db, in: in, batches: batches, gap: gap, clock: clock}
	p.prog = UpgradeProgress{Batches: len(batches), Queued: []store.AgentUpgrade{}}
	for _, b := range batches {
		p.prog.Total += len(b)
	}
	p.prog.Finished = len(batches) == 0
	return p
}

// Progress is where the run stands, without doing anything.
func (p *PacedUpgrade) Progress() UpgradeProgress {
	pr := p.prog
	pr.Last = nil
	if !pr.Finished {
		pr.Wait = max(p.next.Sub(p.clock.Now()), 0)
	}
	return pr
}

// Step queues the next batch if its time has come, else returns the
// wait. A refusal ends the run (Finished, Err), saying how many agents
// were queued before it when there are several batches.
func (p *PacedUpgrade) Step(ctx context.Context) UpgradeProgress {
	if p.prog.Finished || p.next.Sub(p.clock.Now()) > 0 {
		return p.Progress()
	}
	i := p.prog.Batch
	in := p.in
	in.Hosts = p.batches[i]
	res, err := p.db.UpgradeAgents(ctx, in)
	if err != nil {
		var se *store.Error
		if errors.As(err, &se) && se.Code == store.ELimit && se.RetryAfter > 0 {
			p.next = p.clock.Now().Add(se.RetryAfter + RetrySlack)
			return p.Progress()
		}
		p.prog.Finished, p.prog.Err = true, err
		if len(p.batches) > 1 {
			p.prog.Err = store.Errorf(store.ErrorCode(err), "batch %d/%d refused: %s; %d of %d agents were queued before it",
				i+1, len(p.batches), store.ErrorMessage(err), len(p.prog.Queued), p.prog.Total)
		}
		return p.Progress()
	}
	p.in.Version, p.prog.Version = res.Version, res.Version // later batches go to the same release
	p.next = p.clock.Now().Add(p.gap + RetrySlack)
	p.prog.Batch++
	p.prog.Done += len(in.Hosts)
	p.prog.Queued = append(p.prog.Queued, res.Queued...)
	p.prog.Skipped = append(p.prog.Skipped, res.Skipped...)
	p.prog.Finished = p.prog.Batch == len(p.batches)
	pr := p.Progress()
	pr.Last = &res
	return pr
}

// Interrupted is the error of a run stopped by the operator between
// batches.
func (p *PacedUpgrade) Interrupted() error {
	pr := p.prog
	return store.Errorf(store.EConflict, "interrupted before batch %d/%d: %d of %d agents queued; run the same command again for the rest (agents already upgrading are skipped)",
		pr.Batch+1, pr.Batches, len(pr.Queued), pr.Total)
}

// Run drives Step to the end as PacedBind.Run does.
func (p *PacedUpgrade) Run(ctx, interrupt context.Context, report func(UpgradeProgress)) (UpgradeProgress, error) {
	return runPaced(ctx, interrupt, p, report)
}

func (p *PacedUpgrade) finished() bool { return p.prog.Finished }

func (pr UpgradeProgress) state() (bool, time.Duration, error) { return pr.Finished, pr.Wait, pr.Err }
