package agentsim

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"outpost/relay/wire"
)

func dtRecord(seq uint64) wire.Record {
	return wire.Record{Seq: seq, Time: time.Unix(1700000000, 0).UTC(), Type: "event", Data: json.RawMessage(`{"n":1}`)}
}

// dtAddN issues and adds n records, returning their seqs.
func dtAddN(t *testing.T, b *DiskBuffer, n int) []uint64 {
	t.Helper()
	var seqs []uint64
	for range n {
		s := b.NextSeq()
		if err := b.Add(dtRecord(s)); err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, s)
	}
	return seqs
}

func dtPeekSeqs(t *testing.T, b *DiskBuffer) []uint64 {
	t.Helper()
	recs, err := b.Peek(1 << 30)
	if err != nil {
		t.Fatal(err)
	}
	var out []uint64
	for _, r := range recs {
		out = append(out, r.Seq)
	}
	return out
}

func dtEqual(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestDiskIdentityRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "agent")
	d, err := OpenDiskIdentity(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := d.Load(); ok || err != nil {
		t.Fatalf("fresh dir: ok=%v err=%v", ok, err)
	}
	want := Identity{AgentID: "ag_1", Secret: "s3cret", Proxies: []string{"https://a:8443", "https://b:8443"}, Cluster: "c1"}
	if err := d.Save(want); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(d.Path())
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("identity file mode %v, want 0600", st.Mode().Perm())
	}
	// A "restart": a new store on the same directory.
	d2 := &DiskIdentity{Dir: dir}
	got, ok, err := d2.Load()
	if err != nil || !ok {
		t.Fatalf("reload: ok=%v err=%v", ok, err)
	}
	if got.AgentID != want.AgentID || got.Secret != want.Secret || got.Cluster != want.Cluster || len(got.Proxies) != 2 || got.Proxies[1] != want.Proxies[1] {
		t.Fatalf("reloaded %+v, want %+v", got, want)
	}
	// Save replaces atomically: no temp files left behind.
	want.Proxies = []string{"https://c:8443"}
	if err := d2.Save(want); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries after saves, want only %s", len(entries), IdentityFile)
	}
	if err := os.WriteFile(d.Path(), []byte(`{"agent_id":`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := d.Load(); err == nil {
		t.Error("damaged identity file loaded without error")
	}
	if err := d.Remove(); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := d.Load(); ok || err != nil {
		t.Fatalf("after Remove: ok=%v err=%v", ok, err)
	}
	if err := d.Remove(); err != nil {
		t.Errorf("second Remove: %v", err)
	}
}

func TestDiskBufferRestartKeepsUnackedAndSeq(t *testing.T) {
	dir := t.TempDir()
	b, err := OpenDiskBuffer(dir)
	if err != nil {
		t.Fatal(err)
	}
	seqs := dtAddN(t, b, 10)
	if !dtEqual(seqs, []uint64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}) {
		t.Fatalf("seqs %v", seqs)
	}
	// Acknowledge a prefix and one out of order.
	if err := b.Ack([]uint64{1, 2, 3, 4, 7}); err != nil {
		t.Fatal(err)
	}
	if got := b.AckedThrough(); got != 4 {
		t.Errorf("acked through %d, want 4", got)
	}
	// An issued but never added number is not reused either.
	if s := b.NextSeq(); s != 11 {
		t.Fatalf("NextSeq %d, want 11", s)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	b, err = OpenDiskBuffer(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if got, want := dtPeekSeqs(t, b), []uint64{5, 6, 8, 9, 10}; !dtEqual(got, want) {
		t.Fatalf("after restart pending %v, want %v", got, want)
	}
	if b.Len() != 5 {
		t.Errorf("Len %d", b.Len())
	}
	if s := b.NextSeq(); s != 12 {
		t.Errorf("NextSeq after restart %d, want 12", s)
	}
	recs, _ := b.Peek(1)
	if recs[0].Type != "event" || string(recs[0].Data) != `{"n":1}` || !recs[0].Time.Equal(time.Unix(1700000000, 0)) {
		t.Errorf("record not kept as added: %+v", recs[0])
	}
	// Everything acknowledged: a restart starts empty and still continues
	// the numbering.
	if err := b.Ack([]uint64{5, 6, 8, 9, 10}); err != nil {
		t.Fatal(err)
	}
	b.Close()
	b, err = OpenDiskBuffer(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if b.Len() != 0 {
		t.Errorf("pending after full ack and restart: %v", dtPeekSeqs(t, b))
	}
	if s := b.NextSeq(); s != 13 {
		t.Errorf("NextSeq %d, want 13", s)
	}
}

func TestDiskBufferCrashKeepsEverythingAdded(t *testing.T) {
	dir := t.TempDir()
	b, err := OpenDiskBuffer(dir)
	if err != nil {
		t.Fatal(err)
	}
	dtAddN(t, b, 5)
	if err := b.Ack([]uint64{1, 2}); err != nil {
		t.Fatal(err)
	}
	dtAddN(t, b, 3)
	b.NextSeq() // 9, issued, never added
	// No Close: the process "dies" here. Open the same directory again as
	// a new process would (the old handles are simply abandoned).
	b2, err := OpenDiskBuffer(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer b2.Close()
	if got, want := dtPeekSeqs(t, b2), []uint64{3, 4, 5, 6, 7, 8}; !dtEqual(got, want) {
		t.Fatalf("after crash pending %v, want %v", got, want)
	}
	if s := b2.NextSeq(); s != 10 {
		t.Errorf("NextSeq after crash %d, want 10 (never reuse an issued number)", s)
	}
}

func TestDiskBufferSeqFileLostStillNoReuse(t *testing.T) {
	dir := t.TempDir()
	b, err := OpenDiskBuffer(dir)
	if err != nil {
		t.Fatal(err)
	}
	dtAddN(t, b, 4)
	b.Ack([]uint64{1, 2, 3, 4})
	b.Close()
	// Even without the seq file the state and log say where numbering is.
	if err := os.Remove(filepath.Join(dir, bufSeqFile)); err != nil {
		t.Fatal(err)
	}
	b, err = OpenDiskBuffer(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if s := b.NextSeq(); s != 5 {
		t.Errorf("NextSeq %d, want 5", s)
	}
}

func TestDiskBufferTornLastLine(t *testing.T) {
	dir := t.TempDir()
	b, err := OpenDiskBuffer(dir)
	if err != nil {
		t.Fatal(err)
	}
	dtAddN(t, b, 3)
	b.Close()
	logPath := filepath.Join(dir, bufLogFile)
	// A crash in the middle of appending record 4, and a damaged line
	// before it would be skipped, not fatal.
	f, err := os.OpenFile(logPath, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"seq":4,"time":"2023-11-14T22:13:20Z","ty`)
	f.Close()
	b, err = OpenDiskBuffer(dir)
	if err != nil {
		t.Fatalf("open with a torn last line: %v", err)
	}
	if got, want := dtPeekSeqs(t, b), []uint64{1, 2, 3}; !dtEqual(got, want) {
		t.Fatalf("pending %v, want %v", got, want)
	}
	// Appending after the repair gives well-formed lines.
	s := b.NextSeq()
	if err := b.Add(dtRecord(s)); err != nil {
		t.Fatal(err)
	}
	b.Close()
	b, err = OpenDiskBuffer(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if got, want := dtPeekSeqs(t, b), []uint64{1, 2, 3, s}; !dtEqual(got, want) {
		t.Fatalf("after repair and append: pending %v, want %v", got, want)
	}
	if b.Skipped() != 0 {
		t.Errorf("skipped %d lines, want 0", b.Skipped())
	}

	// A damaged line in the middle (with its newline) is skipped.
	b.Close()
	raw, _ := os.ReadFile(logPath)
	raw = append([]byte("not json at all\n"), raw...)
	os.WriteFile(logPath, raw, 0o600)
	b, err = OpenDiskBuffer(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if got := dtPeekSeqs(t, b); len(got) != 4 || b.Skipped() != 1 {
		t.Errorf("pending %v skipped %d, want 4 records and 1 skipped", got, b.Skipped())
	}
}

func TestDiskBufferCompaction(t *testing.T) {
	dir := t.TempDir()
	b, err := OpenDiskBufferOptions(dir, DiskBufferOptions{CompactBytes: 2048})
	if err != nil {
		t.Fatal(err)
	}
	seqs := dtAddN(t, b, 200)
	before := b.LogSize()
	if err := b.Ack(seqs[:190]); err != nil {
		t.Fatal(err)
	}
	if after := b.LogSize(); after >= before/4 {
		t.Fatalf("log %d bytes after acking 190 of 200 records (was %d): not compacted", after, before)
	}
	if b.Len() != 10 {
		t.Fatalf("Len %d, want 10", b.Len())
	}
	// Appends after compaction land in the new log.
	more := dtAddN(t, b, 5)
	b.Close()
	b, err = OpenDiskBufferOptions(dir, DiskBufferOptions{CompactBytes: 2048})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	want := append(append([]uint64(nil), seqs[190:]...), more...)
	if got := dtPeekSeqs(t, b); !dtEqual(got, want) {
		t.Fatalf("after compaction and restart pending %v, want %v", got, want)
	}
	if s := b.NextSeq(); s != 206 {
		t.Errorf("NextSeq %d, want 206", s)
	}
}

func TestDiskBufferMaxRecordsDropsOldest(t *testing.T) {
	b, err := OpenDiskBufferOptions(t.TempDir(), DiskBufferOptions{MaxRecords: 5})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	dtAddN(t, b, 8)
	if got, want := dtPeekSeqs(t, b), []uint64{4, 5, 6, 7, 8}; !dtEqual(got, want) {
		t.Fatalf("pending %v, want %v", got, want)
	}
	if b.Dropped() != 3 {
		t.Errorf("dropped %d, want 3", b.Dropped())
	}
}

func TestDiskBufferRefusesOutOfOrderAdd(t *testing.T) {
	b, err := OpenDiskBuffer(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	dtAddN(t, b, 2)
	if err := b.Add(dtRecord(2)); err == nil {
		t.Error("re-adding seq 2 was accepted")
	}
	if err := b.Add(dtRecord(0)); err == nil {
		t.Error("seq 0 was accepted")
	}
}

// Concurrent producer and consumer, as Agent runs them, lose nothing.
func TestDiskBufferConcurrentAddAck(t *testing.T) {
	dir := t.TempDir()
	b, err := OpenDiskBufferOptions(dir, DiskBufferOptions{CompactBytes: 4096})
	if err != nil {
		t.Fatal(err)
	}
	const n = 300
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range n {
			s := b.NextSeq()
			if err := b.Add(dtRecord(s)); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	got := map[uint64]bool{}
	deadline := time.Now().Add(20 * time.Second)
	for len(got) < n && time.Now().Before(deadline) {
		recs, _ := b.Peek(7)
		var seqs []uint64
		for _, r := range recs {
			got[r.Seq] = true
			seqs = append(seqs, r.Seq)
		}
		if err := b.Ack(seqs); err != nil {
			t.Fatal(err)
		}
		if len(recs) == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	wg.Wait()
	if len(got) != n {
		t.Fatalf("consumed %d distinct records, want %d", len(got), n)
	}
	b.Close()
	b, err = OpenDiskBuffer(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if b.Len() != 0 || b.AckedThrough() != n {
		t.Errorf("after restart: %d pending, acked through %d; want 0 and %d", b.Len(), b.AckedThrough(), n)
	}
}

// The reference agent with a disk identity and buffer keeps its identity
// and its undelivered events across a restart (in-process check of the
// wiring; the end-to-end test is in cmd/outpost).
func TestDiskStoresImplementInterfaces(t *testing.T) {
	var _ IdentityStore = (*DiskIdentity)(nil)
	var _ EventBuffer = (*DiskBuffer)(nil)
}
