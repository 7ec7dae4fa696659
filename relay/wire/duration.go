package wire

import (
	"encoding/json"
	"time"
)

// One duration encoding on the wire: an integer number of nanoseconds,
// which is what Settings always carried and what agents in the field
// decode into time.Duration (a string would break them). Every reader also
// takes a Go duration string ("30s"), which CheckinRequest.Wait and trial
// files used to be written as, so old writers keep working.

// Duration is a time.Duration that decodes from nanoseconds or "30s" and
// encodes as nanoseconds.
type Duration time.Duration

// MarshalJSON implements json.Marshaler.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(int64(d))
}

// UnmarshalJSON accepts a number of nanoseconds or "30s"; null leaves d as
// it is, as for any JSON number.
func (d *Duration) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		v, err := time.ParseDuration(s)
		if err != nil {
			return err
		}
		*d = Duration(v)
		return nil
	}
	var n int64
	if err := json.Unmarshal(b, &n); err != nil {
		return err
	}
	*d = Duration(n)
	return nil
}

// settingsJSON is Settings with durations that decode from either form.
type settingsJSON struct {
	InventoryInterval Duration `json:"inventory_interval"`
	OfflineAfter      Duration `json:"offline_after"`
	PollTimeout       Duration `json:"poll_timeout"`
	MaxBatch          int      `json:"max_batch"`
}

// UnmarshalJSON accepts each duration as nanoseconds or "30s"; fields the
// body leaves out keep their value, as with the default decoding.
func (s *Settings) UnmarshalJSON(b []byte) error {
	v := settingsJSON{Duration(s.InventoryInterval), Duration(s.OfflineAfter), Duration(s.PollTimeout), s.MaxBatch}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*s = Settings{time.Duration(v.InventoryInterval), time.Duration(v.OfflineAfter), time.Duration(v.PollTimeout), v.MaxBatch}
	return nil
}
