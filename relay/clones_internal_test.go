package relay

import (
	"testing"
	"time"
)

// TestCloneWatch replays the check-in sequences the hub sees: two live
// copies of one identity are told apart from an agent that reconnected,
// and the newcomer is the one answered Clone.
func TestCloneWatch(t *testing.T) {
	const hold, short = 30 * time.Second, 0
	type step struct {
		leave bool // answered (else: arrives)
		conn  string
		wait  time.Duration
		want  bool // arrive: answered Clone at once; leave: answered Clone
	}
	arrive := func(c string, w time.Duration, want bool) step { return step{conn: c, wait: w, want: want} }
	leave := func(c string, want bool) step { return step{leave: true, conn: c, want: want} }
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"reconnect after a failover", []step{
			arrive("old", hold, false), arrive("new", hold, false), leave("old", false), // old never returns
			leave("new", false), arrive("new", hold, false), leave("new", false),
		}},
		{"two live copies: the newcomer is the clone", []step{
			arrive("orig", hold, false), arrive("copy", hold, false), leave("orig", false),
			arrive("orig", hold, false), leave("copy", true), leave("orig", false),
		}},
		{"two live copies, the copy coming back last", []step{
			arrive("orig", hold, false), leave("orig", false), // between two holds
			arrive("copy", hold, false), arrive("orig", hold, false), leave("copy", false),
			arrive("copy", hold, true), // the original keeps its hold
			leave("orig", false),
		}},
		{"short check-ins take no hold over", []step{
			arrive("agent", hold, false), arrive("doctor", short, false), leave("doctor", false),
			leave("agent", false), arrive("agent", hold, false), leave("agent", false),
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newCloneWatch()
			for i, s := range tc.steps {
				var got bool
				if s.leave {
					got = w.leave("ag_1", s.conn)
				} else {
					got = w.arrive("ag_1", s.conn, s.wait)
					time.Sleep(time.Millisecond) // first-seen times differ
				}
				if got != s.want {
					t.Errorf("step %d (%+v): got clone=%v, want %v", i, s, got, s.want)
				}
			}
		})
	}
}
