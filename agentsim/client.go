package agentsim

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
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
	// DialTimeout bounds connecting (name lookup included) to one URL, so
	// an unreachable cluster address fails over quickly (0 = 3 s).
	DialTimeout time.Duration
}

// NewTransport returns a transport for the options (pinned TLS, source IP).
func NewTransport(o ClientOptions) *http.Transport {
	if o.DialTimeout <= 0 {
		o.DialTimeout = 3 * time.Second
	}
	d := &net.Dialer{Timeout: o.DialTimeout, KeepAlive: 30 * time.Second}
	if o.LocalIP != nil {
		d.LocalAddr = &net.TCPAddr{IP: o.LocalIP}
	}
	return wire.PinTransport(&http.Transport{
		DialContext: d.DialContext,
		// On TLS an agent speaks HTTP/2: its held check-in and its event
		// posts share one connection, so a relay needs one socket per agent.
		ForceAttemptHTTP2:   true,
		MaxIdleConns:        0,
		MaxIdleConnsPerHost: 100000,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: 10 * time.Second,
	}, o.CASHA256)
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

// notHere reports whether an answer means "this URL cannot serve you, try
// the next one": a plain listener of a TLS-only relay, a misdirected
// request, a relay (or whatever answers at that address) failing, or an
// answer that is not the relay protocol at all (a TLS port spoken to in
// plain HTTP answers 400 without a JSON error). 400, 401, 409, 413 and 429
// are answers about the request itself: every relay would say the same.
func notHere(se *StatusError) bool {
	switch {
	case se.Status == http.StatusTooManyRequests:
		return false
	case se.Code == "":
		return true // not an Outpost relay's answer
	case se.Status == http.StatusForbidden, se.Status == http.StatusNotFound, se.Status == http.StatusMisdirectedRequest:
		return true
	}
	return se.Status >= 500
}

// Attempt is one URL tried by a call and what it gave.
type Attempt struct {
	URL string
	Err error // a network or TLS error, or a *StatusError
}

// NoRelayError is returned when every URL of the list failed or answered
// "not here"; it says what each one did.
type NoRelayError struct{ Attempts []Attempt }

func (e *NoRelayError) Error() string {
	parts := make([]string, len(e.Attempts))
	for i, a := range e.Attempts {
		parts[i] = Describe(a.Err) + " (" + a.URL + ")"
	}
	if e.Unreachable() {
		return "no relay reachable: " + strings.Join(parts, "; ")
	}
	return "no relay usable: " + strings.Join(parts, "; ")
}

// Unwrap lets errors.Is(err, ErrNoRelay) and errors.As(err, &*StatusError)
// see through to the attempts.
func (e *NoRelayError) Unwrap() []error {
	out := []error{ErrNoRelay}
	for _, a := range e.Attempts {
		out = append(out, a.Err)
	}
	return out
}

// Refusal returns the first answer that refuses the caller itself rather
// than the URL: a key or identity refusal (401, or 403 other than "needs
// TLS"), which every relay of the fleet would repeat.
func (e *NoRelayError) Refusal() *StatusError {
	for _, a := range e.Attempts {
		var se *StatusError
		if errors.As(a.Err, &se) && (se.Status == http.StatusUnauthorized ||
			(se.Status == http.StatusForbidden && se.Code != wire.CodeNeedsTLS && se.Code != "")) {
			return se
		}
	}
	return nil
}

// Unreachable reports whether no URL answered at all (network errors
// only), as when a relay restarts.
func (e *NoRelayError) Unreachable() bool {
	for _, a := range e.Attempts {
		var se *StatusError
		if errors.As(a.Err, &se) {
			return false
		}
	}
	return true
}

// RetryAfter is the longest Retry-After among the answers (0 = none).
func (e *NoRelayError) RetryAfter() time.Duration {
	var d time.Duration
	for _, a := range e.Attempts {
		var se *StatusError
		if errors.As(a.Err, &se) {
			d = max(d, se.RetryAfter)
		}
	}
	return d
}

// Describe says in a few words what an agent call got, for logs:
// "refused: needs TLS", "refused: install key expired at ...",
// "relay unreachable: dial tcp ...".
func Describe(err error) string {
	var nr *NoRelayError
	var se *StatusError
	switch {
	case err == nil:
		return "ok"
	case errors.As(err, &nr):
		return nr.Error()
	case errors.As(err, &se):
		switch {
		case se.Code == wire.CodeNeedsTLS:
			return "refused: needs TLS"
		case se.Code == "":
			return fmt.Sprintf("not an Outpost relay: %d %s", se.Status, http.StatusText(se.Status))
		case se.Status == http.StatusTooManyRequests:
			return "busy: " + se.Message
		case se.Status >= 500:
			return fmt.Sprintf("relay failed: %d %s", se.Status, se.Message)
		}
		return "refused: " + se.Message
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var ce *tls.CertificateVerificationError
	switch {
	case errors.As(err, &ce):
		return "TLS refused: " + err.Error()
	case strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		return "TLS refused: the address answers plain HTTP"
	case strings.Contains(err.Error(), "tls:") || strings.Contains(err.Error(), "x509:") ||
		strings.Contains(err.Error(), "certificate") || strings.Contains(err.Error(), "pinned fingerprint"):
		return "TLS refused: " + err.Error()
	}
	return "relay unreachable: " + err.Error()
}

// do sends one call to the relay in use, failing over to the next URL on
// network and TLS errors and on answers that mean "not here" (notHere).
// Other answers are returned as they are: another relay of the same fleet
// would answer the same. Each URL is tried at most once per call, so a
// refusal never loops across relays; the caller decides about retries.
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
	var tries []Attempt
	for i := 0; i < n; i++ {
		c.mu.Lock()
		idx := c.cur % max(len(c.proxies), 1)
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
			req.Header.Set("Authorization", wire.AgentAuth(id, secret))
		}
		resp, err := c.http.Do(req)
		if err == nil {
			err = decode(resp, out)
			var se *StatusError
			if err == nil || !errors.As(err, &se) || !notHere(se) {
				cancel()
				return err
			}
		}
		cancel()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		tries = append(tries, Attempt{URL: base, Err: err})
		c.mu.Lock()
		if c.cur == idx && len(c.proxies) > 0 {
			c.cur = (c.cur + 1) % len(c.proxies)
		}
		c.mu.Unlock()
	}
	return &NoRelayError{Attempts: tries}
}

// rawBody, as the out of a call, takes the answer's bytes (at most max)
// instead of decoding JSON: a release package.
type rawBody struct {
	max int64
	b   []byte
}

func decode(resp *http.Response, out any) error {
	defer resp.Body.Close()
	limit := int64(8 << 20)
	raw, isRaw := out.(*rawBody)
	if isRaw && resp.StatusCode == http.StatusOK {
		limit = raw.max + 1
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit))
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
	switch {
	case out == nil:
		return nil
	case isRaw:
		if int64(len(b)) > raw.max {
			return fmt.Errorf("answer larger than %d bytes", raw.max)
		}
		raw.b = b
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

// Manifest fetches the releases the management host publishes, through
// the relay in use.
func (c *Client) Manifest(ctx context.Context) (wire.Manifest, error) {
	var m wire.Manifest
	err := c.do(ctx, http.MethodGet, wire.PathManifest, nil, &m, 0)
	return m, err
}

// Package downloads the package of a release (at most max bytes); the
// caller checks it against the signed SHA-256 of the manifest. The call
// may take up to the client timeout plus extra.
func (c *Client) Package(ctx context.Context, version string, max int64, extra time.Duration) ([]byte, error) {
	raw := &rawBody{max: max}
	err := c.do(ctx, http.MethodGet, wire.PathPackage+url.PathEscape(version), nil, raw, extra)
	return raw.b, err
}
