package agentsim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"outpost/relay/wire"
)

// ClientOptions configure the protocol client shared by the reference
// agent and every simulated agent.
type ClientOptions struct {
	Proxies  []string // relay URLs, tried in turn when one is down
	CASHA256 string   // pinned CA fingerprint for https URLs
	// LocalIP binds outgoing connections to this source address, so a
	// simulator can spread agents over 127.0.0.0/8 and go past the
	// ephemeral-port limit of one source address.
	LocalIP net.IP
	// Transport, when set, is shared (simulators share one per source IP).
	Transport *http.Transport
	Timeout   time.Duration // per call, beyond the long-poll wait
}

// NewTransport returns a transport for the options (pinned TLS, source IP).
func NewTransport(o ClientOptions) *http.Transport {
	d := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	if o.LocalIP != nil {
		d.LocalAddr = &net.TCPAddr{IP: o.LocalIP}
	}
	return &http.Transport{
		DialContext:     d.DialContext,
		TLSClientConfig: PinnedTLS(o.CASHA256),
		// On TLS an agent speaks HTTP/2: its held check-in and its event
		// posts share one connection, so a relay needs one socket per agent.
		ForceAttemptHTTP2:   true,
		MaxIdleConns:        0,
		MaxIdleConnsPerHost: 100000,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: 10 * time.Second,
	}
}

// PinnedTLS is wire.PinnedTLS, re-exported for callers of this package.
var PinnedTLS = wire.PinnedTLS

// Client speaks the agent protocol to a relay.
type Client struct {
	http    *http.Client
	timeout time.Duration

	mu      sync.Mutex
	proxies []string
	cur     int
	id      string
	secret  string
}

// NewClient returns a client; Credentials are set after enrolment.
func NewClient(o ClientOptions) *Client {
	t := o.Transport
	if t == nil {
		t = NewTransport(o)
	}
	if o.Timeout <= 0 {
		o.Timeout = 15 * time.Second
	}
	return &Client{http: &http.Client{Transport: t}, timeout: o.Timeout, proxies: append([]string(nil), o.Proxies...)}
}

// SetCredentials installs the agent identity.
func (c *Client) SetCredentials(id, secret string) {
	c.mu.Lock()
	c.id, c.secret = id, secret
	c.mu.Unlock()
}

// SetProxies replaces the relay list (bind/unbind commands).
func (c *Client) SetProxies(urls []string) {
	if len(urls) == 0 {
		return
	}
	c.mu.Lock()
	c.proxies, c.cur = append([]string(nil), urls...), 0
	c.mu.Unlock()
}

// Proxies returns the relay list, the one in use first.
func (c *Client) Proxies() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := append([]string(nil), c.proxies[c.cur:]...)
	return append(out, c.proxies[:c.cur]...)
}

// StatusError is a refusal by the relay.
type StatusError struct {
	Status     int
	Code       string
	Message    string
	RetryAfter time.Duration
}

func (e *StatusError) Error() string { return fmt.Sprintf("%d %s", e.Status, e.Message) }

// IsStatus reports whether err is a relay refusal with that status.
func IsStatus(err error, status int) bool {
	var se *StatusError
	return errors.As(err, &se) && se.Status == status
}

// ErrNoRelay means no configured relay answered.
var ErrNoRelay = errors.New("no relay reachable")

// do sends one call, failing over to the next relay on network errors.
// Relay refusals (any HTTP status) are returned as they are: another relay
// of the same fleet would answer the same.
func (c *Client) do(ctx context.Context, method, path string, in, out any, wait time.Duration) error {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return err
		}
	}
	c.mu.Lock()
	n := len(c.proxies)
	c.mu.Unlock()
	if n == 0 {
		return ErrNoRelay
	}
	var lastErr error
	for i := 0; i < n; i++ {
		c.mu.Lock()
		idx := c.cur
		base := c.proxies[idx]
		id, secret := c.id, c.secret
		c.mu.Unlock()
		cctx, cancel := context.WithTimeout(ctx, c.timeout+wait)
		req, err := http.NewRequestWithContext(cctx, method, strings.TrimRight(base, "/")+path, bytes.NewReader(body))
		if err != nil {
			cancel()
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		if id != "" {
			req.Header.Set("Authorization", "Bearer "+id+":"+secret)
		}
		resp, err := c.http.Do(req)
		if err != nil {
			cancel()
			if ctx.Err() != nil {
				return ctx.Err()
			}
			lastErr = err
			c.mu.Lock()
			if c.cur == idx && len(c.proxies) > 0 {
				c.cur = (c.cur + 1) % len(c.proxies)
			}
			c.mu.Unlock()
			continue
		}
		err = decode(resp, out)
		cancel()
		return err
	}
	return fmt.Errorf("%w: %v", ErrNoRelay, lastErr)
}

func decode(resp *http.Response, out any) error {
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		var e wire.Error
		json.Unmarshal(b, &e)
		se := &StatusError{Status: resp.StatusCode, Code: e.Code, Message: e.Message}
		if se.Message == "" {
			se.Message = http.StatusText(resp.StatusCode)
		}
		if ra, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil {
			se.RetryAfter = time.Duration(ra) * time.Second
		}
		return se
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(b, out)
}

// Enrol exchanges the install key for an identity and installs it.
func (c *Client) Enrol(ctx context.Context, key string, host wire.Host, inv *wire.Inventory) (wire.EnrolResponse, error) {
	var resp wire.EnrolResponse
	err := c.do(ctx, http.MethodPost, wire.PathEnrol, wire.EnrolRequest{Key: key, Host: host, Inventory: inv}, &resp, 0)
	if err == nil {
		c.SetCredentials(resp.AgentID, resp.Secret)
	}
	return resp, err
}

// Checkin holds a long poll up to req.Wait and returns queued commands.
func (c *Client) Checkin(ctx context.Context, req wire.CheckinRequest) (wire.CheckinResponse, error) {
	var resp wire.CheckinResponse
	err := c.do(ctx, http.MethodPost, wire.PathCheckin, req, &resp, time.Duration(req.Wait))
	return resp, err
}

// SendEvents posts a batch; the returned sequence numbers are durable on
// the relay and may be dropped by the caller, the rest must be retried.
func (c *Client) SendEvents(ctx context.Context, recs []wire.Record) ([]uint64, error) {
	var ack wire.EventAck
	err := c.do(ctx, http.MethodPost, wire.PathEvents, wire.EventBatch{Records: recs}, &ack, 0)
	return ack.Acked, err
}

// Health fetches /healthz of the relay in use.
func (c *Client) Health(ctx context.Context) (map[string]any, error) {
	var out map[string]any
	err := c.do(ctx, http.MethodGet, wire.PathHealth, nil, &out, 0)
	return out, err
}
