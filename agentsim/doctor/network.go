package doctor

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"outpost/relay/wire"
)

// CheckDNS resolves a relay's host name (seed 002 ch.4 step 4a). An IP
// address needs no lookup and is skipped.
func (d *Doctor) CheckDNS(ctx context.Context, host string) Check {
	c := Check{Name: CheckDNS, Target: host}
	if net.ParseIP(host) != nil {
		c.Verdict, c.Detail = VerdictSkip, "IP address: nothing to resolve"
		return c
	}
	ips, err := d.resolve(ctx, host)
	if err == nil && len(ips) == 0 {
		err = errors.New("no address")
	}
	if err != nil {
		c.Verdict = VerdictFail
		c.Detail = "does not resolve: " + errText(err)
		c.Fix = fmt.Sprintf("make sure the DNS service is running on this host (check /etc/resolv.conf, or restart it), "+
			"or add \"IP %s\" to the hosts file, or use the relay's IP address in --proxy", host)
		return c
	}
	c.Verdict, c.Detail = VerdictOK, "resolves to "+strings.Join(ips, ", ")
	return c
}

// CheckPort dials HOST:PORT over TCP (seed 002 ch.4 step 4b; the seed's
// proxy ports are 80, 443 and 8080, Outpost's defaults 8443 and 8080).
func (d *Doctor) CheckPort(ctx context.Context, addr string) Check {
	return d.checkPort(ctx, addr, false)
}

// checkPort with useTLS completes a TLS handshake on the open port (its
// outcome is tls-pin's business) so the relay does not log an aborted one.
func (d *Doctor) checkPort(ctx context.Context, addr string, useTLS bool) Check {
	c := Check{Name: CheckPort, Target: addr}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		c.Verdict, c.Detail, c.Fix = VerdictFail, err.Error(), "give the relay as HOST:PORT"
		return c
	}
	start := time.Now()
	conn, err := d.dialResolved(ctx, "tcp", addr)
	if err != nil {
		c.Verdict = VerdictFail
		c.Detail = "TCP connect failed: " + errText(err)
		c.Fix = fmt.Sprintf("open TCP port %s on %s in the firewall ACL / security group (inbound on the proxy host, outbound here) "+
			"and check that the relay listens on it (`outpost relay --listen`)", port, host)
		return c
	}
	elapsed := time.Since(start)
	if useTLS {
		tc := tls.Client(conn, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12})
		hctx, cancel := context.WithTimeout(ctx, d.timeout())
		if tc.HandshakeContext(hctx) == nil {
			tc.Close()
		}
		cancel()
	}
	conn.Close()
	took := "<1ms"
	if elapsed >= time.Millisecond {
		took = elapsed.Round(time.Millisecond).String()
	}
	c.Verdict, c.Detail = VerdictOK, "TCP connect in "+took
	return c
}

// CheckTLS compares the CA in the relay's certificate chain with the pin
// (--ca-sha256), exactly as the agent does (wire.PinnedTLS).
func (d *Doctor) CheckTLS(ctx context.Context, rawURL string) Check {
	c := Check{Name: CheckTLS, Target: rawURL}
	u, host, port, err := parseURL(rawURL)
	if err != nil {
		c.Verdict, c.Detail = VerdictSkip, err.Error()
		return c
	}
	if u.Scheme != "https" {
		c.Verdict, c.Detail = VerdictSkip, "plain HTTP: no certificate to check"
		return c
	}
	conn, err := d.dialResolved(ctx, "tcp", net.JoinHostPort(host, port))
	if err != nil {
		c.Verdict, c.Detail = VerdictSkip, "cannot connect: "+errText(err)
		return c
	}
	defer conn.Close()
	conf := &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}
	if net.ParseIP(host) == nil {
		conf.ServerName = host
	}
	tc := tls.Client(conn, conf)
	hctx, cancel := context.WithTimeout(ctx, d.timeout())
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		c.Verdict = VerdictFail
		c.Detail = "TLS handshake failed: " + errText(err)
		c.Fix = "check that " + net.JoinHostPort(host, port) + " is an Outpost relay TLS listener (https://) and not plain HTTP or another service"
		return c
	}
	certs := tc.ConnectionState().PeerCertificates
	tc.Close()
	raw := make([][]byte, len(certs))
	for i, cert := range certs {
		raw[i] = cert.Raw
	}
	presented := caFingerprint(certs)
	pin := strings.ToLower(strings.TrimSpace(d.CASHA256))
	if pin == "" {
		c.Verdict = VerdictSkip
		c.Detail = "no --ca-sha256 given; the relay presents CA sha256 " + presented
		return c
	}
	if err := wire.PinnedTLS(pin).VerifyPeerCertificate(raw, nil); err != nil {
		c.Verdict = VerdictFail
		c.Detail = fmt.Sprintf("the relay presents CA sha256 %s, the pin is %s (%v)", short(presented), short(pin), err)
		c.Fix = "copy the install command again from the management host (`outpost installcmd create ...` prints the current --ca-sha256): " +
			"the relay was reinstalled with a new CA, or the pin was mistyped"
		return c
	}
	if err := wire.VerifyName(tls.ConnectionState{PeerCertificates: certs}, host, pin); err != nil {
		c.Verdict, c.Detail = VerdictFail, err.Error()
		c.Fix = "use the URL the install command names, or rejoin the relay with --public URL so its certificate names " + host
		return c
	}
	c.Verdict, c.Detail = VerdictOK, "the relay's CA matches the pin "+short(pin)+" and its certificate names "+host
	return c
}

// caFingerprint names the CA of a chain: the first certificate marked
// as a CA, else the last one.
func caFingerprint(certs []*x509.Certificate) string {
	if len(certs) == 0 {
		return "(none)"
	}
	for _, c := range certs {
		if c.IsCA {
			return wire.Fingerprint(c.Raw)
		}
	}
	return wire.Fingerprint(certs[len(certs)-1].Raw)
}

func short(h string) string {
	if len(h) > 16 {
		return h[:16] + "…"
	}
	return h
}

// probeResult is one GET of /healthz.
type probeResult struct {
	status     int
	body       []byte
	date       time.Time
	sent, recv time.Time
}

func (d *Doctor) probe(ctx context.Context, rawURL string) (probeResult, error) {
	var p probeResult
	u, _, _, err := parseURL(rawURL)
	if err != nil {
		return p, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String()+wire.PathHealth, nil)
	if err != nil {
		return p, err
	}
	p.sent = d.now()
	resp, err := d.client(nil).Do(req)
	if err != nil {
		return p, err
	}
	defer resp.Body.Close()
	p.recv = d.now()
	p.status = resp.StatusCode
	p.body, _ = io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if t, err := http.ParseTime(resp.Header.Get("Date")); err == nil {
		p.date = t
	}
	return p, nil
}

// CheckHealth asks the relay's GET /healthz for 200 and status "ok".
func (d *Doctor) CheckHealth(ctx context.Context, rawURL string) Check {
	c := Check{Name: CheckHealth, Target: rawURL}
	host := rawURL
	if u, err := url.Parse(rawURL); err == nil && u.Hostname() != "" {
		host = u.Hostname()
	}
	p, err := d.probe(ctx, rawURL)
	if err != nil {
		c.Verdict = VerdictFail
		c.Detail = "no answer to " + wire.PathHealth + ": " + errText(err)
		c.Fix = "start the relay on " + host + " (`outpost relay`) and check its log"
		return c
	}
	var h struct {
		Status   string    `json:"status"`
		Version  string    `json:"version"`
		Mode     wire.Mode `json:"mode"`
		ProxyID  int64     `json:"proxy_id"`
		Cluster  string    `json:"cluster"`
		CASHA256 string    `json:"ca_sha256"`
	}
	jsonErr := json.Unmarshal(p.body, &h)
	if p.status != http.StatusOK || jsonErr != nil || h.Status != wire.HealthOK {
		c.Verdict = VerdictFail
		c.Detail = fmt.Sprintf("%s answered HTTP %d %q", wire.PathHealth, p.status, trim(string(p.body), 80))
		c.Fix = "check the relay's log on " + host + " (is this URL an Outpost relay? restart it with `outpost relay`)"
		return c
	}
	parts := []string{"status ok"}
	if h.Version != "" {
		parts = append(parts, "version "+h.Version)
	}
	if h.Mode != "" {
		parts = append(parts, "mode "+string(h.Mode))
	}
	if h.ProxyID != 0 {
		parts = append(parts, fmt.Sprintf("proxy %d of cluster %s", h.ProxyID, h.Cluster))
	} else if h.CASHA256 != "" {
		parts = append(parts, "management host")
	}
	c.Verdict, c.Detail = VerdictOK, strings.Join(parts, ", ")
	return c
}

// CheckClock compares the relay's HTTP Date header with this host's clock:
// warn beyond 5 s, fail beyond 60 s (the Date header has 1 s resolution).
func (d *Doctor) CheckClock(ctx context.Context, rawURL string) Check {
	c := Check{Name: CheckClock, Target: rawURL}
	p, err := d.probe(ctx, rawURL)
	if err != nil {
		c.Verdict, c.Detail = VerdictSkip, "no answer: "+errText(err)
		return c
	}
	if p.date.IsZero() {
		c.Verdict, c.Detail = VerdictSkip, "the relay sent no Date header"
		return c
	}
	// Date has 1 s resolution (truncated): the relay's time was within the
	// second after it; compare the middle of both intervals.
	local := p.sent.Add(p.recv.Sub(p.sent) / 2)
	skew := p.date.Add(500 * time.Millisecond).Sub(local)
	abs := skew
	if abs < 0 {
		abs = -abs
	}
	dir := "ahead of"
	if skew < 0 {
		dir = "behind"
	}
	host := rawURL
	if u, err := url.Parse(rawURL); err == nil && u.Hostname() != "" {
		host = u.Hostname()
	}
	detail := fmt.Sprintf("the relay's clock is %s %s this host", abs.Round(time.Second), dir)
	fix := "enable NTP on this host and on " + host + " (`timedatectl set-ntp true`, or run chronyd/ntpd) so their clocks agree"
	switch {
	case abs > skewFail:
		c.Verdict, c.Detail, c.Fix = VerdictFail, detail+" (more than 60s)", fix
	case abs > skewWarn:
		c.Verdict, c.Detail, c.Fix = VerdictWarn, detail+" (more than 5s)", fix
	default:
		c.Verdict, c.Detail = VerdictOK, fmt.Sprintf("within %s of this host", max(abs.Round(time.Second), time.Second))
	}
	return c
}
