package wire_test

import (
	"bytes"
	"encoding/json"
	"testing"

	"outpost/relay/wire"
)

// FuzzDecode feeds arbitrary bodies to the shapes the relay decodes from
// agents and relays (enrol, check-in, events, heartbeat, ingest): decoding
// never panics, Validate never panics, and whatever decodes encodes to a
// form that decodes and encodes back to the same bytes, so a relay that
// re-encodes a record forwards what it was given.
func FuzzDecode(f *testing.F) {
	seeds := []any{
		wire.EnrolRequest{Key: "ik_x", Host: wire.Host{Hostname: "腾讯云-web-01", OS: "linux", Fingerprint: "fp"}},
		wire.CheckinRequest{Fingerprint: "fp", Acked: []int64{1, 2}, Wait: wire.Duration(30e9),
			Results: []wire.CommandResult{{ID: 3, State: wire.StateFailed, Error: "port taken"}}},
		wire.EventBatch{Records: []wire.Record{{Seq: 1, Type: "alert", Data: json.RawMessage(`{"a":1}`)}}},
		wire.HeartbeatRequest{Version: "1.2.0", Load: 0.5, Agents: 3},
		wire.IngestBatch{Relay: "1", Records: []wire.Record{{Agent: "ag_1", Seq: 9}}},
	}
	for _, s := range seeds {
		b, _ := json.Marshal(s)
		f.Add(b)
	}
	f.Add([]byte(`{"wait":"30s","acked":[1,2,3]}`))
	f.Add([]byte(`{"wait":30000000000}`))
	f.Add([]byte(`{"records":[{"seq":1,"time":"2026-01-01T00:00:00Z","data":[1,2,{"x":null}]}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		targets := []func() any{
			func() any { return new(wire.EnrolRequest) },
			func() any { return new(wire.CheckinRequest) },
			func() any { return new(wire.EventBatch) },
			func() any { return new(wire.HeartbeatRequest) },
			func() any { return new(wire.IngestBatch) },
		}
		for _, mk := range targets {
			v := mk()
			if json.Unmarshal(body, v) != nil {
				continue
			}
			if c, ok := v.(interface{ Validate() error }); ok {
				_ = c.Validate()
			}
			once, err := json.Marshal(v)
			if err != nil {
				// A decoded value that cannot be encoded (a time past year
				// 9999) is not forwarded: the relay refuses it.
				continue
			}
			w := mk()
			if err := json.Unmarshal(once, w); err != nil {
				t.Fatalf("%T: own encoding %s does not decode: %v", v, once, err)
			}
			twice, err := json.Marshal(w)
			if err != nil || !bytes.Equal(once, twice) {
				t.Fatalf("%T: encoding not stable:\n%s\n%s (%v)", v, once, twice, err)
			}
		}
	})
}
