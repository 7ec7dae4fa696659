package collector

import (
	"bufio"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"outpost/relay/logs"
	"outpost/relay/wire"
)

// Limits of the ingest endpoint and the segment files.
const (
	MaxBody      = 16 << 20 // request body, before and after gzip
	SegmentBytes = 64 << 20 // a segment file is closed past this size
)

// ErrClosed is returned (and served as 503) once Close has been called.
var ErrClosed = errors.New("collector: closed")

// Collector stores records from relays durably and exactly once per
// (agent, seq). It is safe for concurrent use.
type Collector struct {
	dir      string
	log      *slog.Logger
	segBytes int64 // rotation size; tests lower it

	syncMu sync.Mutex // one fsync leader at a time

	mu       sync.Mutex
	f        *os.File // current segment; nil if closed or reopening failed
	num      uint64   // number of the current segment
	size     int64    // size of the current segment
	agents   map[string]*seqSet
	dups     uint64
	total    uint64
	lostRecs int64  // lines New could not load (torn or unreadable)
	lostB    int64  // and their bytes
	writeGen uint64 // bumped by every write
	durable  uint64 // writes up to this generation are fsynced
	failed   error  // sticky: state may claim records not on disk
	closed   bool
	syncing  *os.File // file the fsync leader is syncing
	retire   *os.File // rotated file to close once the leader is done
}

// New opens the collector's store in dir, rebuilding the per-agent state
// from the segments already there so that duplicates are still detected
// after a restart.
func New(dir string, log *slog.Logger) (*Collector, error) {
	c := &Collector{dir: dir, log: logs.OrDiscard(log), segBytes: SegmentBytes, agents: map[string]*seqSet{}}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("collector: %w", err)
	}
	nums, err := c.segments()
	if err != nil {
		return nil, err
	}
	for i, n := range nums {
		if err := c.load(n, i == len(nums)-1); err != nil {
			return nil, err
		}
	}
	c.num = 1
	if len(nums) > 0 {
		c.num = nums[len(nums)-1]
	}
	if err := c.open(); err != nil {
		return nil, err
	}
	if c.size >= c.segBytes {
		if err := c.rotate(); err != nil {
			c.f.Close()
			return nil, err
		}
	}
	if len(nums) > 0 {
		c.log.Info("collector: rebuilt state", "segments", len(nums), "agents", len(c.agents), "records", c.total)
	}
	return c, nil
}

func segName(n uint64) string { return fmt.Sprintf("ingest-%06d.ndjson", n) }

// segments lists the segment numbers in dir, oldest first.
func (c *Collector) segments() ([]uint64, error) {
	ents, err := os.ReadDir(c.dir)
	if err != nil {
		return nil, fmt.Errorf("collector: %w", err)
	}
	var nums []uint64
	for _, e := range ents {
		s, ok := strings.CutPrefix(e.Name(), "ingest-")
		if !ok || !e.Type().IsRegular() {
			continue
		}
		s, ok = strings.CutSuffix(s, ".ndjson")
		if !ok || s == "" || strings.Trim(s, "0123456789") != "" {
			continue
		}
		n, err := strconv.ParseUint(s, 10, 64)
		if err == nil && n > 0 {
			nums = append(nums, n)
		}
	}
	slices.SortFunc(nums, cmp.Compare)
	return nums, nil
}

// load replays one segment into the per-agent state. In the newest segment
// an unterminated last line (a write torn by a crash, never acknowledged)
// is cut off.
func (c *Collector) load(num uint64, last bool) error {
	path := filepath.Join(c.dir, segName(num))
	flag := os.O_RDONLY
	if last {
		flag = os.O_RDWR
	}
	f, err := os.OpenFile(path, flag, 0)
	if err != nil {
		return fmt.Errorf("collector: %w", err)
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 256<<10)
	var (
		off, good int64
		bad       int
		line      []byte
	)
	for {
		chunk, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			line = append(line, chunk...)
			continue
		}
		if len(line) > 0 {
			chunk = append(line, chunk...)
			line = line[:0]
		}
		if err == io.EOF {
			if len(chunk) > 0 { // torn tail
				c.lostRecs++
				c.lostB += int64(len(chunk))
				if !last {
					bad++
					break
				}
				c.log.Warn("collector: cutting the torn last line", "segment", segName(num), "bytes", len(chunk))
				if err := f.Truncate(good); err != nil {
					return fmt.Errorf("collector: %w", err)
				}
				if err := f.Sync(); err != nil {
					return fmt.Errorf("collector: %w", err)
				}
			}
			break
		}
		if err != nil {
			return fmt.Errorf("collector: read %s: %w", segName(num), err)
		}
		off += int64(len(chunk))
		good = off
		var id struct {
			Agent string `json:"agent"`
			Seq   uint64 `json:"seq"`
		}
		if json.Unmarshal(chunk, &id) != nil || id.Agent == "" || id.Seq == 0 {
			bad++
			c.lostRecs++
			c.lostB += int64(len(chunk))
			continue
		}
		c.mark(id.Agent, id.Seq)
	}
	if bad > 0 {
		c.log.Warn("collector: skipped unreadable lines", "segment", segName(num), "lines", bad)
	}
	return nil
}

// mark records (agent, seq) as stored; callers hold mu or own c.
func (c *Collector) mark(agent string, seq uint64) bool {
	s := c.agents[agent]
	if s == nil {
		s = &seqSet{}
		c.agents[agent] = s
	}
	if !s.add(seq) {
		return false
	}
	c.total++
	return true
}

// open opens segment c.num for appending.
func (c *Collector) open() error {
	f, size, err := wire.OpenAppend(filepath.Join(c.dir, segName(c.num)), 0o600)
	if err != nil {
		return fmt.Errorf("collector: %w", err)
	}
	if err := wire.SyncDir(c.dir); err != nil {
		f.Close()
		return fmt.Errorf("collector: %w", err)
	}
	c.f, c.size = f, size
	return nil
}

// release fsyncs and closes the current segment (or leaves the close to a
// running fsync leader). Callers hold mu.
func (c *Collector) release() error {
	f := c.f
	c.f = nil
	err := f.Sync()
	if err != nil {
		c.fail(fmt.Errorf("collector: fsync: %w", err))
	} else {
		c.durable = c.writeGen
	}
	if c.syncing == f {
		c.retire = f
	} else {
		f.Close()
	}
	return c.failed
}

// rotate starts the next segment. Callers hold mu.
func (c *Collector) rotate() error {
	if err := c.release(); err != nil {
		return err
	}
	c.num++
	return c.open()
}

// fail makes the collector refuse all further work: after a failed fsync
// the in-memory state may count records that are not on disk, and only a
// restart (which rebuilds from the files) makes it truthful again.
func (c *Collector) fail(err error) {
	if c.failed == nil {
		c.failed = err
		c.log.Error("collector: refusing ingest until restart", "err", err)
	}
}

// usable reports why ingest cannot proceed. Callers hold mu.
func (c *Collector) usable() error {
	switch {
	case c.closed:
		return ErrClosed
	case c.failed != nil:
		return c.failed
	case c.f == nil:
		return c.open() // a rotation could not open the next file
	}
	return nil
}

// write appends data to the current segment, rotating first if needed. On
// failure the file is cut back so it never ends in a partial line. Callers
// hold mu.
func (c *Collector) write(data []byte) error {
	if c.size > 0 && c.size+int64(len(data)) > c.segBytes {
		if err := c.rotate(); err != nil {
			return err
		}
	}
	size, err, terr := wire.AppendWhole(c.f, c.size, data)
	c.size = size
	if err == nil {
		return nil
	}
	if terr != nil {
		c.fail(fmt.Errorf("collector: cannot cut partial write: %w", terr))
	}
	return fmt.Errorf("collector: write: %w", err)
}

// waitDurable returns once every write up to gen is fsynced, leading the
// fsync if nobody else is, so concurrent batches share one fsync.
func (c *Collector) waitDurable(gen uint64) error {
	c.syncMu.Lock()
	defer c.syncMu.Unlock()
	c.mu.Lock()
	if c.failed != nil || c.durable >= gen {
		err := c.failed
		c.mu.Unlock()
		return err
	}
	// Not durable, not failed: no release since gen was written, so c.f
	// is the file holding it.
	f, target := c.f, c.writeGen
	c.syncing = f
	c.mu.Unlock()

	err := f.Sync()

	c.mu.Lock()
	defer c.mu.Unlock()
	c.syncing = nil
	if c.retire == f {
		c.retire = nil
		f.Close()
	}
	if err != nil {
		c.fail(fmt.Errorf("collector: fsync: %w", err))
		return c.failed
	}
	c.durable = max(c.durable, target)
	return nil
}

// Stats returns the per-agent counts since the store was created; the
// duplicate count starts at zero on every restart.
func (c *Collector) Stats() wire.CollectorStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := wire.CollectorStats{
		Received:   make(map[string]uint64, len(c.agents)),
		Duplicates: c.dups,
		Total:      c.total,
	}
	for a, s := range c.agents {
		st.Received[a] = s.n
	}
	return st
}

// RecoveryDropped reports the lines New found torn or unreadable in the
// segments (records and bytes): data on disk that counts as not received.
func (c *Collector) RecoveryDropped() (records, bytes int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lostRecs, c.lostB
}

// handler is Collector.Handler's result; it also answers RecoveryDropped
// so that a relay serving it can report the collector's damage.
type handler struct {
	http.Handler
	c *Collector
}

func (h handler) RecoveryDropped() (records, bytes int64) { return h.c.RecoveryDropped() }

// Received returns how many distinct records of agent are stored.
func (c *Collector) Received(agent string) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s := c.agents[agent]; s != nil {
		return s.n
	}
	return 0
}

// Close fsyncs and closes the current segment; later requests get 503.
func (c *Collector) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	if c.f == nil {
		return c.failed
	}
	return c.release()
}
