package collector

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"outpost/relay/wire"
)

// RequireTokens guards a standalone collector (outpost center): ingest
// needs the ingest token; stats (which list agent ids) and metrics the
// ingest or the stats token; health stays open. Tokens are compared in
// constant time.
func RequireTokens(next http.Handler, ingest, stats string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := r.Header.Get("Authorization")
		switch r.URL.Path {
		case wire.PathHealth:
		case wire.PathCollStats, wire.PathMetrics:
			if !wire.BearerIs(h, ingest) && !wire.BearerIs(h, stats) {
				writeError(w, http.StatusUnauthorized, wire.CodeUnauthorized, "stats and metrics need the ingest or the stats token (Authorization: Bearer TOKEN)")
				return
			}
		default:
			if !wire.BearerIs(h, ingest) {
				writeError(w, http.StatusUnauthorized, wire.CodeUnauthorized, "ingest needs the collector's token (Authorization: Bearer TOKEN)")
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// LoadOrCreateToken returns the token kept in path, creating a random one
// (0600, directory 0700) on first use.
func LoadOrCreateToken(path, prefix string) (string, error) {
	if b, err := os.ReadFile(path); err == nil {
		tok := strings.TrimSpace(string(b))
		if tok == "" {
			return "", fmt.Errorf("%s is empty: remove it to get a new token", path)
		}
		return tok, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	var raw [24]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", err
	}
	tok := prefix + hex.EncodeToString(raw[:])
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", err
	}
	if err := wire.WriteFileAtomic(path, []byte(tok+"\n"), 0o600); err != nil {
		return "", err
	}
	return tok, nil
}
