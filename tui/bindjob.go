package tui

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"

	"outpost/store"
	"outpost/store/ops"
)

// A paced bind runs in the background of the whole dashboard, not of the
// view that started it: its progress is drawn on the crumb line by the
// root (so it survives switching views) and ctrl+x stops it between
// batches. The pacing is ops.PacedBind, the one `agent bind --file` uses;
// the store enforces 500 hosts per batch and the bind gap on its own.

// Jobs holds the dashboard's background work (one paced bind at a time).
type Jobs struct {
	// After delivers msg after d (tea.Tick); tests replace it to drive
	// the pacing with a fake clock.
	After func(d time.Duration, msg tea.Msg) tea.Cmd

	bind *bindJob
	seq  int
}

func newJobs() *Jobs {
	return &Jobs{After: func(d time.Duration, msg tea.Msg) tea.Cmd {
		return tea.Tick(d, func(time.Time) tea.Msg { return msg })
	}}
}

// bindJob is one paced bind. pace is only touched inside the step
// commands, which run one after the other; Update reads prog.
type bindJob struct {
	id       int
	cluster  store.Cluster
	pace     *ops.PacedBind
	prog     ops.BindProgress
	stopping bool
}

// Messages of the bind job (handled by the root, whatever the view).
type (
	bindStartMsg struct {
		cluster store.Cluster
		ids     []string
	}
	bindStepMsg struct {
		job  int
		prog ops.BindProgress
	}
	bindTickMsg struct{ job int }
	bindStopMsg struct{ job int }
)

// cancelKey stops a running bind (after a confirmation).
var cancelKey = key.NewBinding(key.WithKeys("ctrl+x"), key.WithHelp("ctrl+x", "stop the bind"))

// Binding reports whether a paced bind is running.
func (j *Jobs) Binding() bool { return j.bind != nil }

// BindProgress is the running bind's progress (zero when none).
func (j *Jobs) BindProgress() ops.BindProgress {
	if j.bind == nil {
		return ops.BindProgress{}
	}
	return j.bind.prog
}

// startBind begins binding ids to cl in paced batches.
func startBind(c *Common, m bindStartMsg) tea.Cmd {
	j := c.Jobs
	if cmd := readOnly(c); cmd != nil {
		return cmd
	}
	if j.bind != nil {
		return FlashError(store.Errorf(store.EConflict, "a bind to %s is already running: wait for it or stop it (ctrl+x)", j.bind.cluster.Name))
	}
	j.seq++
	gap := c.Backend.Settings().BindBatchGap
	b := &bindJob{id: j.seq, cluster: m.cluster,
		pace: ops.NewPacedBind(c.Backend, m.cluster, ops.BindBatches(m.ids), gap, c.Clock)}
	b.prog = b.pace.Progress()
	j.bind = b
	return stepBind(c, b)
}

func stepBind(c *Common, b *bindJob) tea.Cmd {
	return c.Call(func(ctx context.Context, _ Backend) tea.Msg {
		return bindStepMsg{job: b.id, prog: b.pace.Step(ctx)}
	})
}

// updateJobs handles the job messages; ok is false for any other message.
func updateJobs(c *Common, msg tea.Msg) (tea.Cmd, bool) {
	j := c.Jobs
	switch msg := msg.(type) {
	case bindStartMsg:
		return startBind(c, msg), true
	case bindStopMsg:
		if b := j.bind; b != nil && b.id == msg.job {
			b.stopping = true
		}
		return nil, true
	case bindTickMsg:
		b := j.bind
		if b == nil || b.id != msg.job {
			return nil, true
		}
		if b.stopping {
			return finishBind(c, b), true
		}
		return stepBind(c, b), true
	case bindStepMsg:
		b := j.bind
		if b == nil || b.id != msg.job {
			return nil, true
		}
		b.prog = msg.prog
		var cmds []tea.Cmd
		if msg.prog.Last != nil {
			cmds = append(cmds, RefreshNow())
		}
		switch {
		case msg.prog.Finished || b.stopping:
			cmds = append(cmds, finishBind(c, b))
		case msg.prog.Wait > 0:
			// Redraw the countdown every second; Step binds once the
			// wait is over (and waits the store's RetryAfter if told to).
			cmds = append(cmds, j.After(min(msg.prog.Wait, time.Second), bindTickMsg{job: b.id}))
		default:
			cmds = append(cmds, stepBind(c, b))
		}
		return tea.Batch(cmds...), true
	}
	return nil, false
}

// finishBind ends the job and says how it went.
func finishBind(c *Common, b *bindJob) tea.Cmd {
	c.Jobs.bind = nil
	p := b.prog
	summary := fmt.Sprintf("%d of %d agent(s) bound to cluster %s in %d batch(es)", p.Bound, p.Total, b.cluster.Name, p.Batch)
	if p.Already > 0 {
		summary += fmt.Sprintf(" (%d were bound already)", p.Already)
	}
	switch {
	case p.Err != nil:
		return tea.Batch(FlashError(p.Err), RefreshNow())
	case !p.Finished:
		return tea.Batch(Flash(fmt.Sprintf("bind stopped before batch %d/%d: %s; the others stay as they are", p.Batch+1, p.Batches, summary)), RefreshNow())
	}
	return tea.Batch(Flash(summary+": they connect through its proxy servers from their next check-in"), RefreshNow())
}

// stopBindConfirm asks before stopping the running bind.
func stopBindConfirm(c *Common) tea.Cmd {
	b := c.Jobs.bind
	if b == nil {
		return nil
	}
	p := b.prog
	body := fmt.Sprintf("%d of %d agent(s) are bound to %s so far (batch %d of %d). Stopping keeps them bound; the rest stay as they are. A batch under way completes.",
		p.Done, p.Total, Clean(b.cluster.Name), p.Batch, p.Batches)
	return OpenDialog(NewChoice(c, "Stop the bind to "+Clean(b.cluster.Name)+"?", body,
		Button{Label: "Keep binding"}, Button{Label: "Stop binding", Cmd: func() tea.Msg { return bindStopMsg{job: b.id} }}))
}

// quitBindConfirm asks before quitting while a bind runs (it would stop
// between batches, like ctrl+x). ctrl+c still quits at once.
func quitBindConfirm(c *Common) tea.Cmd {
	b := c.Jobs.bind
	p := b.prog
	body := fmt.Sprintf("The bind to %s has bound %d of %d agent(s). Quitting stops it; the rest stay as they are (bind them again later).",
		Clean(b.cluster.Name), p.Done, p.Total)
	return OpenDialog(NewChoice(c, "Quit while a bind runs?", body, Button{Label: "Keep the dashboard"}, Button{Label: "Quit", Cmd: tea.Quit}))
}

// bindLine is the progress shown on the crumb line ("" when no bind
// runs), compact enough for 80 columns:
// "bind gz 500/1200 [####......] batch 2/3, next in 42s · ctrl+x stop".
func bindLine(c *Common) string {
	b := c.Jobs.bind
	if b == nil {
		return ""
	}
	p := b.prog
	const w = 10
	fill := 0
	if p.Total > 0 {
		fill = min(w, p.Done*w/p.Total)
	}
	line := fmt.Sprintf("bind %s %d/%d [%s%s] batch %d/%d", Clean(b.cluster.Name), p.Done, p.Total,
		strings.Repeat("#", fill), strings.Repeat(".", w-fill), min(p.Batch+1, p.Batches), p.Batches)
	switch {
	case b.stopping:
		return line + ", stopping"
	case p.Wait > 0:
		line += fmt.Sprintf(", next in %ds", max(1, int(p.Wait.Round(time.Second)/time.Second)))
	default:
		line += ", binding"
	}
	return line + " · ctrl+x stop"
}
