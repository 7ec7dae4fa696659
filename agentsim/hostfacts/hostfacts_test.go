package hostfacts

import (
	"crypto/sha256"
	"encoding/hex"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const tcpHeader = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"

// Sample rows: 0.0.0.0:22 LISTEN, 127.0.0.1:5432 LISTEN, an ESTABLISHED
// connection from local port 33206 (must not count), 0.0.0.0:22 LISTEN again
// on another row (counted once), and a TIME_WAIT row.
const sampleTCP = tcpHeader +
	"   0: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1001 1 0000000000000000 100 0 0 10 0\n" +
	"   1: 0100007F:1538 00000000:0000 0A 00000000:00000000 00:00000000 00000000   106        0 1002 1 0000000000000000 100 0 0 10 0\n" +
	"   2: 020200C0:81B6 507100CB:01BB 01 00000000:00000000 02:00000C6D 00000000  1000        0 1003 2 0000000000000000 20 4 30 10 -1\n" +
	"   3: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1004 1 0000000000000000 100 0 0 10 0\n" +
	"   4: 020200C0:81B8 507100CB:01BB 06 00000000:00000000 03:00000C23 00000000     0        0 0 3 0000000000000000\n"

// [::]:80 LISTEN, [::]:22 LISTEN (same port as IPv4: counted once), and an
// ESTABLISHED IPv6 connection on local port 8443.
const sampleTCP6 = tcpHeader +
	"   0: 00000000000000000000000000000000:0050 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2001 1 0000000000000000 100 0 0 10 0\n" +
	"   1: 00000000000000000000000000000000:0016 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2002 1 0000000000000000 100 0 0 10 0\n" +
	"   2: 0000000000000000FFFF00000100007F:20FB 0000000000000000FFFF00000100007F:A1B2 01 00000000:00000000 00:00000000 00000000     0        0 2003 1 0000000000000000 20 4 30 10 -1\n"

const udpHeader = "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n"

// 0.0.0.0:68 unconnected (counts), 127.0.0.53:53 unconnected (counts), a
// connected socket on local port 40000 (st 01: does not count) and a st 07
// row with a non-zero remote (does not count).
const sampleUDP = udpHeader +
	"  100: 00000000:0044 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 3001 2 0000000000000000 0\n" +
	"  101: 3500007F:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000   101        0 3002 2 0000000000000000 0\n" +
	"  102: 020200C0:9C40 08080808:0035 01 00000000:00000000 00:00000000 00000000  1000        0 3003 2 0000000000000000 0\n" +
	"  103: 020200C0:9C41 08080808:0035 07 00000000:00000000 00:00000000 00000000  1000        0 3004 2 0000000000000000 0\n"

// [::]:5353 unconnected.
const sampleUDP6 = udpHeader +
	"  200: 00000000000000000000000000000000:14E9 00000000000000000000000000000000:0000 07 00000000:00000000 00:00000000 00000000   107        0 4001 2 0000000000000000 0\n"

const samplePasswd = `# /etc/passwd for tests
root:x:0:0:root:/root:/bin/bash
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin

# a second uid-0 account, as left behind by an intruder
toor:x:0:0::/root:/bin/sh
  # indented comment
www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin
alice:x:1000:1000:Alice,,,:/home/alice:/bin/bash
`

const sampleOSRelease = `PRETTY_NAME="Ubuntu 22.04.4 LTS"
NAME="Ubuntu"
VERSION_ID="22.04"
ID=ubuntu
`

// fakeRoot writes files (relative path -> content) and directories (paths
// ending in "/") under a new temporary directory.
func fakeRoot(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for p, content := range files {
		full := filepath.Join(root, filepath.FromSlash(p))
		if strings.HasSuffix(p, "/") {
			if err := os.MkdirAll(full, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func sha(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func TestHostFSHost(t *testing.T) {
	tests := []struct {
		name    string
		files   map[string]string
		want    map[string]string // hostname, osname, fingerprint
		wantErr bool
	}{
		{
			name: "machine-id and quoted os-release",
			files: map[string]string{
				"proc/sys/kernel/hostname": "web-prod-0042\n",
				"etc/os-release":           sampleOSRelease,
				"etc/machine-id":           "0123456789abcdef0123456789abcdef\n",
				"var/lib/dbus/machine-id":  "ffffffffffffffffffffffffffffffff\n",
			},
			want: map[string]string{"hostname": "web-prod-0042", "osname": "Ubuntu 22.04.4 LTS", "fingerprint": sha("0123456789abcdef0123456789abcdef")},
		},
		{
			name: "usr/lib os-release, single quotes, dbus machine-id",
			files: map[string]string{
				"proc/sys/kernel/hostname": "阿里云-api-12\n",
				"usr/lib/os-release":       "NAME='Alibaba Cloud Linux'\nPRETTY_NAME='Alibaba Cloud Linux 3 (Soaring Falcon)'\n",
				"var/lib/dbus/machine-id":  "abcabcabcabcabcabcabcabcabcabcab\n",
			},
			want: map[string]string{"hostname": "阿里云-api-12", "osname": "Alibaba Cloud Linux 3 (Soaring Falcon)", "fingerprint": sha("abcabcabcabcabcabcabcabcabcabcab")},
		},
		{
			name: "escapes in double quotes, uninitialized machine-id falls back to hostname",
			files: map[string]string{
				"proc/sys/kernel/hostname": "db-03\n",
				"etc/os-release":           `PRETTY_NAME="Weird \"Quoted\" \$Linux"` + "\n",
				"etc/machine-id":           "uninitialized\n",
			},
			want: map[string]string{"hostname": "db-03", "osname": `Weird "Quoted" $Linux`, "fingerprint": sha("db-03")},
		},
		{
			name: "os-release without PRETTY_NAME, etc/hostname",
			files: map[string]string{
				"etc/hostname":   "edge-1\n",
				"etc/os-release": "NAME=Foo\n",
			},
			want: map[string]string{"hostname": "edge-1", "osname": "Linux", "fingerprint": sha("edge-1")},
		},
		{
			name:    "no host name at all",
			files:   map[string]string{"etc/os-release": sampleOSRelease},
			wantErr: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, err := HostFS{Root: fakeRoot(t, tc.files)}.Host("1.2.3")
			if tc.wantErr {
				if err == nil {
					t.Fatalf("want error, got %+v", h)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{"hostname": h.Hostname, "osname": h.OSName, "fingerprint": h.Fingerprint}
			for k, v := range tc.want {
				if got[k] != v {
					t.Errorf("%s = %q, want %q", k, got[k], v)
				}
			}
			if h.OS != "linux" || h.Arch != runtime.GOARCH || h.Version != "1.2.3" {
				t.Errorf("os/arch/version = %q/%q/%q", h.OS, h.Arch, h.Version)
			}
			if len(h.IPs) != 0 {
				t.Errorf("fake root reported IPs %v", h.IPs)
			}
		})
	}
}

func TestHostFSInventory(t *testing.T) {
	tests := []struct {
		name      string
		files     map[string]string
		want      invCheck
		wantTCP   []int
		wantUDP   []int
		wantError bool
	}{
		{
			name: "full",
			files: map[string]string{
				"proc/1/": "", "proc/42/": "", "proc/1337/": "", "proc/self/": "", "proc/sys/": "", "proc/net/": "",
				"proc/99":        "a file, not a process directory",
				"proc/net/tcp":   sampleTCP,
				"proc/net/tcp6":  sampleTCP6,
				"proc/net/udp":   sampleUDP,
				"proc/net/udp6":  sampleUDP6,
				"etc/passwd":     samplePasswd,
				"etc/os-release": sampleOSRelease,
			},
			want:    invCheck{Processes: 3, Ports: []int{22, 53, 68, 80, 5353, 5432}, Root: 2, All: 5},
			wantTCP: []int{22, 80, 5432},
			wantUDP: []int{53, 68, 5353},
		},
		{
			name: "tcp only, no passwd",
			files: map[string]string{
				"proc/7/":      "",
				"proc/net/tcp": sampleTCP,
			},
			want:    invCheck{Processes: 1, Ports: []int{22, 5432}},
			wantTCP: []int{22, 5432},
		},
		{
			name:  "empty proc: zero everything, no error",
			files: map[string]string{"proc/": ""},
			want:  invCheck{},
		},
		{
			name:      "no proc at all",
			files:     map[string]string{"etc/passwd": samplePasswd},
			wantError: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fs := HostFS{Root: fakeRoot(t, tc.files)}
			inv, err := fs.Inventory()
			if tc.wantError {
				if err == nil {
					t.Fatalf("want error, got %+v", inv)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := invCheck{Processes: inv.Processes, Ports: inv.ListeningPorts, Root: inv.RootAccounts, All: inv.Accounts}
			if !got.equal(tc.want) {
				t.Errorf("inventory = %+v, want %+v", got, tc.want)
			}
			if inv.Ports != len(inv.ListeningPorts) {
				t.Errorf("Ports = %d, len(ListeningPorts) = %d", inv.Ports, len(inv.ListeningPorts))
			}
			tcp, udp := fs.Listeners()
			if !slices.Equal(tcp, tc.wantTCP) && len(tcp)+len(tc.wantTCP) > 0 {
				t.Errorf("tcp = %v, want %v", tcp, tc.wantTCP)
			}
			if !slices.Equal(udp, tc.wantUDP) && len(udp)+len(tc.wantUDP) > 0 {
				t.Errorf("udp = %v, want %v", udp, tc.wantUDP)
			}
		})
	}
}

// invCheck is the subset of wire.Inventory a fake root determines.
type invCheck struct {
	Processes int
	Ports     []int
	Root, All int
}

func (c invCheck) equal(o invCheck) bool {
	return c.Processes == o.Processes && c.Root == o.Root && c.All == o.All &&
		(slices.Equal(c.Ports, o.Ports) || len(c.Ports)+len(o.Ports) == 0)
}

func TestHostFSLoadParsing(t *testing.T) {
	a, ok := parseCPUStat([]byte("cpu  100 0 100 700 100 0 0 0 50 0\ncpu0 1 2 3 4 5\n"))
	if !ok || a.total != 1000 || a.busy != 200 {
		t.Fatalf("sample a = %+v ok=%v", a, ok)
	}
	b, _ := parseCPUStat([]byte("cpu  250 0 150 900 100 0 0 0 99 0\n"))
	if p, ok := cpuBetween(a, b); !ok || math.Abs(p-50) > 1e-9 {
		t.Errorf("cpu between = %v %v, want 50", p, ok)
	}
	if _, ok := cpuBetween(a, a); ok {
		t.Error("identical samples must not give a figure")
	}
	tests := []struct {
		name    string
		meminfo string
		want    float64
	}{
		{"available", "MemTotal:       1000 kB\nMemFree:         100 kB\nMemAvailable:    250 kB\n", 75},
		{"old kernel", "MemTotal: 1000 kB\nMemFree: 100 kB\nBuffers: 50 kB\nCached: 350 kB\n", 50},
		{"garbage", "nothing here\n", 0},
	}
	for _, tc := range tests {
		if got := parseMeminfo([]byte(tc.meminfo)); math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("%s: mem = %v, want %v", tc.name, got, tc.want)
		}
	}
	if got := loadavgPercent([]byte("1.00 0.5 0.2 1/100 42\n"), 4); got != 25 {
		t.Errorf("loadavg 1.0 on 4 CPUs = %v, want 25", got)
	}
	if got := loadavgPercent([]byte("9.00 0.5 0.2 1/100 42\n"), 4); got != 100 {
		t.Errorf("loadavg above NumCPU = %v, want 100 (capped)", got)
	}
}

func TestHostFSLoadFakeRoot(t *testing.T) {
	// A static /proc/stat gives no delta, so CPU falls back to loadavg.
	root := fakeRoot(t, map[string]string{
		"proc/stat":    "cpu  1 1 1 1 1 0 0 0 0 0\n",
		"proc/loadavg": strconv.Itoa(runtime.NumCPU()) + ".00 0.1 0.1 1/1 1\n",
		"proc/meminfo": "MemTotal: 2000 kB\nMemAvailable: 100 kB\n",
	})
	cpu, mem := HostFS{Root: root}.Load()
	if cpu != 100 || mem != 95 {
		t.Errorf("Load = %v, %v; want 100, 95", cpu, mem)
	}
	cpu, mem = HostFS{Root: t.TempDir()}.Load()
	if cpu != 0 || mem != 0 {
		t.Errorf("empty root Load = %v, %v; want 0, 0", cpu, mem)
	}
}
