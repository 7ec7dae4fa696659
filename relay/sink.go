package relay

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"outpost/relay/cachering"
	"outpost/relay/spool"
	"outpost/relay/wire"
	"outpost/store"
)

// sinkSet is the relay's data path. Events are acknowledged to agents only
// once Append returned, i.e. once they are durable: in forward mode in the
// on-disk spool (drained upstream under the policy's limits), in cache mode
// in the cluster's NDJSON ring. The spool stays open in cache mode so that
// data spooled before a policy change still drains.
type sinkSet struct {
	s      *Server
	spool  *spool.Spool
	client *http.Client
	local  bool // client serves the built-in collector in-process

	mu      sync.RWMutex
	policy  wire.Policy
	ring    *cachering.Ring
	ringDir string
	// Recovery losses of every ring opened since start (a policy change
	// can replace the ring).
	cacheLostRecs, cacheLostBytes int64

	bw     *rate.Limiter // upstream bytes/s
	freq   *rate.Limiter // upstream requests/s
	intake *rate.Limiter // agent event requests/s (same figure: back pressure)
	lag    *lagGate      // intake waits for forwarding (forward mode)
	framed atomic.Bool   // upstream takes wire.ContentTypeRecords

	cancel context.CancelFunc
	done   chan struct{}
}

func newSinkSet(s *Server, p wire.Policy) (*sinkSet, error) {
	sp, err := spool.Open(filepath.Join(s.cfg.DataDir, "spool"), spool.Options{
		MaxBytes: s.cfg.SpoolMax, SyncInterval: s.cfg.SpoolSync, Log: s.log,
		// One cursor fsync a second instead of one per upstream batch; a
		// crash re-sends at most a second of records, counted as duplicates.
		CursorSync: time.Second,
	})
	if err != nil {
		return nil, fmt.Errorf("open spool: %w", err)
	}
	if st := sp.Stats(); st.DroppedRecords > 0 || st.DroppedBytes > 0 {
		s.log.Warn("relay: spool: recovery dropped records (damaged or torn; see the lines above)",
			"records", st.DroppedRecords, "bytes", st.DroppedBytes)
	}
	k := &sinkSet{s: s, spool: sp, bw: rate.NewLimiter(rate.Inf, 0), freq: rate.NewLimiter(rate.Inf, 0),
		intake: rate.NewLimiter(rate.Inf, 0), lag: newLagGate(s.cfg.ForwardLag), done: make(chan struct{})}
	k.framed.Store(true)
	k.client = &http.Client{Timeout: 60 * time.Second, Transport: wire.PinTransport(&http.Transport{MaxIdleConnsPerHost: 4}, s.cfg.ManagerCA)}
	if s.mgmt != nil && s.cfg.Collector != nil && s.cfg.Upstream == "" {
		// The built-in collector is served in-process, not over the network
		// (unless the operator named another upstream).
		k.client = &http.Client{Timeout: 60 * time.Second, Transport: handlerTransport{s.mgmt.requireIngestAuth(s.cfg.Collector)}}
		k.local = true
	}
	if err := k.apply(p); err != nil {
		sp.Close()
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	k.cancel = cancel
	go k.forwardLoop(ctx)
	return k, nil
}

// apply switches mode and limits live, without a restart.
func (k *sinkSet) apply(p wire.Policy) error {
	if p.Mode == "" {
		p.Mode = wire.ModeForward
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if p.Mode == wire.ModeCache {
		dir := p.CacheDir
		if dir == "" {
			dir = store.DefaultCacheDir
		}
		if !filepath.IsAbs(dir) {
			dir = filepath.Join(k.s.cfg.DataDir, dir)
		}
		if k.ring != nil && k.ringDir != dir {
			k.ring.Close()
			k.ring = nil
		}
		if k.ring == nil {
			r, err := cachering.Open(dir, cachering.Options{MaxBytes: p.CacheMax, Log: k.s.log})
			if err != nil {
				return fmt.Errorf("open cache %s: %w", dir, err)
			}
			k.ring, k.ringDir = r, dir
			if st := r.Stats(); st.RecoveryDroppedRecords > 0 || st.RecoveryDroppedBytes > 0 {
				k.cacheLostRecs += st.RecoveryDroppedRecords
				k.cacheLostBytes += st.RecoveryDroppedBytes
				k.s.log.Warn("relay: cache: recovery dropped records (a line torn by a crash)",
					"dir", dir, "records", st.RecoveryDroppedRecords, "bytes", st.RecoveryDroppedBytes)
			}
		} else if p.CacheMax > 0 {
			if err := k.ring.SetMax(p.CacheMax); err != nil {
				return err
			}
		}
	}
	setLimit(k.bw, p.BandwidthBps, max(min(p.BandwidthBps/10, 1<<20), 512))
	setLimit(k.freq, p.FrequencyRPS, 1)
	setLimit(k.intake, p.FrequencyRPS, max(p.FrequencyRPS, 1))
	if k.policy.Upstream != p.Upstream {
		k.framed.Store(true) // a new upstream gets frames again
	}
	if k.policy != p {
		k.s.log.Info("relay: policy applied", "mode", p.Mode, "bandwidth", store.FormatBandwidth(p.BandwidthBps), "frequency", p.FrequencyRPS)
	}
	k.policy = p
	return nil
}

func setLimit(l *rate.Limiter, perSec int64, burst int64) {
	if perSec <= 0 {
		l.SetLimit(rate.Inf)
		return
	}
	l.SetLimit(rate.Limit(perSec))
	l.SetBurst(int(burst))
}

func (k *sinkSet) mode() wire.Mode {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.policy.Mode
}

func (k *sinkSet) admit() bool { return k.intake.Allow() }

// keepUp makes an event batch wait while forwarding is behind (lagGate).
func (k *sinkSet) keepUp(ctx context.Context) bool {
	if k.mode() != wire.ModeForward {
		return false
	}
	return k.lag.wait(ctx, func() int64 { return k.spool.Stats().Bytes })
}

// append stores a framed batch durably (see frameEvents: its records are
// valid JSON, one per line, so the cache ring does not check them again).
func (k *sinkSet) append(l *wire.Lines) error {
	lines := make([][]byte, l.Len())
	for i := range lines {
		lines[i] = l.Line(i)
	}
	k.mu.RLock()
	defer k.mu.RUnlock()
	if k.policy.Mode == wire.ModeCache && k.ring != nil {
		err := k.ring.AppendValid(lines...)
		var le *cachering.LineError
		if errors.As(err, &le) {
			return &recordTooLarge{index: le.Index, size: le.Size, limit: le.Limit, where: "cache segment"}
		}
		return err
	}
	if lim := k.spool.MaxRecord(); lim > 0 {
		for i, l := range lines {
			if int64(len(l)) > lim {
				return &recordTooLarge{index: i, size: int64(len(l)), limit: lim, where: "spool"}
			}
		}
	}
	return k.spool.Append(lines...)
}

// recordTooLarge: one record can never be stored under the current
// limits. The agent is answered 413 and keeps it; storing it in the cache
// would take the ring past its cap and evict everything older.
type recordTooLarge struct {
	index       int
	size, limit int64
	where       string
}

func (e *recordTooLarge) Error() string {
	return fmt.Sprintf("record %d is %d bytes, larger than this relay stores (%s: %d bytes)", e.index, e.size, e.where, e.limit)
}

// tooLarge reports the 413 message for an append error about one record
// of recs, naming its sequence number.
func tooLarge(err error, seqs []uint64) (string, bool) {
	var e *recordTooLarge
	if !errors.As(err, &e) {
		return "", false
	}
	seq := uint64(0)
	if e.index < len(seqs) {
		seq = seqs[e.index]
	}
	return fmt.Sprintf("record seq %d is %d bytes, more than this relay can store (%s holds at most %d bytes)",
		seq, e.size, e.where, e.limit), true
}

func isFull(err error) bool { return errors.Is(err, spool.ErrFull) }

func (k *sinkSet) upstream() string {
	k.mu.RLock()
	u := k.policy.Upstream
	k.mu.RUnlock()
	switch {
	case u != "":
	case k.s.cfg.Upstream != "":
		u = k.s.cfg.Upstream
	case k.s.mgmt != nil:
		u = "http://collector.internal" // served in-process by handlerTransport
	default:
		u = strings.TrimRight(k.s.cfg.Manager, "/")
	}
	if !strings.HasSuffix(u, wire.PathIngest) {
		u = strings.TrimRight(u, "/") + wire.PathIngest
	}
	return u
}

// batchBytes caps one upstream request. Under a bandwidth limit a request
// carries about a tenth of a second's budget (or one request's share under
// a frequency limit), so the upstream sees a steady rate instead of a large
// burst after a long wait.
func (k *sinkSet) batchBytes() int {
	k.mu.RLock()
	p := k.policy
	k.mu.RUnlock()
	n := int64(1 << 20)
	if p.BandwidthBps > 0 {
		per := p.BandwidthBps / 10
		if p.FrequencyRPS > 0 {
			per = max(per, p.BandwidthBps/p.FrequencyRPS)
		}
		n = min(n, max(per, 4<<10))
	}
	return int(n)
}

// throttle waits for the frequency and bandwidth budgets; WaitN is called in
// chunks no larger than the burst, which it requires.
func (k *sinkSet) throttle(ctx context.Context, n int) error {
	if err := k.freq.Wait(ctx); err != nil {
		return err
	}
	for n > 0 {
		if k.bw.Limit() == rate.Inf {
			return nil
		}
		chunk := min(n, k.bw.Burst())
		if err := k.bw.WaitN(ctx, chunk); err != nil {
			if ctx.Err() != nil {
				return err
			}
			continue // burst changed under us: retry with the new one
		}
		n -= chunk
	}
	return nil
}

func (k *sinkSet) post(ctx context.Context, body []byte, framed bool) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, k.upstream(), bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if framed {
		req.Header.Set("Content-Type", wire.ContentTypeRecords)
	}
	if k.local {
		req.Header.Set("Authorization", wire.Bearer(k.s.mgmt.ingestToken))
	} else {
		if j := k.s.joined; j != nil {
			req.Header.Set(wire.HeaderRelay, j.ident.header())
		}
		if t := k.s.cfg.UpstreamToken; t != "" {
			req.Header.Set("Authorization", wire.Bearer(t))
		}
	}
	resp, err := k.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	defer io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // keep the connection
	if resp.StatusCode != http.StatusOK {
		re := readRemoteError(resp)
		if re == nil {
			re = &remoteError{status: resp.StatusCode, msg: http.StatusText(resp.StatusCode)}
		}
		return fmt.Errorf("upstream answered %w", re)
	}
	return nil
}

// refusesFrames: the answer of an upstream that does not read record
// frames (415, or an older collector's 400 for a batch it could not parse
// as JSON), as opposed to one that read them and found one damaged.
func refusesFrames(err error) bool {
	var re *remoteError
	return errors.As(err, &re) && (re.status == http.StatusUnsupportedMediaType ||
		re.status == http.StatusBadRequest && re.code != wire.CodeBadRecord)
}

func (k *sinkSet) stats() (spoolBytes, pending int64, cacheBytes int64) {
	st := k.spool.Stats()
	k.mu.RLock()
	defer k.mu.RUnlock()
	if k.ring != nil {
		cacheBytes = k.ring.Stats().Bytes
	}
	return st.Bytes, st.Pending, cacheBytes
}

// cacheDropped reports what recovery of the cache rings cut.
func (k *sinkSet) cacheDropped() (records, bytes int64) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.cacheLostRecs, k.cacheLostBytes
}

// Close stops forwarding and syncs everything acknowledged to disk.
func (k *sinkSet) Close() error {
	k.cancel()
	<-k.done
	k.client.CloseIdleConnections()
	var errs []error
	errs = append(errs, k.spool.Close())
	k.mu.Lock()
	if k.ring != nil {
		errs = append(errs, k.ring.Close())
	}
	k.mu.Unlock()
	return errors.Join(errs...)
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// handlerTransport serves HTTP requests with an in-process handler.
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	rec := &recorder{header: http.Header{}}
	t.h.ServeHTTP(rec, r)
	if rec.code == 0 {
		rec.code = http.StatusOK
	}
	return &http.Response{
		Status: fmt.Sprintf("%d %s", rec.code, http.StatusText(rec.code)), StatusCode: rec.code,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Header: rec.header,
		Body: io.NopCloser(&rec.body), ContentLength: int64(rec.body.Len()), Request: r,
	}, nil
}

// recorder is the http.ResponseWriter handlerTransport hands the handler
// (production code, so not net/http/httptest's).
type recorder struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func (w *recorder) Header() http.Header { return w.header }

func (w *recorder) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
}

func (w *recorder) Write(b []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return w.body.Write(b)
}
