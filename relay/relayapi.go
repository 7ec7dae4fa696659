package relay

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"outpost/relay/wire"
	"outpost/store"
)

// identity is what a joined relay keeps in DATA/relay.json (0600) so a
// restart needs no new join token (tokens are single-use) and neither
// --manager nor --ca-sha256: both are saved at join. Policy is the newest
// cluster policy the management host sent (PolicyAt when it came), applied
// at start only until the management host answers.
type identity struct {
	Format   int         `json:"format"` // 2: Manager and CASHA256 are authoritative
	Manager  string      `json:"manager"`
	CASHA256 string      `json:"ca_sha256,omitempty"` // "" = the system's roots verify the management host
	ProxyID  int64       `json:"proxy_id"`
	Secret   string      `json:"secret"`
	Cluster  string      `json:"cluster"`
	Policy   wire.Policy `json:"policy"`
	PolicyAt time.Time   `json:"policy_at,omitzero"`
	Direct   []string    `json:"direct,omitempty"`
	// ReleaseKey verifies release signatures: the one given at join, or
	// the first one a heartbeat brings when there was none then.
	ReleaseKey string `json:"release_key,omitempty"`
}

const identityFormat = 2

// header is this relay's credentials as sent in wire.HeaderRelay.
func (id *identity) header() string { return fmt.Sprintf("%d:%s", id.ProxyID, id.Secret) }

func policyOf(p store.Policy) wire.Policy {
	return wire.Policy{Mode: p.Mode, BandwidthBps: p.BandwidthBps, FrequencyRPS: p.FrequencyRPS, CacheDir: p.CacheDir,
		CacheMax: p.CacheMax, Upstream: p.Upstream}
}

// handleJoin registers a relay of another host as a proxy server of the
// token's cluster and issues its certificate under the fleet CA.
func (s *Server) handleJoin(w http.ResponseWriter, r *http.Request) {
	if e := requireRelayTLS(r); e != nil {
		e.write(w)
		return
	}
	var req wire.JoinRequest
	if err := readJSON(w, r, maxControlBody, &req); err != nil {
		bodyErr(w, err)
		return
	}
	if req.Token == "" {
		writeErr(w, http.StatusUnauthorized, store.EUnauthorized, "join token is required")
		return
	}
	if req.IP == "" {
		req.IP, _, _ = net.SplitHostPort(r.RemoteAddr)
	}
	hosts, ok := s.relayCertHosts(w, r, req.Listen)
	if !ok {
		return
	}
	p, secret, err := s.db.JoinProxy(r.Context(), store.JoinInput{Token: req.Token, Hostname: req.Hostname, IP: req.IP,
		Version: req.Version, URLs: req.Listen})
	if err != nil {
		s.storeErr(w, err)
		return
	}
	c, err := s.db.GetCluster(r.Context(), p.ClusterID)
	if err != nil {
		s.storeErr(w, err)
		return
	}
	names := append([]string{strings.TrimSuffix(c.Address, ".")}, hosts...)
	if ip := net.ParseIP(req.IP); ip != nil && s.refuseCertName(req.IP, fromLoopback(r)) == "" {
		names = append(names, ip.String())
	}
	cert, key, err := s.pki.IssueRelay(names)
	if err != nil {
		s.storeErr(w, err)
		return
	}
	rk, err := s.db.ReleaseKey(r.Context())
	if err != nil {
		s.storeErr(w, err)
		return
	}
	s.logf("relay: proxy %d (%s) joined cluster %s", p.ID, p.Hostname, c.Name)
	writeJSON(w, http.StatusOK, wire.JoinResponse{ProxyID: p.ID, Secret: secret, Cluster: c.Name, Policy: policyOf(c.Policy),
		CACert: string(s.pki.CAPEM), Cert: string(cert), Key: string(key), Direct: s.publicURLs(), ReleaseKey: rk})
}

func (s *Server) handleHeartbeat(w http.ResponseWriter, r *http.Request) {
	ra, ok := s.requireRelay(w, r)
	if !ok {
		return
	}
	var req wire.HeartbeatRequest
	if err := readJSON(w, r, maxControlBody, &req); err != nil {
		bodyErr(w, err)
		return
	}
	if err := req.Validate(); err != nil {
		writeErr(w, http.StatusBadRequest, store.EInvalid, err.Error())
		return
	}
	ctx := r.Context()
	id := strconv.FormatInt(ra.ProxyID, 10)
	if err := s.db.Heartbeat(ctx, ra.ProxyID, req.Version, req.Load, req.Agents); err != nil {
		if store.ErrorCode(err) == store.ENotFound {
			s.relays.drop(id)
			writeErr(w, http.StatusUnauthorized, store.EUnauthorized, "this proxy server was deleted: join again")
			return
		}
		s.storeErr(w, err)
		return
	}
	if len(req.URLs) > 0 {
		if err := s.db.SetProxyURLs(ctx, ra.ProxyID, req.URLs); err != nil {
			s.storeErr(w, err)
			return
		}
	}
	if err := s.db.ReportCommands(ctx, store.TargetProxy, id, commandReports(req.Acked, req.Results)); err != nil {
		s.storeErr(w, err)
		return
	}
	cmds, err := s.db.DeliverCommands(ctx, store.TargetProxy, id)
	if err != nil {
		s.storeErr(w, err)
		return
	}
	c, err := s.db.GetCluster(ctx, ra.ClusterID)
	if err != nil {
		s.storeErr(w, err)
		return
	}
	rk, err := s.db.ReleaseKey(ctx)
	if err != nil {
		s.storeErr(w, err)
		return
	}
	chain, err := s.db.ReleaseKeyChain(ctx)
	if err != nil {
		s.storeErr(w, err)
		return
	}
	resp := wire.HeartbeatResponse{Policy: policyOf(c.Policy), ReleaseKey: rk, ReleaseKeys: chain}
	for _, cmd := range cmds {
		resp.Commands = append(resp.Commands, wire.Command{ID: cmd.ID, Type: cmd.Type, Args: json.RawMessage(cmd.Payload)})
	}
	writeJSON(w, http.StatusOK, resp)
}

// requireRelay authenticates a joined relay's call, answering the refusal
// itself.
func (s *Server) requireRelay(w http.ResponseWriter, r *http.Request) (relayAuth, bool) {
	if e := requireRelayTLS(r); e != nil {
		e.write(w)
		return relayAuth{}, false
	}
	ra, ok, e := s.authRelay(r.Context(), r)
	if e != nil {
		e.write(w)
		return ra, false
	} else if !ok {
		writeErr(w, http.StatusUnauthorized, store.EUnauthorized, "relay credentials required")
		return ra, false
	}
	return ra, true
}

// handleAuth answers a joined relay's question "is this agent who it says,
// and may it use your cluster?".
func (s *Server) handleAuth(w http.ResponseWriter, r *http.Request) {
	ra, ok := s.requireRelay(w, r)
	if !ok {
		return
	}
	var req wire.AuthRequest
	if err := readJSON(w, r, maxControlBody, &req); err != nil {
		bodyErr(w, err)
		return
	}
	rec, err := s.db.LookupAgentAuth(r.Context(), req.Agent)
	if err != nil || !store.SecretMatches(req.Secret, rec.SecretHash) {
		s.m.authFail.Add(1)
		writeErr(w, http.StatusUnauthorized, store.EUnauthorized, "agent credentials not recognised")
		return
	}
	if rec.AccountID != ra.AccountID {
		writeErr(w, http.StatusForbidden, store.EForbidden, "agent belongs to another account than this proxy's cluster")
		return
	}
	writeJSON(w, http.StatusOK, wire.AuthResponse{Agent: rec.ID, Account: rec.AccountID, Cluster: rec.ClusterID, Duplicate: rec.Duplicate})
}

// Joined reports whether dataDir holds a joined relay's identity, so
// `outpost relay --data DIR` alone restarts it.
func Joined(dataDir string) bool {
	_, err := os.Stat(filepath.Join(dataDir, "relay.json"))
	return err == nil
}

func (s *Server) identityPath() string { return filepath.Join(s.cfg.DataDir, "relay.json") }

// saveIdentity rewrites DATA/relay.json atomically (0600).
func (s *Server) saveIdentity(id *identity) error {
	id.Format = identityFormat
	b, _ := json.MarshalIndent(id, "", "  ")
	return writeFile0600(s.identityPath(), append(b, '\n'))
}

// managerClient talks to the management host, pinning its CA when pin is
// set (else the system's roots verify it).
func (s *Server) managerClient(pin string) *http.Client {
	return &http.Client{
		Timeout:   s.cfg.PollTimeout + 30*time.Second,
		Transport: wire.PinTransport(&http.Transport{MaxIdleConnsPerHost: 256, IdleConnTimeout: 90 * time.Second}, pin),
	}
}

// joinOrLoad returns the relay's identity, joining the management host with
// the one-time token on first start. A later start takes the management
// host's URL and CA pin from the identity; --manager or --ca-sha256 given
// again override them (with a note, and saved for the next start).
func (s *Server) joinOrLoad() (*identity, error) {
	path := s.identityPath()
	tlsDir := filepath.Join(s.cfg.DataDir, "tls")
	if b, err := os.ReadFile(path); err == nil {
		return s.loadIdentity(path, tlsDir, b)
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	return s.join(path, tlsDir)
}

// loadIdentity reads the saved identity b (from path), applying --manager
// and --ca-sha256 given again.
func (s *Server) loadIdentity(path, tlsDir string, b []byte) (*identity, error) {
	var id identity
	if err := json.Unmarshal(b, &id); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	pki, err := LoadOrCreatePKI(tlsDir, nil)
	if err != nil {
		return nil, err
	}
	s.pki = pki
	changed := false
	if id.Format < identityFormat {
		// Written before the pin was saved: such a relay joined with the
		// --ca-sha256 it was given, and its tls/ca.pem is that CA.
		id.CASHA256, changed = pki.CAFingerprint(), true
	}
	if m := s.cfg.Manager; m != "" && m != id.Manager {
		if id.Manager != "" {
			s.logf("relay: --manager %s replaces the saved %s (saved for later starts)", m, id.Manager)
		}
		id.Manager, changed = m, true
	}
	if pin := strings.ToLower(strings.TrimSpace(s.cfg.ManagerCA)); pin != "" && pin != id.CASHA256 {
		if id.CASHA256 != "" {
			s.logf("relay: --ca-sha256 %s replaces the saved pin %s (saved for later starts)", short(pin), short(id.CASHA256))
		}
		id.CASHA256, changed = pin, true
	}
	if id.Manager == "" {
		return nil, fmt.Errorf("manager: %s names no management host: pass --manager URL", path)
	}
	if changed {
		if err := s.saveIdentity(&id); err != nil {
			return nil, err
		}
	}
	if s.cfg.JoinToken != "" {
		s.logf("relay: already joined as proxy server %d of cluster %s: --join ignored", id.ProxyID, id.Cluster)
	}
	s.cfg.Manager, s.cfg.ManagerCA = id.Manager, id.CASHA256
	s.client = s.managerClient(id.CASHA256)
	return &id, nil
}

// join joins the management host with the one-time token and saves the
// identity it answers with in path.
func (s *Server) join(path, tlsDir string) (*identity, error) {
	if s.cfg.Manager == "" {
		return nil, fmt.Errorf("manager: this relay has not joined yet: pass --manager URL and --join TOKEN (from 'outpost proxy deploy --manual')")
	}
	if s.cfg.JoinToken == "" {
		return nil, fmt.Errorf("join: this relay has not joined yet: pass --join TOKEN (from 'outpost proxy deploy --manual')")
	}
	pin := strings.ToLower(strings.TrimSpace(s.cfg.ManagerCA))
	s.client = s.managerClient(pin)
	host := s.cfg.Hostname
	if host == "" {
		host, _ = os.Hostname()
	}
	body, _ := json.Marshal(wire.JoinRequest{Token: s.cfg.JoinToken, Hostname: host, IP: s.cfg.IP, Version: s.cfg.Version, Listen: s.cfg.PublicURLs})
	var resp wire.JoinResponse
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	status, err := s.callManager(ctx, wire.PathJoin, body, &resp)
	if status != http.StatusOK {
		return nil, joinError(s.cfg.Manager, status, err)
	}
	if err := InstallPKI(tlsDir, []byte(resp.CACert), []byte(resp.Cert), []byte(resp.Key)); err != nil {
		return nil, err
	}
	pki, err := LoadOrCreatePKI(tlsDir, nil)
	if err != nil {
		return nil, err
	}
	s.pki = pki
	id := &identity{Manager: s.cfg.Manager, CASHA256: pin, ProxyID: resp.ProxyID, Secret: resp.Secret, Cluster: resp.Cluster,
		Policy: resp.Policy, PolicyAt: time.Now().UTC(), Direct: resp.Direct, ReleaseKey: resp.ReleaseKey}
	if err := s.saveIdentity(id); err != nil {
		return nil, err
	}
	s.logf("relay: joined cluster %s as proxy server %d; management host and CA pin saved in %s", id.Cluster, id.ProxyID, path)
	return id, nil
}

// joinError says why a join failed as a sentence, without the raw HTTP
// status the management host answered with.
func joinError(manager string, status int, err error) error {
	var re *remoteError
	switch {
	case errors.As(err, &re):
		return fmt.Errorf("join %s refused: %s", manager, re.msg)
	case status == 0 && err != nil:
		return fmt.Errorf("join: cannot reach the management host %s: %w%s", manager, err, trustHint(err))
	case status == http.StatusTooManyRequests:
		return fmt.Errorf("join %s refused: the management host is busy: try again in a minute", manager)
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return fmt.Errorf("join %s refused: the join token is not valid", manager)
	case status == http.StatusNotFound:
		return fmt.Errorf("join %s refused: %s is not an Outpost management host", manager, manager)
	}
	return fmt.Errorf("join %s failed: the management host could not answer (try again)", manager)
}

func short(pin string) string { return pin[:min(12, len(pin))] + "…" }

// trustHint tells what to do when the management host's certificate is not
// trusted: pin its CA.
func trustHint(err error) string {
	var ua x509.UnknownAuthorityError
	if errors.As(err, &ua) || strings.Contains(err.Error(), "certificate signed by unknown authority") {
		return " (pass the --ca-sha256 printed by 'outpost proxy deploy --manual')"
	}
	return ""
}

// keepPolicy saves the newest policy from the management host, so a
// restart while it is unreachable starts with that one.
func (s *Server) keepPolicy(p wire.Policy) {
	s.identMu.Lock()
	defer s.identMu.Unlock()
	if s.ident.Policy == p && !s.ident.PolicyAt.IsZero() {
		return
	}
	id := *s.ident
	id.Policy, id.PolicyAt = p, time.Now().UTC()
	if err := s.saveIdentity(&id); err != nil {
		s.logf("relay: saving the policy: %v", err)
		return
	}
	s.ident.Policy, s.ident.PolicyAt = id.Policy, id.PolicyAt
}
