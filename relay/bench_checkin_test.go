package relay_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"outpost/agentsim"
	"outpost/relay/wire"
)

// BenchmarkCheckinRate measures check-ins per second end to end: agents
// (agentsim clients in this process, 64 connections, each cycling over 4
// enrolled agents) check in without waiting, over real loopback listeners
// (TLS, where agents speak HTTP/2, and plain HTTP/1.1), into a temp-file
// SQLite store; the benchmark ends with the check-in batch written.
//
//	go test -run '^$' -bench CheckinRate -benchtime 5s ./relay/
func BenchmarkCheckinRate(b *testing.B) {
	const conns, perConn = 64, 4
	db, agents := benchFleet(b, conns*perConn, time.Minute)
	for _, tc := range []struct {
		name string
		tls  bool
	}{{"tls", true}, {"http1", false}} {
		b.Run(tc.name, func(b *testing.B) {
			srv, url, _ := benchRelay(b, db, tc.tls, time.Minute)
			clients := make([][]*agentsim.Client, conns)
			for i := range clients {
				tr := agentsim.NewTransport(agentsim.ClientOptions{CASHA256: srv.CAFingerprint()})
				b.Cleanup(tr.CloseIdleConnections)
				for j := range perConn {
					a := agents[i*perConn+j]
					c := agentsim.NewClient(agentsim.ClientOptions{Proxies: []string{url}, CASHA256: srv.CAFingerprint(), Transport: tr, Timeout: 10 * time.Second})
					c.SetCredentials(a.ID, a.Secret)
					clients[i] = append(clients[i], c)
				}
			}
			ctx := context.Background()
			var left atomic.Int64
			left.Store(int64(b.N))
			var wg sync.WaitGroup
			var failed atomic.Value
			b.ResetTimer()
			for i := range conns {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for k := 0; left.Add(-1) >= 0; k++ {
						a := agents[i*perConn+k%perConn]
						if _, err := clients[i][k%perConn].Checkin(ctx, wire.CheckinRequest{Fingerprint: a.Fingerprint}); err != nil {
							failed.Store(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			if err, _ := failed.Load().(error); err != nil {
				b.Fatalf("check-in: %v", err)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "checkins/s")
		})
	}
}
