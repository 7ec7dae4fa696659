package relay_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"outpost/agentsim"
	"outpost/relay/collector"
	"outpost/relay/relaytest"
	"outpost/store"
)

// TestFaultKill9AndDamage (make faults): a relay process under load from
// 20 agents, forwarding to a live collector, is killed with SIGKILL ten
// times; before one restart a byte of already forwarded spool data is
// flipped. Every acknowledged event must reach the collector (duplicates
// are counted, not lost) and the damage must show in the restarted
// relay's /metrics. Before record-by-record recovery the flipped byte cost
// the whole acknowledged backlog behind it.
func TestFaultKill9AndDamage(t *testing.T) {
	if os.Getenv("OUTPOST_FAULTS") != "1" {
		t.Skip("fault run: make faults (OUTPOST_FAULTS=1)")
	}
	const (
		agents = 20
		kills  = 10
		damage = 4 // before this restart (or the next one with forwarded data)
	)
	ctx := context.Background()
	dataDir := t.TempDir()
	db, err := store.Open(filepath.Join(dataDir, "outpost.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	acct, _, err := db.CreateAccount(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	ic, err := db.CreateInstallCommand(ctx, store.InstallInput{AccountID: acct.ID})
	if err != nil {
		t.Fatal(err)
	}
	type ident struct{ id, secret string }
	var ids []ident
	for i := range agents {
		h, _ := linuxHost(i + 1)
		en, err := db.Enrol(ctx, store.EnrolInput{Key: ic.Key, Host: store.HostFacts{Hostname: h.Hostname, OS: h.OS, Arch: h.Arch, Fingerprint: h.Fingerprint}})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, ident{en.Agent.ID, en.Secret})
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	// The collector stays up, so the spool is forwarded and committed.
	colDir := filepath.Join(t.TempDir(), "collector")
	col, err := collector.New(colDir, nil)
	if err != nil {
		t.Fatal(err)
	}
	colAddr := relaytest.FreeAddr(t)
	cln, err := net.Listen("tcp", colAddr)
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: col.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go hs.Serve(cln)
	t.Cleanup(func() {
		hs.Close()
		col.Close()
	})

	tr := agentsim.NewTransport(agentsim.ClientOptions{})
	t.Cleanup(tr.CloseIdleConnections)
	var senders []*sender
	for _, id := range ids {
		c := agentsim.NewClient(agentsim.ClientOptions{Proxies: []string{"http://" + colAddr}, Transport: tr, Timeout: 3 * time.Second})
		c.SetCredentials(id.id, id.secret)
		senders = append(senders, &sender{C: c, Agent: id.id, Batch: 5, Pad: 100})
	}
	totalAcked := func() (n uint64) {
		for _, s := range senders {
			n += s.Acked()
		}
		return n
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	var wg sync.WaitGroup
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{}}
	t.Cleanup(hc.CloseIdleConnections)

	var child *relayChild
	damaged, seen := false, int64(0)
	for round := 0; round <= kills; round++ {
		if round >= damage && !damaged {
			damaged = damageForwarded(t, filepath.Join(dataDir, "spool"))
		}
		child = startRelayChild(t, dataDir, "http://"+colAddr)
		for _, s := range senders {
			s.C.SetProxies([]string{child.URL})
		}
		if round == 0 {
			for _, s := range senders {
				wg.Add(1)
				go func() {
					defer wg.Done()
					s.run(runCtx, 20*time.Millisecond)
				}()
			}
		}
		if damaged && seen == 0 {
			seen = metric(t, hc, child.URL, `outpost_recovery_dropped_records_total{store="spool"}`)
			if h := health(hc, child.URL); h["status"] != "ok" || h["damage"] == nil {
				t.Errorf("healthz after the damage: got %v, want status ok with damage", h)
			}
			t.Logf("restart %d after the damage: /metrics reports %d dropped spool record(s)", round, seen)
		}
		if round == kills {
			break
		}
		// Run each relay past its 1 s cursor sync, so the forwarded part
		// of the spool grows.
		before, started := totalAcked(), time.Now()
		waitFor(t, 20*time.Second, "events acked by the relay", func() bool {
			return totalAcked() >= before+300 && time.Since(started) > 1500*time.Millisecond
		})
		if round+1 >= damage && !damaged {
			// The next restart damages a forwarded record: the saved
			// cursor must be inside its segment by then, not at its start
			// (a restart's first commit saves the start of the new segment,
			// the next save comes a second later).
			waitFor(t, 20*time.Second, "the saved cursor past forwarded data", func() bool {
				_, off, err := savedCursor(filepath.Join(dataDir, "spool"))
				return err == nil && off >= 200
			})
		}
		child.kill()
		t.Logf("kill -9 %d after %d acked events", round+1, totalAcked())
	}
	if !damaged {
		t.Fatal("no forwarded spool record to damage")
	}
	if seen < 1 {
		t.Errorf("dropped spool records in /metrics after the damage: got %d, want at least 1", seen)
	}
	time.Sleep(500 * time.Millisecond)
	stop()
	wg.Wait()

	acked := map[string]uint64{}
	var ackedTotal uint64
	for _, s := range senders {
		acked[s.Agent] = s.Acked()
		ackedTotal += s.Acked()
	}
	waitFor(t, 60*time.Second, "collector to receive every acked event", func() bool {
		for a, n := range acked {
			if col.Received(a) < n {
				return false
			}
		}
		return true
	})
	recs, bad := readRecords(t, colDir, "ingest-")
	sets := seqSets(recs)
	var lost uint64
	for _, s := range senders {
		for seq := uint64(1); seq <= acked[s.Agent]; seq++ {
			if sets[s.Agent][seq] == 0 {
				lost++
			}
		}
	}
	st := col.Stats()
	t.Logf("FAULTS: %d agents, %d kill -9, one forwarded spool record damaged (%d dropped record(s) in /metrics), acked %d, received %d distinct, duplicates %d, lost %d",
		agents, kills, seen, ackedTotal, st.Total, st.Duplicates, lost)
	if lost != 0 {
		t.Errorf("lost %d acknowledged events, want 0", lost)
	}
	if bad != 0 {
		t.Errorf("collector files hold %d unparsable lines, want 0", bad)
	}
	if t.Failed() {
		t.Logf("relay child log:\n%s", child.log.String())
	}
}

// damageForwarded flips one byte of already forwarded data: halfway
// between the start of the cursor's segment and the cursor, which lies on
// a record boundary, so the byte belongs to a committed record.
func damageForwarded(t *testing.T, dir string) bool {
	t.Helper()
	seg, off, err := savedCursor(dir)
	if err != nil {
		t.Logf("no cursor to damage behind: %v", err)
		return false
	}
	if off < 200 {
		t.Logf("cursor %d:%d: too little forwarded data in its segment", seg, off)
		return false
	}
	path := filepath.Join(dir, segNameFor(seg))
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data[off/2] ^= 0xff
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Logf("flipped the byte at %s offset %d (cursor at %d)", filepath.Base(path), off/2, off)
	return true
}

// savedCursor is the segment and offset of the cursor the spool saved.
func savedCursor(dir string) (seg uint64, off int64, err error) {
	b, err := os.ReadFile(filepath.Join(dir, "cursor"))
	if err == nil && len(b) != 24 {
		err = fmt.Errorf("cursor file of %d bytes", len(b))
	}
	if err != nil {
		return 0, 0, err
	}
	return binary.LittleEndian.Uint64(b[4:]), int64(binary.LittleEndian.Uint64(b[12:])), nil
}

func segNameFor(seq uint64) string {
	b := []byte("00000000000000000000.seg")
	for i := 19; i >= 0 && seq > 0; i-- {
		b[i] = byte('0' + seq%10)
		seq /= 10
	}
	return string(b)
}
