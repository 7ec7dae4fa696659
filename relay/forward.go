package relay

import (
	"bytes"
	"context"
	"sync"
	"time"

	"outpost/relay/spool"
)

// forwardDepth is how many upstream batches may be in flight at once: the
// collector's fsync and the round trip of one batch overlap the next.
const forwardDepth = 4

// flight is one upstream batch: its body, the spool position of its last
// record, and done, closed once it was acknowledged (ok) or forwarding
// stopped.
type flight struct {
	body    []byte
	records int
	last    spool.Position
	done    chan struct{}
	ok      bool
}

// forwardLoop drains the spool upstream with up to forwardDepth batches
// in flight. Each batch is peeked after the previous one and retried on
// its own until acknowledged; the spool's cursor is committed in order,
// only past batches that were acknowledged together with every batch
// before them. So a crash or an upstream outage at any point loses
// nothing: what was not committed is sent again (the collector counts the
// duplicates), and batches may reach the collector out of order.
func (k *sinkSet) forwardLoop(ctx context.Context) {
	defer close(k.done)
	var (
		wg    sync.WaitGroup
		queue []*flight // in spool order
		after spool.Position
	)
	defer func() {
		wg.Wait()
		k.commitDone(&queue) // what was acknowledged before the stop
	}()
	for ctx.Err() == nil {
		k.commitDone(&queue)
		if len(queue) >= forwardDepth {
			select {
			case <-queue[0].done:
			case <-ctx.Done():
			}
			continue
		}
		entries, err := k.spool.PeekAfter(after, 500, k.batchBytes())
		if err != nil {
			k.s.log.Error("relay: spool read", "err", err)
			sleep(ctx, time.Second)
			continue
		}
		if len(entries) == 0 {
			if len(queue) > 0 {
				select { // new records are read once the oldest batch is in
				case <-queue[0].done:
				case <-ctx.Done():
				}
			} else if err := k.spool.WaitAfter(ctx, after); err != nil {
				return
			}
			continue
		}
		f := &flight{body: batchBody(entries), records: len(entries), last: entries[len(entries)-1].Pos, done: make(chan struct{})}
		if err := k.throttle(ctx, len(f.body)); err != nil {
			return
		}
		queue = append(queue, f)
		after = f.last
		wg.Add(1)
		go func() {
			defer wg.Done()
			k.send(ctx, f)
		}()
	}
}

// batchBody is the upstream request for entries: their payloads (records
// the relay encoded) joined as they are, never decoded again.
func batchBody(entries []spool.Entry) []byte {
	n := len(`{"records":[]}`)
	for _, e := range entries {
		n += len(e.Payload) + 1
	}
	var body bytes.Buffer
	body.Grow(n)
	body.WriteString(`{"records":[`)
	for i, e := range entries {
		if i > 0 {
			body.WriteByte(',')
		}
		body.Write(e.Payload)
	}
	body.WriteString("]}")
	return body.Bytes()
}

// send posts f until upstream acknowledges it or ctx ends, backing off
// after failures.
func (k *sinkSet) send(ctx context.Context, f *flight) {
	defer close(f.done)
	backoff := 100 * time.Millisecond
	for {
		err := k.post(ctx, f.body)
		if err == nil {
			f.ok = true
			return
		}
		k.s.m.upstreamErr.Add(1)
		if ctx.Err() != nil {
			return
		}
		k.s.log.Warn("relay: upstream", "err", err, "retry_in", backoff)
		sleep(ctx, backoff)
		backoff = min(backoff*2, 5*time.Second)
		if k.throttle(ctx, len(f.body)) != nil {
			return
		}
	}
}

// commitDone commits the acknowledged batches at the head of queue and
// drops them from it; it stops at the first batch still in flight.
func (k *sinkSet) commitDone(queue *[]*flight) {
	q := *queue
	var last *flight
	for len(q) > 0 {
		select {
		case <-q[0].done:
		default:
			*queue = q
			k.commit(last)
			return
		}
		if !q[0].ok {
			break // stopped before its acknowledgement
		}
		last = q[0]
		k.s.m.forwarded.Add(int64(last.records))
		k.s.m.forwardedBytes.Add(int64(len(last.body)))
		q = q[1:]
	}
	*queue = q
	k.commit(last)
}

func (k *sinkSet) commit(f *flight) {
	if f == nil {
		return
	}
	if err := k.spool.Commit(f.last); err != nil {
		k.s.log.Error("relay: spool commit", "err", err)
	}
}
