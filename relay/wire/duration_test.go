package wire

import (
	"encoding/json"
	"testing"
	"time"
)

func TestDurationDecodesBothForms(t *testing.T) {
	cases := []struct {
		name, body string
		want       time.Duration
	}{
		{"nanoseconds", `{"wait":30000000000}`, 30 * time.Second},
		{"string", `{"wait":"30s"}`, 30 * time.Second},
		{"string with units", `{"wait":"1m30s"}`, 90 * time.Second},
		{"null", `{"wait":null}`, 0},
		{"absent", `{}`, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var r CheckinRequest
			if err := json.Unmarshal([]byte(c.body), &r); err != nil {
				t.Fatalf("decode %s: %v", c.body, err)
			}
			if got := time.Duration(r.Wait); got != c.want {
				t.Fatalf("Wait = %v, want %v", got, c.want)
			}
		})
	}
}

func TestDurationRefuses(t *testing.T) {
	for _, body := range []string{`{"wait":"soon"}`, `{"wait":true}`, `{"wait":1.5}`} {
		t.Run(body, func(t *testing.T) {
			var r CheckinRequest
			if err := json.Unmarshal([]byte(body), &r); err == nil {
				t.Fatalf("decode %s: no error, want one", body)
			}
		})
	}
}

// Both carry durations as nanoseconds: what agents in the field decode.
func TestDurationEncodesNanoseconds(t *testing.T) {
	b, _ := json.Marshal(CheckinRequest{Fingerprint: "fp", Wait: Duration(30 * time.Second)})
	if got, want := string(b), `{"fingerprint":"fp","wait":30000000000}`; got != want {
		t.Fatalf("CheckinRequest = %s, want %s", got, want)
	}
	b, _ = json.Marshal(Settings{InventoryInterval: time.Hour, OfflineAfter: 3 * time.Minute, PollTimeout: 25 * time.Second, MaxBatch: 500})
	want := `{"inventory_interval":3600000000000,"offline_after":180000000000,"poll_timeout":25000000000,"max_batch":500}`
	if got := string(b); got != want {
		t.Fatalf("Settings = %s, want %s", got, want)
	}
}

func TestSettingsDecodesBothForms(t *testing.T) {
	want := Settings{InventoryInterval: time.Hour, OfflineAfter: 3 * time.Minute, PollTimeout: 25 * time.Second, MaxBatch: 500}
	cases := []struct{ name, body string }{
		{"nanoseconds", `{"inventory_interval":3600000000000,"offline_after":180000000000,"poll_timeout":25000000000,"max_batch":500}`},
		{"strings", `{"inventory_interval":"1h","offline_after":"3m","poll_timeout":"25s","max_batch":500}`},
		{"mixed", `{"inventory_interval":"1h","offline_after":180000000000,"poll_timeout":"25s","max_batch":500}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var got Settings
			if err := json.Unmarshal([]byte(c.body), &got); err != nil {
				t.Fatalf("decode %s: %v", c.body, err)
			}
			if got != want {
				t.Fatalf("got %+v, want %+v", got, want)
			}
		})
	}
	t.Run("inside a response", func(t *testing.T) {
		var r EnrolResponse
		if err := json.Unmarshal([]byte(`{"agent_id":"ag_1","settings":{"poll_timeout":"25s"}}`), &r); err != nil {
			t.Fatal(err)
		}
		if got, want := r.Settings.PollTimeout, 25*time.Second; got != want {
			t.Fatalf("PollTimeout = %v, want %v", got, want)
		}
	})
}
