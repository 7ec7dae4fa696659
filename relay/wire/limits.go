package wire

import "fmt"

// MaxCommandIDs bounds the command ids (Acked) and results one check-in or
// heartbeat may carry: a target is handed a few commands at a time, and a
// list beyond what SQL takes in one statement (32,766 variables) used to
// answer 500.
const MaxCommandIDs = 1000

func checkCommandLists(acked int, results int) error {
	if acked > MaxCommandIDs {
		return fmt.Errorf("%d acked command ids: at most %d in one request", acked, MaxCommandIDs)
	}
	if results > MaxCommandIDs {
		return fmt.Errorf("%d command results: at most %d in one request", results, MaxCommandIDs)
	}
	return nil
}

// Validate refuses a check-in the relay would not carry out whole.
func (r *CheckinRequest) Validate() error { return checkCommandLists(len(r.Acked), len(r.Results)) }

// Validate refuses a heartbeat the management host would not carry out
// whole.
func (r *HeartbeatRequest) Validate() error { return checkCommandLists(len(r.Acked), len(r.Results)) }
