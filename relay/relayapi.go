package relay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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
// restart needs no new join token (tokens are single-use).
type identity struct {
	Manager string      `json:"manager"`
	ProxyID int64       `json:"proxy_id"`
	Secret  string      `json:"secret"`
	Cluster string      `json:"cluster"`
	Policy  wire.Policy `json:"policy"`
	Direct  []string    `json:"direct,omitempty"`
}

// header is this relay's credentials as sent in wire.HeaderRelay.
func (id *identity) header() string { return fmt.Sprintf("%d:%s", id.ProxyID, id.Secret) }

func policyOf(p store.Policy) wire.Policy {
	return wire.Policy{Mode: p.Mode, BandwidthBps: p.BandwidthBps, FrequencyRPS: p.FrequencyRPS, CacheDir: p.CacheDir,
		CacheMax: p.CacheMax, Upstream: p.Upstream}
}

// handleJoin registers a relay of another host as a proxy server of the
// token's cluster and issues its certificate under the fleet CA.
func (s *Server) handleJoin(w http.ResponseWriter, r *http.Request) {
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
	cert, key, err := s.pki.Issue([]string{req.IP, req.Hostname, c.Address})
	if err != nil {
		s.storeErr(w, err)
		return
	}
	s.logf("relay: proxy %d (%s) joined cluster %s", p.ID, p.Hostname, c.Name)
	writeJSON(w, http.StatusOK, wire.JoinResponse{ProxyID: p.ID, Secret: secret, Cluster: c.Name, Policy: policyOf(c.Policy),
		CACert: string(s.pki.CAPEM), Cert: string(cert), Key: string(key), Direct: s.publicURLs()})
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
	if err := s.db.AckCommands(ctx, store.TargetProxy, id, req.Acked); err != nil {
		s.storeErr(w, err)
		return
	}
	cmds, err := s.db.PendingCommands(ctx, store.TargetProxy, id)
	if err != nil {
		s.storeErr(w, err)
		return
	}
	c, err := s.db.GetCluster(ctx, ra.ClusterID)
	if err != nil {
		s.storeErr(w, err)
		return
	}
	resp := wire.HeartbeatResponse{Policy: policyOf(c.Policy)}
	var ids []int64
	for _, cmd := range cmds {
		resp.Commands = append(resp.Commands, wire.Command{ID: cmd.ID, Type: cmd.Type, Args: json.RawMessage(cmd.Payload)})
		ids = append(ids, cmd.ID)
	}
	if err := s.db.MarkDelivered(ctx, ids); err != nil {
		s.storeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

// requireRelay authenticates a joined relay's call, answering the refusal
// itself.
func (s *Server) requireRelay(w http.ResponseWriter, r *http.Request) (relayAuth, bool) {
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

// joinOrLoad returns the relay's identity, joining the management host with
// the one-time token on first start.
func (s *Server) joinOrLoad() (*identity, error) {
	path := filepath.Join(s.cfg.DataDir, "relay.json")
	tlsDir := filepath.Join(s.cfg.DataDir, "tls")
	if b, err := os.ReadFile(path); err == nil {
		var id identity
		if err := json.Unmarshal(b, &id); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		pki, err := LoadOrCreatePKI(tlsDir, nil)
		if err != nil {
			return nil, err
		}
		s.pki = pki
		return &id, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if s.cfg.JoinToken == "" {
		return nil, fmt.Errorf("join: this relay has not joined yet: pass --join TOKEN (from 'outpost proxy deploy --manual')")
	}
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
		if err == nil {
			err = fmt.Errorf("status %d", status)
		}
		return nil, fmt.Errorf("join %s: %w", s.cfg.Manager, err)
	}
	if err := InstallPKI(tlsDir, []byte(resp.CACert), []byte(resp.Cert), []byte(resp.Key)); err != nil {
		return nil, err
	}
	pki, err := LoadOrCreatePKI(tlsDir, nil)
	if err != nil {
		return nil, err
	}
	s.pki = pki
	id := &identity{Manager: s.cfg.Manager, ProxyID: resp.ProxyID, Secret: resp.Secret, Cluster: resp.Cluster, Policy: resp.Policy, Direct: resp.Direct}
	b, _ := json.MarshalIndent(id, "", "  ")
	if err := writeFile0600(path, b); err != nil {
		return nil, err
	}
	s.logf("relay: joined cluster %s as proxy server %d", id.Cluster, id.ProxyID)
	return id, nil
}

// heartbeatLoop reports version and load, applies the cluster policy live
// and carries out relay commands.
func (s *Server) heartbeatLoop() {
	defer s.bg.Done()
	var acked []int64
	t := time.NewTicker(s.cfg.HeartbeatInterval)
	defer t.Stop()
	for {
		spoolBytes, _, _ := s.sink.stats()
		body, _ := json.Marshal(wire.HeartbeatRequest{Version: s.cfg.Version, Load: loadAvg(), Agents: int(s.m.held.Load()),
			SpoolSize: spoolBytes, Acked: acked})
		var resp wire.HeartbeatResponse
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		status, err := s.callManager(ctx, wire.PathHeartbeat, body, &resp)
		cancel()
		if status == http.StatusOK {
			acked = nil
			if err := s.sink.apply(resp.Policy); err != nil {
				s.logf("relay: policy: %v", err)
			}
			for _, c := range resp.Commands {
				if err := s.runRelayCommand(c); err != nil {
					s.logf("relay: command %d (%s): %v", c.ID, c.Type, err)
					continue // not acknowledged: delivered again
				}
				acked = append(acked, c.ID)
			}
		} else if err != nil {
			s.logf("relay: heartbeat: %v", err)
		}
		select {
		case <-s.closing:
			return
		case <-t.C:
		}
	}
}

// runRelayCommand carries out a command from the management host. Policy
// changes are applied by every heartbeat anyway. An upgrade downloads the
// release through the management host (the same endpoints agents use),
// checks its SHA-256 against the manifest and stages it as
// DATA/releases/VERSION with DATA/releases/pending naming it, for the
// service manager to install and restart; the running process does not
// replace itself. It returns an error when the command could not be carried
// out; the command is then not acknowledged and comes again.
func (s *Server) runRelayCommand(c wire.Command) error {
	switch c.Type {
	case wire.CmdPolicy:
		var p wire.Policy
		if err := json.Unmarshal(c.Args, &p); err != nil {
			return fmt.Errorf("policy: %w", err)
		}
		return s.sink.apply(p)
	case wire.CmdUpgrade:
		var a struct {
			Version string `json:"version"`
		}
		if err := json.Unmarshal(c.Args, &a); err != nil || a.Version == "" {
			return fmt.Errorf("upgrade: no version in the command")
		}
		return s.stageRelease(a.Version)
	}
	s.logf("relay: unknown command %q ignored", c.Type)
	return nil
}

func (s *Server) stageRelease(version string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var m wire.Manifest
	if status, err := s.callManager(ctx, wire.PathManifest, nil, &m); status != http.StatusOK {
		return fmt.Errorf("upgrade: manifest: status %d %v", status, err)
	}
	var rel *wire.Release
	for i := range m.Releases {
		if m.Releases[i].Version == version {
			rel = &m.Releases[i]
		}
	}
	if rel == nil {
		return fmt.Errorf("upgrade: release %s is not in the manifest", version)
	}
	body, err := s.download(ctx, wire.PathPackage+version)
	if err != nil {
		return fmt.Errorf("upgrade: download %s: %w", version, err)
	}
	if rel.SHA256 != "" && wire.Fingerprint(body) != rel.SHA256 {
		return fmt.Errorf("upgrade: package %s does not match its SHA-256", version)
	}
	dir := filepath.Join(s.cfg.DataDir, "releases")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if err := writeFile0600(filepath.Join(dir, version), body); err != nil {
		return err
	}
	if err := writeFile0600(filepath.Join(dir, "pending"), []byte(version+"\n")); err != nil {
		return err
	}
	s.logf("relay: release %s staged in %s for the service manager", version, dir)
	return nil
}

// download GETs a file from the management host (at most 512 MiB).
func (s *Server) download(ctx context.Context, path string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(s.cfg.Manager, "/")+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set(wire.HeaderRelay, s.ident.header())
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %s", resp.Status)
	}
	return io.ReadAll(io.LimitReader(resp.Body, 512<<20))
}

func loadAvg() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	var l float64
	fmt.Sscanf(string(b), "%f", &l)
	return l
}
