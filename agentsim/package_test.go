package agentsim_test

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"

	"outpost/agentsim"
	"outpost/relay/wire"
)

// TestClientPackage: a package is returned byte for byte (larger than the
// 8 MiB a JSON answer may take), one larger than the limit is refused, and
// a refusal keeps its status and message.
func TestClientPackage(t *testing.T) {
	pkg := bytes.Repeat([]byte{0, 1, 2, 0xff}, 3<<20) // 12 MiB, not JSON
	url, _ := loopback(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case wire.PathPackage + "1.2.0":
			w.Write(pkg)
		default:
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte(`{"code":"not_found","error":"no package for version 9.9.9"}`))
		}
	})
	c := agentsim.NewClient(agentsim.ClientOptions{Proxies: []string{url}})
	for _, tc := range []struct {
		name, version string
		max           int64
		want          []byte
		wantErr       string
	}{
		{"whole package", "1.2.0", 64 << 20, pkg, ""},
		{"over the limit", "1.2.0", 1 << 20, nil, "larger than 1048576 bytes"},
		{"not published", "9.9.9", 64 << 20, nil, "no package for version 9.9.9"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := c.Package(context.Background(), tc.version, tc.max, 0)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("got %v, want the package", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("got %v, want an error saying %q", err, tc.wantErr)
			case !bytes.Equal(got, tc.want):
				t.Errorf("got %d bytes, want %d", len(got), len(tc.want))
			}
		})
	}
}
