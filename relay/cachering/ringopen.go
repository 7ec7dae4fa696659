package cachering

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"outpost/relay/logs"
	"outpost/relay/wire"
)

// Open opens or creates the ring in dir, repairing a torn last line and
// trimming to the cap.
func Open(dir string, opts Options) (*Ring, error) {
	if opts.FileName == "" {
		opts.FileName = DefaultFileName
	}
	if opts.FileName != filepath.Base(opts.FileName) || opts.FileName == "." || opts.FileName == ".." {
		return nil, fmt.Errorf("cachering: FileName %q must be a plain file name", opts.FileName)
	}
	capBytes, err := checkMax(opts.MaxBytes)
	if err != nil {
		return nil, err
	}
	if opts.SegmentBytes < 0 {
		return nil, fmt.Errorf("cachering: negative SegmentBytes %d", opts.SegmentBytes)
	}
	r := &Ring{
		dir:      dir,
		name:     opts.FileName,
		log:      logs.OrDiscard(opts.Log),
		syncEach: opts.SyncEach,
		userSeg:  opts.SegmentBytes,
		max:      capBytes,
		next:     1,
		perm:     0o600,
	}
	r.seg = r.segFor(capBytes)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("cachering: %w", err)
	}
	if fi, err := os.Stat(dir); err == nil && fi.Mode().Perm()&0o050 == 0o050 {
		r.perm = 0o640 // the operator opened the directory to a group (a shipper)
	}
	if err := r.scan(); err != nil {
		return nil, err
	}
	livePath := filepath.Join(dir, r.name)
	if r.torn, err = repairTail(livePath, r.log); err != nil {
		return nil, err
	}
	if err := r.openLive(); err != nil {
		return nil, err
	}
	if err := wire.SyncDir(dir); err != nil {
		r.f.Close()
		return nil, fmt.Errorf("cachering: %w", err)
	}
	r.mu.Lock()
	r.trim()
	r.mu.Unlock()
	return r, nil
}

// checkMax applies the default and the 10 GB ceiling.
func checkMax(n int64) (int64, error) {
	switch {
	case n == 0:
		return MaxCap, nil
	case n < 0:
		return 0, fmt.Errorf("cachering: negative MaxBytes %d", n)
	case n > MaxCap:
		return 0, fmt.Errorf("%w: %d bytes asked, at most %d (10 GB)", ErrCapTooLarge, n, MaxCap)
	case n < MinSegmentBytes:
		return 0, fmt.Errorf("cachering: MaxBytes %d below the minimum %d", n, MinSegmentBytes)
	}
	return n, nil
}

// segFor gives the segment size to use under a cap of capBytes.
func (r *Ring) segFor(capBytes int64) int64 {
	s := r.userSeg
	if s == 0 {
		s = capBytes / 20
	}
	return min(max(s, MinSegmentBytes), capBytes)
}

// scan loads the rotated segments already in the directory.
func (r *Ring) scan() error {
	ents, err := os.ReadDir(r.dir)
	if err != nil {
		return fmt.Errorf("cachering: %w", err)
	}
	prefix := r.name + "."
	for _, e := range ents {
		n, ok := strings.CutPrefix(e.Name(), prefix)
		if !ok || !e.Type().IsRegular() || !wire.AllDigits(n) {
			continue
		}
		num, err := strconv.ParseUint(n, 10, 64)
		if err != nil {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			return fmt.Errorf("cachering: %w", err)
		}
		r.segs = append(r.segs, segment{num: num, size: fi.Size()})
		r.rotated += fi.Size()
		r.next = max(r.next, num+1)
	}
	slices.SortFunc(r.segs, func(a, b segment) int { return cmp.Compare(a.num, b.num) })
	return nil
}

// repairTail cuts an unterminated last line (a write torn by a crash; it
// was never acknowledged) so the file stays valid NDJSON.
func repairTail(path string, log *slog.Logger) (cut int64, _ error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("cachering: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, fmt.Errorf("cachering: %w", err)
	}
	size := fi.Size()
	if size == 0 {
		return 0, nil
	}
	keep, err := lastLineEnd(f, size)
	if err != nil {
		return 0, fmt.Errorf("cachering: %w", err)
	}
	if keep == size {
		return 0, nil
	}
	log.Warn("cachering: cutting the torn last line", "segment", filepath.Base(path), "bytes", size-keep)
	if err := f.Truncate(keep); err != nil {
		return 0, fmt.Errorf("cachering: %w", err)
	}
	return size - keep, f.Sync()
}

// lastLineEnd returns the offset just after the last '\n' in f (0 if none).
func lastLineEnd(f io.ReaderAt, size int64) (int64, error) {
	buf := make([]byte, 64<<10)
	end := size
	for end > 0 {
		start := max(0, end-int64(len(buf)))
		b := buf[:end-start]
		if _, err := f.ReadAt(b, start); err != nil && err != io.EOF {
			return 0, err
		}
		if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
			return start + int64(i) + 1, nil
		}
		end = start
	}
	return 0, nil
}

// openLive opens (or creates) the live file for appending.
func (r *Ring) openLive() error {
	f, size, err := wire.OpenAppend(filepath.Join(r.dir, r.name), r.perm)
	if err != nil {
		return fmt.Errorf("cachering: %w", err)
	}
	r.f, r.live = f, size
	return nil
}

// Append writes each line (one JSON value; a trailing newline is optional)
