package doctor

import (
	"context"
	"fmt"
	"io/fs"
	"math"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"outpost/agentsim/hostfacts"
	"outpost/relay/wire"
)

// CheckLoad fails when CPU or memory use stays at 95 % or more (seed 002
// ch.4 step 5: "maintained at 95% or higher" keeps the agent from running
// properly): every one of LoadSamples readings, LoadEvery apart, must be
// that high, so a short burst does not count. The lowest readings are shown.
func (d *Doctor) CheckLoad() Check {
	c := Check{Name: CheckLoad, Target: "this host"}
	load := d.Load
	if load == nil {
		load = hostfacts.HostFS{}.Load
	}
	n, every := d.LoadSamples, d.LoadEvery
	if n <= 0 {
		n = 5
	}
	if every <= 0 {
		every = 200 * time.Millisecond
	}
	cpu, mem := load()
	for i := 1; i < n && (cpu >= loadMax || mem >= loadMax); i++ {
		time.Sleep(every)
		c2, m2 := load()
		cpu, mem = min(cpu, c2), min(mem, m2)
	}
	c.Detail = fmt.Sprintf("CPU %.0f %%, memory %.0f %%", cpu, mem)
	var fixes []string
	if cpu >= loadMax {
		fixes = append(fixes, "find the process using the CPU (`top`, sort with P) and stop or limit it, or add CPUs")
	}
	if mem >= loadMax {
		fixes = append(fixes, "find the process using the memory (`top`, sort with M) and stop it, or add memory")
	}
	if len(fixes) > 0 {
		c.Verdict = VerdictFail
		c.Detail += fmt.Sprintf(" in each of %d readings: at 95 %% or more the agent cannot run properly", n)
		c.Fix = strings.Join(fixes, "; ")
		return c
	}
	c.Verdict = VerdictOK
	return c
}

// CheckUpstream dials where this relay sends data: the management host it
// joined, or the collector URL of the policy.
func (d *Doctor) CheckUpstream(ctx context.Context, rawURL string) Check {
	c := Check{Name: CheckUpstream, Target: rawURL}
	_, host, port, err := parseURL(rawURL)
	if err != nil {
		c.Verdict, c.Detail = VerdictFail, err.Error()
		c.Fix = "set an http:// or https:// upstream URL (`outpost cluster policy NAME --upstream URL`)"
		return c
	}
	addr := net.JoinHostPort(host, port)
	conn, err := d.dialResolved(ctx, "tcp", addr)
	if err != nil {
		c.Verdict = VerdictFail
		c.Detail = "TCP connect to " + addr + " failed: " + errText(err)
		c.Fix = fmt.Sprintf("allow outbound TCP %s from this proxy host (firewall ACL / security group) and check that the management host or collector runs there", addr)
		return c
	}
	conn.Close()
	c.Verdict, c.Detail = VerdictOK, "TCP connect to "+addr+" works"
	return c
}

// CheckCache compares the free space of a cache directory's volume with
// what the ring may still grow by (its cap minus what it holds): below it,
// the disk fills before the oldest data is overwritten (seed 000: 10 GB).
func (d *Doctor) CheckCache(ct CacheTarget) Check {
	c := Check{Name: CheckCache, Target: ct.Cluster}
	dir := ct.Dir
	if dir == "" {
		dir = wire.DefaultCacheDir
	}
	if !filepath.IsAbs(dir) && d.DataDir != "" {
		dir = filepath.Join(d.DataDir, dir)
	}
	maxBytes := ct.Max
	if maxBytes <= 0 {
		maxBytes = wire.MaxCacheBytes
	}
	used := dirSize(dir)
	// The directory may not exist yet: measure the volume it will be on.
	probe := dir
	for {
		if _, err := os.Stat(probe); err == nil {
			break
		}
		parent := filepath.Dir(probe)
		if parent == probe {
			break
		}
		probe = parent
	}
	freeFn := d.FreeBytes
	if freeFn == nil {
		freeFn = diskFree
	}
	free, err := freeFn(probe)
	if err != nil {
		c.Verdict, c.Detail = VerdictSkip, "cannot read the free space of "+probe+": "+errText(err)
		return c
	}
	need := max(maxBytes-used, 0)
	c.Detail = fmt.Sprintf("%s free for %s (cap %s, %s used)", wire.FormatBytes(int64(min(free, math.MaxInt64))), dir,
		wire.FormatBytes(maxBytes), wire.FormatBytes(used))
	if free < uint64(need) {
		c.Verdict = VerdictWarn
		c.Detail += ": the disk fills before the oldest data is overwritten"
		name := ct.Cluster
		if name == "" {
			name = "NAME"
		}
		c.Fix = fmt.Sprintf("free %s on that volume, or move the cache or lower its cap: `outpost cluster policy %s --cache-dir DIR --cache-max %s`",
			wire.FormatBytes(need-int64(free)), name, sizeArg(used+int64(free)))
		return c
	}
	c.Verdict = VerdictOK
	return c
}

// sizeArg renders a cap that fits as a --cache-max value (whole MB).
func sizeArg(n int64) string {
	mb := n / 1_000_000
	if mb >= 1000 && mb%1000 == 0 {
		return fmt.Sprintf("%dGB", mb/1000)
	}
	return fmt.Sprintf("%dMB", max(mb, 1))
}

func dirSize(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, e fs.DirEntry, err error) error {
		if err == nil && e.Type().IsRegular() {
			if info, err := e.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}

// diskFree is the space available to this user on dir's volume.
func diskFree(dir string) (uint64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return st.Bavail * uint64(st.Bsize), nil
}
