package relay

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"outpost/relay/internal/httpbody"
	"outpost/relay/logs"
	"outpost/relay/wire"
	"outpost/store"
)

// Body limits per endpoint: small for control calls, larger for events.
const (
	maxControlBody = 256 << 10
	maxEventBody   = 4 << 20
	maxRecords     = 2000
)

// Server is one relay: the agent-facing and relay-facing protocol on every
// listener, plus the data path (spool or cache), in one of two roles:
// the management host (mgmt, management.go) or a joined relay (joined,
// joined.go). Exactly one of them is set; role() is where they part.
type Server struct {
	cfg Config
	log *slog.Logger
	pki *PKI
	mux *http.ServeMux

	mgmt   *management // Config.Store set
	joined *joinedRole // Config.Manager set

	agents *authCache[agentAuth]
	sink   *sinkSet
	m      metrics

	mu      sync.Mutex
	servers []*http.Server
	closing chan struct{}
	bg      sync.WaitGroup
	parked  sync.WaitGroup // held check-ins on hijacked connections (park.go)
	closed  atomic.Bool

	// Connections that have not sent a request yet (an agent's spare
	// keep-alive connection): Shutdown would wait 5 s for each.
	connMu sync.Mutex
	fresh  map[net.Conn]struct{}
}

// role is what the management host and a joined relay do differently.
type role interface {
	policy() wire.Policy       // the data path's policy at start
	routes(mux *http.ServeMux) // the endpoints of the role
	start()                    // its background loop, until Close
	release()                  // Close begins: answer held check-ins
	close() error              // Close ends, the listeners stopped
	lookupAgent(ctx context.Context, id, secret string) (agentAuth, *authError)
	coverNames(hosts []string) // see that agents dialling hosts can check the certificate
	health(st map[string]any)  // what /healthz adds
}

func (s *Server) role() role {
	if s.mgmt != nil {
		return s.mgmt
	}
	return s.joined
}

// New prepares a relay: loads or creates the PKI, joins the management host
// when configured so, and opens the data path. Serve it on listeners next.
func New(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: logs.OrDiscard(cfg.Log), closing: make(chan struct{})}
	s.agents = newAuthCache[agentAuth](cfg.AuthTTL)
	var err error
	if cfg.Store != nil {
		s.mgmt, err = newManagement(s)
	} else {
		s.joined, err = newJoined(s)
	}
	if err != nil {
		return nil, err
	}
	sink, err := newSinkSet(s, s.role().policy())
	if err != nil {
		s.role().close()
		return nil, err
	}
	s.sink = sink
	s.mux = s.routes()
	s.coverNames(s.cfg.PublicURLs)
	s.role().start()
	return s, nil
}

// CAFingerprint is the pin agents use (--ca-sha256).
func (s *Server) CAFingerprint() string { return s.pki.CAFingerprint() }

// Handler is the relay's HTTP handler, the same on every listener.
func (s *Server) Handler() http.Handler { return s.guard(s.mux) }

// SetPublicURLs records the URLs agents should use (known once listening).
func (s *Server) SetPublicURLs(urls []string) {
	s.mu.Lock()
	s.cfg.PublicURLs = urls
	s.mu.Unlock()
	s.coverNames(urls)
}

func (s *Server) publicURLs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.cfg.PublicURLs...)
}

// Serve serves ln until Close; useTLS wraps it with the relay certificate
// (HTTP/2 is negotiated on TLS).
func (s *Server) Serve(ln net.Listener, useTLS bool) error {
	hs := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      s.cfg.PollTimeout + 30*time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          log.New(serverLog{s}, "", 0),
		ConnState:         s.trackConn,
	}
	if useTLS {
		hs.TLSConfig = &tls.Config{GetCertificate: s.pki.certificate, MinVersion: tls.VersionTLS12, NextProtos: []string{"h2", "http/1.1"}}
		ln = newTLSListener(ln, hs.TLSConfig, func(error) { s.m.tlsFail.Add(1) })
	}
	pl := newParkListener(ln, hs.IdleTimeout)
	ln = pl
	hs.ConnContext = func(ctx context.Context, _ net.Conn) context.Context { return context.WithValue(ctx, parkKey{}, pl) }
	s.mu.Lock()
	if s.closed.Load() {
		s.mu.Unlock()
		return http.ErrServerClosed
	}
	s.servers = append(s.servers, hs)
	s.mu.Unlock()
	err := hs.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// serverLog routes net/http's own messages to the relay's logger. Failed
// TLS handshakes (port scanners, agents that gave up, doctor probes) are
// only counted: a fleet produces them by the thousand after a restart.
type serverLog struct{ s *Server }

func (l serverLog) Write(p []byte) (int, error) {
	msg := strings.TrimSpace(string(p))
	if strings.Contains(msg, "TLS handshake error") {
		l.s.m.tlsFail.Add(1)
		return len(p), nil
	}
	l.s.log.Warn("relay: http server", "detail", msg)
	return len(p), nil
}

// Close shuts down gracefully: listeners stop accepting, held check-ins are
// released at once, in-flight requests finish, pending check-ins are
// written and the spool is synced. ctx bounds the wait.
func (s *Server) Close(ctx context.Context) error {
	if !s.closed.CompareAndSwap(false, true) {
		return nil
	}
	close(s.closing)
	s.role().release()
	s.mu.Lock()
	servers := s.servers
	s.mu.Unlock()
	var errs []error
	var wg sync.WaitGroup
	for _, hs := range servers {
		wg.Add(1)
		go func(hs *http.Server) {
			defer wg.Done()
			if err := hs.Shutdown(ctx); err != nil {
				hs.Close()
			}
		}(hs)
	}
	s.closeFresh()
	wg.Wait()
	s.parked.Wait() // held check-ins on hijacked connections, answered by release
	s.bg.Wait()
	if s.sink != nil {
		errs = append(errs, s.sink.Close())
	}
	errs = append(errs, s.role().close())
	return errors.Join(errs...)
}

func (s *Server) trackConn(c net.Conn, st http.ConnState) {
	s.connMu.Lock()
	defer s.connMu.Unlock()
	if st == http.StateNew {
		if s.fresh == nil {
			s.fresh = map[net.Conn]struct{}{}
		}
		s.fresh[c] = struct{}{}
		if s.closed.Load() {
			c.Close()
		}
		return
	}
	delete(s.fresh, c)
}

// closeFresh closes the connections that never carried a request; there
// is nothing in flight on them to finish.
func (s *Server) closeFresh() {
	s.connMu.Lock()
	defer s.connMu.Unlock()
	for c := range s.fresh {
		c.Close()
	}
}

func (s *Server) routes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+wire.PathHealth, s.handleHealth)
	mux.HandleFunc("GET "+wire.PathMetrics, s.requireMetricsAuth(s.handleMetrics))
	mux.HandleFunc("POST "+wire.PathEvents, s.handleEvents)
	s.role().routes(mux)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeErr(w, http.StatusNotFound, wire.CodeNotFound, "no such endpoint")
	})
	return mux
}

// guard refuses proxy-style use: the relay forwards only to its configured
// upstream, never to a target named by the client.
func (s *Server) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodConnect {
			s.m.refused.Add(1)
			writeErr(w, http.StatusMethodNotAllowed, wire.CodeForbidden, "CONNECT is refused: this relay is not an open proxy")
			return
		}
		if r.URL.IsAbs() || (r.URL.Host != "" && r.URL.Host != r.Host) {
			s.m.refused.Add(1)
			writeErr(w, http.StatusForbidden, wire.CodeForbidden, "absolute-form requests are refused: this relay is not an open proxy")
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	st := map[string]any{"status": wire.HealthOK, "version": s.cfg.Version, "mode": s.sink.mode()}
	s.role().health(st)
	if s.pki != nil {
		st["ca_sha256"] = s.pki.CAFingerprint()
	}
	if d := s.Damage(); d != nil {
		// Still serving, so still ok; but say what recovery dropped.
		st["damage"] = d
		st["damage_text"] = FormatDamage(d)
	}
	httpbody.WriteJSON(w, http.StatusOK, st)
}

// statusFor maps store error codes to HTTP statuses.
func statusFor(err error) int {
	switch store.ErrorCode(err) {
	case store.ENotFound:
		return http.StatusNotFound
	case store.EConflict:
		return http.StatusConflict
	case store.EInvalid:
		return http.StatusBadRequest
	case store.EForbidden:
		return http.StatusForbidden
	case store.ELimit:
		return http.StatusTooManyRequests
	case store.EUnauthorized:
		return http.StatusUnauthorized
	}
	return http.StatusInternalServerError
}

func (s *Server) storeErr(w http.ResponseWriter, err error) {
	if errors.Is(err, context.Canceled) {
		return // the caller went away; nobody reads the answer
	}
	code := statusFor(err)
	var se *store.Error
	if errors.As(err, &se) && se.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(se.RetryAfter.Seconds())+1))
	}
	if code == http.StatusInternalServerError {
		s.log.Error("relay: internal error", "err", err)
		writeErr(w, code, store.EInternal, "internal error")
		return
	}
	writeErr(w, code, store.ErrorCode(err), store.ErrorMessage(err))
}

// writeErr answers a wire.Error (httpbody.WriteError, shared with the collector).
func writeErr(w http.ResponseWriter, code int, kind, msg string) {
	httpbody.WriteError(w, code, kind, msg)
}

// errTooLarge and errBadJSON classify body failures.
var (
	errTooLarge = httpbody.ErrTooLarge
	errBadJSON  = errors.New("malformed JSON")
)

// readJSON decodes a size-limited (optionally gzip) JSON body into v.
func readJSON(w http.ResponseWriter, r *http.Request, limit int64, v any) error {
	buf, err := httpbody.Read(w, r, limit)
	if err != nil {
		if errors.Is(err, httpbody.ErrGzip) {
			return errBadJSON
		}
		return err
	}
	if err := json.Unmarshal(buf, v); err != nil {
		return errBadJSON
	}
	return nil
}

func bodyErr(w http.ResponseWriter, err error) {
	var ee *httpbody.EncodingError
	switch {
	case errors.Is(err, errTooLarge):
		writeErr(w, http.StatusRequestEntityTooLarge, wire.CodeTooLarge, err.Error())
	case errors.As(err, &ee):
		writeErr(w, http.StatusUnsupportedMediaType, wire.CodeUnsupportedEncoding, err.Error())
	case errors.Is(err, errBadJSON):
		writeErr(w, http.StatusBadRequest, store.EInvalid, "malformed JSON body")
	default:
		writeErr(w, http.StatusBadRequest, store.EInvalid, err.Error())
	}
}

// RunInfo is written to DATA/run/NAME.json so scripts find a running
// process's addresses.
type RunInfo struct {
	PID       int      `json:"pid"`
	URLs      []string `json:"urls"`
	CASHA256  string   `json:"ca_sha256,omitempty"`
	StartedAt string   `json:"started_at"`
}

// WriteRunFile records a running process's addresses.
func WriteRunFile(dataDir, name string, info RunInfo) error {
	dir := filepath.Join(dataDir, "run")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	info.PID = os.Getpid()
	info.StartedAt = time.Now().UTC().Format(time.RFC3339)
	b, _ := json.MarshalIndent(info, "", "  ")
	return writeFile0600(filepath.Join(dir, name+".json"), append(b, '\n'))
}

// RemoveRunFile deletes it on a clean stop.
func RemoveRunFile(dataDir, name string) {
	os.Remove(filepath.Join(dataDir, "run", name+".json"))
}

// ReadRunFile reads another process's run file.
func ReadRunFile(dataDir, name string) (RunInfo, error) {
	var info RunInfo
	b, err := os.ReadFile(filepath.Join(dataDir, "run", name+".json"))
	if err != nil {
		return info, err
	}
	return info, json.Unmarshal(b, &info)
}
