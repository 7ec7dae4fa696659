// The inventory ("online data"): processes, listening ports, accounts.

package hostfacts

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"outpost/relay/wire"
)

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
	inv.ListeningPorts = unionSorted(tcp, udp)
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
		if e.IsDir() && wire.AllDigits(e.Name()) {
			n++
		}
	}
	return n, nil
}

func (h HostFS) listeners() (tcp, udp []int) {
	tcpSet := map[int]bool{}
	udpSet := map[int]bool{}
	for _, f := range []string{"tcp", "tcp6"} {
		b, _ := os.ReadFile(h.path("/proc/net/" + f))
		for _, p := range parseSockets(b, "0A", false) {
			tcpSet[p] = true
		}
	}
	for _, f := range []string{"udp", "udp6"} {
		b, _ := os.ReadFile(h.path("/proc/net/" + f))
		for _, p := range parseSockets(b, "07", true) {
			udpSet[p] = true
		}
	}
	return sortedKeys(tcpSet), sortedKeys(udpSet)
}

// parseSockets returns the local ports of the rows of a /proc/net/{tcp,udp}[6]
// table whose st column equals state; with anyRemote the remote address and
// port must be all zeros too. The header and malformed rows are skipped.
func parseSockets(b []byte, state string, anyRemote bool) []int {
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

func sortedKeys(m map[int]bool) []int {
	out := make([]int, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func unionSorted(a, b []int) []int {
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

type passwdEntry struct{ name, uid string }

// accountNames returns the non-blank, non-comment lines of Root/etc/passwd.
func (h HostFS) accountNames() []passwdEntry {
	b, err := os.ReadFile(h.path("/etc/passwd"))
	if err != nil {
		return nil
	}
	var out []passwdEntry
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		f := strings.Split(line, ":")
		e := passwdEntry{name: f[0]}
		if len(f) > 2 {
			e.uid = strings.TrimSpace(f[2])
		}
		out = append(out, e)
	}
	return out
}
