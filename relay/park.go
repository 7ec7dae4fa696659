package relay

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"outpost/relay/wire"
	"outpost/store"
)

// A held HTTP/1.1 check-in is parked: its connection is taken out of
// net/http (hijacked) for the hold and handed back to the same http.Server
// afterwards, through its parkListener, for the agent's next request.
// While it is parked the connection costs one goroutine on a small stack,
// blocked in a one-byte read, instead of net/http's serving goroutine (its
// stack grown by the request), its background reader, its buffered reader
// and writer and the request's response state. HTTP/2 connections (agents
// over TLS) cannot be hijacked and stay held inside net/http.

// parkKey carries a connection's parkListener in its context.
type parkKey struct{}

// parkListener is a listener that also takes parked connections back.
type parkListener struct {
	net.Listener
	idle time.Duration // the server's IdleTimeout
	in   chan acceptResult
	back chan net.Conn
	done chan struct{}
	once sync.Once
}

type acceptResult struct {
	c   net.Conn
	err error
}

func newParkListener(ln net.Listener, idle time.Duration) *parkListener {
	l := &parkListener{Listener: ln, idle: idle, in: make(chan acceptResult), back: make(chan net.Conn, 256), done: make(chan struct{})}
	go l.acceptLoop()
	return l
}

func (l *parkListener) acceptLoop() {
	for {
		c, err := l.Listener.Accept()
		select {
		case l.in <- acceptResult{c, err}:
		case <-l.done:
			if c != nil {
				c.Close()
			}
			return
		}
		if err != nil {
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				return // the listener is gone; Accept returned its error
			}
		}
	}
}

// Accept returns a new connection or one handed back after a hold.
func (l *parkListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.back:
		return c, nil
	case r := <-l.in:
		return r.c, r.err
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *parkListener) Close() error {
	l.once.Do(func() { close(l.done) })
	l.drain()
	return l.Listener.Close()
}

// giveBack serves c again, or closes it once the listener is closed.
func (l *parkListener) giveBack(c net.Conn) {
	c = l.keepIdle(c)
	select {
	case l.back <- c:
	case <-l.done:
		c.Close()
		return
	}
	select {
	case <-l.done: // closed meanwhile (select picks at random): nobody accepts it
		l.drain()
	default:
	}
}

// drain closes the connections handed back that nobody will accept.
func (l *parkListener) drain() {
	for {
		select {
		case c := <-l.back:
			c.Close()
		default:
			return
		}
	}
}

// park holds hc on a hijacked connection when it can (HTTP/1.x, served by
// a parkListener, nothing buffered after the request, not a clone) and
// reports whether it took the check-in over; false leaves w and the hold
// to the caller.
func (h *management) park(w http.ResponseWriter, r *http.Request, hc *heldCheckin) bool {
	pl, _ := r.Context().Value(parkKey{}).(*parkListener)
	hj, ok := w.(http.Hijacker)
	if pl == nil || !ok || r.ProtoMajor != 1 || hc.wait < time.Second {
		return false
	}
	// Counted under s.mu before Close looks (it takes s.mu after marking
	// itself closed), so Close's wait sees every parked check-in.
	h.s.mu.Lock()
	if h.s.closed.Load() {
		h.s.mu.Unlock()
		return false
	}
	h.s.parked.Add(1)
	h.s.mu.Unlock()
	conn, brw, err := hj.Hijack()
	if err != nil {
		h.s.parked.Done()
		return false
	}
	if brw.Reader.Buffered() > 0 { // a pipelined request: not served here
		conn.Close()
		h.s.parked.Done()
		return true
	}
	p := &parkedCheckin{h: h, conn: conn, pl: pl, hc: hc, who: agentConn(r, hc.ra)}
	p.r = heldRequest(r)
	p.start()
	return true
}

// heldRequest is what answering a parked check-in reads of r (the scheme
// and the relay header, for the URLs an unbind hands out), without what
// r keeps alive: its body's reader (net/http's 4 KiB read buffer), its
// headers and net/http's contexts.
func heldRequest(r *http.Request) *http.Request {
	keep := &http.Request{Method: r.Method, URL: r.URL, Proto: r.Proto, ProtoMajor: r.ProtoMajor, ProtoMinor: r.ProtoMinor,
		Header: http.Header{}, Body: http.NoBody, Host: r.Host, RemoteAddr: r.RemoteAddr, TLS: r.TLS, Close: r.Close}
	if v := r.Header.Get(wire.HeaderRelay); v != "" {
		keep.Header.Set(wire.HeaderRelay, v)
	}
	return keep.WithContext(context.Background())
}

// parkedCheckin is a held check-in on a hijacked connection. Its one
// goroutine waits in a one-byte read: the read ends when the agent goes
// away (net/http's own background read does the same for a request in
// flight), at the end of the wait (the read deadline) or when the hub
// wakes the check-in (it moves the deadline into the past).
type parkedCheckin struct {
	h    *management
	conn net.Conn
	pl   *parkListener
	r    *http.Request
	hc   *heldCheckin
	who  string // agentConn
	w    *waiter
}

func (p *parkedCheckin) start() {
	h, id := p.h, p.hc.a.ID
	if h.clones.arrive(id, p.who, p.hc.wait) {
		p.answer(nil, true, nil)
		return
	}
	h.s.m.held.Add(1)
	p.w = h.hub.join(id, func() { p.conn.SetReadDeadline(time.Unix(1, 0)) })
	if p.w == nil { // shutting down
		p.finish(nil, nil)
		return
	}
	go p.hold(time.Now().Add(p.hc.wait))
}

func (p *parkedCheckin) hold(until time.Time) {
	var one [1]byte
	for {
		p.conn.SetReadDeadline(until) // before looking: a wake after the look cuts the read short
		if p.ended() {
			p.finish(nil, nil) // superseded, shutdown, new settings
			return
		}
		cmds, err := p.h.hub.deliver(p.r.Context(), p.h.db, p.hc.a.ID)
		if err != nil || len(cmds) > 0 {
			p.finish(cmds, err)
			return
		}
		n, err := p.conn.Read(one[:])
		var ne net.Error
		if n > 0 || !errors.As(err, &ne) || !ne.Timeout() {
			p.lost() // the agent went away (or spoke during the hold)
			return
		}
		if !time.Now().Before(until) {
			p.finish(nil, nil)
			return
		}
	}
}

// finish ends the hold and answers it.
func (p *parkedCheckin) finish(cmds []store.Command, err error) {
	h := p.h
	if p.w != nil {
		h.hub.leave(p.hc.a.ID, p.w)
	}
	h.s.m.held.Add(-1)
	clone := h.clones.leave(p.hc.a.ID, p.who)
	p.conn.SetReadDeadline(time.Time{})
	p.answer(cmds, clone, err)
}

// lost ends the hold of an agent that went away: nobody to answer.
func (p *parkedCheckin) lost() {
	h := p.h
	h.hub.leave(p.hc.a.ID, p.w)
	h.s.m.held.Add(-1)
	h.clones.leave(p.hc.a.ID, p.who)
	p.conn.Close()
	h.s.parked.Done()
}

// answer writes the check-in's answer and hands the connection back to
// net/http (closes it when the agent asked so, or the write failed).
func (p *parkedCheckin) answer(cmds []store.Command, clone bool, err error) {
	defer p.h.s.parked.Done()
	p.h.endHold(p.r, p.hc, p.who, clone)
	rec := &recorder{header: http.Header{}}
	p.h.answerCheckin(rec, p.r, p.hc, cmds, clone, err)
	if rec.code == 0 || writeParked(p.conn, rec, p.r.Close) != nil || p.r.Close {
		p.conn.Close()
		return
	}
	p.pl.giveBack(p.conn)
}

// writeParked writes rec as the HTTP/1.1 answer on conn.
func writeParked(conn net.Conn, rec *recorder, closing bool) error {
	conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	defer conn.SetWriteDeadline(time.Time{})
	rec.header.Set("Date", time.Now().UTC().Format(http.TimeFormat))
	resp := &http.Response{StatusCode: rec.code, ProtoMajor: 1, ProtoMinor: 1, Header: rec.header,
		ContentLength: int64(rec.body.Len()), Body: io.NopCloser(&rec.body), Close: closing}
	bw := bufio.NewWriterSize(conn, rec.body.Len()+512) // one write for the answer
	if err := resp.Write(bw); err != nil {
		return err
	}
	return bw.Flush()
}

// ended takes a command token, if any, and reports whether the waiter's
// channel is closed (a token may sit in front of the close).
func (p *parkedCheckin) ended() bool {
	for {
		select {
		case _, open := <-p.w.ch:
			if !open {
				return true
			}
		default:
			return false
		}
	}
}

// keepIdle: net/http takes a connection handed back for a new one and
// gives its first request ReadHeaderTimeout (10 s) to arrive, where a
// connection that answered a request gets IdleTimeout (120 s). A plain
// connection is wrapped so that its first read deadline is the idle one;
// a TLS one cannot be (net/http must see the *tls.Conn) and keeps 10 s.
func (l *parkListener) keepIdle(c net.Conn) net.Conn {
	switch c := c.(type) {
	case *tls.Conn:
		return c
	case *idleConn:
		c.first.Store(true)
		return c
	}
	ic := &idleConn{Conn: c, idle: l.idle}
	ic.first.Store(true)
	return ic
}

// idleConn is a handed-back plain connection (keepIdle).
type idleConn struct {
	net.Conn
	idle  time.Duration
	first atomic.Bool
}

func (c *idleConn) SetReadDeadline(t time.Time) error {
	if c.first.Swap(false) && c.idle > 0 {
		if d := time.Now().Add(c.idle); d.After(t) {
			t = d
		}
	}
	return c.Conn.SetReadDeadline(t)
}
