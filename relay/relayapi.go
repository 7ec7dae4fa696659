package relay

import (
	"encoding/json"
	"net"
	"net/http"
	"strconv"
	"strings"

	"outpost/relay/internal/httpbody"
	"outpost/relay/wire"
	"outpost/store"
)

func policyOf(p store.Policy) wire.Policy {
	return wire.Policy{Mode: p.Mode, BandwidthBps: p.BandwidthBps, FrequencyRPS: p.FrequencyRPS, CacheDir: p.CacheDir,
		CacheMax: p.CacheMax, Upstream: p.Upstream}
}

// handleJoin registers a relay of another host as a proxy server of the
// token's cluster and issues its certificate under the fleet CA.
func (h *management) handleJoin(w http.ResponseWriter, r *http.Request) {
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
	hosts, ok := h.relayCertHosts(w, r, req.Listen)
	if !ok {
		return
	}
	p, secret, err := h.db.JoinProxy(r.Context(), store.JoinInput{Token: req.Token, Hostname: req.Hostname, IP: req.IP,
		Version: req.Version, URLs: req.Listen})
	if err != nil {
		h.s.storeErr(w, err)
		return
	}
	c, err := h.db.GetCluster(r.Context(), p.ClusterID)
	if err != nil {
		h.s.storeErr(w, err)
		return
	}
	names := append([]string{strings.TrimSuffix(c.Address, ".")}, hosts...)
	if ip := net.ParseIP(req.IP); ip != nil && h.refuseCertName(req.IP, fromLoopback(r)) == "" {
		names = append(names, ip.String())
	}
	cert, key, err := h.s.pki.IssueRelay(names)
	if err != nil {
		h.s.storeErr(w, err)
		return
	}
	rk, err := h.db.ReleaseKey(r.Context())
	if err != nil {
		h.s.storeErr(w, err)
		return
	}
	h.s.log.Info("relay: proxy server joined", "relay", p.ID, "host", p.Hostname, "cluster", c.Name)
	httpbody.WriteJSON(w, http.StatusOK, wire.JoinResponse{ProxyID: p.ID, Secret: secret, Cluster: c.Name, Policy: policyOf(c.Policy),
		CACert: string(h.s.pki.CAPEM), Cert: string(cert), Key: string(key), Direct: h.s.publicURLs(), ReleaseKey: rk})
}

func (h *management) handleHeartbeat(w http.ResponseWriter, r *http.Request) {
	ra, req, ok := relayRequest[wire.HeartbeatRequest](h, w, r)
	if !ok {
		return
	}
	if err := req.Validate(); err != nil {
		writeErr(w, http.StatusBadRequest, store.EInvalid, err.Error())
		return
	}
	ctx := r.Context()
	id := strconv.FormatInt(ra.ProxyID, 10)
	if err := h.db.Heartbeat(ctx, ra.ProxyID, req.Version, req.Load, req.Agents); err != nil {
		if store.ErrorCode(err) == store.ENotFound {
			h.relays.drop(id)
			writeErr(w, http.StatusUnauthorized, store.EUnauthorized, "this proxy server was deleted: join again")
			return
		}
		h.s.storeErr(w, err)
		return
	}
	if len(req.URLs) > 0 {
		if err := h.db.SetProxyURLs(ctx, ra.ProxyID, req.URLs); err != nil {
			h.s.storeErr(w, err)
			return
		}
	}
	if err := h.db.ReportCommands(ctx, store.TargetProxy, id, commandReports(req.Acked, req.Results)); err != nil {
		h.s.storeErr(w, err)
		return
	}
	cmds, err := h.db.DeliverCommands(ctx, store.TargetProxy, id)
	if err != nil {
		h.s.storeErr(w, err)
		return
	}
	c, err := h.db.GetCluster(ctx, ra.ClusterID)
	if err != nil {
		h.s.storeErr(w, err)
		return
	}
	rk, err := h.db.ReleaseKey(ctx)
	if err != nil {
		h.s.storeErr(w, err)
		return
	}
	chain, err := h.db.ReleaseKeyChain(ctx)
	if err != nil {
		h.s.storeErr(w, err)
		return
	}
	resp := wire.HeartbeatResponse{Policy: policyOf(c.Policy), ReleaseKey: rk, ReleaseKeys: chain}
	for _, cmd := range cmds {
		resp.Commands = append(resp.Commands, wire.Command{ID: cmd.ID, Type: cmd.Type, Args: json.RawMessage(cmd.Payload)})
	}
	httpbody.WriteJSON(w, http.StatusOK, resp)
}

// requireRelay authenticates a joined relay's call, answering the refusal
// itself.
func (h *management) requireRelay(w http.ResponseWriter, r *http.Request) (relayAuth, bool) {
	if e := requireRelayTLS(r); e != nil {
		e.write(w)
		return relayAuth{}, false
	}
	ra, ok, e := h.authRelay(r.Context(), r)
	if e != nil {
		e.write(w)
		return ra, false
	} else if !ok {
		writeErr(w, http.StatusUnauthorized, store.EUnauthorized, "relay credentials required")
		return ra, false
	}
	return ra, true
}

// relayRequest authenticates a joined relay (requireRelay) and reads its
// JSON request; false: the refusal is written.
func relayRequest[T any](h *management, w http.ResponseWriter, r *http.Request) (relayAuth, T, bool) {
	var req T
	ra, ok := h.requireRelay(w, r)
	if !ok {
		return ra, req, false
	}
	if err := readJSON(w, r, maxControlBody, &req); err != nil {
		bodyErr(w, err)
		return ra, req, false
	}
	return ra, req, true
}

// handleAuth answers a joined relay's question "is this agent who it says,
// and may it use your cluster?".
func (h *management) handleAuth(w http.ResponseWriter, r *http.Request) {
	ra, req, ok := relayRequest[wire.AuthRequest](h, w, r)
	if !ok {
		return
	}
	rec, err := h.db.LookupAgentAuth(r.Context(), req.Agent)
	if err != nil || !store.SecretMatches(req.Secret, rec.SecretHash) {
		h.s.m.authFail.Add(1)
		writeErr(w, http.StatusUnauthorized, store.EUnauthorized, "agent credentials not recognised")
		return
	}
	if rec.AccountID != ra.AccountID {
		writeErr(w, http.StatusForbidden, store.EForbidden, "agent belongs to another account than this proxy's cluster")
		return
	}
	httpbody.WriteJSON(w, http.StatusOK, wire.AuthResponse{Agent: rec.ID, Account: rec.AccountID, Cluster: rec.ClusterID, Duplicate: rec.Duplicate})
}
