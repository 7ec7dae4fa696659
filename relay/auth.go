package relay

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"fmt"
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
	if s.db != nil {
		rec, err := s.db.LookupAgentAuth(ctx, id)
		if err != nil || !store.SecretMatches(secret, rec.SecretHash) {
			s.m.authFail.Add(1)
			return agentAuth{}, unauthorized("agent credentials not recognised")
		}
		a := agentAuth{ID: rec.ID, AccountID: rec.AccountID, ClusterID: rec.ClusterID, Fingerprint: rec.Fingerprint, Duplicate: rec.Duplicate}
		s.agents.put(id, rec.SecretHash, a)
		return a, nil
	}
	body, _ := json.Marshal(wire.AuthRequest{Agent: id, Secret: secret})
	var resp wire.AuthResponse
	status, err := s.callManager(ctx, wire.PathAuth, body, &resp)
	if status == 0 {
		return agentAuth{}, &authError{http.StatusServiceUnavailable, wire.CodeUnavailable, "management host unreachable: " + err.Error()}
	}
	if status != http.StatusOK {
		s.m.authFail.Add(1)
		code := store.EUnauthorized
		if status == http.StatusForbidden {
			code = store.EForbidden
		}
		return agentAuth{}, &authError{status, code, "agent refused by the management host"}
	}
	a := agentAuth{ID: resp.Agent, AccountID: resp.Account, ClusterID: resp.Cluster, Duplicate: resp.Duplicate}
	s.agents.put(id, store.HashSecret(secret), a)
	return a, nil
}

// authRelay verifies a joined relay's own credentials (management host).
// A request without the header is not from a relay: ok=false, no error.
func (s *Server) authRelay(ctx context.Context, r *http.Request) (relayAuth, bool, *authError) {
	h := r.Header.Get(wire.HeaderRelay)
	if h == "" {
		return relayAuth{}, false, nil
	}
	if e := requireRelayTLS(r); e != nil {
		return relayAuth{}, true, e
	}
	idStr, secret, _ := strings.Cut(h, ":")
	id, err := strconv.ParseInt(idStr, 10, 64)
	if err != nil || secret == "" {
		return relayAuth{}, true, unauthorized("malformed relay credentials")
	}
	if ra, ok := s.relays.get(idStr, secret); ok {
		return ra, true, nil
	}
	p, err := s.db.AuthProxy(ctx, id, secret)
	if err != nil {
		s.m.authFail.Add(1)
		return relayAuth{}, true, unauthorized("relay credentials not recognised")
	}
	acct, _, err := s.db.ProxyAccount(ctx, id)
	if err != nil {
		return relayAuth{}, true, unauthorized("relay not registered")
	}
	ra := relayAuth{ProxyID: p.ID, AccountID: acct, ClusterID: p.ClusterID}
	s.relays.put(idStr, store.HashSecret(secret), ra)
	return ra, true, nil
}

// requireIngestAuth guards the built-in collector: only joined relays (and
// this process's own forwarder, with its in-memory token) may write.
func (s *Server) requireIngestAuth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if wire.BearerIs(r.Header.Get("Authorization"), s.ingestToken) {
			next.ServeHTTP(w, r)
			return
		}
		ra, ok, e := s.authRelay(r.Context(), r)
		if e != nil {
			e.write(w)
			return
		} else if !ok {
			writeErr(w, http.StatusUnauthorized, store.EUnauthorized, "ingest needs relay credentials")
			return
		}
		if !s.checkIngestAccount(w, r, ra) {
			return
		}
		next.ServeHTTP(w, r)
	})
}

// callManager POSTs (or GETs when body is nil) to the management host with
// this relay's credentials and decodes a 200 answer into out. Status 0
// means the management host was not reached (or answered garbage).
func (s *Server) callManager(ctx context.Context, path string, body []byte, out any) (int, error) {
	method := http.MethodPost
	if body == nil {
		method = http.MethodGet
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(s.cfg.Manager, "/")+path, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	if s.ident != nil {
		req.Header.Set(wire.HeaderRelay, s.ident.header())
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var e wire.Error
		json.NewDecoder(http.MaxBytesReader(nil, resp.Body, 64<<10)).Decode(&e)
		if e.Message != "" {
			return resp.StatusCode, &remoteError{resp.StatusCode, e.Message}
		}
		return resp.StatusCode, nil
	}
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			return 0, fmt.Errorf("decode %s answer: %w", path, err)
		}
	}
	return resp.StatusCode, nil
}

type remoteError struct {
	status int
	msg    string
}

func (e *remoteError) Error() string { return fmt.Sprintf("%d %s", e.status, e.msg) }
