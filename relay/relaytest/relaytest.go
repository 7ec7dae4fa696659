// Package relaytest starts an in-process management host for tests of any
// package, as net/http/httptest does for HTTP servers: a store in a temp
// directory, the built-in collector and a relay served on a TLS and a plain
// listener on 127.0.0.1:0, all closed by t.Cleanup. Intervals are short so
// tests stay fast.
package relaytest

import (
	"context"
	"net"
	"path/filepath"
	"testing"
	"time"

	"outpost/relay"
	"outpost/relay/collector"
	"outpost/relay/logs/logstest"
	"outpost/store"
)

// Manager is a running management host.
type Manager struct {
	DB        *store.DB
	Collector *collector.Collector // nil with NoCollector
	Relay     *relay.Server
	TLSURL    string
	PlainURL  string
	Dir       string
}

// Pin is the CA fingerprint agents pin (--ca-sha256).
func (m *Manager) Pin() string { return m.Relay.CAFingerprint() }

// Options adjust Start.
type Options struct {
	Dir         string              // data directory (default a new t.TempDir())
	NoCollector bool                // serve without the built-in collector
	PublicURLs  []string            // URLs handed to agents (default the TLS listener's)
	Config      func(*relay.Config) // last word on the relay configuration
}

// Start runs a management host until the test ends.
func Start(t testing.TB, o Options) *Manager {
	t.Helper()
	dir := o.Dir
	if dir == "" {
		dir = t.TempDir()
	}
	db, err := store.Open(filepath.Join(dir, "outpost.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	m := &Manager{DB: db, Dir: dir}
	cfg := relay.DefaultConfig()
	cfg.DataDir = dir
	cfg.Store = db
	cfg.Log = logstest.New(t)
	cfg.PollTimeout = 5 * time.Second
	cfg.CommandPoll = 50 * time.Millisecond
	cfg.CheckinFlush = 50 * time.Millisecond
	cfg.HeartbeatInterval = 100 * time.Millisecond
	if !o.NoCollector {
		if m.Collector, err = collector.New(filepath.Join(dir, "collector"), logstest.New(t)); err != nil {
			db.Close()
			t.Fatal(err)
		}
		cfg.Collector = m.Collector.Handler()
	}
	if o.Config != nil {
		o.Config(&cfg)
	}
	if m.Relay, err = relay.New(cfg); err != nil {
		db.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		m.Relay.Close(ctx)
		if m.Collector != nil {
			m.Collector.Close()
		}
		db.Close()
	})
	m.TLSURL = Serve(t, m.Relay, true)
	m.PlainURL = Serve(t, m.Relay, false)
	public := o.PublicURLs
	if len(public) == 0 {
		public = []string{m.TLSURL}
	}
	m.Relay.SetPublicURLs(public)
	return m
}

// Serve serves srv on a new 127.0.0.1:0 listener and returns its URL.
func Serve(t testing.TB, srv *relay.Server, useTLS bool) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln, useTLS)
	if useTLS {
		return "https://" + ln.Addr().String()
	}
	return "http://" + ln.Addr().String()
}

// FreeAddr returns a 127.0.0.1 address nothing listens on: a port to bring
// a server up on later, or a relay or upstream that is down.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}
