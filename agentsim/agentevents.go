// Events: generated on EventEvery into the buffer, sent in batches, and
// left in the buffer until a relay acknowledged them.

package agentsim

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"sync"
	"time"

	"outpost/relay/wire"
)

func (a *Agent) generate(ctx context.Context) {
	t := time.NewTicker(a.EventEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		seq := a.Buffer.NextSeq()
		var data json.RawMessage
		if a.EventData != nil {
			data = a.EventData(seq)
		}
		if err := a.Buffer.Add(wire.Record{Seq: seq, Time: time.Now().UTC(), Type: "event", Data: data}); err != nil {
			a.log.Error("agent: buffer", "err", err)
			continue
		}
		a.Stats.EventsGenerated.Add(1)
		select {
		case a.kick <- struct{}{}:
		default:
		}
	}
}

// send delivers buffered events; only acknowledged ones leave the buffer,
// so a relay restart or a 429 loses nothing.
func (a *Agent) send(ctx context.Context) {
	backoff := 500 * time.Millisecond
	for ctx.Err() == nil {
		if !a.cloneWait(ctx) {
			return
		}
		recs := a.nextBatch()
		if len(recs) == 0 {
			var retry <-chan time.Time // nil: never fires
			if len(a.refused) > 0 {
				retry = time.After(time.Until(a.refusedAt.Add(refusedRetry)))
			}
			select {
			case <-ctx.Done():
				return
			case <-a.kick:
			case <-retry:
			}
			continue
		}
		start := time.Now()
		// A post under way when the agent stops gets a few seconds to
		// finish: cancelling it after the relay stored the batch would only
		// make the next run send it again.
		sctx, cancel := withGrace(ctx, 5*time.Second)
		acked, err := a.Client.SendEvents(sctx, recs)
		cancel()
		if err == nil {
			a.Stats.EventLatency.Add(time.Since(start))
			a.Stats.EventsAcked.Add(int64(len(acked)))
			a.Buffer.Ack(acked)
			backoff = 500 * time.Millisecond
			a.singleLeft = max(a.singleLeft-1, 0)
			if a.Linger > 0 && !sleepCtx(ctx, a.Linger) {
				return
			}
			continue
		}
		if ctx.Err() != nil {
			return
		}
		wait, now := a.sendFailed(err, recs, &backoff)
		if now {
			continue
		}
		if !sleepCtx(ctx, wait) {
			return
		}
	}
}

// nextBatch is the next records to send, without those a relay refused
// (sent again after refusedRetry); one at a time while singleLeft looks
// for a refused record.
func (a *Agent) nextBatch() []wire.Record {
	if len(a.refused) > 0 && time.Since(a.refusedAt) > refusedRetry {
		a.refused = nil
	}
	n := a.batch()
	if a.singleLeft > 0 {
		n = 1
	}
	recs, err := a.Buffer.Peek(n + len(a.refused))
	if err != nil {
		a.log.Error("agent: buffer", "err", err)
	}
	if len(a.refused) > 0 {
		recs = slices.DeleteFunc(recs, func(r wire.Record) bool { return a.refused[r.Seq] })
	}
	return recs[:min(n, len(recs))]
}

// sendFailed counts a failed post of recs and returns the wait before the
// next one; now when the next goes at once (a batch the relay refused as
// too large is sent again a record at a time to find the one it refuses).
func (a *Agent) sendFailed(err error, recs []wire.Record, backoff *time.Duration) (wait time.Duration, now bool) {
	wait = jitter(*backoff)
	var se *StatusError
	var nr *NoRelayError
	switch {
	case !errors.As(err, &nr) && errors.As(err, &se) && se.Status == http.StatusRequestEntityTooLarge:
		// Never stored as sent: find the record, keep it, send the rest.
		a.Stats.SendErrors.Add(1)
		if len(recs) > 1 {
			a.singleLeft = len(recs)
			return 0, true
		}
		if len(a.refused) == 0 {
			a.refused, a.refusedAt = map[uint64]bool{}, time.Now()
		}
		a.refused[recs[0].Seq] = true
		a.singleLeft = max(a.singleLeft-1, 0)
		a.log.Warn("agent: relay refused event: keeping it and sending the others", "seq", recs[0].Seq, "reason", se.Message)
		return 0, true
	case !errors.As(err, &nr) && errors.As(err, &se) && se.Status == http.StatusTooManyRequests:
		a.Stats.Throttled.Add(1)
		wait = jitter(max(se.RetryAfter, 200*time.Millisecond))
	case nr != nil && nr.Unreachable():
		a.Stats.SendErrors.Add(1)
		wait = spread(max(*backoff, reconnectSpread)) // no relay answered: see checkinLoop
		*backoff = min(max(*backoff, reconnectSpread)*2, time.Minute)
	default:
		a.Stats.SendErrors.Add(1)
		*backoff = min(*backoff*2, 10*time.Second)
	}
	return wait, false
}

// Drain sends what is buffered until empty or ctx ends (end of a run).
func (a *Agent) Drain(ctx context.Context) {
	if a.Stats == nil {
		a.Stats = &Stats{}
	}
	for a.Buffer.Len() > 0 && ctx.Err() == nil {
		recs, _ := a.Buffer.Peek(a.batch())
		acked, err := a.Client.SendEvents(ctx, recs)
		if err != nil {
			var se *StatusError
			wait := 500 * time.Millisecond
			if errors.As(err, &se) && se.RetryAfter > 0 {
				wait = se.RetryAfter
			}
			sleepCtx(ctx, jitter(wait))
			continue
		}
		a.Stats.EventsAcked.Add(int64(len(acked)))
		a.Buffer.Ack(acked)
	}
}

// withGrace returns a context that ends grace after ctx does.
func withGrace(ctx context.Context, grace time.Duration) (context.Context, context.CancelFunc) {
	g, cancel := context.WithCancel(context.WithoutCancel(ctx))
	var t *time.Timer
	var mu sync.Mutex
	stop := context.AfterFunc(ctx, func() {
		mu.Lock()
		t = time.AfterFunc(grace, cancel)
		mu.Unlock()
	})
	return g, func() {
		stop()
		mu.Lock()
		if t != nil {
			t.Stop()
		}
		mu.Unlock()
		cancel()
	}
}
