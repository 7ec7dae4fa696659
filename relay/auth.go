package relay

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"outpost/relay/wire"
	"outpost/store"
)

// authCache remembers verified credentials for a while so that check-ins
// and events do not hit the database (or the management host) each time.
// It keeps only the secret's hash, compared in constant time.
type authCache[T any] struct {
	ttl time.Duration
	mu  sync.Mutex
	m   map[string]cached[T]
}

type cached[T any] struct {
	v      T
	digest [sha256.Size]byte // of the secret; raw bytes keep the hot path allocation-free
	exp    time.Time
}

func newAuthCache[T any](ttl time.Duration) *authCache[T] {
	return &authCache[T]{ttl: ttl, m: map[string]cached[T]{}}
}

func (c *authCache[T]) get(key, secret string) (T, bool) {
	c.mu.Lock()
	e, ok := c.m[key]
	c.mu.Unlock()
	if !ok || time.Now().After(e.exp) {
		var zero T
		return zero, false
	}
	d := sha256.Sum256([]byte(secret))
	if subtle.ConstantTimeCompare(d[:], e.digest[:]) != 1 {
		var zero T
		return zero, false
	}
	return e.v, true
}

// put caches v for key; hash is the secret's hex SHA-256 as the store keeps it.
func (c *authCache[T]) put(key, hash string, v T) {
	var digest [sha256.Size]byte
	if n, err := hex.Decode(digest[:], []byte(hash)); err != nil || n != len(digest) {
		return // not a digest: never cache, always verify afresh
	}
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) > 200000 {
		for k, e := range c.m {
			if now.After(e.exp) {
				delete(c.m, k)
			}
		}
	}
	c.m[key] = cached[T]{v: v, digest: digest, exp: now.Add(c.ttl)}
}

func (c *authCache[T]) drop(key string) {
	c.mu.Lock()
	delete(c.m, key)
	c.mu.Unlock()
}

type agentAuth struct {
	ID          string
	AccountID   int64
	ClusterID   int64
	Fingerprint string
	Duplicate   bool
}

type relayAuth struct {
	ProxyID   int64
	AccountID int64
	ClusterID int64
}

// authError is an HTTP refusal with its status.
type authError struct {
	status int
	code   string
	msg    string
}

func (e *authError) Error() string { return e.msg }

func (e *authError) write(w http.ResponseWriter) { writeErr(w, e.status, e.code, e.msg) }

func unauthorized(msg string) *authError {
	return &authError{http.StatusUnauthorized, store.EUnauthorized, msg}
}

// agentCreds parses "Authorization: Bearer <agent-id>:<secret>".
func agentCreds(r *http.Request) (id, secret string, ok bool) {
	return wire.ParseAgentAuth(r.Header.Get("Authorization"))
}

func (s *Server) requireTLS(r *http.Request) *authError {
	if r.TLS == nil && !s.cfg.AllowPlain {
		return &authError{http.StatusForbidden, wire.CodeNeedsTLS, "authenticated calls need TLS: use the https port (or start the relay with --allow-plain)"}
	}
	return nil
}

// requireRelayTLS refuses a relay-facing call on plain HTTP whatever
// --allow-plain says: join answers the relay's secret and private key,
// relay auth carries agent secrets, and every other relay call carries the
// relay's own secret.
func requireRelayTLS(r *http.Request) *authError {
	if r.TLS == nil {
		return &authError{http.StatusForbidden, wire.CodeNeedsTLS, "relay calls need TLS: use the management host's https URL"}
	}
	return nil
}

// authAgent verifies the calling agent. The management host checks the
// store; a joined relay asks the management host, which also refuses agents
// of another account than the relay's cluster.
func (s *Server) authAgent(ctx context.Context, r *http.Request) (agentAuth, *authError) {
	if e := s.requireTLS(r); e != nil {
		return agentAuth{}, e
	}
	id, secret, ok := agentCreds(r)
	if !ok {
		return agentAuth{}, unauthorized("missing or malformed agent credentials")
	}
	if a, ok := s.agents.get(id, secret); ok {
		return a, nil
	}
	return s.role().lookupAgent(ctx, id, secret)
}

// authRelay verifies a joined relay's own credentials (management host).
// A request without the header is not from a relay: ok=false, no error.
func (h *management) authRelay(ctx context.Context, r *http.Request) (relayAuth, bool, *authError) {
	hdr := r.Header.Get(wire.HeaderRelay)
	if hdr == "" {
		return relayAuth{}, false, nil
	}
	if e := requireRelayTLS(r); e != nil {
		return relayAuth{}, true, e
	}
	idStr, secret, _ := strings.Cut(hdr, ":")
	id, err := strconv.ParseInt(idStr, 10, 64)
	if err != nil || secret == "" {
		return relayAuth{}, true, unauthorized("malformed relay credentials")
	}
	if ra, ok := h.relays.get(idStr, secret); ok {
		return ra, true, nil
	}
	p, err := h.db.AuthProxy(ctx, id, secret)
	if err != nil {
		h.s.m.authFail.Add(1)
		return relayAuth{}, true, unauthorized("relay credentials not recognised")
	}
	acct, _, err := h.db.ProxyAccount(ctx, id)
	if err != nil {
		return relayAuth{}, true, unauthorized("relay not registered")
	}
	ra := relayAuth{ProxyID: p.ID, AccountID: acct, ClusterID: p.ClusterID}
	h.relays.put(idStr, store.HashSecret(secret), ra)
	return ra, true, nil
}

// requireIngestAuth guards the built-in collector: only joined relays (and
// this process's own forwarder, with its in-memory token) may write.
func (h *management) requireIngestAuth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if wire.BearerIs(r.Header.Get("Authorization"), h.ingestToken) {
			next.ServeHTTP(w, r)
			return
		}
		ra, ok, e := h.authRelay(r.Context(), r)
		if e != nil {
			e.write(w)
			return
		} else if !ok {
			writeErr(w, http.StatusUnauthorized, store.EUnauthorized, "ingest needs relay credentials")
			return
		}
		if !h.checkIngestAccount(w, r, ra) {
			return
		}
		next.ServeHTTP(w, r)
	})
}
