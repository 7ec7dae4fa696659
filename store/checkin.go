package store

import (
	"context"
	"database/sql"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// Checkin is one agent contact as the relay saw it.
type Checkin struct {
	AgentID     string
	At          time.Time
	ViaProxyID  int64 // 0 = direct
	Fingerprint string
	Host        *HostFacts
	Inventory   *Inventory
	CPU, Mem    float64
}

// RecordCheckins writes many agents' check-ins in one transaction: one
// fsync for the batch instead of one per agent. A fingerprint that differs
// from the enrolled one flags the identity as duplicated (cloned image or
// copied agent directory); the flag stays until the clone re-enrols.
func (db *DB) RecordCheckins(ctx context.Context, batch []Checkin) error {
	if len(batch) == 0 {
		return nil
	}
	tx, err := db.BeginTx(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	// A clone (fingerprint differs) only raises the duplicate flag: the
	// original's connection, load and inventory are not overwritten by it.
	seen, err := tx.PrepareContext(ctx, `UPDATE agents SET
		last_checkin = CASE WHEN ?1 = '' OR ?1 = fingerprint THEN MAX(last_checkin, ?2) ELSE last_checkin END,
		cpu = CASE WHEN ?1 = '' OR ?1 = fingerprint THEN ?4 ELSE cpu END,
		mem = CASE WHEN ?1 = '' OR ?1 = fingerprint THEN ?5 ELSE mem END,
		dup_fingerprint = CASE WHEN ?1 != '' AND ?1 != fingerprint THEN ?1 ELSE dup_fingerprint END,
		dup_at = CASE WHEN ?1 != '' AND ?1 != fingerprint AND dup_at = 0 THEN ?2 ELSE dup_at END
		WHERE id = ?6`)
	if err != nil {
		return err
	}
	defer seen.Close()
	// The proxy an agent came through changes rarely: written (with the
	// foreign-key check it needs) only when it does, so the common check-in
	// above touches no foreign-key column.
	via, err := tx.PrepareContext(ctx, `UPDATE agents SET via_proxy_id = (SELECT id FROM proxies WHERE id = ?2)
		WHERE id = ?3 AND (?1 = '' OR ?1 = fingerprint) AND via_proxy_id IS NOT (SELECT id FROM proxies WHERE id = ?2)`)
	if err != nil {
		return err
	}
	defer via.Close()
	var host, inv *sql.Stmt
	for _, c := range batch {
		at := ms(c.At)
		if c.At.IsZero() {
			at = ms(tx.now)
		}
		fp := c.Fingerprint
		if _, err := seen.ExecContext(ctx, fp, at, nil, c.CPU, c.Mem, c.AgentID); err != nil {
			return err
		}
		if _, err := via.ExecContext(ctx, fp, c.ViaProxyID, c.AgentID); err != nil {
			return err
		}
		if h := c.Host; h != nil && fp != "" {
			if host == nil {
				// Host facts are only taken from the enrolled machine, so a
				// clone cannot overwrite the original's facts.
				if host, err = tx.PrepareContext(ctx, `UPDATE agents SET hostname = ?, ips = ?, os_name = ?, arch = ?, version = ?
					WHERE id = ? AND fingerprint = ?`); err != nil {
					return err
				}
				defer host.Close()
			}
			if _, err := host.ExecContext(ctx, h.Hostname, strings.Join(h.IPs, ","), h.OSName, h.Arch, h.Version, c.AgentID, fp); err != nil {
				return err
			}
		}
		if i := c.Inventory; i != nil {
			if inv == nil {
				if inv, err = tx.PrepareContext(ctx, `UPDATE agents SET processes = ?, ports = ?, root_users = ?, users = ?, vulns = ?,
					baseline_risks = ?, alerts = ?, last_inventory = ? WHERE id = ? AND (? = '' OR fingerprint = ?)`); err != nil {
					return err
				}
				defer inv.Close()
			}
			if _, err := inv.ExecContext(ctx, i.Processes, i.Ports, i.RootAccounts, i.Accounts, i.Vulns, i.BaselineRisks, i.Alerts, at, c.AgentID, fp, fp); err != nil {
				return err
			}
		}
	}
	return tx.Commit()
}

// Batcher coalesces check-ins from many goroutines and writes them with
// RecordCheckins every Interval or every Max entries, whichever comes first.
// Later check-ins of the same agent within a batch replace earlier ones,
// keeping any inventory or host facts they carried.
type Batcher struct {
	db       *DB
	interval time.Duration
	max      int
	log      *slog.Logger

	mu      sync.Mutex
	pending map[string]Checkin
	full    chan struct{}
	done    chan struct{}
	stopped chan struct{}
	flushed sync.Cond
	gen     uint64
	writing bool
	err     error
}

// NewBatcher starts a batcher; Close flushes what is pending.
func NewBatcher(db *DB, interval time.Duration, max int, log *slog.Logger) *Batcher {
	if interval <= 0 {
		interval = 500 * time.Millisecond
	}
	if max <= 0 {
		max = 2000
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	b := &Batcher{db: db, interval: interval, max: max, log: log, pending: map[string]Checkin{},
		full: make(chan struct{}, 1), done: make(chan struct{}), stopped: make(chan struct{})}
	b.flushed.L = &b.mu
	go b.loop()
	return b
}

// Add queues a check-in; it never blocks on the database.
func (b *Batcher) Add(c Checkin) {
	b.mu.Lock()
	if old, ok := b.pending[c.AgentID]; ok {
		if c.Inventory == nil {
			c.Inventory = old.Inventory
		}
		if c.Host == nil {
			c.Host = old.Host
		}
	}
	b.pending[c.AgentID] = c
	n := len(b.pending)
	b.mu.Unlock()
	if n >= b.max {
		select {
		case b.full <- struct{}{}:
		default:
		}
	}
}

// Flush writes what is pending now and waits for it.
func (b *Batcher) Flush() error {
	b.mu.Lock()
	target := b.gen + 1
	if b.writing {
		target++ // the write under way may have missed what was just added
	}
	b.mu.Unlock()
	select {
	case b.full <- struct{}{}:
	default:
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for b.gen < target {
		select {
		case <-b.stopped:
			return b.err
		default:
		}
		b.flushed.Wait()
	}
	return b.err
}

func (b *Batcher) loop() {
	defer close(b.stopped)
	t := time.NewTicker(b.interval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-b.full:
		case <-b.done:
			b.write()
			b.mu.Lock()
			b.flushed.Broadcast()
			b.mu.Unlock()
			return
		}
		b.write()
	}
}

func (b *Batcher) write() {
	b.mu.Lock()
	batch := make([]Checkin, 0, len(b.pending))
	for _, c := range b.pending {
		batch = append(batch, c)
	}
	b.pending = map[string]Checkin{}
	b.writing = true
	b.mu.Unlock()
	var err error
	for i := 0; i < len(batch); i += b.max {
		end := min(i+b.max, len(batch))
		if err = b.db.RecordCheckins(context.Background(), batch[i:end]); err != nil {
			b.log.Error("store: check-in batch not written", "checkins", end-i, "err", err)
		}
	}
	b.mu.Lock()
	b.gen++
	b.writing = false
	b.err = err
	b.flushed.Broadcast()
	b.mu.Unlock()
}

// Close flushes and stops the batcher.
func (b *Batcher) Close() error {
	close(b.done)
	<-b.stopped
	return b.err
}
