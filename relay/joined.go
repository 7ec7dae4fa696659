package relay

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"outpost/relay/wire"
	"outpost/store"
)

// joinedRole is the role of a relay on another host (Config.Manager set):
// it forwards what needs the store to the management host, keeps its
// identity (identity.go), sends heartbeats (heartbeat.go) and carries out
// the upgrades they bring (upgrade.go, upgraderun.go). s is the Server for
// the parts both roles share.
type joinedRole struct {
	s           *Server
	ident       *identity
	identMu     sync.Mutex // saving ident (policy updates)
	client      *http.Client
	stalePolicy bool   // ident.Policy came from disk: applied until the first heartbeat answer
	hbErr       string // last heartbeat failure logged (heartbeat goroutine only)
	up          upgrades
}

// newJoined sets up the joined role of s: an upgrade on trial first (its
// log then takes every line), then the identity, joining on first start.
func newJoined(s *Server) (*joinedRole, error) {
	j := &joinedRole{s: s}
	j.startTrial()
	joined := Joined(s.cfg.DataDir)
	id, err := j.joinOrLoad()
	if err != nil {
		return nil, err
	}
	j.ident = id
	// Every line of this relay names it (several run in one process in
	// the demo and the tests).
	s.log = s.log.With("relay", id.ProxyID, "cluster", id.Cluster)
	if joined {
		j.stalePolicy = true
		at := "join"
		if !id.PolicyAt.IsZero() {
			at = id.PolicyAt.Local().Format("2006-01-02 15:04:05")
		}
		s.log.Info("relay: using the saved policy until the management host answers", "manager", s.cfg.Manager, "saved_at", at)
	}
	return j, nil
}

// policy is the data path's policy at start: the one saved with the
// identity.
func (j *joinedRole) policy() wire.Policy { return j.ident.Policy }

// routes forwards what needs the store to the management host.
func (j *joinedRole) routes(mux *http.ServeMux) {
	mux.HandleFunc("POST "+wire.PathEnrol, j.forward)
	mux.HandleFunc("POST "+wire.PathCheckin, j.forward)
	mux.HandleFunc("GET "+wire.PathManifest, j.forward)
	mux.HandleFunc("GET "+wire.PathPackage+"{version}", j.forward)
}

// start runs the heartbeat until Close.
func (j *joinedRole) start() {
	j.s.bg.Add(1)
	go j.heartbeatLoop()
}

// release has nothing to do: forwarded check-ins end with Close's signal.
func (j *joinedRole) release() {}

func (j *joinedRole) close() error {
	if j.client != nil {
		j.client.CloseIdleConnections()
	}
	return nil
}

// lookupAgent asks the management host, which also refuses agents of
// another account than this relay's cluster.
func (j *joinedRole) lookupAgent(ctx context.Context, id, secret string) (agentAuth, *authError) {
	s := j.s
	body, _ := json.Marshal(wire.AuthRequest{Agent: id, Secret: secret})
	var resp wire.AuthResponse
	status, err := j.callManager(ctx, wire.PathAuth, body, &resp)
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

// coverNames says which of hosts the certificate the management host
// issued at join lacks: agents dialling those refuse it.
func (j *joinedRole) coverNames(hosts []string) {
	if missing := j.s.pki.Missing(hosts); len(missing) > 0 {
		j.s.log.Warn("relay: this relay's certificate (issued at join) does not name these hosts: agents dialling them refuse it; join again with those --public URLs",
			"hosts", missing)
	}
}

// health names this relay.
func (j *joinedRole) health(st map[string]any) {
	st["proxy_id"] = j.ident.ProxyID
	st["cluster"] = j.ident.Cluster
}

// callManager POSTs (or GETs when body is nil) to the management host with
// this relay's credentials and decodes a 200 answer into out. Status 0
// means the management host was not reached (or answered garbage).
func (j *joinedRole) callManager(ctx context.Context, path string, body []byte, out any) (int, error) {
	method := http.MethodPost
	if body == nil {
		method = http.MethodGet
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(j.s.cfg.Manager, "/")+path, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	if j.ident != nil {
		req.Header.Set(wire.HeaderRelay, j.ident.header())
	}
	resp, err := j.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		if re := readRemoteError(resp); re != nil && re.msg != "" {
			return resp.StatusCode, re
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

// remoteError is the wire.Error answer of another Outpost process: the
// management host, or an upstream collector.
type remoteError struct {
	status int
	code   string // wire.Code*
	msg    string
}

func (e *remoteError) Error() string { return fmt.Sprintf("%d %s", e.status, e.msg) }

// readRemoteError reads the wire.Error resp carries (nil when none).
func readRemoteError(resp *http.Response) *remoteError {
	var e wire.Error
	json.NewDecoder(http.MaxBytesReader(nil, resp.Body, 64<<10)).Decode(&e)
	if e.Code == "" && e.Message == "" {
		return nil
	}
	return &remoteError{resp.StatusCode, e.Code, e.Message}
}
