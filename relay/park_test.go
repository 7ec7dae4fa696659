package relay_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"outpost/relay"
	"outpost/relay/wire"
	"outpost/store"
)

// Parked check-ins (park.go): a check-in held on HTTP/1.x is taken out of
// net/http for the hold and its connection handed back afterwards.

type parkRig struct {
	m  *manager
	hc *http.Client
	f  fleet
}

// newParkRig starts a manager that serves agents on plain HTTP, holding
// check-ins up to poll.
func newParkRig(t *testing.T, poll time.Duration) *parkRig {
	t.Helper()
	m := startManager(t, func(c *relay.Config) { c.AllowPlain, c.PollTimeout = true, poll })
	hc := httpClient(m)
	t.Cleanup(hc.CloseIdleConnections)
	return &parkRig{m: m, hc: hc, f: newFleet(t, m, "acme", 0)}
}

type parkAgent struct{ id, secret, fp string }

func (a parkAgent) auth() string { return wire.AgentAuth(a.id, a.secret) }

// agent enrols agent i directly in the store (no request to the relay).
func (r *parkRig) agent(t *testing.T, i int) parkAgent {
	t.Helper()
	h, _ := linuxHost(i)
	en, err := r.m.DB.Enrol(context.Background(), store.EnrolInput{Key: r.f.Key,
		Host: store.HostFacts{Hostname: h.Hostname, OS: h.OS, Arch: h.Arch, Fingerprint: h.Fingerprint}})
	if err != nil {
		t.Fatalf("enrol agent %d: %v", i, err)
	}
	return parkAgent{en.Agent.ID, en.Secret, h.Fingerprint}
}

func (r *parkRig) held(t *testing.T) int64 {
	return metric(t, r.hc, r.m.PlainURL, "outpost_checkins_held")
}

func (r *parkRig) waitHeld(t *testing.T, n int64) {
	t.Helper()
	waitFor(t, 5*time.Second, fmt.Sprintf("%d check-ins held", n), func() bool { return r.held(t) == n })
}

// rawConn is a TCP connection to the plain listener; its methods return
// errors (no t.Fatal) so goroutines can use them.
type rawConn struct {
	c  net.Conn
	br *bufio.Reader
}

func (r *parkRig) dial(t *testing.T) *rawConn {
	c, err := net.Dial("tcp", strings.TrimPrefix(r.m.PlainURL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawConn{c: c, br: bufio.NewReader(c)}
}

func (rc *rawConn) send(path, auth string, in any, closing bool) error {
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	req, err := http.NewRequest(http.MethodPost, "http://relay"+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	req.Close = closing
	rc.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	return req.Write(rc.c)
}

func (rc *rawConn) checkin(a parkAgent, wait time.Duration, closing bool) error {
	return rc.send(wire.PathCheckin, a.auth(), wire.CheckinRequest{Fingerprint: a.fp, Wait: wire.Duration(wait)}, closing)
}

// read reads one answer within d and decodes its 200 body into out.
func (rc *rawConn) read(d time.Duration, out any) (*http.Response, error) {
	rc.c.SetReadDeadline(time.Now().Add(d))
	resp, err := http.ReadResponse(rc.br, nil)
	if err != nil {
		return nil, err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return resp, err
	}
	if resp.StatusCode != http.StatusOK {
		return resp, fmt.Errorf("got %d %s, want 200", resp.StatusCode, b)
	}
	if err := json.Unmarshal(b, out); err != nil {
		return resp, fmt.Errorf("answer %q: %v", b, err)
	}
	return resp, nil
}

func (rc *rawConn) answer(d time.Duration) (wire.CheckinResponse, error) {
	var cr wire.CheckinResponse
	_, err := rc.read(d, &cr)
	return cr, err
}

// closedWithin reports whether the server closed the connection within d
// (nothing more to read).
func (rc *rawConn) closedWithin(d time.Duration) error {
	rc.c.SetReadDeadline(time.Now().Add(d))
	b, err := rc.br.ReadByte()
	switch {
	case err == nil:
		return fmt.Errorf("read %q, want EOF", b)
	case errors.Is(err, io.EOF):
		return nil
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("still open after %s, want closed by the server", d)
	}
	return nil // reset: closed too
}

func plainAnswer(t *testing.T, what string, got wire.CheckinResponse, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if got.Clone || got.DuplicateID || got.Settings.PollTimeout <= 0 || got.ServerTimeUTC.IsZero() {
		t.Errorf("%s: got %+v, want a plain answer with settings and the server time", what, got)
	}
}

// A command queued for a parked agent wakes it within a second (best of
// three: a command only at the wait's end, 5 s, fails all three).
func TestParkedCheckinGetsCommandWithinOneSecond(t *testing.T) {
	r := newParkRig(t, 5*time.Second)
	ctx := context.Background()
	st := r.m.DB.Settings()
	st.BindBatchGap = time.Millisecond
	if err := r.m.DB.SetSettings(ctx, st); err != nil {
		t.Fatal(err)
	}
	c := agentClient(t, r.m, r.m.PlainURL) // HTTP/1.1 to an http:// URL
	en := enrolLinux(t, c, r.f.Key, 1)
	h, _ := linuxHost(1)
	best := time.Hour
	for i, name := range []string{"dc1", "dc2", "dc3"} {
		cl := newCluster(t, r.m, r.f.Account.ID, name, "relay."+name+".example")
		type result struct {
			resp wire.CheckinResponse
			err  error
			at   time.Time
		}
		done := make(chan result, 1)
		go func() {
			resp, err := c.Checkin(ctx, wire.CheckinRequest{Fingerprint: h.Fingerprint, Wait: wire.Duration(5 * time.Second)})
			done <- result{resp, err, time.Now()}
		}()
		r.waitHeld(t, 1)
		queued := time.Now()
		if _, err := r.m.DB.Bind(ctx, cl.ID, []string{en.AgentID}); err != nil {
			t.Fatal(err)
		}
		got := <-done
		if got.err != nil {
			t.Fatal(got.err)
		}
		if len(got.resp.Commands) != 1 || got.resp.Commands[0].Type != wire.CmdBind || got.resp.Commands[0].Cluster != name {
			t.Fatalf("attempt %d: got commands %+v, want one bind to %s", i+1, got.resp.Commands, name)
		}
		took := got.at.Sub(queued)
		t.Logf("attempt %d: command arrived %s after it was queued", i+1, took.Round(time.Millisecond))
		best = min(best, took)
		if _, err := c.Checkin(ctx, wire.CheckinRequest{Fingerprint: h.Fingerprint, Acked: []int64{got.resp.Commands[0].ID}}); err != nil {
			t.Fatal(err)
		}
	}
	if best > time.Second {
		t.Errorf("best of three: command arrived %s after it was queued, want within 1s", best)
	}
}

// On one connection: held check-ins are answered at the end of their wait
// and the connection serves the next requests (it was handed back), a
// held one again among them; with Connection: close it is closed after
// the answer.
func TestParkedCheckinConnectionReuse(t *testing.T) {
	r := newParkRig(t, 5*time.Second)
	a := r.agent(t, 1)
	const wait = time.Second
	heldOnce := func(t *testing.T, rc *rawConn, closing bool) *http.Response {
		t.Helper()
		start := time.Now()
		if err := rc.checkin(a, wait, closing); err != nil {
			t.Fatal(err)
		}
		var got wire.CheckinResponse
		resp, err := rc.read(5*time.Second, &got)
		plainAnswer(t, "held check-in", got, err)
		if took := time.Since(start); took < wait-100*time.Millisecond || took > 3*wait {
			t.Errorf("answered after %s, want at the end of its %s wait", took.Round(time.Millisecond), wait)
		}
		return resp
	}

	t.Run("keep-alive", func(t *testing.T) {
		rc := r.dial(t)
		for i := 1; i <= 2; i++ {
			if resp := heldOnce(t, rc, false); resp.Close {
				t.Fatalf("held check-in %d: answer says Connection: close, want keep-alive", i)
			}
		}
		if err := rc.checkin(a, 0, false); err != nil {
			t.Fatal(err)
		}
		got, err := rc.answer(2 * time.Second)
		plainAnswer(t, "unheld check-in on the handed-back connection", got, err)
		if err := rc.send(wire.PathEvents, a.auth(), wire.EventBatch{Records: records(1, 3)}, false); err != nil {
			t.Fatal(err)
		}
		var ack wire.EventAck
		if _, err := rc.read(5*time.Second, &ack); err != nil || len(ack.Acked) != 3 {
			t.Errorf("events on the handed-back connection: got %v (%v), want 3 acked", ack.Acked, err)
		}
		heldOnce(t, rc, false) // parks again
	})

	t.Run("connection close", func(t *testing.T) {
		rc := r.dial(t)
		if resp := heldOnce(t, rc, true); !resp.Close {
			t.Errorf("answer to a Connection: close request: got Close=false, want the header")
		}
		if err := rc.closedWithin(3 * time.Second); err != nil {
			t.Errorf("after the answer: %v", err)
		}
	})
}

// The agent hangs up while parked: the hold ends at once (held back to 0)
// and its next check-in, on a new connection, is no clone.
func TestParkedAgentGoesAway(t *testing.T) {
	r := newParkRig(t, 5*time.Second)
	a := r.agent(t, 1)
	rc := r.dial(t)
	if err := rc.checkin(a, 5*time.Second, false); err != nil {
		t.Fatal(err)
	}
	r.waitHeld(t, 1)
	start := time.Now()
	rc.c.Close()
	waitFor(t, 1500*time.Millisecond, "the hold to end after the hang-up", func() bool { return r.held(t) == 0 })
	t.Logf("hold ended %s after the hang-up", time.Since(start).Round(time.Millisecond))

	again := r.dial(t)
	if err := again.checkin(a, time.Second, false); err != nil {
		t.Fatal(err)
	}
	r.waitHeld(t, 1)
	got, err := again.answer(5 * time.Second)
	plainAnswer(t, "check-in after the hang-up", got, err)
	if g, err := r.m.DB.GetAgent(context.Background(), a.id); err != nil || g.Duplicate {
		t.Errorf("agent %s: got duplicate=%v (%v), want not flagged", a.id, g.Duplicate, err)
	}
}

// A parked check-in is answered at once when woken: by a newer check-in
// of the agent on another connection, or by new settings.
func TestParkedCheckinWoken(t *testing.T) {
	r := newParkRig(t, 30*time.Second)
	cli, err := store.Open(r.m.DB.Path, nil) // the CLI: another process
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	const wait = 30 * time.Second
	for i, tc := range []struct {
		name   string
		wake   func(t *testing.T, a parkAgent) *rawConn // returns a connection that holds now, if any
		within time.Duration
	}{
		{"newer check-in on another connection", func(t *testing.T, a parkAgent) *rawConn {
			rc := r.dial(t)
			if err := rc.checkin(a, wait, false); err != nil {
				t.Fatal(err)
			}
			return rc
		}, time.Second},
		{"new settings", func(t *testing.T, _ parkAgent) *rawConn {
			s := cli.Settings()
			s.OfflineAfter += time.Minute
			if err := cli.SetSettings(context.Background(), s); err != nil {
				t.Fatal(err)
			}
			return nil
		}, 3 * time.Second}, // reloaded every second
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := r.agent(t, i)
			old := r.dial(t)
			if err := old.checkin(a, wait, false); err != nil {
				t.Fatal(err)
			}
			r.waitHeld(t, 1)
			start := time.Now()
			newer := tc.wake(t, a)
			got, err := old.answer(wait)
			plainAnswer(t, "woken check-in", got, err)
			if took := time.Since(start); took > tc.within {
				t.Errorf("answered %s after the wake, want within %s (not at the %s wait's end)", took.Round(time.Millisecond), tc.within, wait)
			}
			if newer != nil {
				r.waitHeld(t, 1) // the newer one holds
				newer.c.Close()
			}
			r.waitHeld(t, 0)
		})
	}
}

// Two live connections as one agent over HTTP/1.1 behave as over HTTP/2
// (TestSameFingerprintClonesThroughJoinedRelay): the newcomer is answered
// Clone; an agent that moved to a new connection is not.
func TestParkedClones(t *testing.T) {
	r := newParkRig(t, 5*time.Second)
	ctx := context.Background()
	const hold = 1500 * time.Millisecond
	type answer struct {
		resp wire.CheckinResponse
		err  error
	}
	checkin := func(c interface {
		Checkin(context.Context, wire.CheckinRequest) (wire.CheckinResponse, error)
	}, fp string) chan answer {
		ch := make(chan answer, 1)
		go func() {
			resp, err := c.Checkin(ctx, wire.CheckinRequest{Fingerprint: fp, Wait: wire.Duration(hold)})
			ch <- answer{resp, err}
		}()
		return ch
	}

	t.Run("two live copies", func(t *testing.T) {
		orig := agentClient(t, r.m, r.m.PlainURL)
		en := enrolLinux(t, orig, r.f.Key, 1)
		h, _ := linuxHost(1)
		cp := agentClient(t, r.m, r.m.PlainURL) // its own transport: another connection
		cp.SetCredentials(en.AgentID, en.Secret)

		first := checkin(orig, h.Fingerprint)
		r.waitHeld(t, 1)
		second := checkin(cp, h.Fingerprint) // takes the hold over
		if a := <-first; a.err != nil || a.resp.Clone {
			t.Fatalf("original's answer: got %+v %v, want a plain answer", a.resp, a.err)
		}
		again := checkin(orig, h.Fingerprint) // straight back, on its kept-alive connection
		if b := <-second; b.err != nil || !b.resp.Clone || !b.resp.DuplicateID {
			t.Errorf("copy's answer: got clone=%v duplicate=%v err=%v, want Clone", b.resp.Clone, b.resp.DuplicateID, b.err)
		}
		if c := <-again; c.err != nil || c.resp.Clone {
			t.Errorf("original's next answer: got clone=%v err=%v, want a plain answer", c.resp.Clone, c.err)
		}
		if g, err := r.m.DB.GetAgent(ctx, en.AgentID); err != nil || !g.Duplicate {
			t.Errorf("agent %s: got duplicate=%v (%v), want flagged", en.AgentID, g.Duplicate, err)
		}
	})

	t.Run("moved to a new connection", func(t *testing.T) {
		before := agentClient(t, r.m, r.m.PlainURL)
		en := enrolLinux(t, before, r.f.Key, 2)
		h, _ := linuxHost(2)
		after := agentClient(t, r.m, r.m.PlainURL)
		after.SetCredentials(en.AgentID, en.Secret)

		old := checkin(before, h.Fingerprint)
		r.waitHeld(t, 1)
		moved := checkin(after, h.Fingerprint) // the old connection is never used again
		<-old
		for i := 0; i < 2; i++ {
			if a := <-moved; a.err != nil || a.resp.Clone {
				t.Fatalf("check-in %d on the new connection: got clone=%v err=%v, want a plain answer", i+1, a.resp.Clone, a.err)
			}
			moved = checkin(after, h.Fingerprint)
		}
		<-moved
		if g, err := r.m.DB.GetAgent(ctx, en.AgentID); err != nil || g.Duplicate {
			t.Errorf("agent %s: got duplicate=%v (%v), want not flagged", en.AgentID, g.Duplicate, err)
		}
	})
}

// Close with many parked check-ins returns quickly; each is answered (or
// its connection closed) at once and no connection is left open.
func TestParkedCheckinsAtShutdown(t *testing.T) {
	const n, wait = 50, time.Minute
	r := newParkRig(t, wait)
	conns := make([]*rawConn, n)
	for i := range conns {
		conns[i] = r.dial(t)
		if err := conns[i].checkin(r.agent(t, i), wait, false); err != nil {
			t.Fatal(err)
		}
	}
	r.waitHeld(t, n)
	r.hc.CloseIdleConnections()
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, rc := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := rc.answer(5 * time.Second)
			var ne net.Error
			switch {
			case errors.As(err, &ne) && ne.Timeout():
				errs[i] = fmt.Errorf("no answer within 5s of Close")
			case err == nil || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
				if cerr := rc.closedWithin(3 * time.Second); cerr != nil {
					errs[i] = fmt.Errorf("answered (read error %v), then %v", err, cerr)
				}
			default:
				errs[i] = err // a reset: closed
			}
		}()
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.m.Relay.Close(ctx); err != nil {
		t.Errorf("Close: %v", err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("Close took %s with %d parked check-ins, want under 3s", took.Round(time.Millisecond), n)
	}
	wg.Wait()
	var bad []int
	for i, err := range errs {
		if err != nil {
			bad = append(bad, i)
			t.Logf("parked check-in %d: %v", i, err)
		}
	}
	if len(bad) > 0 {
		t.Errorf("%d of %d parked connections not answered and closed: %v", len(bad), n, bad)
	}
}

// Enrolment and events on the plain listener are served as before, on one
// kept-alive connection (nothing hijacked).
func TestPlainEnrolAndEventsNotParked(t *testing.T) {
	r := newParkRig(t, 5*time.Second)
	h, inv := linuxHost(7)
	rc := r.dial(t)
	if err := rc.send(wire.PathEnrol, "", wire.EnrolRequest{Key: r.f.Key, Host: h, Inventory: inv}, false); err != nil {
		t.Fatal(err)
	}
	var en wire.EnrolResponse
	if _, err := rc.read(5*time.Second, &en); err != nil || en.AgentID == "" || en.Secret == "" {
		t.Fatalf("enrol: got %+v (%v), want an identity", en, err)
	}
	a := parkAgent{en.AgentID, en.Secret, h.Fingerprint}
	for i := 0; i < 2; i++ {
		if err := rc.send(wire.PathEvents, a.auth(), wire.EventBatch{Records: records(uint64(3*i+1), uint64(3*i+3))}, false); err != nil {
			t.Fatal(err)
		}
		var ack wire.EventAck
		if _, err := rc.read(5*time.Second, &ack); err != nil || len(ack.Acked) != 3 {
			t.Fatalf("events batch %d: got %v (%v), want 3 acked", i+1, ack.Acked, err)
		}
	}
	if got := r.held(t); got != 0 {
		t.Errorf("held check-ins: got %d, want 0", got)
	}
}
