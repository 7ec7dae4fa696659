// The events the reference agent has not delivered yet (DiskBuffer), kept
// on disk so that a restart, a crash or a relay that is down for hours
// loses nothing and never reuses an event sequence number.

package agentsim

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"outpost/relay/wire"
)

// Files of a DiskBuffer directory.
const (
	bufLogFile   = "events.log" // NDJSON, one wire.Record per line, append-only between compactions
	bufStateFile = "state.json" // what was acknowledged, replaced atomically
	bufSeqFile   = "seq"        // the last sequence number issued, rewritten in place
)

// DiskBufferOptions tune a DiskBuffer; the zero value is the default.
type DiskBufferOptions struct {
	// CompactBytes: the log is rewritten without its acknowledged records
	// once they take more than this many bytes (default 1 MiB).
	CompactBytes int64
	// MaxRecords bounds the undelivered records kept (default 1,000,000,
	// about 11 days of one event a second). Past it the oldest are dropped
	// and counted in Dropped: a cap on the disk an agent that never reaches
	// a relay may use.
	MaxRecords int
}

// DiskBuffer is an EventBuffer on disk that survives restarts and
// crashes. Add appends the record as one NDJSON line to events.log and
// fsyncs before returning (concurrent Adds share one fsync). Ack records
// what was delivered in state.json: every sequence number up to
// "acked_through", plus the few acknowledged out of order above it. When
// the acknowledged records in the log exceed CompactBytes the log is
// rewritten with only the undelivered ones (temp file, fsync, rename).
//
// Sequence numbers are never reused: NextSeq writes the number it issues
// to the seq file, and Open resumes after the highest of that file, the
// state and the log. A torn last line (a crash in the middle of a write)
// is cut off on Open; a damaged line elsewhere is skipped.
//
// Records must be added in increasing Seq order, as Agent does.
type DiskBuffer struct {
	dir string
	opt DiskBufferOptions

	syncMu sync.Mutex // held while syncing or replacing the log; taken before mu
	synced uint64     // generation made durable

	mu       sync.Mutex
	log      *os.File
	seqf     *os.File
	logSize  int64
	pending  []diskRec // undelivered, in log (= Seq) order
	pendSize int64
	through  uint64          // every seq <= through is acknowledged
	above    map[uint64]bool // acknowledged seqs > through still in the log
	maxAdded uint64
	last     uint64 // last seq issued
	gen      uint64 // generation of the last write
	dropped  int64
	skipped  int
	err      error // sticky write error of the log
	closed   bool
}

type diskRec struct {
	rec  wire.Record
	size int64
}

type diskState struct {
	AckedThrough uint64   `json:"acked_through"`
	Acked        []uint64 `json:"acked,omitempty"`
	LastSeq      uint64   `json:"last_seq"`
}

// Dir is the buffer's directory.
func (b *DiskBuffer) Dir() string { return b.dir }

// Add implements EventBuffer: the record is on disk (fsynced) when Add
// returns nil.
func (b *DiskBuffer) Add(r wire.Record) error {
	if r.Seq == 0 {
		return errors.New("agentsim: buffer: sequence numbers start at 1")
	}
	line, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("agentsim: buffer: %w", err)
	}
	line = append(line, '\n')
	b.mu.Lock()
	switch {
	case b.closed:
		b.mu.Unlock()
		return errors.New("agentsim: buffer closed")
	case b.err != nil:
		err := b.err
		b.mu.Unlock()
		return err
	case r.Seq <= b.maxAdded:
		b.mu.Unlock()
		return fmt.Errorf("agentsim: buffer: seq %d added after %d: records must be added in order", r.Seq, b.maxAdded)
	}
	if n, err := b.log.Write(line); err != nil {
		// Cut a partial line so the log stays parseable.
		if n > 0 {
			if terr := b.log.Truncate(b.logSize); terr != nil {
				b.err = fmt.Errorf("agentsim: buffer: log damaged: %w", terr)
			}
		}
		b.mu.Unlock()
		return fmt.Errorf("agentsim: buffer: %w", err)
	}
	size := int64(len(line))
	b.logSize += size
	b.pending = append(b.pending, diskRec{rec: r, size: size})
	b.pendSize += size
	b.maxAdded = r.Seq
	b.last = max(b.last, r.Seq)
	b.gen++
	my := b.gen
	var drop []uint64
	if over := len(b.pending) - b.opt.MaxRecords; over > 0 {
		for _, p := range b.pending[:over] {
			drop = append(drop, p.rec.Seq)
		}
		b.dropped += int64(over)
	}
	b.mu.Unlock()
	if err := b.syncTo(my); err != nil {
		return err
	}
	if len(drop) > 0 {
		return b.Ack(drop)
	}
	return nil
}

// syncTo makes every write up to generation gen durable; writers that
// arrive while a sync runs share the next one.
func (b *DiskBuffer) syncTo(gen uint64) error {
	b.syncMu.Lock()
	defer b.syncMu.Unlock()
	if b.synced >= gen {
		return nil
	}
	b.mu.Lock()
	target, log, seqf := b.gen, b.log, b.seqf
	b.mu.Unlock()
	if err := log.Sync(); err != nil {
		return fmt.Errorf("agentsim: buffer: sync: %w", err)
	}
	seqf.Sync()
	b.synced = target
	return nil
}

// Peek implements EventBuffer: the oldest undelivered records.
func (b *DiskBuffer) Peek(n int) ([]wire.Record, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n = min(n, len(b.pending))
	out := make([]wire.Record, n)
	for i := range out {
		out[i] = b.pending[i].rec
	}
	return out, nil
}

// Ack implements EventBuffer: the records are delivered; the state file is
// replaced before Ack returns, and the log compacted when due.
func (b *DiskBuffer) Ack(seqs []uint64) error {
	if len(seqs) == 0 {
		return nil
	}
	done := make(map[uint64]bool, len(seqs))
	for _, s := range seqs {
		done[s] = true
	}
	b.syncMu.Lock()
	defer b.syncMu.Unlock()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return errors.New("agentsim: buffer closed")
	}
	kept := b.pending[:0]
	removed := 0
	for _, p := range b.pending {
		if done[p.rec.Seq] {
			b.pendSize -= p.size
			b.above[p.rec.Seq] = true
			removed++
			continue
		}
		kept = append(kept, p)
	}
	clear(b.pending[len(kept):])
	b.pending = kept
	if removed == 0 {
		return nil
	}
	if len(b.pending) > 0 {
		b.through = max(b.through, b.pending[0].rec.Seq-1)
	} else {
		b.through = max(b.through, b.maxAdded)
	}
	for s := range b.above {
		if s <= b.through {
			delete(b.above, s)
		}
	}
	if b.logSize-b.pendSize > b.opt.CompactBytes {
		return b.compactLocked()
	}
	return b.writeStateLocked()
}

func (b *DiskBuffer) writeStateLocked() error {
	st := diskState{AckedThrough: b.through, LastSeq: b.last}
	for s := range b.above {
		st.Acked = append(st.Acked, s)
	}
	raw, _ := json.Marshal(st)
	if err := writeFileAtomic(filepath.Join(b.dir, bufStateFile), append(raw, '\n'), 0o600); err != nil {
		return fmt.Errorf("agentsim: buffer: state: %w", err)
	}
	return nil
}

// compactLocked rewrites the log with only the undelivered records. The
// caller holds syncMu and mu (or is Open).
func (b *DiskBuffer) compactLocked() error {
	path := filepath.Join(b.dir, bufLogFile)
	tmp, err := os.CreateTemp(b.dir, "."+bufLogFile+".tmp-*")
	if err != nil {
		return fmt.Errorf("agentsim: buffer: compact: %w", err)
	}
	fail := func(err error) error {
		tmp.Close()
		os.Remove(tmp.Name())
		return fmt.Errorf("agentsim: buffer: compact: %w", err)
	}
	if err := tmp.Chmod(0o600); err != nil {
		return fail(err)
	}
	w := bufio.NewWriterSize(tmp, 64<<10)
	var size int64
	for i, p := range b.pending {
		line, err := json.Marshal(p.rec)
		if err != nil {
			return fail(err)
		}
		line = append(line, '\n')
		w.Write(line)
		b.pending[i].size = int64(len(line))
		size += int64(len(line))
	}
	if err := w.Flush(); err != nil {
		return fail(err)
	}
	if err := tmp.Sync(); err != nil {
		return fail(err)
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("agentsim: buffer: compact: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("agentsim: buffer: compact: %w", err)
	}
	syncDir(b.dir)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND, 0o600)
	if err != nil {
		b.err = fmt.Errorf("agentsim: buffer: reopen log: %w", err)
		return b.err
	}
	b.log.Close()
	b.log, b.logSize, b.pendSize = f, size, size
	// The acknowledged records are gone from the log: nothing above
	// "through" needs remembering any more.
	clear(b.above)
	b.synced = b.gen
	return b.writeStateLocked()
}

// Len implements EventBuffer: undelivered records.
func (b *DiskBuffer) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.pending)
}

// NextSeq implements EventBuffer: one more than the last number issued,
// in this run or any earlier one. The number is written to the seq file
// at once (made durable with the next Add).
func (b *DiskBuffer) NextSeq() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.last++
	if b.seqf != nil && !b.closed {
		// Fixed width so an in-place rewrite never leaves old digits behind.
		b.seqf.WriteAt(fmt.Appendf(nil, "%020d\n", b.last), 0)
	}
	return b.last
}

// LastSeq is the last sequence number issued (0 = none yet).
func (b *DiskBuffer) LastSeq() uint64 { return locked(&b.mu, &b.last) }

// AckedThrough is the highest sequence number up to which every record
// was acknowledged.
func (b *DiskBuffer) AckedThrough() uint64 { return locked(&b.mu, &b.through) }

// Dropped counts records dropped past MaxRecords in this run.
func (b *DiskBuffer) Dropped() int64 { return locked(&b.mu, &b.dropped) }

// Skipped counts damaged log lines skipped by Open.
func (b *DiskBuffer) Skipped() int { return locked(&b.mu, &b.skipped) }

// LogSize is the current size of the log file in bytes.
func (b *DiskBuffer) LogSize() int64 { return locked(&b.mu, &b.logSize) }

// locked reads *v under mu: the getters of DiskBuffer and Agent.
func locked[T any](mu *sync.Mutex, v *T) T {
	mu.Lock()
	defer mu.Unlock()
	return *v
}

// Close syncs and closes the files; the buffer reopens where it stopped.
func (b *DiskBuffer) Close() error {
	b.syncMu.Lock()
	defer b.syncMu.Unlock()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	b.closed = true
	errs := []error{b.log.Sync(), b.seqf.Sync(), b.writeStateLocked(), b.log.Close(), b.seqf.Close()}
	return errors.Join(errs...)
}

// Remove closes the buffer and deletes its directory (uninstall).
func (b *DiskBuffer) Remove() error {
	b.Close()
	return os.RemoveAll(b.dir)
}
