package relay

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync"
	"time"
)

// handshakeTimeout bounds a TLS handshake (net/http's ReadHeaderTimeout
// did so before the handshake moved here).
const handshakeTimeout = 10 * time.Second

// tlsListener hands net/http connections whose TLS handshake is already
// done. The handshake runs in a short-lived goroutine of its own: its deep
// crypto stack ends with it, instead of staying in the stack of the
// connection's serving goroutine for as long as the agent stays connected
// (about 8 KiB per held agent).
type tlsListener struct {
	net.Listener
	cfg     *tls.Config
	failed  func(error)
	conns   chan net.Conn
	done    chan struct{}
	once    sync.Once
	mu      sync.Mutex
	err     error
	pending map[net.Conn]struct{} // handshaking now: closed with the listener
}

func newTLSListener(ln net.Listener, cfg *tls.Config, failed func(error)) *tlsListener {
	l := &tlsListener{Listener: ln, cfg: cfg, failed: failed, conns: make(chan net.Conn),
		done: make(chan struct{}), pending: map[net.Conn]struct{}{}}
	go l.acceptLoop()
	return l
}

func (l *tlsListener) acceptLoop() {
	var delay time.Duration
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() { // out of files and the like: back off
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				select {
				case <-time.After(delay):
					continue
				case <-l.done:
				}
			}
			l.mu.Lock()
			l.err = err
			l.mu.Unlock()
			l.Close()
			return
		}
		delay = 0
		if !l.track(c, true) {
			c.Close()
			return
		}
		go l.handshake(c)
	}
}

func (l *tlsListener) handshake(raw net.Conn) {
	tc := tls.Server(raw, l.cfg)
	ctx, cancel := context.WithTimeout(context.Background(), handshakeTimeout)
	err := tc.HandshakeContext(ctx)
	cancel()
	l.track(raw, false)
	if err != nil {
		l.failed(err)
		answerPlainHTTP(err)
		raw.Close()
		return
	}
	select {
	case l.conns <- tc:
	case <-l.done:
		raw.Close()
	}
}

// track adds (or removes) a handshaking connection; false once closed.
func (l *tlsListener) track(c net.Conn, add bool) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	select {
	case <-l.done:
		return false
	default:
	}
	if add {
		l.pending[c] = struct{}{}
	} else {
		delete(l.pending, c)
	}
	return true
}

func (l *tlsListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.err != nil && !errors.Is(l.err, net.ErrClosed) {
			return nil, l.err
		}
		return nil, net.ErrClosed
	}
}

func (l *tlsListener) Close() error {
	var err error
	l.once.Do(func() {
		l.mu.Lock()
		close(l.done)
		for c := range l.pending {
			c.Close()
		}
		l.mu.Unlock()
		err = l.Listener.Close()
	})
	return err
}

// answerPlainHTTP answers a plain HTTP request on a TLS port with a 400,
// as net/http does when it runs the handshake itself: the caller then reads
// "wrong URL" instead of a bare EOF, and agents try their next URL.
func answerPlainHTTP(err error) {
	var re tls.RecordHeaderError
	if !errors.As(err, &re) || re.Conn == nil || !looksLikeHTTP(re.RecordHeader) {
		return
	}
	re.Conn.SetWriteDeadline(time.Now().Add(time.Second))
	io.WriteString(re.Conn, "HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain\r\n\r\nClient sent an HTTP request to an HTTPS server.\n")
}

func looksLikeHTTP(h [5]byte) bool {
	switch string(h[:]) {
	case "GET /", "HEAD ", "POST ", "PUT /", "OPTIO":
		return true
	}
	return false
}
