package ops

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"outpost/store"
)

// JoinCommand is the command a manual proxy deployment runs on the proxy
// host; pin ("" = unknown) makes the relay check the management host's CA.
func JoinCommand(managerURL, token, pin string) string {
	return withPin("outpost relay --manager "+managerURL+" --join "+token, pin)
}

// AgentCommand is the command an install command runs on each host.
func AgentCommand(urls []string, key, pin string) string {
	return withPin("outpost agent run --proxy "+strings.Join(urls, ",")+" --key "+key, pin)
}

func withPin(command, pin string) string {
	if pin != "" {
		command += " --ca-sha256 " + pin
	}
	return command
}

// runFile is the part of DATA/run/relay.json read here.
type runFile struct {
	URLs []string `json:"urls"`
}

// ManagerURL is the URL remote relays and direct agents use to reach the
// management host: override when given (it must be an http(s) URL), else
// the first https URL of the relay running from dataDir (DATA/run/
// relay.json; a wildcard listener is named by this host's name), else
// https://HOSTNAME:8443.
func ManagerURL(dataDir, override string) (string, error) {
	if override != "" {
		u, err := url.Parse(override)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return "", store.Errorf(store.EInvalid, "manager URL %q: want an https:// URL", override)
		}
		return strings.TrimRight(override, "/"), nil
	}
	host, _ := os.Hostname()
	if host == "" {
		host = "localhost"
	}
	if buf, err := os.ReadFile(filepath.Join(dataDir, "run", "relay.json")); err == nil {
		var rf runFile
		if json.Unmarshal(buf, &rf) == nil {
			for _, s := range rf.URLs {
				u, err := url.Parse(s)
				if err != nil || u.Scheme != "https" || u.Host == "" {
					continue
				}
				// A relay listening on every address reports it as such;
				// remote hosts need a name.
				if ip := net.ParseIP(u.Hostname()); (ip != nil && ip.IsUnspecified()) || u.Hostname() == "" {
					u.Host = net.JoinHostPort(host, u.Port())
				}
				return strings.TrimRight(u.String(), "/"), nil
			}
		}
	}
	return "https://" + net.JoinHostPort(host, "8443"), nil
}

// CAPin returns the hex SHA-256 of the first certificate in
// DATA/tls/ca.pem, "" when there is none.
func CAPin(dataDir string) (string, error) {
	der, err := firstCert(filepath.Join(dataDir, "tls", "ca.pem"))
	if der == nil || err != nil {
		return "", err
	}
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:]), nil
}

// firstCert returns the DER of the first certificate in a PEM file, nil
// (and no error) when the file does not exist.
func firstCert(path string) ([]byte, error) {
	buf, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	for {
		var b *pem.Block
		b, buf = pem.Decode(buf)
		if b == nil {
			return nil, fmt.Errorf("%s holds no PEM certificate", path)
		}
		if b.Type == "CERTIFICATE" {
			return b.Bytes, nil
		}
	}
}

// ProxyURLer is the store method InstallURLs needs.
type ProxyURLer interface {
	ProxyURLs(ctx context.Context, clusterID int64) ([]string, error)
}

// InstallURLs are the URLs an install command hands its agents: the
// cluster's (its address, then its proxy servers), or https://ADDRESS:8443
// while it has none (note says so); direct agents (cluster nil) get
// managerURL.
func InstallURLs(ctx context.Context, db ProxyURLer, cluster *store.Cluster, managerURL string) (urls []string, note string, err error) {
	if cluster == nil {
		return []string{managerURL}, "", nil
	}
	if urls, err = db.ProxyURLs(ctx, cluster.ID); err != nil {
		return nil, "", err
	}
	if len(urls) == 0 {
		urls = []string{"https://" + net.JoinHostPort(cluster.Address, "8443")}
		note = fmt.Sprintf("cluster %s has no proxy server yet; the command uses the cluster address %s", cluster.Name, urls[0])
	}
	return urls, note, nil
}
