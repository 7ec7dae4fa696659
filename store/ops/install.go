package ops

import (
	"crypto/x509"
	"fmt"
	"path/filepath"
	"strings"

	"outpost/relay/wire"
)

// The one-line installers: on a bare Linux host with curl and sh, fetch
// the management host's install script with its server key pinned (curl
// --pinnedpubkey fails closed on any other key; -k only because the CA is
// private) and run it, which installs the binary and its systemd unit.

// AgentInstallLine is the one-liner installing an agent that runs
// AgentCommand's flags; "" when the script cannot be fetched pinned.
func AgentInstallLine(managerURL, keyPin string, urls []string, key, caPin string) string {
	return installLine(managerURL, keyPin, "agent", withPin("--proxy "+strings.Join(urls, ",")+" --key "+key, caPin))
}

// JoinInstallLine is the one-liner installing a relay that joins with
// JoinCommand's flags; "" when the script cannot be fetched pinned.
func JoinInstallLine(managerURL, keyPin, token, caPin string) string {
	return installLine(managerURL, keyPin, "relay", withPin("--manager "+managerURL+" --join "+token, caPin))
}

// installLine is "" without a key pin or over plain http: a script fetched
// unpinned could install anything.
func installLine(managerURL, keyPin, kind, flags string) string {
	if keyPin == "" || !strings.HasPrefix(managerURL, "https://") {
		return ""
	}
	return "curl -fsSk --pinnedpubkey " + keyPin + " " + strings.TrimRight(managerURL, "/") + wire.PathInstallScript +
		" | sh -s -- " + kind + " " + flags
}

// ServerKeyPin is the curl --pinnedpubkey value (wire.KeyPin) of the
// public key of the first certificate in DATA/tls/server.pem, "" when
// there is none. The relay keeps that key when it re-issues the
// certificate, so the pin outlives new names.
func ServerKeyPin(dataDir string) (string, error) {
	path := filepath.Join(dataDir, "tls", "server.pem")
	der, err := firstCert(path)
	if der == nil || err != nil {
		return "", err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	return wire.KeyPin(cert.RawSubjectPublicKeyInfo), nil
}

// InstallLineMissing says why AgentInstallLine and JoinInstallLine give ""
// for managerURL and keyPin, "" when they give a line.
func InstallLineMissing(managerURL, keyPin string) string {
	switch {
	case !strings.HasPrefix(managerURL, "https://"):
		return "no one-line installer: the management host URL " + managerURL + " is not https, and the script must be fetched with its key pinned"
	case keyPin == "":
		return "no one-line installer yet: the management host has no server certificate (DATA/tls/server.pem) until it first starts (outpost up); create the command again then"
	}
	return ""
}
