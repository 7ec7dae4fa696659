package relay

import (
	"bytes"
	"context"
	"encoding/binary"
	"sync"
	"time"

	"outpost/relay/spool"
	"outpost/relay/wire"
)

// forwardDepth is how many upstream batches may be in flight at once: the
// collector's fsync and the round trip of one batch overlap the next.
const forwardDepth = 4

// forwardBatch is the most records in one upstream batch (batchBytes caps
// its size too). Each batch costs a request, a collector fsync and a
// cursor commit: in make perf, 2,000 instead of 500 took sustained
// forwarding from about 255k to 360k events/s and kept the spool from
// growing at all.
const forwardBatch = 2000

// flight is one upstream batch: its body, the spool position of its last
// record, and done, closed once it was acknowledged (ok) or forwarding
// stopped.
type flight struct {
	body    []byte
	framed  bool // body is wire.ContentTypeRecords
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
		entries, err := k.spool.PeekAfter(after, forwardBatch, k.batchBytes())
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
		f := &flight{records: len(entries), last: entries[len(entries)-1].Pos, done: make(chan struct{})}
		f.body, f.framed = k.batchBody(entries)
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
// the relay encoded) framed (wire.ContentTypeRecords) or, for an upstream
// that refused frames, joined into a JSON batch; never decoded again.
func (k *sinkSet) batchBody(entries []spool.Entry) (body []byte, framed bool) {
	if !k.framed.Load() {
		return jsonBody(entries), false
	}
	n := 0
	for _, e := range entries {
		n += len(e.Payload) + binary.MaxVarintLen32 + 4
	}
	body = make([]byte, 0, n)
	for _, e := range entries {
		body = wire.AppendRecordFrame(body, e.Payload)
	}
	return body, true
}

// jsonBody joins entries into an IngestBatch.
func jsonBody(entries []spool.Entry) []byte {
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
		err := k.post(ctx, f.body, f.framed)
		k.lag.upstream(err == nil)
		if err == nil {
			f.ok = true
			return
		}
		if f.framed && refusesFrames(err) {
			// An upstream that does not take record frames: JSON from now on.
			if k.framed.Swap(false) {
				k.s.log.Warn("relay: upstream refused record frames: sending JSON batches", "err", err)
			}
			f.body, _ = framesToJSON(f.body) // frames built here: always whole
			f.framed = false
			continue
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
	k.lag.committed()
}

// framesToJSON turns record frames into an IngestBatch holding the same
// records, or says which frame is damaged.
func framesToJSON(body []byte) ([]byte, error) {
	var entries []spool.Entry
	err := wire.EachRecordFrame(body, func(rec []byte) error {
		entries = append(entries, spool.Entry{Payload: rec})
		return nil
	})
	if err != nil {
		return nil, err
	}
	return jsonBody(entries), nil
}
