package relay

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"outpost/relay/wire"
	"outpost/store"
)

// keepReleaseKey saves the release public key a heartbeat brings when the
// relay has none yet (the key was made after it joined). A different key
// than the one kept is not taken: the key the relay trusts does not change
// behind its back.
func (s *Server) keepReleaseKey(k string) {
	s.identMu.Lock()
	defer s.identMu.Unlock()
	if k == "" || s.ident.ReleaseKey == k {
		return
	}
	if s.ident.ReleaseKey != "" {
		if s.rkWarned != k {
			s.logf("relay: the management host sends release key %s, not the %s this relay trusts: kept the one it has", k, s.ident.ReleaseKey)
			s.rkWarned = k
		}
		return
	}
	id := *s.ident
	id.ReleaseKey = k
	if err := s.saveIdentity(&id); err != nil {
		s.logf("relay: saving the release key: %v", err)
		return
	}
	s.ident.ReleaseKey = k
}

// releaseKey is the release public key this relay trusts, "" when none.
func (s *Server) releaseKey() string {
	s.identMu.Lock()
	defer s.identMu.Unlock()
	if s.ident == nil {
		return ""
	}
	return s.ident.ReleaseKey
}

// runRelayCommand carries out a command from the management host. Policy
// changes are applied by every heartbeat anyway. An upgrade downloads the
// release through the management host (the same endpoints agents use),
// checks its SHA-256 against the manifest and stages it as
// DATA/releases/VERSION with DATA/releases/pending naming it, for the
// service manager to install and restart; the running process does not
// replace itself. It returns an error when the command could not be carried
// out; the failure is then reported to the management host with the reason.
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
			Force   bool   `json:"force"`
		}
		if err := json.Unmarshal(c.Args, &a); err != nil || a.Version == "" {
			return fmt.Errorf("upgrade: no version in the command")
		}
		return s.stageRelease(a.Version, a.Force)
	}
	s.logf("relay: unknown command %q ignored", c.Type)
	return nil
}

func (s *Server) stageRelease(version string, force bool) error {
	if !force && store.CompareVersions(version, s.cfg.Version) <= 0 {
		return fmt.Errorf("upgrade: release %s is not newer than this relay's %s: a downgrade needs 'outpost proxy upgrade --force'", version, s.cfg.Version)
	}
	key := s.releaseKey()
	if key == "" {
		return fmt.Errorf("upgrade: this relay has no release public key to verify %s with: make one with 'outpost release keygen' and publish signed releases", version)
	}
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
	// The signature covers the version and the SHA-256, and the package
	// must match that SHA-256: a tampered package or manifest, or one
	// signed by another key, is refused before anything is written.
	if err := store.VerifyRelease(key, version, rel.SHA256, rel.Signature); err != nil {
		return fmt.Errorf("upgrade: %v", err)
	}
	if wire.Fingerprint(body) != rel.SHA256 {
		return fmt.Errorf("upgrade: package %s does not match its signed SHA-256", version)
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
