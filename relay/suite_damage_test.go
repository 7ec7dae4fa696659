package relay_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"outpost/relay/relaytest"
	"outpost/relay/spool"
	"outpost/relay/wire"
)

// Item: damage found by recovery is visible. A relay started on a spool
// with one damaged record and a collector store with an unreadable line
// and a torn last line reports both in /metrics, in /healthz (status still
// ok) and through Server.Damage; a clean start reports zeros and no damage.
func TestRecoveryDamageVisible(t *testing.T) {
	tests := []struct {
		name                  string
		damage                bool
		spoolRecs, spoolBytes int64
		colRecs, colBytes     int64
	}{
		{"clean", false, 0, 0, 0, 0},
		{"damaged spool and collector", true, 1, 0 /* set below */, 2, int64(len(badLine) + len(tornLine))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			frame := seedSpool(t, filepath.Join(dir, "spool"), tc.damage)
			if tc.damage {
				tc.spoolBytes = frame
				seedCollector(t, filepath.Join(dir, "collector"))
			}
			m := relaytest.Start(t, relaytest.Options{Dir: dir})
			hc := httpClient(m)
			t.Cleanup(hc.CloseIdleConnections)

			ms := metrics(t, hc, m.TLSURL)
			for _, c := range []struct {
				name string
				want int64
			}{
				{`outpost_recovery_dropped_records_total{store="spool"}`, tc.spoolRecs},
				{`outpost_recovery_dropped_bytes_total{store="spool"}`, tc.spoolBytes},
				{`outpost_recovery_dropped_records_total{store="cache"}`, 0},
				{`outpost_recovery_dropped_records_total{store="collector"}`, tc.colRecs},
				{`outpost_recovery_dropped_bytes_total{store="collector"}`, tc.colBytes},
			} {
				got, ok := ms[c.name]
				if !ok || got != c.want {
					t.Errorf("%s: got %d (exported %v), want %d", c.name, got, ok, c.want)
				}
			}
			h := health(hc, m.TLSURL)
			if h == nil || h["status"] != "ok" {
				t.Fatalf("healthz: got %v, want status ok", h)
			}
			text, _ := h["damage_text"].(string)
			_, has := h["damage"]
			if has != tc.damage {
				t.Errorf("healthz damage present: got %v, want %v (%v)", has, tc.damage, h)
			}
			if tc.damage && (!strings.Contains(text, "spool: 1 record") || !strings.Contains(text, "collector: 2 records")) {
				t.Errorf("healthz damage_text: got %q, want the spool and collector losses", text)
			}
			if got := len(m.Relay.Damage()); got != map[bool]int{false: 0, true: 2}[tc.damage] {
				t.Errorf("Server.Damage: got %d stores, want %d", got, map[bool]int{false: 0, true: 2}[tc.damage])
			}
			if tc.damage {
				// The intact records around the damage still arrive.
				waitFor(t, 10*time.Second, "intact spooled records to reach the collector", func() bool {
					return m.Collector.Received("spooled") == 9
				})
			}
		})
	}
}

const (
	badLine  = "{not json\n"
	tornLine = `{"agent":"x","seq":`
)

// seedSpool leaves ten records of agent "spooled" in a spool, the fourth
// damaged when damage is set, and returns the length of one frame.
func seedSpool(t *testing.T, dir string, damage bool) int64 {
	t.Helper()
	sp, err := spool.Open(dir, spool.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var frame int64
	for i := 1; i <= 10; i++ {
		b, _ := json.Marshal(wire.Record{Agent: "spooled", Seq: uint64(i), Time: time.Unix(1700000000, 0).UTC(),
			Type: "process", Data: json.RawMessage(`{"pid":1}`)})
		if err := sp.Append(b); err != nil {
			t.Fatal(err)
		}
		frame = sp.Stats().Bytes / int64(i)
	}
	if err := sp.Close(); err != nil {
		t.Fatal(err)
	}
	if damage {
		path := filepath.Join(dir, "00000000000000000001.seg")
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		b[3*frame+20] ^= 0xff
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return frame
}

// seedCollector leaves a segment with a good line, an unreadable one and a
// torn last line.
func seedCollector(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	good, _ := json.Marshal(wire.Record{Agent: "old", Seq: 1, Time: time.Unix(1700000000, 0).UTC(), Type: "process"})
	data := string(good) + "\n" + badLine + tornLine
	if err := os.WriteFile(filepath.Join(dir, "ingest-000001.ndjson"), []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}
