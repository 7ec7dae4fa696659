package spool

import (
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sync"
	"time"

	"outpost/relay/logs"
	"outpost/relay/wire"
)

// Defaults applied by Open (see Options) and returned by DefaultOptions.
const (
	DefaultSegmentBytes = 4 << 20
	DefaultMaxBytes     = 1 << 30
	DefaultSyncInterval = 200 * time.Millisecond
)

const (
	segSuffix  = ".seg"
	segNameLen = 20 + len(segSuffix)
	cursorName = "cursor"
	cursorTmp  = cursorName + ".tmp" // wire.WriteFileAtomic's temp name
	lockName   = "LOCK"
	wbufKeep   = 1 << 20 // largest write buffer kept between Appends
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

var (
	// ErrFull means the batch would push unconsumed bytes past MaxBytes;
	// nothing was written. Retry after the forwarder has committed.
	ErrFull = errors.New("spool: full")
	// ErrTooLarge means the batch alone exceeds MaxBytes (or a record
	// exceeds the 4 GiB frame limit), so retrying can never succeed.
	ErrTooLarge = errors.New("spool: batch too large")
	// ErrEmptyRecord rejects zero-length payloads: an all-zero frame has a
	// valid CRC32C, so allowing them would let a zero-filled tail left by a
	// crash decode as records.
	ErrEmptyRecord = errors.New("spool: empty record")
	// ErrClosed is returned by every method after Close.
	ErrClosed = errors.New("spool: closed")
	// ErrLocked means another Spool (in this or another process) holds dir.
	ErrLocked = errors.New("spool: directory in use")
	// errLost fails Appends whose frames landed behind a corrupt frame in
	// the active segment: they are unreadable, so the caller must retry.
	errLost = errors.New("spool: record landed behind corrupt data; retry")
	// ErrBadPosition is returned by Commit for a position that is not a
	// durable record boundary of this spool.
	ErrBadPosition = errors.New("spool: bad position")
)

// Options configures a Spool. The zero value is valid.
type Options struct {
	// SegmentBytes is the size at which the writer starts a new segment
	// file. 0 means DefaultSegmentBytes.
	SegmentBytes int64
	// MaxBytes caps the unconsumed bytes on disk (frames included);
	// Append returns ErrFull beyond it. 0 means DefaultMaxBytes.
	MaxBytes int64
	// SyncInterval bounds how long an Append waits for its group commit
	// and spaces fsyncs out to save IOPS. Exact rule: an Append first
	// writes its frames, then waits for an fsync that starts after the
	// write. At most one fsync runs at a time, and one starts at the latest
	// of (a) a waiting Append's write, (b) the end of the fsync in flight,
	// (c) the start of the previous fsync + SyncInterval. It covers every
	// Append written before it starts. So an Append waits at most
	// max(SyncInterval, fsync duration) for its fsync to start, plus that
	// fsync; an Append after a quiet period is synced at once.
	// 0 removes (c): every Append gets an fsync as soon as its write (and
	// the fsync in flight) is done, shared with Appends written meanwhile.
	// Unlike the other fields 0 is taken literally, so the zero Options is
	// the most conservative; DefaultOptions uses DefaultSyncInterval.
	SyncInterval time.Duration
	// CursorSync is the longest the persisted read cursor may lag behind
	// Commit. 0 writes it (temp file, rename, fsync) on every Commit. A
	// larger value saves that fsync per upstream batch at the price of
	// re-delivering up to CursorSync of records after a crash, which the
	// at-least-once contract allows. The cursor is always persisted before
	// a consumed segment is deleted, and on Close.
	CursorSync time.Duration
	// Log receives recovery and corruption reports (nil: none).
	Log *slog.Logger
}

// DefaultOptions returns the documented defaults, including a 200ms
// SyncInterval.
func DefaultOptions() Options {
	return Options{
		SegmentBytes: DefaultSegmentBytes,
		MaxBytes:     DefaultMaxBytes,
		SyncInterval: DefaultSyncInterval,
	}
}

// Position identifies the end of a record; Commit(p) consumes every record
// up to and including the one p came from. Compare positions only through
// the spool.
type Position struct {
	seg uint64
	off int64 // byte offset just past the record
	n   int64 // records in seg before off
}

func (p Position) before(q Position) bool {
	return p.seg < q.seg || p.seg == q.seg && p.off < q.off
}

// String formats p as segment:offset for logs.
func (p Position) String() string { return fmt.Sprintf("%d:%d", p.seg, p.off) }

// Entry is one record returned by Peek. Payload is owned by the caller.
type Entry struct {
	Payload []byte
	Pos     Position
}

// Stats is a point-in-time snapshot.
type Stats struct {
	Segments int   // segment files on disk
	Bytes    int64 // unconsumed bytes on disk, frame headers included
	Pending  int64 // unconsumed records
	Corrupt  int64 // corruption events seen since Open (see package doc)
	// Lost to damage or torn writes since Open: records (each damaged
	// range counts as one; a zero-filled tail as none) and bytes skipped
	// or truncated.
	DroppedRecords, DroppedBytes int64
}

type segment struct {
	seq    uint64
	size   int64           // valid bytes (the write offset for the active segment)
	count  int64           // records in size
	sealed bool            // no more writes; every segment but the last is sealed
	holes  map[int64]int64 // damaged ranges: start -> end (next valid frame)
}

func (g *segment) addHole(start, end int64) {
	if g.holes == nil {
		g.holes = map[int64]int64{}
	}
	g.holes[start] = end
}

// skip returns the first offset at or after off that is not in a hole.
func (g *segment) skip(off int64) int64 {
	for {
		e, ok := g.holes[off]
		if !ok {
			return off
		}
		off = e
	}
}

// Spool is a durable FIFO of records. Append may be called concurrently;
// Peek, Commit and Wait are meant for a single reader.
type Spool struct {
	dir  string
	opts Options
	log  *slog.Logger
	lock *os.File

	// Reader side, guarded by rmu (taken before mu, never after).
	rmu sync.Mutex
	rd  segReader

	mu        sync.Mutex
	cond      sync.Cond // signalled when a sync finishes
	segs      []*segment
	active    *os.File  // the last segment, open for writing
	total     int64     // sum of segs[i].size
	records   int64     // sum of segs[i].count
	cursor    Position  // read cursor; cursor.seg == segs[0].seq
	saved     Position  // cursor as last persisted (lags by at most CursorSync)
	savedAt   time.Time // when it was persisted
	durable   Position  // everything before it is fsynced
	writeGen  uint64    // Appends whose frames are written
	syncedGen uint64    // Appends whose frames are fsynced
	syncing   bool      // a goroutine is between deciding to fsync and finishing
	lastSync  time.Time
	syncs     int64 // fsyncs of segment data, for tests
	corrupt   int64
	dropRecs  int64 // see Stats.DroppedRecords
	dropBytes int64
	err       error  // sticky write/fsync failure
	lostAfter uint64 // Appends in (lostAfter, lostUpTo] were cut off by
	lostUpTo  uint64 // corruption before their fsync; see corruptAt
	closed    bool
	dataCh    chan struct{} // closed and replaced when durable advances
	wbuf      []byte
}

// Open opens or creates the spool in dir, recovering from any crash (see
// the package documentation). Only one Spool may hold dir at a time.
func Open(dir string, opts Options) (*Spool, error) {
	if opts.SegmentBytes < 0 || opts.MaxBytes < 0 || opts.SyncInterval < 0 {
		return nil, errors.New("spool: negative option")
	}
	if opts.SegmentBytes == 0 {
		opts.SegmentBytes = DefaultSegmentBytes
	}
	if opts.MaxBytes == 0 {
		opts.MaxBytes = DefaultMaxBytes
	}
	s := &Spool{dir: dir, opts: opts, log: logs.OrDiscard(opts.Log), dataCh: make(chan struct{})}
	s.cond.L = &s.mu
	// Event data is for the relay's user only; an older relay created
	// the directory 0755, so tighten it (recover does the files).
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, err
	}
	lk, err := lockDir(filepath.Join(dir, lockName))
	if err != nil {
		return nil, err
	}
	s.lock = lk
	if err := s.recover(); err != nil {
		if s.active != nil {
			s.active.Close()
		}
		s.lock.Close()
		return nil, err
	}
	return s, nil
}

// Append writes payloads as one batch and returns once all of them are
// fsynced. It returns ErrFull, writing nothing, if the unconsumed bytes
// would exceed MaxBytes. On an I/O error a prefix of the batch may still
// be delivered later (at-least-once); after an fsync error the Spool
// refuses further Appends and must be reopened.
func (s *Spool) Append(payloads ...[]byte) error {
	if len(payloads) == 0 {
		return nil
	}
	var need int64
	for _, p := range payloads {
		if len(p) == 0 {
			return ErrEmptyRecord
		}
		if uint64(len(p)) > math.MaxUint32 {
			return ErrTooLarge
		}
		need += frameHeader + int64(len(p))
	}
	if need > s.opts.MaxBytes {
		return ErrTooLarge
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if s.err != nil {
		return s.err
	}
	if s.total-s.cursor.off+need > s.opts.MaxBytes {
		return ErrFull
	}
	if err := s.write(payloads); err != nil {
		return err
	}
	s.writeGen++
	return s.awaitSync(s.writeGen)
}

// write frames payloads into the active segment, rotating first whenever
// the next frame would take a non-empty segment past SegmentBytes.
// Called with mu held.
func (s *Spool) write(payloads [][]byte) error {
	seg := s.segs[len(s.segs)-1]
	buf := s.wbuf[:0]
	var n int64
	flush := func() error {
		if len(buf) == 0 {
			return nil
		}
		if _, err := s.active.WriteAt(buf, seg.size); err != nil {
			// Cut off the partial frames so later Appends do not land
			// behind garbage; if that fails the file is unusable.
			if terr := s.active.Truncate(seg.size); terr != nil {
				s.err = fmt.Errorf("spool: write %s: %w (truncate: %v)", segName(seg.seq), err, terr)
				return s.err
			}
			return fmt.Errorf("spool: write %s: %w", segName(seg.seq), err)
		}
		seg.size += int64(len(buf))
		seg.count += n
		s.total += int64(len(buf))
		s.records += n
		buf, n = buf[:0], 0
		return nil
	}
	for _, p := range payloads {
		fl := frameHeader + int64(len(p))
		if fill := seg.size + int64(len(buf)); fill > 0 && fill+fl > s.opts.SegmentBytes {
			if err := flush(); err != nil {
				return err
			}
			if err := s.rotate(); err != nil {
				return err
			}
			seg = s.segs[len(s.segs)-1]
		}
		buf = appendFrame(buf, p)
		n++
	}
	err := flush()
	if cap(buf) <= wbufKeep {
		s.wbuf = buf[:0]
	}
	return err
}

// rotate fsyncs and seals the active segment and starts the next one, so
// that every sealed segment is complete on disk. Called with mu held.
func (s *Spool) rotate() error {
	old := s.segs[len(s.segs)-1]
	if err := s.active.Sync(); err != nil {
		s.err = fmt.Errorf("spool: fsync %s: %w", segName(old.seq), err)
		return s.err
	}
	s.syncs++
	f, err := createSegment(s.dir, old.seq+1)
	if err != nil {
		return err
	}
	s.active.Close() // a concurrent leader's Sync sees ErrClosed; see awaitSync
	s.active = f
	old.sealed = true
	s.segs = append(s.segs, &segment{seq: old.seq + 1})
	s.syncedGen = s.writeGen
	s.advance(Position{seg: old.seq, off: old.size, n: old.count})
	s.cond.Broadcast()
	return nil
}

// awaitSync blocks until Append number gen is fsynced. The first waiter to
// find no fsync in flight becomes the leader: it sleeps until SyncInterval
// after the previous fsync started, then fsyncs everything written so far
// without holding mu; the rest wait on cond. Called with mu held.
func (s *Spool) awaitSync(gen uint64) error {
	for s.syncedGen < gen {
		if s.err != nil {
			return s.err
		}
		if s.closed {
			return ErrClosed
		}
		if s.syncing {
			s.cond.Wait()
			continue
		}
		s.syncing = true
		if d := s.opts.SyncInterval - time.Since(s.lastSync); s.opts.SyncInterval > 0 && d > 0 {
			s.mu.Unlock()
			time.Sleep(d)
			s.mu.Lock()
		}
		if target := s.writeGen; target > s.syncedGen && s.err == nil {
			f := s.active
			seg := s.segs[len(s.segs)-1]
			end := Position{seg: seg.seq, off: seg.size, n: seg.count}
			s.lastSync = time.Now()
			s.mu.Unlock()
			err := f.Sync()
			s.mu.Lock()
			s.syncs++
			switch {
			case err == nil:
				s.syncedGen = max(s.syncedGen, target)
				s.advance(end)
			case errors.Is(err, os.ErrClosed) && s.syncedGen >= target:
				// rotate closed f after fsyncing it for us.
			case s.err == nil:
				s.err = fmt.Errorf("spool: fsync %s: %w", segName(seg.seq), err)
			}
		}
		s.syncing = false
		s.cond.Broadcast()
	}
	if gen > s.lostAfter && gen <= s.lostUpTo {
		return errLost
	}
	return nil
}

// drop counts records and bytes lost to damage. mu held (or recovery).
func (s *Spool) drop(records, bytes int64) {
	s.dropRecs += records
	s.dropBytes += bytes
}

// advance moves the durable horizon forward and wakes Wait. mu held.
func (s *Spool) advance(p Position) {
	if s.durable.before(p) {
		s.durable = p
		close(s.dataCh)
		s.dataCh = make(chan struct{})
	}
}

// MaxRecord is the largest payload Append can ever take: one that fills
// MaxBytes on its own.
func (s *Spool) MaxRecord() int64 { return s.opts.MaxBytes - frameHeader }

// Stats reports the current size of the backlog.
func (s *Spool) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Stats{
		Segments: len(s.segs),
		Bytes:    s.total - s.cursor.off,
		Pending:  s.records - s.cursor.n,
		Corrupt:  s.corrupt,

		DroppedRecords: s.dropRecs,
		DroppedBytes:   s.dropBytes,
	}
}

// Close fsyncs outstanding writes, wakes Wait and releases the directory.
// Appends blocked in a group commit complete normally.
func (s *Spool) Close() error {
	s.rmu.Lock()
	defer s.rmu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	for s.syncing {
		s.cond.Wait()
	}
	err := s.err
	if err == nil {
		if err = s.active.Sync(); err == nil {
			s.syncedGen = s.writeGen
		} else {
			err = fmt.Errorf("spool: fsync on close: %w", err)
			s.err = err
		}
	}
	if s.saved != s.cursor {
		if cerr := writeCursor(s.dir, s.cursor); err == nil {
			err = cerr
		}
	}
	s.cond.Broadcast()
	close(s.dataCh)
	if cerr := s.active.Close(); err == nil {
		err = cerr
	}
	s.rd.close()
	s.lock.Close()
	return err
}

func segName(seq uint64) string { return fmt.Sprintf("%020d%s", seq, segSuffix) }

func createSegment(dir string, seq uint64) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, segName(seq)), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	// The directory entry must be durable before records in it are acked.
	if err := wire.SyncDir(dir); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}
