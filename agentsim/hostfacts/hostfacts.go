package hostfacts

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"outpost/relay/wire"
)

// HostFS reads host facts from a Linux file system tree. Root "" or "/" is
// the real system; any other value is treated as a fake root (tests), in which
// case nothing is asked of the kernel directly: the host name comes from
// Root/proc/sys/kernel/hostname and no IP addresses are reported.
type HostFS struct {
	Root string
}

func (h HostFS) real() bool { return h.Root == "" || h.Root == "/" }

// path joins p (an absolute path on the target system) under Root.
func (h HostFS) path(p string) string {
	if h.real() {
		return p
	}
	return filepath.Join(h.Root, p)
}

// Host returns the identity of the machine:
//
//   - Hostname: os.Hostname on the real system, otherwise the trimmed content
//     of Root/proc/sys/kernel/hostname (then Root/etc/hostname). Failing to
//     find any host name is the only error Host returns.
//   - IPs: on the real system, the addresses of every interface that is up,
//     excluding loopback and link-local (fe80::/10, 169.254/16) addresses,
//     IPv4 and IPv6, in interface order. A failure to list interfaces leaves
//     IPs empty rather than failing. With a fake root, none.
//   - OS "linux"; OSName: PRETTY_NAME of Root/etc/os-release, falling back to
//     Root/usr/lib/os-release, unquoted; "Linux" when the file exists but has
//     no PRETTY_NAME (the os-release(5) default), "" when neither file exists.
//   - Arch: runtime.GOARCH.
//   - Fingerprint: hex SHA-256 of the trimmed machine id from
//     Root/etc/machine-id, falling back to Root/var/lib/dbus/machine-id (an
//     empty or "uninitialized" id is skipped), then to the host name. Clones
//     of one image that keep the same machine id share it; an agent kept in
//     a directory presents IdentityFingerprint instead, which also covers
//     the directory (path, device, inode: identitystamp.go), so a copy of
//     the directory on the same machine differs too.
func (h HostFS) Host(version string) (wire.Host, error) {
	name, err := h.hostname()
	if err != nil {
		return wire.Host{}, err
	}
	host := wire.Host{
		Hostname: name,
		OS:       wire.OSLinux,
		OSName:   h.osName(),
		Arch:     runtime.GOARCH,
		Version:  version,
	}
	if h.real() {
		host.IPs = interfaceIPs()
	}
	id := h.machineID()
	if id == "" {
		id = name
	}
	sum := sha256.Sum256([]byte(id))
	host.Fingerprint = hex.EncodeToString(sum[:])
	return host, nil
}

func (h HostFS) hostname() (string, error) {
	if h.real() {
		name, err := os.Hostname()
		if err != nil {
			return "", fmt.Errorf("agentsim: host name: %w", err)
		}
		return name, nil
	}
	for _, p := range []string{"/proc/sys/kernel/hostname", "/etc/hostname"} {
		b, err := os.ReadFile(h.path(p))
		if err != nil {
			continue
		}
		if name := strings.TrimSpace(string(b)); name != "" {
			return name, nil
		}
	}
	return "", errors.New("agentsim: host name: no proc/sys/kernel/hostname or etc/hostname under root")
}

// interfaceIPs lists the non-loopback, non-link-local addresses of the
// interfaces that are up.
func interfaceIPs() []string {
	ifaces, err := net.Interfaces()
	if err != nil {
		return nil
	}
	var ips []string
	for _, ifc := range ifaces {
		if ifc.Flags&net.FlagUp == 0 || ifc.Flags&net.FlagLoopback != 0 {
			continue
		}
		addrs, err := ifc.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			var ip net.IP
			switch v := a.(type) {
			case *net.IPNet:
				ip = v.IP
			case *net.IPAddr:
				ip = v.IP
			}
			if ip == nil || ip.IsLoopback() || ip.IsLinkLocalUnicast() || ip.IsUnspecified() {
				continue
			}
			ips = append(ips, ip.String())
		}
	}
	return ips
}

func (h HostFS) osName() string {
	for _, p := range []string{"/etc/os-release", "/usr/lib/os-release"} {
		b, err := os.ReadFile(h.path(p))
		if err != nil {
			continue
		}
		vals := parseOSRelease(b)
		if v := vals["PRETTY_NAME"]; v != "" {
			return v
		}
		return "Linux"
	}
	return ""
}

// parseOSRelease parses the shell-like KEY=VALUE format of os-release(5):
// values may be wrapped in double or single quotes; inside double quotes a
// backslash escapes the next character.
func parseOSRelease(b []byte) map[string]string {
	vals := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		vals[strings.TrimSpace(k)] = unquoteShell(strings.TrimSpace(v))
	}
	return vals
}

func unquoteShell(v string) string {
	if len(v) < 2 {
		return v
	}
	switch q := v[0]; {
	case q == '\'' && v[len(v)-1] == '\'':
		return v[1 : len(v)-1]
	case q == '"' && v[len(v)-1] == '"':
		inner := v[1 : len(v)-1]
		var sb strings.Builder
		for i := 0; i < len(inner); i++ {
			if inner[i] == '\\' && i+1 < len(inner) {
				i++
			}
			sb.WriteByte(inner[i])
		}
		return sb.String()
	}
	return v
}

func (h HostFS) machineID() string {
	for _, p := range []string{"/etc/machine-id", "/var/lib/dbus/machine-id"} {
		b, err := os.ReadFile(h.path(p))
		if err != nil {
			continue
		}
		id := strings.TrimSpace(string(b))
		if id != "" && id != "uninitialized" {
			return id
		}
	}
	return ""
}
