package spool

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"outpost/relay/wire"
)

// Cursor file: magic, segment (8 bytes LE), offset (8 bytes LE), CRC32C of
// the preceding 20 bytes.
const cursorMagic = "SPC1"
const cursorSize = 4 + 8 + 8 + 4

func writeCursor(dir string, p Position) error {
	b := make([]byte, 0, cursorSize)
	b = append(b, cursorMagic...)
	b = binary.LittleEndian.AppendUint64(b, p.seg)
	b = binary.LittleEndian.AppendUint64(b, uint64(p.off))
	b = binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
	if err := wire.WriteFileAtomic(filepath.Join(dir, cursorName), b, 0o600); err != nil {
		return fmt.Errorf("spool: write cursor: %w", err)
	}
	return nil
}

// readCursor returns ok=false if there is no usable cursor file; a damaged
// one is reported through bad.
func readCursor(dir string) (p Position, ok bool, bad string, err error) {
	b, err := os.ReadFile(filepath.Join(dir, cursorName))
	if errors.Is(err, os.ErrNotExist) {
		return p, false, "", nil
	}
	if err != nil {
		return p, false, "", fmt.Errorf("spool: read cursor: %w", err)
	}
	if len(b) != cursorSize || string(b[:4]) != cursorMagic ||
		crc32.Checksum(b[:cursorSize-4], castagnoli) != binary.LittleEndian.Uint32(b[cursorSize-4:]) {
		return p, false, fmt.Sprintf("cursor file damaged (%d bytes)", len(b)), nil
	}
	p.seg = binary.LittleEndian.Uint64(b[4:])
	p.off = int64(binary.LittleEndian.Uint64(b[12:]))
	if p.off < 0 {
		return Position{}, false, "cursor file has negative offset", nil
	}
	return p, true, "", nil
}

func listSegments(dir string) ([]uint64, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var seqs []uint64
	for _, e := range ents {
		name := e.Name()
		if len(name) != segNameLen || !strings.HasSuffix(name, segSuffix) || !e.Type().IsRegular() {
			continue
		}
		seq, err := strconv.ParseUint(name[:20], 10, 64)
		if err != nil || seq == 0 {
			continue
		}
		seqs = append(seqs, seq)
	}
	slices.Sort(seqs)
	return seqs, nil
}

// scanResult describes the readable frames of a segment file.
type scanResult struct {
	end, count     int64  // end of the last valid frame, valid frames
	markOff, markN int64  // last record boundary <= mark, records before it
	size           int64  // file size
	holes          []hole // damaged ranges with valid frames after them
	problem        string // why the frames stopped before size, or ""
	zero           bool   // the bytes after end are all zero
}

// hole is a damaged byte range [start, end) that readers jump over.
type hole struct {
	start, end int64
	why        string
}

// scanSegment verifies every frame of f. After a bad frame it looks for
// the next valid one (resync) and records the bytes in between as a hole;
// when none follows, scanning stops there (problem, end).
func scanSegment(f *os.File, mark int64) (scanResult, error) {
	var r scanResult
	st, err := f.Stat()
	if err != nil {
		return r, err
	}
	r.size = st.Size()
	rd := segReader{f: f}
	off := int64(0)
	for off < r.size {
		_, next, why, err := rd.frameAt(off, r.size)
		if err != nil {
			return r, err
		}
		if why == "" {
			off = next
			r.count++
		} else {
			q, err := rd.resync(off, r.size)
			if err != nil {
				return r, err
			}
			if q < 0 {
				r.problem = why
				r.zero, err = rest0(&rd, off, r.size)
				if err != nil {
					return r, err
				}
				break
			}
			r.holes = append(r.holes, hole{off, q, why})
			r.problem = why
			off = q
		}
		if off <= mark {
			r.markOff, r.markN = off, r.count
		}
	}
	r.end = off
	return r, nil
}

// rest0 reports whether [off, end) holds only zero bytes.
func rest0(rd *segReader, off, end int64) (bool, error) {
	for off < end {
		n := int(min(int64(readChunk), end-off))
		b, err := rd.bytes(off, n, end)
		if err != nil {
			return false, err
		}
		for _, c := range b {
			if c != 0 {
				return false, nil
			}
		}
		off += int64(n)
	}
	return true, nil
}

// privateFiles makes the spool's files 0600: an older relay created them
// 0644, readable by every local user.
func privateFiles(dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			return err
		}
		if fi.Mode().Perm()&0o077 != 0 {
			if err := os.Chmod(filepath.Join(dir, e.Name()), 0o600); err != nil {
				return err
			}
		}
	}
	return nil
}

// recovery is recover's working state, passed between its steps.
type recovery struct {
	cur      Position
	dirty    bool     // cursor must be rewritten
	consumed []uint64 // below the cursor: deleted once it is durable
}

// recover rebuilds the in-memory state from dir; see the package doc for
// the rules. It leaves s.active open on the last segment. Steps: find the
// segments and place the cursor, check and repair each segment, then
// write the cursor and drop consumed segments.
func (s *Spool) recover() error {
	seqs, rc, err := s.recoverCursor()
	if err != nil {
		return err
	}
	for i, seq := range seqs {
		if err := s.recoverSegment(&rc, seq, i == len(seqs)-1); err != nil {
			return err
		}
	}
	return s.recoverFinish(&rc)
}

// recoverCursor lists the segments and reads the cursor, moving it to the
// oldest segment left when it points at a missing one. It returns the
// segments from the cursor's on.
func (s *Spool) recoverCursor() ([]uint64, recovery, error) {
	var rc recovery
	dir := s.dir
	if err := os.Remove(filepath.Join(dir, cursorTmp)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, rc, err
	}
	seqs, err := listSegments(dir)
	if err != nil {
		return nil, rc, err
	}
	if err := privateFiles(dir); err != nil {
		return nil, rc, err
	}
	cur, ok, bad, err := readCursor(dir)
	if err != nil {
		return nil, rc, err
	}
	if bad != "" {
		s.corrupt++
		s.log.Warn("spool: redelivering from the oldest segment", "problem", bad)
		rc.dirty = true
	}
	if !ok {
		cur = Position{seg: 1}
		if len(seqs) > 0 {
			cur.seg = seqs[0]
		}
	}
	for len(seqs) > 0 && seqs[0] < cur.seg {
		rc.consumed = append(rc.consumed, seqs[0])
		seqs = seqs[1:]
	}
	if len(seqs) > 0 && seqs[0] != cur.seg {
		s.corrupt++
		s.log.Warn("spool: the cursor points into a missing segment: moving to the oldest",
			"cursor", cur, "segment", segName(cur.seg), "to", segName(seqs[0]))
		cur, rc.dirty = Position{seg: seqs[0]}, true
	} else if len(seqs) == 0 && cur.off != 0 {
		s.corrupt++
		s.log.Warn("spool: the cursor points into a missing segment: starting it afresh", "cursor", cur, "segment", segName(cur.seg))
		cur, rc.dirty = Position{seg: cur.seg}, true
	}
	for i := 1; i < len(seqs); i++ {
		if gap := seqs[i] - seqs[i-1] - 1; gap > 0 {
			s.corrupt += int64(gap)
			s.log.Warn("spool: segment files missing: their records are lost", "missing", gap, "before", segName(seqs[i]))
		}
	}
	rc.cur = cur
	return seqs, rc, nil
}

// recoverSegment checks the records of segment seq, skips its holes,
// repairs its tail and adds it to s.segs; the last one stays open as
// s.active while it has room.
func (s *Spool) recoverSegment(rc *recovery, seq uint64, last bool) error {
	path := filepath.Join(s.dir, segName(seq))
	flag := os.O_RDONLY
	if last {
		flag = os.O_RDWR
	}
	f, err := os.OpenFile(path, flag, 0)
	if err != nil {
		return err
	}
	mark := int64(-1)
	if seq == rc.cur.seg {
		mark = rc.cur.off
	}
	r, err := scanSegment(f, mark)
	if err != nil {
		f.Close()
		return fmt.Errorf("spool: scan %s: %w", segName(seq), err)
	}
	seg := &segment{seq: seq, size: r.end, count: r.count, sealed: !last}
	for _, h := range r.holes {
		seg.addHole(h.start, h.end)
		s.corrupt++
		s.drop(1, h.end-h.start)
		s.log.Warn("spool: damaged record: skipping to the next valid record",
			"segment", segName(seq), "offset", h.start, "problem", h.why, "bytes", h.end-h.start, "next", h.end)
	}
	if err := s.repairTail(f, seq, last, r); err != nil {
		f.Close()
		return err
	}
	if seq == rc.cur.seg {
		if r.markOff != rc.cur.off {
			s.log.Warn("spool: the cursor is not at a valid record boundary: moving back", "cursor", rc.cur, "to", r.markOff)
			rc.dirty = true
		}
		rc.cur = Position{seg: seq, off: r.markOff, n: r.markN}
	}
	if last {
		// Whatever the crashed process left in the page cache becomes
		// durable before it can be forwarded.
		if err := f.Sync(); err != nil {
			f.Close()
			return fmt.Errorf("spool: fsync %s: %w", segName(seq), err)
		}
		if !seg.sealed && seg.size < s.opts.SegmentBytes {
			s.active = f
		} else {
			seg.sealed = true
			f.Close()
		}
	} else {
		f.Close()
	}
	s.segs = append(s.segs, seg)
	s.total += seg.size
	s.records += seg.count
	return nil
}

// repairTail handles the bytes after a segment's last valid frame: the
// last segment is truncated there, an older one is skipped to its end.
func (s *Spool) repairTail(f *os.File, seq uint64, last bool, r scanResult) error {
	switch {
	case r.end == r.size:
	case last:
		// Nothing valid follows: an unfinished write (never
		// acknowledged) or damage to the newest records.
		s.log.Warn("spool: torn tail: truncating",
			"segment", segName(seq), "problem", r.problem, "offset", r.end, "bytes", r.size-r.end)
		if r.zero {
			s.drop(0, r.size-r.end) // preallocated, never written
		} else {
			s.drop(1, r.size-r.end)
		}
		if err := f.Truncate(r.end); err != nil {
			return fmt.Errorf("spool: truncate torn tail: %w", err)
		}
	default:
		// No valid current-format frame after the damage (an old
		// segment cannot be resynchronised). The bytes stay on disk.
		s.corrupt++
		s.drop(1, r.size-r.end)
		s.log.Warn("spool: no valid record after a damaged one: skipping to the next segment",
			"segment", segName(seq), "problem", r.problem, "offset", r.end, "bytes", r.size-r.end)
	}
	return nil
}

// recoverFinish opens an active segment if none was kept, moves the
// cursor off a fully read sealed segment, writes the cursor if it changed
// and removes the consumed segments.
func (s *Spool) recoverFinish(rc *recovery) error {
	dir := s.dir
	cur := rc.cur
	if s.active == nil {
		seq := cur.seg
		if n := len(s.segs); n > 0 {
			seq = s.segs[n-1].seq + 1
		}
		f, err := createSegment(dir, seq)
		if err != nil {
			return err
		}
		s.active = f
		s.segs = append(s.segs, &segment{seq: seq})
	}
	// Never leave the cursor at the end of a sealed segment.
	for s.segs[0].sealed && cur.seg == s.segs[0].seq && cur.off >= s.segs[0].size {
		rc.consumed = append(rc.consumed, s.segs[0].seq)
		s.total -= s.segs[0].size
		s.records -= s.segs[0].count
		s.segs = s.segs[1:]
		cur, rc.dirty = Position{seg: s.segs[0].seq}, true
	}
	if rc.dirty {
		if err := writeCursor(dir, cur); err != nil {
			return err
		}
	}
	for _, seq := range rc.consumed {
		if err := os.Remove(filepath.Join(dir, segName(seq))); err != nil && !errors.Is(err, os.ErrNotExist) {
			s.log.Warn("spool: removing a consumed segment", "err", err)
		}
	}
	s.cursor, s.saved, s.savedAt = cur, cur, time.Now()
	a := s.segs[len(s.segs)-1]
	s.durable = Position{seg: a.seq, off: a.size, n: a.count}
	return nil
}
