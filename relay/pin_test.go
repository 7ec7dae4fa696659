package relay_test

import (
	"crypto/tls"
	"net/http"
	"strings"
	"testing"

	"outpost/relay"
	"outpost/relay/wire"
)

// A pinned client checks that the certificate names the host it dialled:
// any certificate of the fleet CA (another relay's) must not pass for it.
func TestPinnedTLSChecksTheName(t *testing.T) {
	pki, err := relay.LoadOrCreatePKI(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		hosts []string
		ok    bool
	}{
		{"certificate of another name", []string{"other.example"}, false},
		{"certificate of another IP", []string{"127.0.0.2"}, false},
		{"certificate naming the IP dialled", []string{"other.example", "127.0.0.1"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			certPEM, keyPEM, err := pki.IssueRelay(tc.hosts)
			if err != nil {
				t.Fatal(err)
			}
			cert, err := tls.X509KeyPair(certPEM, keyPEM)
			if err != nil {
				t.Fatal(err)
			}
			ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
			if err != nil {
				t.Fatal(err)
			}
			srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})}
			go srv.Serve(ln)
			t.Cleanup(func() { srv.Close() })
			tr := wire.PinTransport(&http.Transport{}, pki.CAFingerprint())
			t.Cleanup(tr.CloseIdleConnections)
			resp, err := (&http.Client{Transport: tr}).Get("https://" + ln.Addr().String() + "/")
			if err == nil {
				resp.Body.Close()
			}
			if got := err == nil; got != tc.ok {
				t.Errorf("GET %s with a certificate for %v: got err %v, want ok=%v", ln.Addr(), tc.hosts, err, tc.ok)
			}
			if err != nil && !strings.Contains(err.Error(), "does not name") {
				t.Errorf("got %v, want a refusal saying the certificate does not name the host", err)
			}
		})
	}
}
