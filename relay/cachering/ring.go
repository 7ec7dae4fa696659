package cachering

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"outpost/relay/wire"
)

// Limits on Options; MaxCap is the largest cache a policy may ask for.
const (
	MaxCap          int64 = 10 * 1000 * 1000 * 1000 // 10 GB
	MinSegmentBytes int64 = 4 << 10
	DefaultFileName       = "export.log"
)

// Errors returned by the ring; test them with errors.Is.
var (
	ErrClosed      = errors.New("cachering: ring is closed")
	ErrCapTooLarge = errors.New("cachering: cache size above the 10 GB limit")
	ErrInvalidLine = errors.New("cachering: invalid line")
	// ErrTooLarge: a line longer than a segment would push the ring past
	// its cap and evict all older data, so it is refused (see LineError).
	ErrTooLarge = errors.New("cachering: line larger than a segment")
)

// LineError says which line of an Append was refused with ErrTooLarge.
type LineError struct {
	Index       int   // in the Append's arguments
	Size, Limit int64 // bytes with the newline; the segment size
}

func (e *LineError) Error() string {
	return fmt.Sprintf("cachering: line %d is %d bytes, larger than a segment (%d bytes)", e.Index, e.Size, e.Limit)
}

func (e *LineError) Unwrap() error { return ErrTooLarge }

// Options configure a Ring; the zero value gives a 10 GB ring.
type Options struct {
	// MaxBytes caps the total size of all files (default and maximum MaxCap).
	MaxBytes int64
	// SegmentBytes is the size at which the live file is rotated (default
	// MaxBytes/20, at least MinSegmentBytes, at most MaxBytes). Smaller
	// segments mean finer-grained overwriting of old data.
	SegmentBytes int64
	// FileName of the live file (default "export.log"); it is what the
	// SIEM shipper is configured to tail.
	FileName string
	// SyncEach makes every Append fsync on its own under the ring lock
	// instead of sharing an fsync with concurrent Appends. Durability is the
	// same; only throughput under concurrency differs.
	SyncEach bool
	// Log receives rare operational messages (repairs, failed deletes; nil: none).
	Log *slog.Logger
}

// Stats describe what is on disk.
type Stats struct {
	Bytes    int64 // total size of all segments, live file included
	Segments int   // number of files, live file included
	Dropped  int64 // bytes deleted by this process to respect the cap
	// A torn last line cut off at Open (a crash mid-write): lines, bytes.
	RecoveryDroppedRecords, RecoveryDroppedBytes int64
}

type segment struct {
	num  uint64
	size int64
}

// group is a set of Appends waiting for the same fsync.
type group struct {
	done chan struct{}
	err  error
}

func (g *group) finish(err error) {
	g.err = err
	close(g.done)
}

// Ring is a capped, rotating NDJSON file set. It is safe for concurrent use.
type Ring struct {
	dir, name string
	log       *slog.Logger
	syncEach  bool
	userSeg   int64 // Options.SegmentBytes as given (0 = derive from max)
	perm      os.FileMode

	syncMu sync.Mutex // one fsync leader at a time

	mu      sync.Mutex
	f       *os.File // live file; nil once closed or if reopening failed
	closed  bool
	live    int64 // size of the live file
	segs    []segment
	rotated int64 // sum of segs sizes
	next    uint64
	max     int64
	seg     int64
	dropped int64
	torn    int64    // bytes of a torn last line cut at Open
	pending *group   // Appends written since the last fsync started
	syncing *os.File // file the fsync leader is syncing
	retire  *os.File // rotated file to close once the leader is done
	wbuf    []byte   // write buffer kept between Appends (mu)
}

// wbufKeep is the largest write buffer kept between Appends.
const wbufKeep = 1 << 20

// and returns once they are fsynced. Lines are validated first: on
// ErrInvalidLine nothing is written.
func (r *Ring) Append(lines ...[]byte) error {
	for i, l := range lines {
		if err := checkLine(l); err != nil {
			return fmt.Errorf("%w %d: %v", ErrInvalidLine, i, err)
		}
	}
	return r.AppendValid(lines...)
}

// AppendValid is Append for lines the caller guarantees are each one
// non-empty JSON value without a newline inside (the relay's own
// encoding of records it has just validated): they are not checked again.
func (r *Ring) AppendValid(lines ...[]byte) error {
	if len(lines) == 0 {
		return nil
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return ErrClosed
	}
	for i, l := range lines {
		if n := lineLen(l); n > r.seg {
			r.mu.Unlock()
			return &LineError{Index: i, Size: n, Limit: r.seg}
		}
	}
	if r.f == nil {
		if err := r.openLive(); err != nil {
			r.mu.Unlock()
			return err
		}
	}
	err := r.write(lines)
	if err == nil && r.syncEach {
		err = r.f.Sync()
	}
	if err != nil || r.syncEach {
		r.trim()
		r.mu.Unlock()
		return err
	}
	if r.pending == nil {
		r.pending = &group{done: make(chan struct{})}
	}
	g := r.pending
	r.trim()
	r.mu.Unlock()
	return r.wait(g)
}

// lineLen is l's size on disk, newline included.
func lineLen(l []byte) int64 {
	if l[len(l)-1] == '\n' {
		return int64(len(l))
	}
	return int64(len(l)) + 1
}

func checkLine(l []byte) error {
	l = bytes.TrimSuffix(l, []byte{'\n'})
	if len(l) == 0 {
		return errors.New("empty")
	}
	if bytes.IndexByte(l, '\n') >= 0 {
		return errors.New("contains a newline")
	}
	if !json.Valid(l) {
		return errors.New("not JSON")
	}
	return nil
}

// write appends lines to the live file, rotating at segment boundaries.
// Data written before a rotation is fsynced by the rotation itself.
func (r *Ring) write(lines [][]byte) error {
	buf := r.wbuf[:0]
	defer func() {
		if cap(buf) <= wbufKeep {
			r.wbuf = buf[:0]
		}
	}()
	for _, l := range lines {
		n := int64(len(l))
		if l[len(l)-1] != '\n' {
			n++
		}
		if r.live+int64(len(buf)) > 0 && r.live+int64(len(buf))+n > r.seg {
			if err := r.flush(buf); err != nil {
				return err
			}
			buf = buf[:0]
			if err := r.rotate(); err != nil {
				return err
			}
		}
		buf = append(buf, l...)
		if l[len(l)-1] != '\n' {
			buf = append(buf, '\n')
		}
	}
	return r.flush(buf)
}

// flush writes buf to the live file; on failure it cuts the file back so it
// never ends in a partial line.
func (r *Ring) flush(buf []byte) error {
	if len(buf) == 0 {
		return nil
	}
	live, err, terr := wire.AppendWhole(r.f, r.live, buf)
	r.live = live
	if err == nil {
		return nil
	}
	if terr != nil {
		r.log.Error("cachering: cannot cut a partial write", "err", terr)
		if fi, serr := r.f.Stat(); serr == nil {
			r.live = fi.Size()
		}
	}
	return fmt.Errorf("cachering: write: %w", err)
}

// rotate renames the live file to the next segment number and starts a new
// one. The old file is fsynced first and waiting Appends get that result.
// If the new live file cannot be opened, r.f stays nil and the next Append
// tries again.
func (r *Ring) rotate() error {
	err := r.release()
	path := filepath.Join(r.dir, r.name)
	seg := filepath.Join(r.dir, fmt.Sprintf("%s.%06d", r.name, r.next))
	if rerr := os.Rename(path, seg); rerr != nil {
		// Keep appending under the live name rather than stop caching.
		r.log.Error("cachering: rotate", "err", rerr)
		err = errors.Join(err, fmt.Errorf("cachering: rotate: %w", rerr))
	} else {
		r.segs = append(r.segs, segment{num: r.next, size: r.live})
		r.rotated += r.live
		r.next++
		r.live = 0
		if derr := wire.SyncDir(r.dir); derr != nil {
			r.log.Warn("cachering: sync dir", "err", derr)
		}
	}
	return errors.Join(err, r.openLive())
}

// release fsyncs and closes the live file (or leaves the close to a running
// fsync leader) and settles the Appends waiting on it.
func (r *Ring) release() error {
	f := r.f
	err := f.Sync()
	if err != nil {
		err = fmt.Errorf("cachering: fsync: %w", err)
	}
	if r.pending != nil {
		r.pending.finish(err)
		r.pending = nil
	}
	if r.syncing == f {
		r.retire = f
	} else {
		f.Close()
	}
	r.f = nil
	return err
}

// wait returns once g's fsync is done, leading it if nobody else is.
func (r *Ring) wait(g *group) error {
	r.syncMu.Lock()
	defer r.syncMu.Unlock()
	r.mu.Lock()
	select {
	case <-g.done: // a rotation or an earlier leader synced it
		r.mu.Unlock()
		return g.err
	default:
	}
	// Not done and we hold syncMu: g is still the pending group.
	f := r.f
	r.pending, r.syncing = nil, f
	r.mu.Unlock()

	err := f.Sync()

	r.mu.Lock()
	r.syncing = nil
	if r.retire == f {
		r.retire = nil
		f.Close()
	}
	r.mu.Unlock()
	if err != nil {
		err = fmt.Errorf("cachering: fsync: %w", err)
	}
	g.finish(err)
	return err
}

// trim deletes the oldest rotated segments while the total exceeds the cap.
func (r *Ring) trim() {
	for len(r.segs) > 0 && r.rotated+r.live > r.max {
		s := r.segs[0]
		p := filepath.Join(r.dir, fmt.Sprintf("%s.%06d", r.name, s.num))
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			r.log.Warn("cachering: delete the oldest segment", "err", err)
			return
		}
		r.segs = r.segs[1:]
		r.rotated -= s.size
		r.dropped += s.size
	}
	if len(r.segs) == 0 {
		r.segs = nil
	}
}

// MaxLine is the longest line (newline included) Append accepts: one
// segment.
func (r *Ring) MaxLine() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.seg
}

// Stats reports the current size of the ring.
func (r *Ring) Stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := Stats{Bytes: r.rotated + r.live, Segments: len(r.segs) + 1, Dropped: r.dropped}
	if r.torn > 0 {
		st.RecoveryDroppedRecords, st.RecoveryDroppedBytes = 1, r.torn
	}
	return st
}

// SetMax changes the cap while running (a policy change); 0 means the
// default. Shrinking deletes the oldest data at once, including the live
// file's content if it alone exceeds the new cap.
func (r *Ring) SetMax(n int64) error {
	capBytes, err := checkMax(n)
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return ErrClosed
	}
	r.max = capBytes
	r.seg = r.segFor(capBytes)
	if r.live > capBytes && r.f != nil {
		err = r.rotate()
	}
	r.trim()
	return err
}

// Close fsyncs and closes the live file.
func (r *Ring) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return ErrClosed
	}
	r.closed = true
	if r.f == nil {
		return nil
	}
	return r.release()
}
