package selfupdate

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"outpost/relay/wire"
)

// Identity is what `BINARY --self-test` prints, one JSON line.
type Identity struct {
	Version string `json:"version"`
	OS      string `json:"os"`
	Arch    string `json:"arch"`
}

// SelfTestTimeout bounds one self-test run.
var SelfTestTimeout = 20 * time.Second

// SelfTest runs `path --self-test` and checks that it exits 0 after
// printing the identity of wantVersion built for this OS and architecture.
// A package that is not a binary for this host, or one that cannot open a
// store, fails here, before anything is replaced.
func SelfTest(path, wantVersion string) error {
	ctx, cancel := context.WithTimeout(context.Background(), SelfTestTimeout)
	defer cancel()
	var out, errb bytes.Buffer
	cmd, err := startBusy(func() *exec.Cmd {
		out.Reset()
		errb.Reset()
		c := exec.CommandContext(ctx, path, "--self-test")
		c.Stdout, c.Stderr = &out, &errb
		c.WaitDelay = time.Second
		return c
	})
	if err == nil {
		err = cmd.Wait()
	}
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("self-test of the new binary: no answer within %s", SelfTestTimeout)
		}
		var pe *os.PathError
		if errors.As(err, &pe) {
			return fmt.Errorf("self-test of the new binary: it does not run on this host (%v)", pe.Err)
		}
		return fmt.Errorf("self-test of the new binary: %v%s", err, lastLineOf(errb.String()))
	}
	var id Identity
	line, _, _ := strings.Cut(strings.TrimSpace(out.String()), "\n")
	if err := json.Unmarshal([]byte(line), &id); err != nil {
		return fmt.Errorf("self-test of the new binary: it printed %q, not its identity", clip(line, 80))
	}
	switch {
	case id.OS != runtime.GOOS || id.Arch != runtime.GOARCH:
		return fmt.Errorf("self-test of the new binary: it is built for %s/%s, this host is %s/%s", id.OS, id.Arch, runtime.GOOS, runtime.GOARCH)
	case wantVersion != "" && id.Version != wantVersion:
		return fmt.Errorf("self-test of the new binary: it says version %q, the release is %s", id.Version, wantVersion)
	}
	return nil
}

// startBusy starts the command newCmd makes (an exec.Cmd cannot be
// started twice), through whileBusy.
func startBusy(newCmd func() *exec.Cmd) (cmd *exec.Cmd, err error) {
	err = whileBusy(func() error {
		cmd = newCmd()
		return cmd.Start()
	})
	return cmd, err
}

// whileBusy runs exec again (20 times, 50 ms apart) while the kernel
// answers ETXTBSY: a binary just written is still open for writing in a
// process forked meanwhile that has not exec'd yet.
func whileBusy(exec func() error) error {
	err := exec()
	for try := 0; errors.Is(err, syscall.ETXTBSY) && try < 20; try++ {
		time.Sleep(50 * time.Millisecond)
		err = exec()
	}
	return err
}

func lastLineOf(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if l := strings.TrimSpace(lines[len(lines)-1]); l != "" {
		return ": " + clip(l, 160)
	}
	return ""
}

func clip(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n]) + "…"
	}
	return s
}

// NewPath is where Stage writes the new binary beside binary: the same
// directory, so Install's rename is atomic.
func NewPath(binary string) string { return binary + ".new" }

// PrevPath is where Install keeps the binary it replaces.
func PrevPath(binary string) string { return binary + ".prev" }

// Stage writes pkg to path (mode 0755) and syncs it; a failed write leaves
// no file behind.
func Stage(path string, pkg []byte) error {
	os.Remove(path)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		return fmt.Errorf("stage the new binary: %w", err)
	}
	_, err = f.Write(pkg)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(path, 0o755) // whatever the umask took
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("stage the new binary: %w", err)
	}
	return nil
}

// Install replaces binary with the staged file: the current binary is kept
// as BINARY.prev (a hard link, else a synced copy), the staged file is
// copied to BINARY.new when it is elsewhere, then one rename puts it in
// place and the directory is synced. Before the rename nothing a running
// process uses has changed; after it the new binary is in place whole.
func Install(binary, staged string) (prev string, err error) {
	prev, next := PrevPath(binary), NewPath(binary)
	if staged != next {
		if err := copyFile(staged, next); err != nil {
			return "", fmt.Errorf("install: %w", err)
		}
	}
	defer func() {
		if err != nil {
			os.Remove(next)
		}
	}()
	os.Remove(prev)
	if err := os.Link(binary, prev); err != nil {
		if err := copyFile(binary, prev); err != nil {
			return "", fmt.Errorf("install: keep the current binary as %s: %w", prev, err)
		}
	}
	if err := os.Rename(next, binary); err != nil {
		return "", fmt.Errorf("install: %w", err)
	}
	if err := wire.SyncDir(filepath.Dir(binary)); err != nil {
		return prev, fmt.Errorf("install: %w", err)
	}
	return prev, nil
}

// Restore puts prev back over binary (one rename, directory synced).
func Restore(binary, prev string) error {
	if err := os.Rename(prev, binary); err != nil {
		return fmt.Errorf("restore %s: %w", prev, err)
	}
	return wire.SyncDir(filepath.Dir(binary))
}

func copyFile(from, to string) error {
	src, err := os.Open(from)
	if err != nil {
		return err
	}
	defer src.Close()
	os.Remove(to)
	dst, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		return err
	}
	_, err = io.Copy(dst, src)
	if err == nil {
		err = dst.Sync()
	}
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(to, 0o755)
	}
	if err != nil {
		os.Remove(to)
	}
	return err
}
