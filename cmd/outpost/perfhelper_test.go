//go:build linux

package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"outpost/agentsim"
	"outpost/relay/wire"
)

// Child processes of the performance harness, run from this test binary
// (before TestMain, which would build the outpost binary again):
//
//	OUTPOST_PERF_HELPER=clients:SPEC  holds the connections SPEC lists
//	OUTPOST_PERF_HELPER=server:tls    an idle net/http server (baseline)
//	OUTPOST_PERF_HELPER=server:plain
//
// Both run until their stdin closes. One process may open at most 20,000
// files here, so held agents are spread over several client processes and
// over 127.0.x.y source addresses.
const envPerfHelper = "OUTPOST_PERF_HELPER"

func init() {
	if mode := os.Getenv(envPerfHelper); mode != "" {
		os.Exit(perfHelper(mode))
	}
}

// perfClientSpec is what one client process holds.
type perfClientSpec struct {
	URL    string
	Pin    string // CA of a relay (held check-ins); none for the baseline
	Held   bool   // check-ins held open; else one GET, then the connection idles
	Agents []perfHeldAgent
	Count  int // baseline connections
	IPBase int // index of this process's first source address
}

type perfHeldAgent struct{ ID, Secret, FP string }

// perfDialRate is how many connections a client process opens per second.
const perfDialRate = 1000

// perfSourceIP spreads connections over 127.0.x.y, 250 per address.
func perfSourceIP(i int) net.IP {
	g := i / 250
	return net.IPv4(127, 0, byte(1+g/250), byte(2+g%250))
}

func perfHelper(mode string) int {
	agentsim.RaiseFileLimit()
	kind, arg, _ := strings.Cut(mode, ":")
	var err error
	switch kind {
	case "clients":
		err = perfClients(arg)
	case "server":
		err = perfIdleServer(arg == "tls")
	default:
		err = fmt.Errorf("unknown helper %q", mode)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "perf helper:", err)
		return 1
	}
	return 0
}

func perfClients(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var spec perfClientSpec
	if err := json.Unmarshal(b, &spec); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var ok, failed, errs atomic.Int64
	complain := func(format string, args ...any) {
		if n := errs.Add(1); n <= 5 || n%1000 == 0 {
			fmt.Fprintf(os.Stderr, "(error %d) "+format+"\n", append([]any{n}, args...)...)
		}
	}
	n := max(spec.Count, len(spec.Agents))
	done := make(chan struct{}, n)
	// Paced, so the listener's accept queue does not overflow and
	// connections time out in SYN retries instead of being measured.
	pace := time.NewTicker(time.Second / perfDialRate)
	defer pace.Stop()
	for i := range n {
		<-pace.C
		ip := perfSourceIP(spec.IPBase + i)
		if spec.Held {
			a := spec.Agents[i]
			tr := agentsim.NewTransport(agentsim.ClientOptions{LocalIP: ip, CASHA256: spec.Pin, DialTimeout: 20 * time.Second})
			c := agentsim.NewClient(agentsim.ClientOptions{Proxies: []string{spec.URL}, Transport: tr, Timeout: 30 * time.Second})
			c.SetCredentials(a.ID, a.Secret)
			go func() {
				for ctx.Err() == nil {
					_, err := c.Checkin(ctx, wire.CheckinRequest{Fingerprint: a.FP, Wait: wire.Duration(5 * time.Minute)})
					if err != nil && ctx.Err() == nil {
						complain("held check-in %s: %v", a.ID, err)
						time.Sleep(time.Second)
					}
				}
			}()
			continue
		}
		go func() {
			defer func() { done <- struct{}{} }()
			tr := &http.Transport{DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}, Timeout: 20 * time.Second}).DialContext,
				TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, ForceAttemptHTTP2: true, IdleConnTimeout: time.Hour}
			hc := &http.Client{Transport: tr, Timeout: 30 * time.Second}
			for try := 0; ; try++ {
				resp, err := hc.Get(spec.URL)
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					ok.Add(1)
					return
				}
				if complain("baseline connection: %v", err); try == 2 {
					failed.Add(1)
					return
				}
			}
		}()
	}
	if !spec.Held {
		for range n {
			<-done
		}
	}
	fmt.Printf("ready %d %d\n", ok.Load(), failed.Load())
	io.Copy(io.Discard, os.Stdin)
	return nil
}

// perfIdleServer is the baseline: a plain net/http server (HTTP/2 on TLS,
// as the relay's) whose connections idle after one request.
func perfIdleServer(useTLS bool) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })}
	scheme := "http"
	if useTLS {
		cert, err := perfSelfSigned()
		if err != nil {
			return err
		}
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2", "http/1.1"}}
		scheme = "https"
		go srv.ServeTLS(ln, "", "")
	} else {
		go srv.Serve(ln)
	}
	fmt.Printf("url %s://%s/\n", scheme, ln.Addr())
	io.Copy(io.Discard, os.Stdin)
	return nil
}

func perfSelfSigned() (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

// perfChild is one helper process; its stdout lines are read from the
// buffer startProc keeps.
type perfChild struct {
	p     *proc
	stdin io.WriteCloser
	seen  int // lines consumed by line
}

func startPerfChild(t *testing.T, mode string) *perfChild {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envPerfHelper+"="+mode)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	return &perfChild{stdin: stdin, p: startProc(t, cmd, "perf helper "+mode)}
}

// line waits for the child's next stdout line starting with prefix.
func (c *perfChild) line(t *testing.T, prefix string, d time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		lines := strings.SplitAfter(c.p.stdout.String(), "\n")
		for ; c.seen < len(lines) && strings.HasSuffix(lines[c.seen], "\n"); c.seen++ {
			if l, ok := strings.CutPrefix(lines[c.seen], prefix); ok {
				c.seen++
				return strings.TrimSpace(l)
			}
		}
		if c.p.exited() {
			t.Fatalf("%s ended before %q; stderr:\n%s", c.p.label, prefix, c.p.stderr.String())
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no %q within %s; stderr:\n%s", c.p.label, prefix, d, c.p.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop closes stdin and waits for the child to end (killed after 10 s).
func (c *perfChild) stop() {
	c.stdin.Close()
	select {
	case <-c.p.done:
	case <-time.After(10 * time.Second):
		c.p.cmd.Process.Kill()
		<-c.p.done
	}
}
