package spool

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"outpost/relay/internal/fsx"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
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
	if err := fsx.WriteFileAtomic(filepath.Join(dir, cursorName), b, 0o644); err != nil {
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

// scanResult describes the valid prefix of a segment file.
type scanResult struct {
	end, count     int64  // bytes and records of whole, verified frames
	markOff, markN int64  // last frame boundary <= mark, records before it
	size           int64  // file size
	problem        string // why scanning stopped before size, or ""
	torn           bool   // the problem can only be an unfinished write
}

// scanSegment verifies every frame of f. A problem counts as torn when no
// complete frame can follow it: a partial header or payload, a zero-filled
// tail, or a checksum mismatch in the frame that ends the file.
func scanSegment(f *os.File, mark int64) (scanResult, error) {
	var r scanResult
	st, err := f.Stat()
	if err != nil {
		return r, err
	}
	r.size = st.Size()
	br := bufio.NewReaderSize(io.NewSectionReader(f, 0, r.size), 1<<20)
	var hdr [frameHeader]byte
	var buf []byte
	off := int64(0)
	for off < r.size {
		rem := r.size - off
		if rem < frameHeader {
			r.problem, r.torn = fmt.Sprintf("partial frame header (%d bytes)", rem), true
			break
		}
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			return r, err
		}
		n := int64(binary.LittleEndian.Uint32(hdr[:]))
		sum := binary.LittleEndian.Uint32(hdr[4:])
		if n == 0 {
			zero, err := restIsZero(br)
			if err != nil {
				return r, err
			}
			r.problem, r.torn = "zero-length frame", zero && sum == 0
			if r.torn {
				r.problem = "zero-filled tail"
			}
			break
		}
		if n > rem-frameHeader {
			r.problem, r.torn = fmt.Sprintf("frame of %d bytes runs past end of file", n), true
			break
		}
		if int64(cap(buf)) < n {
			buf = make([]byte, n)
		}
		buf = buf[:n]
		if _, err := io.ReadFull(br, buf); err != nil {
			return r, err
		}
		if crc32.Checksum(buf, castagnoli) != sum {
			r.problem, r.torn = "checksum mismatch", off+frameHeader+n == r.size
			break
		}
		off += frameHeader + n
		r.count++
		if off <= mark {
			r.markOff, r.markN = off, r.count
		}
	}
	r.end = off
	return r, nil
}

func restIsZero(r io.Reader) (bool, error) {
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Read(buf)
		for _, c := range buf[:n] {
			if c != 0 {
				return false, nil
			}
		}
		if err == io.EOF {
			return true, nil
		}
		if err != nil {
			return false, err
		}
	}
}

// recover rebuilds the in-memory state from dir; see the package doc for
// the rules. It leaves s.active open on the last segment.
func (s *Spool) recover() error {
	dir := s.dir
	if err := os.Remove(filepath.Join(dir, cursorTmp)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	seqs, err := listSegments(dir)
	if err != nil {
		return err
	}
	cur, ok, bad, err := readCursor(dir)
	if err != nil {
		return err
	}
	dirty := false // cursor must be rewritten
	if bad != "" {
		s.corrupt++
		s.logf("spool: %s; redelivering from the oldest segment", bad)
		dirty = true
	}
	if !ok {
		cur = Position{seg: 1}
		if len(seqs) > 0 {
			cur.seg = seqs[0]
		}
	}
	var consumed []uint64 // below the cursor: deleted once it is durable
	for len(seqs) > 0 && seqs[0] < cur.seg {
		consumed = append(consumed, seqs[0])
		seqs = seqs[1:]
	}
	if len(seqs) > 0 && seqs[0] != cur.seg {
		s.corrupt++
		s.logf("spool: cursor %v points into missing segment %s; moving to %s",
			cur, segName(cur.seg), segName(seqs[0]))
		cur, dirty = Position{seg: seqs[0]}, true
	} else if len(seqs) == 0 && cur.off != 0 {
		s.corrupt++
		s.logf("spool: cursor %v points into missing segment %s; starting it afresh", cur, segName(cur.seg))
		cur, dirty = Position{seg: cur.seg}, true
	}
	for i := 1; i < len(seqs); i++ {
		if gap := seqs[i] - seqs[i-1] - 1; gap > 0 {
			s.corrupt += int64(gap)
			s.logf("spool: %d segment file(s) missing before %s; their records are lost",
				gap, segName(seqs[i]))
		}
	}

	for i, seq := range seqs {
		last := i == len(seqs)-1
		path := filepath.Join(dir, segName(seq))
		flag := os.O_RDONLY
		if last {
			flag = os.O_RDWR
		}
		f, err := os.OpenFile(path, flag, 0)
		if err != nil {
			return err
		}
		mark := int64(-1)
		if seq == cur.seg {
			mark = cur.off
		}
		r, err := scanSegment(f, mark)
		if err != nil {
			f.Close()
			return fmt.Errorf("spool: scan %s: %w", segName(seq), err)
		}
		seg := &segment{seq: seq, size: r.end, count: r.count, sealed: !last}
		switch {
		case r.problem == "":
		case last && r.torn:
			s.logf("spool: %s: torn tail (%s) at offset %d; truncating %d bytes",
				segName(seq), r.problem, r.end, r.size-r.end)
			if err := f.Truncate(r.end); err != nil {
				f.Close()
				return fmt.Errorf("spool: truncate torn tail: %w", err)
			}
		default:
			// Frames after the damage cannot be located reliably: skip to
			// the next segment. The bytes stay on disk for inspection.
			s.corrupt++
			s.logf("spool: %s: %s at offset %d; skipping %d bytes to the next segment",
				segName(seq), r.problem, r.end, r.size-r.end)
			seg.sealed = true
		}
		if seq == cur.seg {
			if r.markOff != cur.off {
				s.logf("spool: cursor %v is not at a valid record boundary; moving back to %d", cur, r.markOff)
				dirty = true
			}
			cur = Position{seg: seq, off: r.markOff, n: r.markN}
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
	}

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
		consumed = append(consumed, s.segs[0].seq)
		s.total -= s.segs[0].size
		s.records -= s.segs[0].count
		s.segs = s.segs[1:]
		cur, dirty = Position{seg: s.segs[0].seq}, true
	}
	if dirty {
		if err := writeCursor(dir, cur); err != nil {
			return err
		}
	}
	for _, seq := range consumed {
		if err := os.Remove(filepath.Join(dir, segName(seq))); err != nil && !errors.Is(err, os.ErrNotExist) {
			s.logf("spool: removing consumed segment: %v", err)
		}
	}
	s.cursor, s.saved, s.savedAt = cur, cur, time.Now()
	a := s.segs[len(s.segs)-1]
	s.durable = Position{seg: a.seq, off: a.size, n: a.count}
	return nil
}
