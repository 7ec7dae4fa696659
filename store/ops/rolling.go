package ops

import (
	"context"
	"fmt"
	"time"

	"outpost/relay/wire"
	"outpost/store"
)

// Rolling proxy upgrade (proxy upgrade --cluster N): the cluster's proxy
// servers are upgraded one at a time, so the others keep serving its
// agents. For each: queue the upgrade, then poll until its command is done
// and the proxy is online at the new version, then the next. The first
// one that fails or is rolled back stops the run (the rest keep their
// version), and so does one that is not online at the new version within
// the bound. Like PacedBind, Step never sleeps: Run drives it, a test
// drives it with a fake clock.

// ProxyUpgrader is what a rolling upgrade needs of the store; *store.DB
// satisfies it.
type ProxyUpgrader interface {
	ListProxies(ctx context.Context, clusterID int64) ([]store.Proxy, error)
	GetProxy(ctx context.Context, id int64) (store.Proxy, error)
	LatestRelease(ctx context.Context) (string, error)
	UpgradeProxy(ctx context.Context, id int64) (string, error)
	ForceUpgradeProxy(ctx context.Context, id int64) (string, error)
}

// Rolling upgrade defaults: how long one proxy may take from queueing to
// online at the new version (the relay's own rollback grace is 2 min),
// and how often its state is read meanwhile.
const (
	DefaultProxyUpgradeBound = 5 * time.Minute
	RollingPoll              = time.Second
)

// RollState is where one proxy stands in a rolling upgrade.
type RollState string

// States of one proxy in a rolling upgrade.
const (
	RollPending   RollState = "pending"   // not started yet
	RollUpgrading RollState = "upgrading" // queued, waiting for it to be online at the new version
	RollDone      RollState = "done"      // online at the new version
	RollSkipped   RollState = "skipped"   // Reason says why (offline, already at the release)
	RollFailed    RollState = "failed"    // Reason says why; the run stopped here
)

// RollingProxy is one proxy server of the run.
type RollingProxy struct {
	ID        int64         `json:"id"`
	Hostname  string        `json:"hostname"`
	From      string        `json:"from"`
	To        string        `json:"to,omitempty"`
	State     RollState     `json:"state"`
	Reason    string        `json:"reason,omitempty"`
	CommandID int64         `json:"command_id,omitempty"`
	Took      time.Duration `json:"-"`                      // queued to online at To
	TookSec   float64       `json:"took_seconds,omitempty"` // Took, for --json
	started   time.Time
}

// RollingProgress is where a rolling upgrade stands.
type RollingProgress struct {
	Cluster string         `json:"cluster"`
	Version string         `json:"version"` // the latest release at the start
	Proxies []RollingProxy `json:"proxies"`
	// Warning: the cluster has a single proxy server, so its agents have
	// no relay while it restarts.
	Warning string `json:"warning,omitempty"`

	Event    string        `json:"-"` // a progress line for what Step just saw, "" if nothing new
	Wait     time.Duration `json:"-"`
	Finished bool          `json:"-"`
	Err      error         `json:"-"`
}

// RollingUpgrade upgrades one cluster's proxy servers one at a time.
type RollingUpgrade struct {
	db    ProxyUpgrader
	clock store.Clock
	force bool
	bound time.Duration
	cur   int // index of the proxy under way or next
	next  time.Time
	prog  RollingProgress
}

// NewRollingUpgrade reads the cluster's proxies and the latest release
// and plans the run: online proxies older than the release (all online
// ones with force) in id order; the others are skipped with the reason.
// bound <= 0 means DefaultProxyUpgradeBound.
func NewRollingUpgrade(ctx context.Context, db ProxyUpgrader, c store.Cluster, force bool, bound time.Duration, clock store.Clock) (*RollingUpgrade, error) {
	if bound <= 0 {
		bound = DefaultProxyUpgradeBound
	}
	latest, err := db.LatestRelease(ctx)
	if err != nil {
		return nil, err
	}
	if latest == "" {
		return nil, store.Errorf(store.EConflict, "no release is published: publish one with 'outpost release add VERSION --file PATH --key FILE'")
	}
	ps, err := db.ListProxies(ctx, c.ID)
	if err != nil {
		return nil, err
	}
	if len(ps) == 0 {
		return nil, store.Errorf(store.EConflict, "cluster %q has no proxy server to upgrade", c.Name)
	}
	r := &RollingUpgrade{db: db, clock: clock, force: force, bound: bound}
	r.prog = RollingProgress{Cluster: c.Name, Version: latest}
	if len(ps) == 1 {
		r.prog.Warning = fmt.Sprintf("cluster %q has a single proxy server: its agents have no relay while it restarts (deploy a second one to upgrade without a gap)", c.Name)
	}
	for _, p := range ps {
		rp := RollingProxy{ID: p.ID, Hostname: p.Hostname, From: p.Version, State: RollPending}
		cmp := store.CompareVersions(p.Version, latest)
		switch {
		case p.Status != store.StatusOnline:
			rp.State, rp.Reason = RollSkipped, "offline: it cannot receive the upgrade"
		case force:
		case cmp == 0:
			rp.State, rp.Reason = RollSkipped, "already runs "+latest
		case cmp > 0:
			rp.State, rp.Reason = RollSkipped, fmt.Sprintf("runs %s, newer than %s (--force downgrades)", p.Version, latest)
		}
		r.prog.Proxies = append(r.prog.Proxies, rp)
	}
	r.skipToPending()
	return r, nil
}

// skipToPending moves cur to the next pending proxy, finishing the run
// when there is none.
func (r *RollingUpgrade) skipToPending() {
	for r.cur < len(r.prog.Proxies) && r.prog.Proxies[r.cur].State != RollPending {
		r.cur++
	}
	if r.cur == len(r.prog.Proxies) {
		r.prog.Finished = true
	}
}

// Progress is where the run stands, without doing anything.
func (r *RollingUpgrade) Progress() RollingProgress {
	pr := r.prog
	pr.Proxies = append([]RollingProxy(nil), r.prog.Proxies...)
	pr.Event = ""
	if !pr.Finished {
		pr.Wait = max(r.next.Sub(r.clock.Now()), 0)
	}
	return pr
}

// Step queues the next proxy's upgrade, or reads how the one under way
// stands, when its time has come; otherwise it returns the wait.
func (r *RollingUpgrade) Step(ctx context.Context) RollingProgress {
	if r.prog.Finished || r.next.Sub(r.clock.Now()) > 0 {
		return r.Progress()
	}
	p := &r.prog.Proxies[r.cur]
	if p.State == RollPending {
		return r.start(ctx, p)
	}
	return r.check(ctx, p)
}

func (r *RollingUpgrade) start(ctx context.Context, p *RollingProxy) RollingProgress {
	upgrade := r.db.UpgradeProxy
	if r.force {
		upgrade = r.db.ForceUpgradeProxy
	}
	to, err := upgrade(ctx, p.ID)
	if err != nil {
		return r.fail(p, store.ErrorMessage(err))
	}
	p.To, p.State, p.started = to, RollUpgrading, r.clock.Now()
	if px, err := r.db.GetProxy(ctx, p.ID); err == nil {
		if c, ok := px.UpgradeCommand(); ok {
			p.CommandID = c.ID
		}
	}
	r.next = r.clock.Now().Add(RollingPoll)
	pr := r.Progress()
	pr.Event = fmt.Sprintf("proxy server %d (%s): upgrade %s -> %s queued (%d/%d)", p.ID, p.Hostname, p.From, to, r.position(), r.todo())
	return pr
}

func (r *RollingUpgrade) check(ctx context.Context, p *RollingProxy) RollingProgress {
	px, err := r.db.GetProxy(ctx, p.ID)
	if err != nil {
		return r.fail(p, store.ErrorMessage(err))
	}
	c, ok := px.UpgradeCommand()
	if ok && p.CommandID == 0 {
		p.CommandID = c.ID
	}
	took := r.clock.Now().Sub(p.started)
	switch {
	case ok && (c.State == wire.StateFailed || c.State == wire.StateRolledBack):
		return r.fail(p, fmt.Sprintf("upgrade to %s %s (command %d)", p.To, c.Describe(), c.ID))
	case ok && c.State == wire.StateDone && px.Status == store.StatusOnline && store.CompareVersions(px.Version, p.To) == 0:
		p.State, p.Took, p.TookSec = RollDone, took, took.Seconds()
		r.cur++
		r.skipToPending()
		r.next = r.clock.Now()
		pr := r.Progress()
		pr.Event = fmt.Sprintf("proxy server %d (%s): online at %s after %s", p.ID, p.Hostname, p.To, took.Round(time.Second))
		return pr
	case took >= r.bound:
		state := "no upgrade command"
		if ok {
			state = fmt.Sprintf("command %d %s", c.ID, c.Describe())
		}
		return r.fail(p, fmt.Sprintf("not online at %s within %s (%s; the proxy is %s at %s)", p.To, r.bound, state, px.Status, orDash(px.Version)))
	}
	r.next = r.clock.Now().Add(RollingPoll)
	return r.Progress()
}

// fail ends the run at proxy p with reason.
func (r *RollingUpgrade) fail(p *RollingProxy, reason string) RollingProgress {
	p.State, p.Reason = RollFailed, reason
	r.prog.Finished = true
	done := 0
	for _, q := range r.prog.Proxies {
		if q.State == RollDone {
			done++
		}
	}
	r.prog.Err = store.Errorf(store.EConflict, "proxy server %d (%s): %s; stopped there: %d of %d upgraded before it, the rest keep their version",
		p.ID, p.Hostname, reason, done, r.todo())
	pr := r.Progress()
	pr.Event = fmt.Sprintf("proxy server %d (%s): %s", p.ID, p.Hostname, reason)
	return pr
}

// position is the 1-based number of the current proxy among those to upgrade.
func (r *RollingUpgrade) position() int {
	n := 0
	for i, q := range r.prog.Proxies {
		if q.State != RollSkipped && i <= r.cur {
			n++
		}
	}
	return n
}

// todo counts the proxies to upgrade (not skipped).
func (r *RollingUpgrade) todo() int {
	n := 0
	for _, q := range r.prog.Proxies {
		if q.State != RollSkipped {
			n++
		}
	}
	return n
}

// Interrupted is the error of a run the operator stopped.
func (r *RollingUpgrade) Interrupted() error {
	if r.cur < len(r.prog.Proxies) {
		if p := r.prog.Proxies[r.cur]; p.State == RollUpgrading {
			return store.Errorf(store.EConflict, "interrupted while proxy server %d (%s) upgrades to %s (command %d; follow it: outpost proxy show %d); the rest were not queued",
				p.ID, p.Hostname, p.To, p.CommandID, p.ID)
		}
	}
	return store.Errorf(store.EConflict, "interrupted: the proxy servers not upgraded yet keep their version")
}

// Run drives Step to the end, sleeping in between (report gets every
// progress that has an Event). interrupt stops it between steps.
func (r *RollingUpgrade) Run(ctx, interrupt context.Context, report func(RollingProgress)) (RollingProgress, error) {
	for {
		if interrupt.Err() != nil && !r.prog.Finished {
			return r.Progress(), r.Interrupted()
		}
		pr := r.Step(ctx)
		if report != nil && pr.Event != "" {
			report(pr)
		}
		if pr.Finished {
			return pr, pr.Err
		}
		if pr.Wait <= 0 {
			continue
		}
		timer := time.NewTimer(pr.Wait)
		select {
		case <-timer.C:
		case <-interrupt.Done():
		}
		timer.Stop()
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
