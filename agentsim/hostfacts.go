// This file reads the real facts of the Linux machine the agent runs on
// (host identity, the inventory or "online data", and current load) so that
// a real agent reports what the operator would see with ps, ss and getent,
// and so that simulated agents can be checked against a genuine host. Every
// path is taken relative to HostFS.Root, which lets tests point the reader at
// a fake root built in a temporary directory instead of the live system.

package agentsim

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
	"slices"
	"strconv"
	"strings"
	"time"

	"outpost/relay/wire"
)

// HostFS reads host facts from a Linux file system tree. Root "" or "/" is
// the real system; any other value is treated as a fake root (tests), in which
// case nothing is asked of the kernel directly: the host name comes from
// Root/proc/sys/kernel/hostname and no IP addresses are reported.
type HostFS struct {
	Root string
}

// hfCPUSampleInterval is the gap between the two /proc/stat samples in Load.
const hfCPUSampleInterval = 100 * time.Millisecond

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
		OS:       "linux",
		OSName:   h.osName(),
		Arch:     runtime.GOARCH,
		Version:  version,
	}
	if h.real() {
		host.IPs = hfInterfaceIPs()
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

// hfInterfaceIPs lists the non-loopback, non-link-local addresses of the
// interfaces that are up.
func hfInterfaceIPs() []string {
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
		vals := hfParseOSRelease(b)
		if v := vals["PRETTY_NAME"]; v != "" {
			return v
		}
		return "Linux"
	}
	return ""
}

// hfParseOSRelease parses the shell-like KEY=VALUE format of os-release(5):
// values may be wrapped in double or single quotes; inside double quotes a
// backslash escapes the next character.
func hfParseOSRelease(b []byte) map[string]string {
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
		vals[strings.TrimSpace(k)] = hfUnquoteShell(strings.TrimSpace(v))
	}
	return vals
}

func hfUnquoteShell(v string) string {
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

// Inventory returns the host's "online data". What counts:
//
//   - Processes: entries of Root/proc whose name is all digits, i.e. the
//     thread-group leaders (processes, not threads) visible in this PID
//     namespace; the same set `ps -e` lists.
//   - ListeningPorts: the sorted, distinct union of
//     (a) TCP ports: local port of every socket in state 0A (LISTEN) in
//     Root/proc/net/tcp and Root/proc/net/tcp6 (what `ss -ltn` shows), and
//     (b) UDP ports: local port of every socket in state 07 (unconnected)
//     whose remote address and port are all zeros in Root/proc/net/udp and
//     Root/proc/net/udp6 (bound, receiving from anyone: what `ss -lun`
//     shows). Connected UDP sockets (state 01) and port 0 are not counted.
//     A port open on both IPv4 and IPv6, or on both TCP and UDP, counts once.
//     Listeners returns the TCP and UDP sets separately. /proc/net is the
//     reading process's network namespace, so an agent in a container sees
//     the container's sockets, as ss run there would.
//   - Ports: len(ListeningPorts).
//   - RootAccounts: Root/etc/passwd entries whose uid field is "0".
//   - Accounts: every Root/etc/passwd line that is neither blank nor a
//     comment ('#').
//
// Vulnerabilities, BaselineRisks, Alerts, Tags and Group are not host facts
// and are left zero. A missing socket table or passwd file counts as zero;
// the only error is an unreadable Root/proc (procfs not mounted).
func (h HostFS) Inventory() (wire.Inventory, error) {
	var inv wire.Inventory
	n, err := h.processes()
	if err != nil {
		return inv, err
	}
	inv.Processes = n
	tcp, udp := h.listeners()
	inv.ListeningPorts = hfUnionSorted(tcp, udp)
	inv.Ports = len(inv.ListeningPorts)
	inv.Accounts, inv.RootAccounts = h.accounts()
	return inv, nil
}

// Listeners returns, separately, the sorted distinct TCP ports in LISTEN
// state and the sorted distinct bound unconnected UDP ports, as defined in
// Inventory. Missing tables give empty lists.
func (h HostFS) Listeners() (tcp, udp []int) {
	return h.listeners()
}

func (h HostFS) processes() (int, error) {
	entries, err := os.ReadDir(h.path("/proc"))
	if err != nil {
		return 0, fmt.Errorf("agentsim: processes: %w", err)
	}
	n := 0
	for _, e := range entries {
		if e.IsDir() && hfIsDigits(e.Name()) {
			n++
		}
	}
	return n, nil
}

func hfIsDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func (h HostFS) listeners() (tcp, udp []int) {
	tcpSet := map[int]bool{}
	udpSet := map[int]bool{}
	for _, f := range []string{"tcp", "tcp6"} {
		b, _ := os.ReadFile(h.path("/proc/net/" + f))
		for _, p := range hfParseSockets(b, "0A", false) {
			tcpSet[p] = true
		}
	}
	for _, f := range []string{"udp", "udp6"} {
		b, _ := os.ReadFile(h.path("/proc/net/" + f))
		for _, p := range hfParseSockets(b, "07", true) {
			udpSet[p] = true
		}
	}
	return hfSortedKeys(tcpSet), hfSortedKeys(udpSet)
}

// hfParseSockets returns the local ports of the rows of a /proc/net/{tcp,udp}[6]
// table whose st column equals state; with anyRemote the remote address and
// port must be all zeros too. The header and malformed rows are skipped.
func hfParseSockets(b []byte, state string, anyRemote bool) []int {
	var ports []int
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		// sl local_address rem_address st ...
		if len(f) < 4 || !strings.HasSuffix(f[0], ":") {
			continue
		}
		if !strings.EqualFold(f[3], state) {
			continue
		}
		_, lport, ok := strings.Cut(f[1], ":")
		if !ok {
			continue
		}
		p, err := strconv.ParseUint(lport, 16, 16)
		if err != nil || p == 0 {
			continue
		}
		if anyRemote {
			raddr, rport, ok := strings.Cut(f[2], ":")
			if !ok || strings.Trim(raddr, "0") != "" || strings.Trim(rport, "0") != "" {
				continue
			}
		}
		ports = append(ports, int(p))
	}
	return ports
}

func hfSortedKeys(m map[int]bool) []int {
	out := make([]int, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func hfUnionSorted(a, b []int) []int {
	out := slices.Concat(a, b)
	slices.Sort(out)
	out = slices.Compact(out)
	if len(out) == 0 {
		return nil
	}
	return out
}

func (h HostFS) accounts() (all, root int) {
	for _, name := range h.accountNames() {
		all++
		if name.uid == "0" {
			root++
		}
	}
	return all, root
}

type hfPasswdEntry struct{ name, uid string }

// accountNames returns the non-blank, non-comment lines of Root/etc/passwd.
func (h HostFS) accountNames() []hfPasswdEntry {
	b, err := os.ReadFile(h.path("/etc/passwd"))
	if err != nil {
		return nil
	}
	var out []hfPasswdEntry
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		f := strings.Split(line, ":")
		e := hfPasswdEntry{name: f[0]}
		if len(f) > 2 {
			e.uid = strings.TrimSpace(f[2])
		}
		out = append(out, e)
	}
	return out
}

// Load returns the current CPU and memory use in percent (0..100), for the
// doctor's "above 95 %" check. CPU is the busy share of all CPUs between two
// samples of the aggregate "cpu" line of Root/proc/stat taken 100 ms apart
// (busy = everything but idle and iowait); when /proc/stat is unusable it
// falls back to the 1-minute load average of Root/proc/loadavg divided by
// runtime.NumCPU, capped at 100. Memory is (MemTotal-MemAvailable)/MemTotal
// from Root/proc/meminfo, with MemFree+Buffers+Cached standing in for
// MemAvailable on kernels older than 3.14. A figure that cannot be read is 0.
func (h HostFS) Load() (cpu, mem float64) {
	return h.cpuPercent(), h.memPercent()
}

type hfCPUSample struct{ busy, total uint64 }

func (h HostFS) readCPU() (hfCPUSample, bool) {
	b, err := os.ReadFile(h.path("/proc/stat"))
	if err != nil {
		return hfCPUSample{}, false
	}
	return hfParseCPUStat(b)
}

// hfParseCPUStat reads the aggregate "cpu" line of /proc/stat: user nice
// system idle iowait irq softirq steal [guest guest_nice]. guest and
// guest_nice are already included in user and nice, so they are ignored.
func hfParseCPUStat(b []byte) (hfCPUSample, bool) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 5 || f[0] != "cpu" {
			continue
		}
		var s hfCPUSample
		for i, v := range f[1:] {
			if i >= 8 {
				break
			}
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				return hfCPUSample{}, false
			}
			s.total += n
			if i != 3 && i != 4 { // idle, iowait
				s.busy += n
			}
		}
		return s, true
	}
	return hfCPUSample{}, false
}

func hfCPUBetween(a, b hfCPUSample) (float64, bool) {
	if b.total <= a.total || b.busy < a.busy {
		return 0, false
	}
	return hfClampPercent(100 * float64(b.busy-a.busy) / float64(b.total-a.total)), true
}

func (h HostFS) cpuPercent() float64 {
	if a, ok := h.readCPU(); ok {
		time.Sleep(hfCPUSampleInterval)
		if b, ok := h.readCPU(); ok {
			if p, ok := hfCPUBetween(a, b); ok {
				return p
			}
		}
	}
	b, err := os.ReadFile(h.path("/proc/loadavg"))
	if err != nil {
		return 0
	}
	return hfLoadavgPercent(b, runtime.NumCPU())
}

func hfLoadavgPercent(b []byte, ncpu int) float64 {
	f := strings.Fields(string(b))
	if len(f) == 0 || ncpu <= 0 {
		return 0
	}
	l, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return 0
	}
	return hfClampPercent(100 * l / float64(ncpu))
}

func (h HostFS) memPercent() float64 {
	b, err := os.ReadFile(h.path("/proc/meminfo"))
	if err != nil {
		return 0
	}
	return hfParseMeminfo(b)
}

func hfParseMeminfo(b []byte) float64 {
	kv := map[string]uint64{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			continue
		}
		if n, err := strconv.ParseUint(f[0], 10, 64); err == nil {
			kv[k] = n
		}
	}
	total := kv["MemTotal"]
	if total == 0 {
		return 0
	}
	avail, ok := kv["MemAvailable"]
	if !ok {
		avail = kv["MemFree"] + kv["Buffers"] + kv["Cached"]
	}
	if avail > total {
		avail = total
	}
	return hfClampPercent(100 * float64(total-avail) / float64(total))
}

func hfClampPercent(p float64) float64 {
	switch {
	case p < 0:
		return 0
	case p > 100:
		return 100
	}
	return p
}
