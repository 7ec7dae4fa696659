package relay

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"

	"outpost/relay/wire"
)

// Which names a joined relay's certificate may carry. Agents dial the
// cluster address and each relay's advertised URLs, so those go in; the
// management host's own names never do, or that relay could pass for it.
//
//   - the cluster address (the operator chose it for the token's cluster);
//   - the hosts of the relay's advertised URLs, refused at join when one
//     is a wildcard, the management host's hostname or one of its URL
//     hosts, "localhost" or a loopback IP (unless the relay joins over
//     loopback: a relay on the management host's own machine, as in the
//     demo and the tests);
//   - the relay's IP when it passes the same rules (else left out).

// refuseCertName says why host may not be in a relay certificate ("" =
// it may). loopback: the join came over a loopback connection.
func (h *management) refuseCertName(host string, loopback bool) string {
	name := strings.ToLower(strings.TrimSuffix(strings.Trim(host, "[]"), "."))
	if name == "" || strings.ContainsAny(name, "*?/\\ ") {
		return "not a host name"
	}
	ip := net.ParseIP(name)
	if name == "localhost" || (ip != nil && ip.IsLoopback()) {
		if loopback {
			return ""
		}
		return "a loopback name is not this relay's address"
	}
	if ip != nil && ip.IsUnspecified() {
		return "not an address agents can dial"
	}
	if me, _ := os.Hostname(); me != "" && strings.EqualFold(name, me) {
		return "it is the management host's name"
	}
	for _, u := range h.s.publicURLs() {
		if p, err := url.Parse(u); err == nil && strings.EqualFold(strings.TrimSuffix(p.Hostname(), "."), name) {
			return "it is the management host's address"
		}
	}
	return ""
}

// relayCertHosts checks the advertised URLs of a join before the token is
// used, answering the refusal.
func (h *management) relayCertHosts(w http.ResponseWriter, r *http.Request, listen []string) ([]string, bool) {
	loopback := fromLoopback(r)
	var hosts []string
	for _, u := range listen {
		p, err := url.Parse(u)
		if err != nil {
			continue // the store refuses it with its reason
		}
		if why := h.refuseCertName(p.Hostname(), loopback); why != "" {
			writeErr(w, http.StatusBadRequest, wire.CodeInvalid,
				fmt.Sprintf("advertised URL %s: %s cannot be in this relay's certificate: %s (start the relay with --public https://ITS-OWN-NAME:PORT)", u, p.Hostname(), why))
			return nil, false
		}
		hosts = append(hosts, p.Hostname())
	}
	return hosts, true
}

func fromLoopback(r *http.Request) bool {
	h, _, _ := net.SplitHostPort(r.RemoteAddr)
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// coverNames makes sure agents dialling urls can check this relay's name:
// the management host re-issues its own certificate; a joined relay, whose
// certificate the management host issued at join, says which names it
// lacks (agents dialling those refuse it).
func (s *Server) coverNames(urls []string) {
	var hosts []string
	for _, u := range urls {
		if p, err := url.Parse(u); err == nil && p.Scheme == "https" && p.Hostname() != "" {
			hosts = append(hosts, p.Hostname())
		}
	}
	if s.pki == nil || len(hosts) == 0 {
		return
	}
	s.role().coverNames(hosts)
}
