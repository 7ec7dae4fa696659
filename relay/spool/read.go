package spool

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

const readChunk = 256 << 10

// errCorrupt marks a frame that fails validation while reading.
var errCorrupt = errors.New("corrupt frame")

// segReader is the reader's buffered handle on one segment. Only bytes
// below the durable horizon are read and those never change, so the
// buffer stays valid until the segment is switched.
type segReader struct {
	f   *os.File
	seq uint64
	buf []byte
	off int64 // file offset of buf[0]
}

func (r *segReader) close() {
	if r.f != nil {
		r.f.Close()
		r.f = nil
	}
	r.buf = r.buf[:0]
}

// bytes returns n bytes at off (off+n <= end), valid until the next call.
func (r *segReader) bytes(off int64, n int, end int64) ([]byte, error) {
	if off >= r.off && off+int64(n) <= r.off+int64(len(r.buf)) {
		return r.buf[off-r.off : off-r.off+int64(n)], nil
	}
	size := int64(max(n, readChunk))
	size = min(size, end-off)
	if int64(cap(r.buf)) < size {
		r.buf = make([]byte, size)
	}
	r.buf = r.buf[:size]
	if _, err := r.f.ReadAt(r.buf, off); err != nil {
		r.buf = r.buf[:0]
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: segment shorter than expected", errCorrupt)
		}
		return nil, err
	}
	r.off = off
	return r.buf[:n], nil
}

// Peek returns up to max records starting at the committed cursor without
// consuming them; calling it again before Commit returns the same records.
// maxBytes caps the summed payload sizes, except that the first record is
// always returned. A limit <= 0 means no limit. Only fsynced records are
// returned, so nothing is forwarded that an agent was not acknowledged for.
// An empty result means the spool is drained; use Wait to block.
func (s *Spool) Peek(max, maxBytes int) ([]Entry, error) {
	return s.PeekAfter(Position{}, max, maxBytes)
}

// PeekAfter is Peek starting just after the record at after (an Entry.Pos
// this spool returned), or at the committed cursor if that is later. It
// lets a reader keep several batches in flight: peek the next batch after
// the last one handed out, and Commit each batch's last position in order
// once upstream acknowledged it and every batch before it.
func (s *Spool) PeekAfter(after Position, max, maxBytes int) ([]Entry, error) {
	s.rmu.Lock()
	defer s.rmu.Unlock()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, ErrClosed
	}
	pos := s.cursor
	if pos.before(after) {
		pos = after
	}
	s.mu.Unlock()

	var out []Entry
	var arena []byte // the payloads' copies, one allocation for most batches
	used := 0
	for (max <= 0 || len(out) < max) && (maxBytes <= 0 || used < maxBytes) {
		end, next, ok, skip := s.readable(pos)
		if skip != pos.off {
			pos.off = skip // over a damaged range
			continue
		}
		if pos.off >= end {
			if !ok {
				break
			}
			pos = Position{seg: next}
			continue
		}
		p, after, err := s.frame(pos, end, len(out) == 0, maxBytes-used, maxBytes > 0, &arena)
		var bad badFrame
		if errors.As(err, &bad) {
			s.corruptAt(pos, string(bad), end)
			continue
		}
		if err != nil {
			if len(out) > 0 {
				return out, nil // the error will recur on the next Peek
			}
			return nil, err
		}
		if p == nil {
			break // next record would exceed maxBytes
		}
		used += len(p)
		pos = Position{seg: pos.seg, off: after, n: pos.n + 1}
		out = append(out, Entry{Payload: p, Pos: pos})
	}
	return out, nil
}

// badFrame is a frame that fails verification while reading.
type badFrame string

func (b badFrame) Error() string { return string(b) }

// readable reports how far segment pos.seg may be read and, if the reader
// may move on once it is exhausted, the next segment's sequence number.
// skip is pos.off moved past any damaged range starting there.
func (s *Spool) readable(pos Position) (end int64, next uint64, ok bool, skip int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := s.segIndex(pos.seg)
	skip = pos.off
	if i >= 0 {
		skip = s.segs[i].skip(pos.off)
	}
	switch {
	case i < 0 || s.durable.seg < pos.seg:
		return 0, 0, false, skip
	case s.durable.seg == pos.seg:
		return s.durable.off, 0, false, skip
	default:
		return s.segs[i].size, s.segs[i+1].seq, true, skip
	}
}

// frame reads and verifies the record at pos and returns a copy of its
// payload and the offset after it. It returns nil if the payload does not
// fit into budget (and first is false).
func (s *Spool) frame(pos Position, end int64, first bool, budget int, limited bool, arena *[]byte) ([]byte, int64, error) {
	r := &s.rd
	if r.f == nil || r.seq != pos.seg {
		r.close()
		f, err := os.Open(filepath.Join(s.dir, segName(pos.seg)))
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil, 0, badFrame("segment vanished")
			}
			return nil, 0, err
		}
		r.f, r.seq, r.off = f, pos.seg, 0
	}
	b, next, why, err := r.frameAt(pos.off, end)
	if err != nil {
		return nil, 0, err
	}
	if why != "" {
		return nil, 0, badFrame(why)
	}
	if limited && !first && len(b) > budget {
		return nil, 0, nil
	}
	if cap(*arena)-len(*arena) < len(b) {
		*arena = make([]byte, 0, max(len(b), 64<<10))
	}
	a := append(*arena, b...)
	*arena = a
	return a[len(a)-len(b) : len(a) : len(a)], next, nil
}

// corruptAt handles a frame that was valid at Open (or when written) but
// no longer verifies. Like recovery it jumps to the next valid frame; if
// there is none before end, the rest of the segment is dropped and an
// active segment is sealed so new records stay readable.
func (s *Spool) corruptAt(pos Position, why string, end int64) {
	q := int64(-1)
	if s.rd.f != nil && s.rd.seq == pos.seg {
		var err error
		if q, err = s.rd.resync(pos.off, end); err != nil {
			q = -1
		}
	}
	s.rd.close()
	s.mu.Lock()
	defer s.mu.Unlock()
	i := s.segIndex(pos.seg)
	if i < 0 {
		return
	}
	seg := s.segs[i]
	s.corrupt++
	if q > pos.off {
		seg.addHole(pos.off, q)
		s.drop(1, q-pos.off)
		if seg.count > pos.n { // the damaged record (a range may hold more)
			seg.count--
			s.records--
		}
		s.log.Warn("spool: damaged record: skipping to the next valid record",
			"segment", segName(seg.seq), "offset", pos.off, "problem", why, "bytes", q-pos.off, "next", q)
		return
	}
	// An in-flight fsync would advance durable past the cut below.
	for s.syncing {
		s.cond.Wait()
	}
	s.log.Warn("spool: no valid record after a damaged one: skipping to the next segment",
		"segment", segName(seg.seq), "problem", why, "offset", pos.off, "bytes", seg.size-pos.off, "records", seg.count-pos.n)
	s.drop(seg.count-pos.n, seg.size-pos.off)
	s.total -= seg.size - pos.off
	s.records -= seg.count - pos.n
	seg.size, seg.count = pos.off, pos.n
	if s.durable.seg == seg.seq && pos.before(s.durable) {
		s.durable = pos
	}
	if !seg.sealed && s.err == nil {
		// Frames written after pos are unreachable; fail the Appends still
		// waiting for their fsync instead of acknowledging them.
		s.lostAfter, s.lostUpTo = s.syncedGen, s.writeGen
		if err := s.rotate(); err != nil && s.err == nil {
			// The file holds bytes past seg.size; never write after them.
			s.err = fmt.Errorf("spool: sealing corrupt segment: %w", err)
		}
	}
}

// segIndex returns the index of seq in segs, or -1. mu held.
func (s *Spool) segIndex(seq uint64) int {
	if len(s.segs) == 0 || seq < s.segs[0].seq {
		return -1
	}
	// Sequence numbers are mostly contiguous; fall back to a scan.
	if i := int(seq - s.segs[0].seq); i < len(s.segs) && s.segs[i].seq == seq {
		return i
	}
	for i, g := range s.segs {
		if g.seq == seq {
			return i
		}
	}
	return -1
}

// Commit durably advances the read cursor past the record at through (an
// Entry.Pos from Peek) and everything before it, then deletes fully
// consumed segments. Call it only once upstream has acknowledged those
// records. Committing a position at or before the cursor is a no-op.
func (s *Spool) Commit(through Position) error {
	s.rmu.Lock()
	defer s.rmu.Unlock()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	if !s.cursor.before(through) {
		s.mu.Unlock()
		return nil
	}
	i := s.segIndex(through.seg)
	if i < 0 || s.durable.before(through) || through.off > s.segs[i].size {
		s.mu.Unlock()
		return fmt.Errorf("%w: %v", ErrBadPosition, through)
	}
	next := through
	// Point the cursor at the start of the next segment rather than at the
	// end of a sealed one, so that the sealed one can be deleted.
	for s.segs[i].sealed && next.off >= s.segs[i].size {
		i++
		next = Position{seg: s.segs[i].seq}
	}
	// Persist now when a segment is about to be deleted (the cursor must
	// never point before a missing segment's data it still needs) or when
	// the persisted cursor is older than CursorSync.
	persist := next.seg != s.segs[0].seq || s.opts.CursorSync <= 0 || time.Since(s.savedAt) >= s.opts.CursorSync
	s.mu.Unlock()

	if persist {
		if err := writeCursor(s.dir, next); err != nil {
			return err
		}
	}

	s.mu.Lock()
	if persist {
		s.saved, s.savedAt = next, time.Now()
	}
	s.cursor = next
	var drop []uint64
	for s.segs[0].seq < next.seg {
		g := s.segs[0]
		drop = append(drop, g.seq)
		s.total -= g.size
		s.records -= g.count
		s.segs = s.segs[1:]
	}
	s.mu.Unlock()
	for _, seq := range drop {
		if s.rd.seq == seq {
			s.rd.close()
		}
		// A leftover file is harmless: Open deletes segments below the cursor.
		if err := os.Remove(filepath.Join(s.dir, segName(seq))); err != nil {
			s.log.Warn("spool: removing a consumed segment", "err", err)
		}
	}
	return nil
}

// Wait blocks until Peek would return at least one record, ctx is done
// (returning ctx.Err()) or the spool is closed (returning ErrClosed).
func (s *Spool) Wait(ctx context.Context) error {
	return s.WaitAfter(ctx, Position{})
}

// WaitAfter is Wait for PeekAfter(after, ...).
func (s *Spool) WaitAfter(ctx context.Context, after Position) error {
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return ErrClosed
		}
		if s.readyLocked(after) {
			s.mu.Unlock()
			return nil
		}
		ch := s.dataCh
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// readyLocked reports whether a durable record lies past the cursor (or
// past from, if later). A plain cursor < durable test is not enough: a
// segment cut short by corruption leaves a gap with no records in it. mu
// held.
func (s *Spool) readyLocked(from Position) bool {
	if from.before(s.cursor) {
		from = s.cursor
	}
	for _, g := range s.segs {
		if g.seq > s.durable.seg {
			break
		}
		if g.seq < from.seg {
			continue
		}
		start, end := int64(0), g.size
		if g.seq == from.seg {
			start = from.off
		}
		start = g.skip(start)
		if g.seq == s.durable.seg {
			end = s.durable.off
		}
		if end > start {
			return true
		}
	}
	return false
}
