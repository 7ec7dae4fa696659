package relay

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"outpost/relay/collector"
	"outpost/relay/wire"
	"outpost/store"
)

// BenchmarkEventIntake: agents post batches of 500 records of ~200 bytes
// over 8 HTTP/1.1 connections to a management host's relay; each answer
// means the batch is durable (spool in forward mode, whose forwarder
// drains it into the built-in collector meanwhile; ring in cache mode).
// MB/s is request bodies acknowledged.
func BenchmarkEventIntake(b *testing.B) {
	for _, mode := range wire.Modes {
		b.Run(string(mode), func(b *testing.B) { benchIntake(b, mode) })
	}
}

func benchIntake(b *testing.B, mode wire.Mode) {
	const conns = 8
	ctx := context.Background()
	dir := b.TempDir()
	db, err := store.Open(filepath.Join(dir, "outpost.db"), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	acct, _, err := db.CreateAccount(ctx, "bench")
	if err != nil {
		b.Fatal(err)
	}
	ic, err := db.CreateInstallCommand(ctx, store.InstallInput{AccountID: acct.ID})
	if err != nil {
		b.Fatal(err)
	}
	coll, err := collector.New(filepath.Join(dir, "collector"), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer coll.Close()
	cfg := DefaultConfig()
	cfg.DataDir, cfg.Store, cfg.AllowPlain, cfg.Collector = dir, db, true, coll.Handler()
	srv, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close(ctx)
	if mode == wire.ModeCache {
		if err := srv.sink.apply(wire.Policy{Mode: wire.ModeCache, CacheMax: 1 << 30}); err != nil {
			b.Fatal(err)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go srv.Serve(ln, false)
	url := "http://" + ln.Addr().String() + wire.PathEvents
	auth := make([]string, conns)
	for i := range auth {
		en, err := db.Enrol(ctx, store.EnrolInput{Key: ic.Key, Host: store.HostFacts{Hostname: fmt.Sprint("h", i), OS: "linux", Arch: "amd64", Fingerprint: fmt.Sprint("fp", i)}})
		if err != nil {
			b.Fatal(err)
		}
		auth[i] = "Bearer " + en.Agent.ID + ":" + en.Secret
	}
	body := benchEventBody(500)
	b.SetBytes(int64(len(body)))
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conns}, Timeout: time.Minute}
	var (
		next sync.WaitGroup
		ops  = make(chan struct{})
	)
	for i := range conns {
		next.Add(1)
		go func() {
			defer next.Done()
			for range ops {
				req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
				req.Header.Set("Authorization", auth[i])
				resp, err := hc.Do(req)
				if err != nil {
					b.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Errorf("status %d", resp.StatusCode)
					return
				}
			}
		}()
	}
	b.ResetTimer()
	for b.Loop() {
		ops <- struct{}{}
	}
	close(ops)
	next.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N*500)/b.Elapsed().Seconds(), "events/s")
	if mode == wire.ModeForward {
		_, pending, _ := srv.sink.stats()
		b.ReportMetric(float64(pending), "spooled")
	}
}
