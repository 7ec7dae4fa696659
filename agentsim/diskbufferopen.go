// Opening a DiskBuffer: its files created, or read back after a restart or
// a crash (loadLog).

package agentsim

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"outpost/relay/wire"
)

// OpenDiskBuffer opens (creating if needed) the buffer kept in dir.
func OpenDiskBuffer(dir string) (*DiskBuffer, error) {
	return OpenDiskBufferOptions(dir, DiskBufferOptions{})
}

// OpenDiskBufferOptions is OpenDiskBuffer with options.
func OpenDiskBufferOptions(dir string, opt DiskBufferOptions) (*DiskBuffer, error) {
	if dir == "" {
		return nil, errors.New("agentsim: buffer: no directory given")
	}
	if opt.CompactBytes <= 0 {
		opt.CompactBytes = 1 << 20
	}
	if opt.MaxRecords <= 0 {
		opt.MaxRecords = 1_000_000
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("agentsim: buffer: %w", err)
	}
	b := &DiskBuffer{dir: dir, opt: opt, above: map[uint64]bool{}}

	// What was acknowledged. A damaged state file (it is replaced
	// atomically, so only outside interference damages it) means every
	// record in the log is sent again: duplicates, which the collector
	// counts, rather than loss.
	var st diskState
	if raw, err := os.ReadFile(filepath.Join(dir, bufStateFile)); err == nil {
		if json.Unmarshal(raw, &st) != nil {
			st = diskState{}
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("agentsim: buffer: %w", err)
	}
	b.through, b.last = st.AckedThrough, max(st.LastSeq, st.AckedThrough)
	for _, s := range st.Acked {
		if s > b.through {
			b.above[s] = true
			b.last = max(b.last, s)
		}
	}

	seqf, err := os.OpenFile(filepath.Join(dir, bufSeqFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("agentsim: buffer: %w", err)
	}
	if raw, err := io.ReadAll(io.LimitReader(seqf, 64)); err == nil {
		if n, err := strconv.ParseUint(strings.TrimSpace(string(raw)), 10, 64); err == nil {
			b.last = max(b.last, n)
		}
	}
	b.seqf = seqf

	if err := b.loadLog(); err != nil {
		seqf.Close()
		return nil, err
	}
	b.last = max(b.last, b.maxAdded)
	if b.logSize-b.pendSize > b.opt.CompactBytes {
		if err := b.compactLocked(); err != nil {
			b.log.Close()
			seqf.Close()
			return nil, err
		}
	}
	return b, nil
}

// loadLog reads events.log: undelivered records go to pending, a torn
// last line is truncated away.
func (b *DiskBuffer) loadLog() error {
	path := filepath.Join(b.dir, bufLogFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("agentsim: buffer: %w", err)
	}
	r := bufio.NewReaderSize(f, 64<<10)
	var off int64
	for {
		line, err := r.ReadBytes('\n')
		if len(line) > 0 && line[len(line)-1] == '\n' {
			size := int64(len(line))
			var rec wire.Record
			if jerr := json.Unmarshal(bytes.TrimSpace(line), &rec); jerr != nil || rec.Seq == 0 {
				b.skipped++ // damaged line: its bytes count as acknowledged
			} else {
				b.maxAdded = max(b.maxAdded, rec.Seq)
				if rec.Seq > b.through && !b.above[rec.Seq] {
					b.pending = append(b.pending, diskRec{rec: rec, size: size})
					b.pendSize += size
				}
			}
			off += size
		}
		if err == io.EOF {
			break
		} else if err != nil {
			f.Close()
			return fmt.Errorf("agentsim: buffer: read %s: %w", path, err)
		}
	}
	if st, err := f.Stat(); err == nil && st.Size() > off {
		// A write cut short by a crash: drop the partial line so the next
		// append starts on a line of its own.
		if err := f.Truncate(off); err != nil {
			f.Close()
			return fmt.Errorf("agentsim: buffer: truncate torn record: %w", err)
		}
		f.Sync()
	}
	// Records from before a lost state update may appear out of order
	// relative to acknowledged ones; keep pending sorted by Seq.
	for i := 1; i < len(b.pending); i++ {
		if b.pending[i].rec.Seq <= b.pending[i-1].rec.Seq {
			sortPending(b.pending)
			break
		}
	}
	b.log, b.logSize = f, off
	return nil
}

func sortPending(p []diskRec) {
	// insertion sort: the log is sorted but for rare exceptions
	for i := 1; i < len(p); i++ {
		for j := i; j > 0 && p[j].rec.Seq < p[j-1].rec.Seq; j-- {
			p[j], p[j-1] = p[j-1], p[j]
		}
	}
}
