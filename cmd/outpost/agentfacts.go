package main

// What the reference agent reports of this machine: its facts
// (hostfacts), the fingerprint a test may give with --machine-id-file, and
// the periodic status event.

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"

	"outpost/agentsim/hostfacts"
	"outpost/relay/wire"
)

// host is this machine's facts, the fingerprint from --machine-id-file
// when given.
func (r *agentRun) host() (wire.Host, error) {
	host, err := hostfacts.HostFS{}.Host(version)
	if err != nil || r.machineIDFile == "" {
		return host, err
	}
	host.Fingerprint, err = fingerprintFromFile(r.machineIDFile)
	return host, err
}

// inventory reads this machine's online data.
func (r *agentRun) inventory() wire.Inventory {
	inv, err := hostfacts.HostFS{}.Inventory()
	if err != nil {
		r.log.Warn("inventory", "err", err)
	}
	return inv
}

// fingerprintFromFile is the machine fingerprint HostFS derives from
// /etc/machine-id (hex SHA-256 of the trimmed id), read from another file
// so a test can play a second machine.
func fingerprintFromFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("machine id: %w", err)
	}
	id := strings.TrimSpace(string(b))
	if id == "" || id == "uninitialized" {
		return "", fmt.Errorf("machine id file %s holds no machine id", path)
	}
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:]), nil
}

// statusEvent is the reference agent's periodic event: real, small data
// from /proc so the data path carries something meaningful.
func statusEvent(seq uint64) json.RawMessage {
	ev := map[string]any{"kind": "status", "seq": seq}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		f := strings.Fields(string(b))
		for i, k := range []string{"load1", "load5", "load15"} {
			if i < len(f) {
				if v, err := strconv.ParseFloat(f[i], 64); err == nil {
					ev[k] = v
				}
			}
		}
	}
	if b, err := os.ReadFile("/proc/uptime"); err == nil {
		if f := strings.Fields(string(b)); len(f) > 0 {
			if v, err := strconv.ParseFloat(f[0], 64); err == nil {
				ev["uptime_s"] = int64(v)
			}
		}
	}
	if f, err := os.Open("/proc/meminfo"); err == nil {
		kv := map[string]float64{}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			k, rest, ok := strings.Cut(sc.Text(), ":")
			if fs := strings.Fields(rest); ok && len(fs) > 0 {
				if v, err := strconv.ParseFloat(fs[0], 64); err == nil {
					kv[k] = v
				}
			}
		}
		f.Close()
		if total, avail := kv["MemTotal"], kv["MemAvailable"]; total > 0 && avail > 0 {
			ev["mem_used_pct"] = float64(int(1000*(total-avail)/total)) / 10
		}
	}
	b, _ := json.Marshal(ev)
	return b
}
