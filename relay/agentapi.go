package relay

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"outpost/relay/internal/httpbody"
	"outpost/relay/wire"
	"outpost/store"
)

func hostFacts(h wire.Host, inv *wire.Inventory) store.HostFacts {
	f := store.HostFacts{Hostname: h.Hostname, IPs: h.IPs, OS: h.OS, OSName: h.OSName, Arch: h.Arch, Provider: h.Provider,
		Region: h.Region, Fingerprint: h.Fingerprint, Version: h.Version}
	if inv != nil {
		f.Group, f.Tags = inv.Group, inv.Tags
	}
	return f
}

func inventory(i *wire.Inventory) *store.Inventory {
	if i == nil {
		return nil
	}
	return &store.Inventory{Processes: i.Processes, Ports: i.Ports, RootAccounts: i.RootAccounts, Accounts: i.Accounts,
		Vulns: i.Vulnerabilities, BaselineRisks: i.BaselineRisks, Alerts: i.Alerts}
}

func (h *management) settings() wire.Settings {
	st := h.db.Settings()
	poll := min(st.PollTimeout, h.s.cfg.PollTimeout)
	return wire.Settings{InventoryInterval: st.InventoryInterval, OfflineAfter: st.OfflineAfter, PollTimeout: poll, MaxBatch: 500}
}

// via returns the proxy a forwarded call came through (0 = direct) and
// refuses forged or foreign relays.
func (h *management) via(r *http.Request) (relayAuth, *authError) {
	ra, _, e := h.authRelay(r.Context(), r)
	return ra, e
}

func (h *management) handleEnrol(w http.ResponseWriter, r *http.Request) {
	h.s.m.enrols.Add(1)
	start := time.Now()
	defer func() { h.s.m.enrolTime.observe(time.Since(start)) }()
	if e := h.s.requireTLS(r); e != nil {
		e.write(w)
		return
	}
	ra, e := h.via(r)
	if e != nil {
		e.write(w)
		return
	}
	var req wire.EnrolRequest
	if err := readJSON(w, r, maxControlBody, &req); err != nil {
		bodyErr(w, err)
		return
	}
	if req.Key == "" {
		writeErr(w, http.StatusUnauthorized, store.EUnauthorized, "install key is required")
		return
	}
	// Read before enrolling: a failure after it would leave an agent the
	// caller never learns of.
	chain, err := h.db.ReleaseKeyChain(r.Context())
	if err != nil {
		h.s.storeErr(w, err)
		return
	}
	en, err := h.db.Enrol(r.Context(), store.EnrolInput{Key: req.Key, Host: hostFacts(req.Host, req.Inventory),
		Inventory: inventory(req.Inventory), ViaProxyID: ra.ProxyID})
	if err != nil {
		h.s.m.enrolFail.Add(1)
		h.s.storeErr(w, err)
		return
	}
	proxies := en.Proxies
	if len(proxies) == 0 {
		proxies = h.directURLs(r)
	}
	httpbody.WriteJSON(w, http.StatusOK, wire.EnrolResponse{AgentID: en.Agent.ID, Secret: en.Secret, Cluster: en.Agent.Cluster,
		Proxies: proxies, Settings: h.settings(), ReleaseKeys: chain})
}

// heldCheckin is what a check-in keeps while it is held. It lives on the
// heap and the handler waits in a small frame: a goroutine's stack is kept
// at its peak size unless less than a quarter of it is in use, so a deep
// frame at the wait costs every held agent 8 KiB more.
type heldCheckin struct {
	a     agentAuth
	ra    relayAuth
	fp    string
	wait  time.Duration
	start time.Time
}

func (h *management) handleCheckin(w http.ResponseWriter, r *http.Request) {
	hc := h.startCheckinApart(w, r)
	if hc == nil {
		return // answered
	}
	if h.park(w, r, hc) {
		return // held on the hijacked connection (park.go)
	}
	cmds, clone, err := h.holdCheckin(r, hc)
	h.answerCheckin(w, r, hc, cmds, clone, err)
}

// startCheckinApart runs startCheckin on a goroutine of its own: decoding
// and the store calls grow a stack deep, and the held goroutine would keep
// that size for as long as it holds. A panic is raised again here, where
// net/http recovers it.
func (h *management) startCheckinApart(w http.ResponseWriter, r *http.Request) *heldCheckin {
	type result struct {
		hc    *heldCheckin
		panic any
	}
	done := make(chan result, 1)
	go func() {
		var res result
		defer func() {
			res.panic = recover()
			done <- res
		}()
		res.hc = h.startCheckin(w, r)
	}()
	res := <-done
	if res.panic != nil {
		panic(res.panic)
	}
	return res.hc
}

// startCheckin authenticates, reads and records a check-in; nil when it
// has been answered already (refused, or a copy's).
//
//go:noinline
func (h *management) startCheckin(w http.ResponseWriter, r *http.Request) *heldCheckin {
	start := time.Now()
	a, e := h.s.authAgent(r.Context(), r)
	if e != nil {
		e.write(w)
		return nil
	}
	ra, e := h.via(r)
	if e != nil {
		e.write(w)
		return nil
	}
	if ra.ProxyID != 0 && ra.AccountID != a.AccountID {
		writeErr(w, http.StatusForbidden, store.EForbidden, "this proxy belongs to another account: an agent can only use its own account's clusters")
		return nil
	}
	var req wire.CheckinRequest
	if err := readJSON(w, r, maxControlBody, &req); err != nil {
		bodyErr(w, err)
		return nil
	}
	if err := req.Validate(); err != nil {
		writeErr(w, http.StatusBadRequest, store.EInvalid, err.Error())
		return nil
	}
	h.s.m.checkins.Add(1)
	wait := min(time.Duration(req.Wait), h.settings().PollTimeout)
	if req.Fingerprint != "" && a.Fingerprint != "" && req.Fingerprint != a.Fingerprint {
		h.answerCopy(w, r, a, ra, req.Fingerprint, wait)
		return nil
	}
	if err := h.db.ReportCommands(r.Context(), store.TargetAgent, a.ID, commandReports(req.Acked, req.Results)); err != nil {
		h.s.storeErr(w, err)
		return nil
	}
	c := store.Checkin{AgentID: a.ID, At: time.Now(), ViaProxyID: ra.ProxyID, Fingerprint: req.Fingerprint,
		Inventory: inventory(req.Inventory), CPU: req.CPU, Mem: req.Mem}
	if req.Host != nil {
		hf := hostFacts(*req.Host, nil)
		c.Host = &hf
	}
	h.batcher.Add(c)
	return &heldCheckin{a: a, ra: ra, fp: req.Fingerprint, wait: wait, start: start}
}

// holdCheckin holds the check-in until a command, the wait's end or a
// clone answer.
func (h *management) holdCheckin(r *http.Request, hc *heldCheckin) (cmds []store.Command, clone bool, err error) {
	conn := agentConn(r, hc.ra)
	clone = h.clones.arrive(hc.a.ID, conn, hc.wait)
	if !clone {
		h.s.m.held.Add(1)
		cmds, err = h.hub.wait(r.Context(), h.db, hc.a.ID, hc.wait)
		h.s.m.held.Add(-1)
		clone = h.clones.leave(hc.a.ID, conn)
	}
	h.endHold(r, hc, conn, clone)
	return cmds, clone, err
}

// endHold flags an agent answered as a clone.
func (h *management) endHold(r *http.Request, hc *heldCheckin, conn string, clone bool) {
	if clone {
		h.s.log.Warn("relay: two live connections check in as one agent: the newer is answered as a clone", "agent", hc.a.ID, "conn", conn)
		if err := h.db.FlagDuplicate(context.WithoutCancel(r.Context()), hc.a.ID, hc.fp, conn); err != nil {
			h.s.log.Error("relay: flag duplicate", "agent", hc.a.ID, "err", err)
		}
		h.s.agents.drop(hc.a.ID)
	}
}

//go:noinline
func (h *management) answerCheckin(w http.ResponseWriter, r *http.Request, hc *heldCheckin, cmds []store.Command, clone bool, err error) {
	if r.Context().Err() != nil {
		return // the agent went away while held
	}
	if err != nil {
		h.s.storeErr(w, err)
		return
	}
	resp := wire.CheckinResponse{Settings: h.settings(), DuplicateID: hc.a.Duplicate || clone, Clone: clone,
		ServerTimeUTC: time.Now().UTC()}
	for _, c := range cmds {
		resp.Commands = append(resp.Commands, h.wireCommand(r, c))
		// The agent needs the release keys only to check a release: they
		// ride with the upgrade (and the enrolment), not every check-in.
		if c.Type == wire.CmdUpgrade && resp.ReleaseKeys == nil {
			if resp.ReleaseKeys, err = h.checkinKeyChain(r.Context()); err != nil {
				h.s.storeErr(w, err) // the command is handed over again
				return
			}
		}
	}
	httpbody.WriteJSON(w, http.StatusOK, resp)
	if hc.wait == 0 {
		h.s.m.checkinTime.observe(time.Since(hc.start))
	}
}

// directURLs are this host's URLs for a direct agent: those of the scheme
// the agent already uses (it holds a CA pin for https, maybe none for http).
func (h *management) directURLs(r *http.Request) []string {
	scheme := "http://"
	if r.TLS != nil || r.Header.Get(wire.HeaderRelay) != "" {
		scheme = "https://"
	}
	all := h.s.publicURLs()
	var out []string
	for _, u := range all {
		if strings.HasPrefix(u, scheme) {
			out = append(out, u)
		}
	}
	if len(out) == 0 {
		return all
	}
	return out
}

// wireCommand turns a stored command into what the agent acts on; unbind
// points the agent back at the management host.
func (h *management) wireCommand(r *http.Request, c store.Command) wire.Command {
	wc := wire.Command{ID: c.ID, Type: c.Type, Args: json.RawMessage(c.Payload)}
	var p struct {
		Cluster string   `json:"cluster"`
		Proxies []string `json:"proxies"`
	}
	json.Unmarshal([]byte(c.Payload), &p)
	wc.Cluster, wc.Proxies = p.Cluster, p.Proxies
	switch c.Type {
	case wire.CmdUnbind:
		wc.Proxies = h.directURLs(r)
	case wire.CmdDeployProxy:
		// The join token's secret is made now, on delivery; the store keeps
		// only its hash.
		var d struct {
			JoinToken int64    `json:"join_token"`
			Cluster   string   `json:"cluster"`
			Listen    []string `json:"listen"`
			Public    []string `json:"public"`
		}
		json.Unmarshal([]byte(c.Payload), &d)
		token, err := h.db.IssueJoinToken(r.Context(), d.JoinToken)
		if err != nil {
			h.s.log.Warn("relay: deploy-proxy command", "command", c.ID, "err", err)
		}
		// The new relay joins the management host itself: the agent's own
		// relay (a joined one) does not serve the relay-facing API.
		var manager string
		for _, u := range h.s.publicURLs() {
			if strings.HasPrefix(u, "https://") {
				manager = u
				break
			}
		}
		wc.Args, _ = json.Marshal(map[string]any{"token": token, "cluster": d.Cluster, "listen": d.Listen, "public": d.Public, "manager": manager})
	}
	return wc
}

func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	defer func() { s.m.eventsTime.observe(time.Since(start)) }()
	a, e := s.authAgent(r.Context(), r)
	if e != nil {
		e.write(w)
		return
	}
	if !s.sink.admit() {
		s.m.throttled.Add(1)
		w.Header().Set("Retry-After", "1")
		writeErr(w, http.StatusTooManyRequests, store.ELimit, "frequency limit reached: retry later")
		return
	}
	if s.sink.keepUp(r.Context()) {
		s.m.lagWaits.Add(1)
	}
	buf := bodyPool.Get().(*[]byte)
	defer putBody(buf)
	body, err := httpbody.ReadBuf(w, r, maxEventBody, *buf)
	if cap(body) > cap(*buf) {
		*buf = body[:0]
	}
	if errors.Is(err, httpbody.ErrGzip) {
		err = errBadJSON
	}
	if err != nil {
		bodyErr(w, err)
		return
	}
	l := linesPool.Get().(*wire.Lines)
	defer putLines(l)
	if err := frameEvents(l, body, a.ID); err != nil {
		if be, ok := isBatchError(err); ok {
			writeErr(w, http.StatusBadRequest, store.EInvalid, be.msg)
			return
		}
		bodyErr(w, err)
		return
	}
	if err := s.sink.append(l); err != nil {
		if msg, ok := tooLarge(err, l.Seqs); ok {
			writeErr(w, http.StatusRequestEntityTooLarge, wire.CodeTooLarge, msg)
			return
		}
		if isFull(err) {
			s.m.throttled.Add(1)
			w.Header().Set("Retry-After", strconv.Itoa(int(s.cfg.RetryAfter.Seconds())))
			writeErr(w, http.StatusTooManyRequests, store.ELimit, "relay buffer is full: keep the data and retry later")
			return
		}
		s.log.Error("relay: sink", "err", err)
		writeErr(w, http.StatusServiceUnavailable, wire.CodeUnavailable, "relay cannot store data right now: retry later")
		return
	}
	s.m.events.Add(int64(l.Len()))
	writeAck(w, l.Seqs)
}

// forward relays an agent call that needs the store to the management host,
// adding this relay's credentials so the store records the proxy the agent
// came through (and refuses agents of other accounts).
func (j *joinedRole) forward(w http.ResponseWriter, r *http.Request) {
	path, ok := forwardPath(r)
	if !ok {
		writeErr(w, http.StatusBadRequest, store.EInvalid, "bad path: a package name is a release version such as 1.2.0")
		return
	}
	if r.URL.Path == wire.PathEnrol || r.URL.Path == wire.PathCheckin {
		if e := j.s.requireTLS(r); e != nil {
			e.write(w)
			return
		}
	}
	if r.URL.Path == wire.PathCheckin {
		j.s.m.checkins.Add(1)
		j.s.m.held.Add(1)
		defer j.s.m.held.Add(-1)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxControlBody))
	if err != nil {
		writeErr(w, http.StatusRequestEntityTooLarge, wire.CodeTooLarge, "request body too large")
		return
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	if r.URL.Path == wire.PathCheckin {
		// Close releases held check-ins at once, as on the management host.
		go func() {
			select {
			case <-j.s.closing:
				cancel()
			case <-ctx.Done():
			}
		}()
	}
	req, err := http.NewRequestWithContext(ctx, r.Method, strings.TrimRight(j.s.cfg.Manager, "/")+path, bytes.NewReader(body))
	if err != nil {
		writeErr(w, http.StatusBadRequest, store.EInvalid, "bad request")
		return
	}
	for _, h := range []string{"Authorization", "Content-Type", "Content-Encoding", "Accept-Encoding"} {
		if v := r.Header.Get(h); v != "" {
			req.Header.Set(h, v)
		}
	}
	req.Header.Set(wire.HeaderRelay, j.ident.header())
	req.Header.Set(wire.HeaderAgentAddr, r.RemoteAddr)
	resp, err := j.client.Do(req)
	if err != nil {
		if r.Context().Err() != nil {
			return // the agent went away (a held check-in it gave up): not the upstream's failure
		}
		if j.s.closed.Load() {
			w.Header().Set("Retry-After", "1")
			writeErr(w, http.StatusServiceUnavailable, wire.CodeUnavailable, "relay is shutting down: retry")
			return
		}
		j.s.m.upstreamErr.Add(1)
		writeErr(w, http.StatusBadGateway, wire.CodeUnavailable, "management host unreachable")
		return
	}
	defer resp.Body.Close()
	for _, h := range []string{"Content-Type", "Content-Encoding", "Retry-After"} {
		if v := resp.Header.Get(h); v != "" {
			w.Header().Set(h, v)
		}
	}
	w.WriteHeader(resp.StatusCode)
	io.Copy(w, resp.Body)
}

// handleManifest lists the published releases, newest first. A release's
// SHA-256 is the one published with it (release add --sha256), else that of
// its package file DATA/releases/VERSION when present.
func (h *management) handleManifest(w http.ResponseWriter, r *http.Request) {
	rels, err := h.db.ListReleases(r.Context())
	if err != nil {
		h.s.storeErr(w, err)
		return
	}
	m := wire.Manifest{Releases: []wire.Release{}}
	for _, rel := range rels {
		wr := wire.Release{Version: rel.Version, SHA256: rel.SHA256, URL: wire.PathPackage + rel.Version, Signature: rel.Signature}
		if wr.SHA256 == "" {
			if b, err := os.ReadFile(filepath.Join(h.s.cfg.DataDir, "releases", rel.Version)); err == nil {
				wr.SHA256 = wire.Fingerprint(b)
			}
		}
		m.Releases = append(m.Releases, wr)
	}
	if len(rels) > 0 {
		m.Latest = rels[0].Version
	}
	httpbody.WriteJSON(w, http.StatusOK, m)
}

// handlePackage serves DATA/releases/VERSION, the package a release ships.
func (h *management) handlePackage(w http.ResponseWriter, r *http.Request) {
	v := r.PathValue("version")
	if !validVersion(v) {
		writeErr(w, http.StatusBadRequest, store.EInvalid, "bad version: a release version such as 1.2.0")
		return
	}
	p := filepath.Join(h.s.cfg.DataDir, "releases", v)
	if _, err := os.Stat(p); err != nil {
		writeErr(w, http.StatusNotFound, store.ENotFound, "no package for version "+v)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	http.ServeFile(w, r, p)
}
