package relay

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"outpost/relay/wire"
	"path/filepath"
	"strings"
	"time"
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

// Joined reports whether dataDir holds a joined relay's identity, so
// `outpost relay --data DIR` alone restarts it.
func Joined(dataDir string) bool {
	_, err := os.Stat(filepath.Join(dataDir, "relay.json"))
	return err == nil
}

func (j *joinedRole) identityPath() string { return filepath.Join(j.s.cfg.DataDir, "relay.json") }

// saveIdentity rewrites DATA/relay.json atomically (0600).
func (j *joinedRole) saveIdentity(id *identity) error {
	id.Format = identityFormat
	b, _ := json.MarshalIndent(id, "", "  ")
	return writeFile0600(j.identityPath(), append(b, '\n'))
}

// managerClient talks to the management host, pinning its CA when pin is
// set (else the system's roots verify it).
func (j *joinedRole) managerClient(pin string) *http.Client {
	return &http.Client{
		Timeout:   j.s.cfg.PollTimeout + 30*time.Second,
		Transport: wire.PinTransport(&http.Transport{MaxIdleConnsPerHost: 256, IdleConnTimeout: 90 * time.Second}, pin),
	}
}

// joinOrLoad returns the relay's identity, joining the management host with
// the one-time token on first start. A later start takes the management
// host's URL and CA pin from the identity; --manager or --ca-sha256 given
// again override them (with a note, and saved for the next start).
func (j *joinedRole) joinOrLoad() (*identity, error) {
	path := j.identityPath()
	tlsDir := filepath.Join(j.s.cfg.DataDir, "tls")
	if b, err := os.ReadFile(path); err == nil {
		return j.loadIdentity(path, tlsDir, b)
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	return j.join(path, tlsDir)
}

// loadIdentity reads the saved identity b (from path), applying --manager
// and --ca-sha256 given again.
func (j *joinedRole) loadIdentity(path, tlsDir string, b []byte) (*identity, error) {
	var id identity
	if err := json.Unmarshal(b, &id); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	pki, err := LoadOrCreatePKI(tlsDir, nil)
	if err != nil {
		return nil, err
	}
	j.s.pki = pki
	changed := false
	if id.Format < identityFormat {
		// Written before the pin was saved: such a relay joined with the
		// --ca-sha256 it was given, and its tls/ca.pem is that CA.
		id.CASHA256, changed = pki.CAFingerprint(), true
	}
	if m := j.s.cfg.Manager; m != "" && m != id.Manager {
		if id.Manager != "" {
			j.s.log.Info("relay: --manager replaces the saved management host (saved for later starts)", "manager", m, "saved", id.Manager)
		}
		id.Manager, changed = m, true
	}
	if pin := strings.ToLower(strings.TrimSpace(j.s.cfg.ManagerCA)); pin != "" && pin != id.CASHA256 {
		if id.CASHA256 != "" {
			j.s.log.Info("relay: --ca-sha256 replaces the saved pin (saved for later starts)", "pin", short(pin), "saved", short(id.CASHA256))
		}
		id.CASHA256, changed = pin, true
	}
	if id.Manager == "" {
		return nil, fmt.Errorf("manager: %s names no management host: pass --manager URL", path)
	}
	if changed {
		if err := j.saveIdentity(&id); err != nil {
			return nil, err
		}
	}
	if j.s.cfg.JoinToken != "" {
		j.s.log.Info("relay: already joined: --join ignored", "relay", id.ProxyID, "cluster", id.Cluster)
	}
	j.s.cfg.Manager, j.s.cfg.ManagerCA = id.Manager, id.CASHA256
	j.client = j.managerClient(id.CASHA256)
	return &id, nil
}

// join joins the management host with the one-time token and saves the
// identity it answers with in path.
func (j *joinedRole) join(path, tlsDir string) (*identity, error) {
	if j.s.cfg.Manager == "" {
		return nil, fmt.Errorf("manager: this relay has not joined yet: pass --manager URL and --join TOKEN (from 'outpost proxy deploy --manual')")
	}
	if j.s.cfg.JoinToken == "" {
		return nil, fmt.Errorf("join: this relay has not joined yet: pass --join TOKEN (from 'outpost proxy deploy --manual')")
	}
	pin := strings.ToLower(strings.TrimSpace(j.s.cfg.ManagerCA))
	j.client = j.managerClient(pin)
	host := j.s.cfg.Hostname
	if host == "" {
		host, _ = os.Hostname()
	}
	body, _ := json.Marshal(wire.JoinRequest{Token: j.s.cfg.JoinToken, Hostname: host, IP: j.s.cfg.IP, Version: j.s.cfg.Version, Listen: j.s.cfg.PublicURLs})
	var resp wire.JoinResponse
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	status, err := j.callManager(ctx, wire.PathJoin, body, &resp)
	if status != http.StatusOK {
		return nil, joinError(j.s.cfg.Manager, status, err)
	}
	if err := InstallPKI(tlsDir, []byte(resp.CACert), []byte(resp.Cert), []byte(resp.Key)); err != nil {
		return nil, err
	}
	pki, err := LoadOrCreatePKI(tlsDir, nil)
	if err != nil {
		return nil, err
	}
	j.s.pki = pki
	id := &identity{Manager: j.s.cfg.Manager, CASHA256: pin, ProxyID: resp.ProxyID, Secret: resp.Secret, Cluster: resp.Cluster,
		Policy: resp.Policy, PolicyAt: time.Now().UTC(), Direct: resp.Direct, ReleaseKey: resp.ReleaseKey}
	if err := j.saveIdentity(id); err != nil {
		return nil, err
	}
	j.s.log.Info("relay: joined: management host and CA pin saved", "relay", id.ProxyID, "cluster", id.Cluster, "file", path)
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
func (j *joinedRole) keepPolicy(p wire.Policy) {
	j.identMu.Lock()
	defer j.identMu.Unlock()
	if j.ident.Policy == p && !j.ident.PolicyAt.IsZero() {
		return
	}
	id := *j.ident
	id.Policy, id.PolicyAt = p, time.Now().UTC()
	if err := j.saveIdentity(&id); err != nil {
		j.s.log.Error("relay: saving the policy", "err", err)
		return
	}
	j.ident.Policy, j.ident.PolicyAt = id.Policy, id.PolicyAt
}
