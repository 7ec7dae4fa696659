// RunSim's end-of-run Report: its figures, the problems that fail a run,
// the loss check against the collector and the latency percentiles.

package agentsim

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"time"

	"outpost/relay/wire"
)

// Percentiles summarise a latency distribution in milliseconds.
type Percentiles struct {
	N   int64   `json:"n"`
	P50 float64 `json:"p50_ms"`
	P90 float64 `json:"p90_ms"`
	P99 float64 `json:"p99_ms"`
	Max float64 `json:"max_ms"`
}

// Report is the end-of-run summary (also printed as JSON with --json).
type Report struct {
	Agents        int   `json:"agents"`
	Enrolled      int64 `json:"enrolled"`
	EnrolFailures int64 `json:"enrol_failures"`
	MaxConnected  int64 `json:"max_connected"`
	Checkins      int64 `json:"checkins"`
	CheckinErrors int64 `json:"checkin_errors"`
	Commands      int64 `json:"commands"`
	EventsSent    int64 `json:"events_sent"`
	EventsAcked   int64 `json:"events_acked"`
	Unacked       int64 `json:"events_unacked"`
	Throttled     int64 `json:"throttled_429"`
	SendErrors    int64 `json:"send_errors"`
	// Received, Lost and Duplicates come from the collector's counts: nil
	// (null) when no collector was asked, so nothing was checked.
	Received       *int64      `json:"received_by_collector"`
	Lost           *int64      `json:"lost"`
	Duplicates     *int64      `json:"duplicates"`
	EnrolLatency   Percentiles `json:"enrol_latency"`
	CheckinLatency Percentiles `json:"checkin_latency"`
	EventLatency   Percentiles `json:"event_latency"`
	Elapsed        string      `json:"elapsed"`
	Churned        int         `json:"churned"`
	Returns        int64       `json:"churn_returns"`         // times a churned agent came back
	AgentsFailed   int64       `json:"agents_failed"`         // ended by a refusal before the run did
	FirstError     string      `json:"first_error,omitempty"` // the first such refusal
	// FailedBy counts the failed agents by reason ("refused: install key
	// not recognised", "no relay usable: refused: needs TLS", ...).
	FailedBy map[string]int64 `json:"agents_failed_by_reason,omitempty"`
	// Problems are why the run failed (the command exits 1): acknowledged
	// events lost, agents failed for good, events left unacknowledged.
	Problems []string `json:"problems,omitempty"`
}

// problems lists what makes the run a failure, each with its count.
func (r Report) problems() []string {
	var out []string
	if r.Lost != nil && *r.Lost > 0 {
		out = append(out, fmt.Sprintf("%d acknowledged events did not reach the collector", *r.Lost))
	}
	if r.AgentsFailed > 0 {
		reasons := make([]string, 0, len(r.FailedBy))
		for why, n := range r.FailedBy {
			reasons = append(reasons, fmt.Sprintf("%d %s", n, why))
		}
		sort.Strings(reasons)
		out = append(out, fmt.Sprintf("%d agents failed for good (%s)", r.AgentsFailed, strings.Join(reasons, "; ")))
	}
	if r.Unacked > 0 {
		out = append(out, fmt.Sprintf("%d events still unacknowledged at the end", r.Unacked))
	}
	return out
}

// String renders the report as a table.
func (r Report) String() string {
	var b strings.Builder
	row := func(k string, v any) { fmt.Fprintf(&b, "%-24s %v\n", k, v) }
	row("agents", r.Agents)
	row("enrolled", r.Enrolled)
	row("enrol failures", r.EnrolFailures)
	row("max connected", r.MaxConnected)
	row("check-ins", r.Checkins)
	row("check-in errors", r.CheckinErrors)
	row("commands", r.Commands)
	row("churned", fmt.Sprintf("%d (came back %d times)", r.Churned, r.Returns))
	row("agents failed", r.AgentsFailed)
	reasons := make([]string, 0, len(r.FailedBy))
	for why := range r.FailedBy {
		reasons = append(reasons, why)
	}
	sort.Strings(reasons)
	for _, why := range reasons {
		row("", fmt.Sprintf("%d %s", r.FailedBy[why], why))
	}
	row("events sent", r.EventsSent)
	row("events acknowledged", r.EventsAcked)
	row("events unacknowledged", r.Unacked)
	row("429 answers", r.Throttled)
	row("send errors", r.SendErrors)
	checked := func(v *int64) any {
		if v == nil {
			return "not checked (no --collector)"
		}
		return *v
	}
	row("received by collector", checked(r.Received))
	row("lost", checked(r.Lost))
	row("duplicates", checked(r.Duplicates))
	p := func(x Percentiles) string {
		return fmt.Sprintf("p50 %.1f ms  p90 %.1f ms  p99 %.1f ms  max %.1f ms  (n=%d)", x.P50, x.P90, x.P99, x.Max, x.N)
	}
	row("enrol latency", p(r.EnrolLatency))
	row("check-in latency", p(r.CheckinLatency))
	row("event ack latency", p(r.EventLatency))
	row("elapsed", r.Elapsed)
	for _, p := range r.Problems {
		row("FAILED", p)
	}
	return b.String()
}

// lossCheck compares what each agent had acknowledged with what the
// collector received; sequence numbers are contiguous per agent, so the
// collector's distinct count must reach the agent's last sequence.
func lossCheck(ctx context.Context, cfg SimConfig, agents []*Agent, rep *Report) error {
	want := map[string]uint64{}
	for _, a := range agents {
		id, ok, _ := a.Identity.Load()
		if !ok {
			continue
		}
		mb := a.Buffer.(interface{ acked() uint64 })
		if n := mb.acked(); n > 0 {
			want[id.AgentID] = n
		}
	}
	deadline := time.Now().Add(cfg.DrainTimeout)
	for {
		st, err := fetchStats(ctx, cfg)
		if err != nil {
			return fmt.Errorf("collector stats: %w", err)
		}
		var lost, received int64
		for id, n := range want {
			got := st.Received[id]
			received += int64(min(got, n))
			if got < n {
				lost += int64(n - got)
			}
		}
		dups := int64(st.Duplicates)
		rep.Received, rep.Lost, rep.Duplicates = &received, &lost, &dups
		if lost == 0 || time.Now().After(deadline) || ctx.Err() != nil {
			return nil
		}
		sleepCtx(ctx, 500*time.Millisecond)
	}
}

func fetchStats(ctx context.Context, cfg SimConfig) (wire.CollectorStats, error) {
	var st wire.CollectorStats
	u := strings.TrimRight(cfg.CollectorURL, "/")
	if !strings.HasSuffix(u, wire.PathCollStats) {
		u += wire.PathCollStats
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return st, err
	}
	if cfg.CollectorToken != "" {
		req.Header.Set("Authorization", wire.Bearer(cfg.CollectorToken))
	}
	c := &http.Client{Timeout: 30 * time.Second, Transport: wire.PinTransport(&http.Transport{}, cfg.CASHA256)}
	resp, err := c.Do(req)
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return st, fmt.Errorf("%s: %s", resp.Status, b)
	}
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

// acked is the highest sequence the agent generated and no longer holds:
// everything up to it was acknowledged by a relay.
func (b *MemBuffer) acked() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.recs) > 0 {
		return b.recs[0].Seq - 1
	}
	return b.next
}

func (s *Samples) percentiles() Percentiles {
	s.mu.Lock()
	d := append([]time.Duration(nil), s.d...)
	n := s.n
	s.mu.Unlock()
	if len(d) == 0 {
		return Percentiles{}
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	at := func(q float64) float64 {
		return float64(d[min(int(q*float64(len(d))), len(d)-1)]) / float64(time.Millisecond)
	}
	return Percentiles{N: n, P50: at(0.50), P90: at(0.90), P99: at(0.99), Max: at(1)}
}
