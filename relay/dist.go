package relay

// The management host serves the install script and the binaries it
// installs (wire.PathInstallScript, wire.PathDist): its own binary for its
// own OS/arch, and any DATA/dist/outpost-OS-ARCH an operator drops in for
// the others. The script carries each binary's SHA-256 and is fetched with
// the server key pinned, so a binary is installed only when it is the one
// the pinned host announced.

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"sync"
	"text/template"
	"time"

	"outpost/relay/wire"
)

//go:embed install.sh
var installScript string

var installTmpl = template.Must(template.New("install.sh").Funcs(template.FuncMap{"sq": shellQuoteAll}).Parse(installScript))

// distName is the name of a served binary: outpost-OS-ARCH.
var distName = regexp.MustCompile(`^outpost-[a-z0-9]+-[a-z0-9]+$`)

// hostHeader is what the script may embed as the server's address.
var hostHeader = regexp.MustCompile(`^[A-Za-z0-9.\-]+(:[0-9]+)?$|^\[[0-9A-Fa-f:.]+\](:[0-9]+)?$`)

const maxDistFiles = 64

// dist finds the binaries and hashes each once per version of its file.
type dist struct {
	dir  string // DATA/dist
	self string // this binary, as it was at start ("" if unknown)

	mu   sync.Mutex
	sums map[string]distSum // by path
}

type distSum struct {
	size int64
	mod  time.Time
	sum  string
}

// distFile is one binary on offer.
type distFile struct {
	name, path, sum string
}

func newDist(dataDir string, log *slog.Logger) *dist {
	d := &dist{dir: filepath.Join(dataDir, "dist"), sums: map[string]distSum{}}
	// Resolved now: after an upgrade renames a new binary over this one,
	// /proc/self/exe names a deleted file.
	if exe, err := os.Executable(); err != nil {
		log.Warn("relay: install script: cannot find this binary: serving DATA/dist only", "err", err)
	} else if exe, err = filepath.EvalSymlinks(exe); err == nil {
		d.self = exe
	}
	return d
}

func selfDistName() string { return "outpost-" + runtime.GOOS + "-" + runtime.GOARCH }

// paths maps each name on offer to its file: this binary for this
// OS/arch (it wins over a DATA/dist copy), DATA/dist for the others.
func (d *dist) paths() map[string]string {
	m := map[string]string{}
	if ents, err := os.ReadDir(d.dir); err == nil {
		for _, e := range ents {
			if len(m) < maxDistFiles && distName.MatchString(e.Name()) {
				m[e.Name()] = filepath.Join(d.dir, e.Name())
			}
		}
	}
	if d.self != "" {
		m[selfDistName()] = d.self
	}
	return m
}

// list is every readable binary with its SHA-256, sorted by name.
func (d *dist) list() []distFile {
	var out []distFile
	for name, path := range d.paths() {
		sum, err := d.sum(path)
		if err != nil {
			continue
		}
		out = append(out, distFile{name: name, path: path, sum: sum})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// sum hashes path, again only when its size or modification time changed.
func (d *dist) sum(path string) (string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	if !st.Mode().IsRegular() {
		return "", fmt.Errorf("%s: not a regular file", path)
	}
	d.mu.Lock()
	c, ok := d.sums[path]
	d.mu.Unlock()
	if ok && c.size == st.Size() && c.mod.Equal(st.ModTime()) {
		return c.sum, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	c = distSum{size: st.Size(), mod: st.ModTime(), sum: hex.EncodeToString(h.Sum(nil))}
	d.mu.Lock()
	d.sums[path] = c
	d.mu.Unlock()
	return c.sum, nil
}

// sha256sums is the list in sha256sum(1) format.
func sha256sums(files []distFile) string {
	var b strings.Builder
	for _, f := range files {
		fmt.Fprintf(&b, "%s  %s\n", f.sum, f.name)
	}
	return b.String()
}

func distNames(files []distFile) string {
	var names []string
	for _, f := range files {
		names = append(names, f.name)
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// handleInstallScript renders the script for the address the client used,
// over TLS only: the pin it carries is this server's key.
func (h *management) handleInstallScript(w http.ResponseWriter, r *http.Request) {
	if r.TLS == nil {
		writeErr(w, http.StatusForbidden, wire.CodeForbidden, "the install script is served on the https listeners only (it pins their key)")
		return
	}
	if !hostHeader.MatchString(r.Host) {
		writeErr(w, http.StatusBadRequest, wire.CodeInvalid, "the Host header is not a host name or address")
		return
	}
	var buf bytes.Buffer
	err := installTmpl.Execute(&buf, map[string]string{
		"URL":     "https://" + r.Host,
		"Pin":     h.s.pki.ServerKeyPin(),
		"Version": h.s.cfg.Version,
		"Sums":    sha256sums(h.dist.list()),
	})
	if err != nil {
		h.s.log.Error("relay: install script", "err", err)
		writeErr(w, http.StatusInternalServerError, wire.CodeInternal, "cannot render the install script")
		return
	}
	w.Header().Set("Content-Type", "text/x-shellscript; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(buf.Bytes())
}

// handleDist serves SHA256SUMS and outpost-OS-ARCH.
func (h *management) handleDist(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if name == "SHA256SUMS" {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		io.WriteString(w, sha256sums(h.dist.list()))
		return
	}
	path, ok := h.dist.paths()[name]
	if !distName.MatchString(name) || !ok {
		writeErr(w, http.StatusNotFound, wire.CodeNotFound, fmt.Sprintf("no binary %q here; this management host serves: %s (others go in DATA/dist/outpost-OS-ARCH)",
			name, distNames(h.dist.list())))
		return
	}
	f, err := os.Open(path)
	if err != nil {
		writeErr(w, http.StatusNotFound, wire.CodeNotFound, fmt.Sprintf("binary %s is unreadable on the management host", name))
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		writeErr(w, http.StatusNotFound, wire.CodeNotFound, fmt.Sprintf("binary %s is not a regular file on the management host", name))
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	http.ServeContent(w, r, name, st.ModTime(), f)
}

// shellQuoteAll single-quotes s for a POSIX shell.
func shellQuoteAll(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
