package hostfacts

import (
	"bufio"
	"bytes"
	"net"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// --- the real system, compared with what the OS tools say independently ---

func requireLinux(t *testing.T) {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("host facts are read from Linux procfs")
	}
	if _, err := os.Stat("/proc/self"); err != nil {
		t.Skip("procfs not mounted")
	}
}

func TestHostFSRealHost(t *testing.T) {
	requireLinux(t)
	h, err := HostFS{}.Host("test")
	if err != nil {
		t.Fatal(err)
	}
	want, _ := os.Hostname()
	if h.Hostname != want || h.OS != "linux" || len(h.Fingerprint) != 64 {
		t.Errorf("host = %+v", h)
	}
	for _, ip := range h.IPs {
		p := net.ParseIP(ip)
		if p == nil || p.IsLoopback() || p.IsLinkLocalUnicast() {
			t.Errorf("unexpected IP %q", ip)
		}
	}
	again, _ := HostFS{Root: "/"}.Host("test")
	if again.Fingerprint != h.Fingerprint {
		t.Errorf("Root \"/\" fingerprint %s differs from Root \"\" %s", again.Fingerprint, h.Fingerprint)
	}
	cpu, mem := HostFS{}.Load()
	if cpu < 0 || cpu > 100 || mem <= 0 || mem > 100 {
		t.Errorf("Load = %v, %v", cpu, mem)
	}
	t.Logf("real host: %s (%s, %s) ips=%v fingerprint=%s… cpu=%.1f%% mem=%.1f%%",
		h.Hostname, h.OSName, h.Arch, h.IPs, h.Fingerprint[:12], cpu, mem)
}

func lookTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s not installed", name)
	}
	return p
}

func nonEmptyLines(b []byte) []string {
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if s := strings.TrimSpace(sc.Text()); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func TestHostFSRealProcesses(t *testing.T) {
	requireLinux(t)
	ps := lookTool(t, "ps")
	const tolerance = 5
	// Processes come and go (parallel builds and tests): a burst between the
	// two readings gets up to three attempts before it counts as a failure.
	var ours, theirs int
	for attempt := 0; attempt < 3; attempt++ {
		inv, err := HostFS{}.Inventory()
		if err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(ps, "-e", "--no-headers").Output()
		if err != nil {
			t.Skipf("ps -e --no-headers: %v (not procps?)", err)
		}
		// ps lists itself, which did not exist when Inventory ran.
		ours, theirs = inv.Processes, len(nonEmptyLines(out))
		if d := ours - theirs; d <= tolerance && d >= -tolerance {
			break
		}
	}
	t.Logf("processes: HostFS=%d ps -e=%d (tolerance ±%d)", ours, theirs, tolerance)
	if d := ours - theirs; d > tolerance || d < -tolerance {
		t.Errorf("processes: HostFS %d, ps %d", ours, theirs)
	}
}

// ssListen parses `ss -Hl<proto>n` (flags "-Hltn" or "-Hlun"):
// State Recv-Q Send-Q Local:Port Peer:Port.
func ssListen(t *testing.T, ss, flags string) []int {
	t.Helper()
	out, err := exec.Command(ss, flags).Output()
	if err != nil {
		t.Skipf("ss %s: %v", flags, err)
	}
	set := map[int]bool{}
	for _, line := range nonEmptyLines(out) {
		f := strings.Fields(line)
		if len(f) < 4 {
			t.Fatalf("unexpected ss line %q", line)
		}
		local := f[3]
		i := strings.LastIndex(local, ":")
		port, err := strconv.Atoi(local[i+1:])
		if i < 0 || err != nil {
			t.Fatalf("unexpected ss local address %q", local)
		}
		set[port] = true
	}
	return sortedKeys(set)
}

func TestHostFSRealListeningPorts(t *testing.T) {
	requireLinux(t)
	ss := lookTool(t, "ss")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	mine := ln.Addr().(*net.TCPAddr).Port

	inv, err := HostFS{}.Inventory()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(inv.ListeningPorts, mine) {
		t.Fatalf("own listener port %d missing from ListeningPorts %v", mine, inv.ListeningPorts)
	}
	if inv.Ports != len(inv.ListeningPorts) {
		t.Errorf("Ports %d != len(ListeningPorts) %d", inv.Ports, len(inv.ListeningPorts))
	}

	// Other processes may open or close listeners between the two readings:
	// retry a few times before calling a difference a bug.
	// Other processes (parallel test packages) open and close listeners
	// between the readings: retry, with a pause, until a reading of ours
	// and one of ss agree, before calling a difference a bug.
	var tcp, theirs []int
	for attempt := 0; attempt < 20; attempt++ {
		tcp, _ = HostFS{}.Listeners()
		theirs = ssListen(t, ss, "-Hltn")
		if slices.Equal(tcp, theirs) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("listening TCP ports: HostFS=%v ss -Hltn=%v (own listener %d); total distinct Ports=%d",
		tcp, theirs, mine, inv.Ports)
	if !slices.Equal(tcp, theirs) {
		t.Errorf("TCP listening ports: HostFS %v, ss %v", tcp, theirs)
	}
}

func TestHostFSRealUDPPorts(t *testing.T) {
	requireLinux(t)
	ss := lookTool(t, "ss")
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	mine := pc.LocalAddr().(*net.UDPAddr).Port
	// A connected UDP socket (state ESTABLISHED) must not count.
	conn, err := net.Dial("udp", pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	connected := conn.LocalAddr().(*net.UDPAddr).Port

	inv, err := HostFS{}.Inventory()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(inv.ListeningPorts, mine) {
		t.Fatalf("own UDP port %d missing from ListeningPorts %v", mine, inv.ListeningPorts)
	}
	var udp, theirs []int
	for attempt := 0; attempt < 20; attempt++ {
		_, udp = HostFS{}.Listeners()
		theirs = ssListen(t, ss, "-Hlun")
		if slices.Equal(udp, theirs) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("bound UDP ports: HostFS=%v ss -Hlun=%v (own socket %d, connected socket %d excluded)", udp, theirs, mine, connected)
	if slices.Contains(udp, connected) {
		t.Errorf("connected UDP port %d counted", connected)
	}
	if !slices.Equal(udp, theirs) {
		t.Errorf("UDP ports: HostFS %v, ss %v", udp, theirs)
	}
}

func TestHostFSRealAccounts(t *testing.T) {
	requireLinux(t)
	getent := lookTool(t, "getent")
	inv, err := HostFS{}.Inventory()
	if err != nil {
		t.Fatal(err)
	}
	ours := HostFS{}.accountNames()
	// "-s files" restricts getent to /etc/passwd, leaving out LDAP/sssd/
	// systemd users that the agent does not count; plain getent is the
	// fallback for implementations without -s.
	filesOnly := true
	out, err := exec.Command(getent, "-s", "files", "passwd").Output()
	if err != nil {
		filesOnly = false
		out, err = exec.Command(getent, "passwd").Output()
		if err != nil {
			t.Skipf("getent passwd: %v", err)
		}
	}
	theirs := map[string]bool{}
	root := 0
	lines := nonEmptyLines(out)
	for _, line := range lines {
		f := strings.Split(line, ":")
		theirs[f[0]] = true
		if len(f) > 2 && f[2] == "0" {
			root++
		}
	}
	t.Logf("accounts: HostFS=%d (root %d), getent%s passwd=%d (root %d)",
		inv.Accounts, inv.RootAccounts, map[bool]string{true: " -s files", false: ""}[filesOnly], len(lines), root)
	for _, e := range ours {
		if !theirs[e.name] {
			t.Errorf("account %q from passwd not listed by getent", e.name)
		}
	}
	if filesOnly {
		if inv.Accounts != len(lines) || inv.RootAccounts != root {
			t.Errorf("accounts/root: HostFS %d/%d, getent %d/%d", inv.Accounts, inv.RootAccounts, len(lines), root)
		}
	} else if inv.Accounts > len(lines) {
		t.Errorf("accounts: HostFS %d > getent %d", inv.Accounts, len(lines))
	}
}
