package relay

import (
	"testing"

	"outpost/relay/wire"
)

// TestUpgradeRedeliveredWhileRunning: the management host hands a
// delivered command over again until the relay's first report reaches it;
// that second copy must not end the running upgrade as "another upgrade is
// under way" (it did, under load), while a different upgrade still must.
func TestUpgradeRedeliveredWhileRunning(t *testing.T) {
	for _, tt := range []struct {
		name  string
		id    int64
		wantN int // results posted
	}{
		{"same command again", 7, 0},
		{"another upgrade", 8, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			j := &joinedRole{s: &Server{}}
			j.up.wake = make(chan struct{}, 1)
			j.up.busy, j.up.busyID = true, 7
			j.startUpgrade(wire.Command{ID: tt.id, Type: wire.CmdUpgrade})
			if got := len(j.up.pending); got != tt.wantN {
				t.Fatalf("results posted: got %d (%+v), want %d", got, j.up.pending, tt.wantN)
			}
			if tt.wantN == 1 && j.up.pending[0].r.State != wire.StateFailed {
				t.Errorf("got %+v, want failed", j.up.pending[0].r)
			}
			if !j.up.busy || j.up.busyID != 7 {
				t.Errorf("running upgrade: got busy %t id %d, want command 7 still running", j.up.busy, j.up.busyID)
			}
		})
	}
}
