package collector

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sync"

	"outpost/relay/wire"
)

var linesPool = sync.Pool{New: func() any { return new(wire.Lines) }}

func putLines(l *wire.Lines) {
	if cap(l.Buf) <= 4<<20 {
		linesPool.Put(l)
	}
}

func hasSeqZero(l *wire.Lines) bool {
	for _, s := range l.Seqs {
		if s == 0 {
			return true
		}
	}
	return false
}

// encodeRecords puts recs into l as the collector stores them (one
// json.Encoder line each, HTML not escaped), as wire.ScanIngest does.
func encodeRecords(l *wire.Lines, recs []wire.Record) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	ends := make([]int, len(recs))
	for i := range recs {
		if err := enc.Encode(&recs[i]); err != nil {
			return fmt.Errorf("record %d: %v", i, err)
		}
		ends[i] = buf.Len()
	}
	l.Buf, l.Ends, l.Seqs, l.Agent = buf.Bytes(), ends, l.Seqs[:0], l.Agent[:0]
	for i, r := range recs {
		l.Seqs = append(l.Seqs, r.Seq)
		l.Agent = append(l.Agent, []byte(recs[i].Agent))
	}
	return nil
}

// ingest stores recs (see ingestLines).
func (c *Collector) ingest(recs []wire.Record) (wire.IngestAck, error) {
	var l wire.Lines
	if err := encodeRecords(&l, recs); err != nil {
		return wire.IngestAck{}, fmt.Errorf("collector: encode %v", err)
	}
	return c.ingestLines(&l)
}

// ingestLines stores the records of l not seen before and returns once
// they, and any earlier write they were found duplicate of, are fsynced.
// Records are written as l holds them, never decoded again.
func (c *Collector) ingestLines(l *wire.Lines) (wire.IngestAck, error) {
	var ack wire.IngestAck
	c.mu.Lock()
	if err := c.usable(); err != nil {
		c.mu.Unlock()
		return ack, err
	}
	fresh := make([]int, 0, l.Len())
	inBatch := map[string]*seqSet{} // per agent: seqs already in this batch
	for i, agent := range l.Agent {
		seq := l.Seqs[i]
		b := inBatch[string(agent)]
		if b == nil {
			b = &seqSet{}
			inBatch[string(agent)] = b
		}
		if c.seenBytes(agent, seq) || !b.add(seq) {
			ack.Duplicates++
			continue
		}
		fresh = append(fresh, i)
	}
	data := l.Buf
	if len(fresh) != l.Len() {
		var out []byte
		for _, i := range fresh {
			start := 0
			if i > 0 {
				start = l.Ends[i-1]
			}
			out = append(out, l.Buf[start:l.Ends[i]]...)
		}
		data = out
	}
	if len(data) > 0 {
		if err := c.write(data); err != nil {
			c.mu.Unlock()
			return wire.IngestAck{}, err
		}
		for _, i := range fresh {
			c.markBytes(l.Agent[i], l.Seqs[i])
		}
		c.writeGen++
	}
	ack.Accepted = len(fresh)
	c.dups += uint64(ack.Duplicates)
	gen := c.writeGen
	c.mu.Unlock()

	if err := c.waitDurable(gen); err != nil {
		return wire.IngestAck{}, err
	}
	return ack, nil
}

func (c *Collector) seenBytes(agent []byte, seq uint64) bool {
	s := c.agents[string(agent)]
	return s != nil && s.has(seq)
}

// markBytes is mark without a string copy of a known agent.
func (c *Collector) markBytes(agent []byte, seq uint64) bool {
	if s := c.agents[string(agent)]; s != nil {
		if !s.add(seq) {
			return false
		}
		c.total++
		return true
	}
	return c.mark(string(agent), seq)
}
