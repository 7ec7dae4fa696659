package relay_test

import (
	"testing"
	"time"

	"outpost/relay/wire"
)

// TestParkedConnectionKeepsIdleTimeout: a plain connection handed back
// after a parked check-in may idle as long as any kept-alive connection
// before its next request. net/http takes it for a new connection and
// gave that request only ReadHeaderTimeout (10 s): after 11 s of quiet the
// events POST below found the connection closed.
func TestParkedConnectionKeepsIdleTimeout(t *testing.T) {
	t.Parallel()
	r := newParkRig(t, 5*time.Second)
	a := r.agent(t, 1)
	rc := r.dial(t)
	if err := rc.checkin(a, time.Second, false); err != nil {
		t.Fatal(err)
	}
	got, err := rc.answer(5 * time.Second)
	plainAnswer(t, "held check-in", got, err)
	time.Sleep(11 * time.Second) // past ReadHeaderTimeout, well within IdleTimeout
	if err := rc.send(wire.PathEvents, a.auth(), wire.EventBatch{Records: records(1, 3)}, false); err != nil {
		t.Fatalf("events after 11 s idle: %v", err)
	}
	var ack wire.EventAck
	if _, err := rc.read(5*time.Second, &ack); err != nil || len(ack.Acked) != 3 {
		t.Errorf("events after 11 s idle on the handed-back connection: got %v (%v), want 3 acked", ack.Acked, err)
	}
}
