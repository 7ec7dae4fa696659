package relay_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"outpost/agentsim"
	"outpost/relay/relaytest"
	"outpost/relay/wire"
)

// The relay's TLS listener runs handshakes apart from net/http: a failed one
// is counted, a stalled one holds up no other client, agents still get
// HTTP/2, and Close does not wait for a handshake in progress.
func TestTLSListenerHandshakes(t *testing.T) {
	m := relaytest.Start(t, relaytest.Options{NoCollector: true})
	addr := strings.TrimPrefix(m.TLSURL, "https://")
	plain := &http.Client{Timeout: 5 * time.Second}
	agent := &http.Client{Timeout: 5 * time.Second, Transport: agentsim.NewTransport(agentsim.ClientOptions{CASHA256: m.Pin()})}
	defer agent.CloseIdleConnections()

	stalled, err := net.Dial("tcp", addr) // sends nothing: its handshake waits
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.Close()

	for _, tc := range []struct {
		name string
		send string
	}{
		{"plain HTTP on the TLS port", "GET / HTTP/1.1\r\nHost: x\r\n\r\n"},
		{"closed mid-handshake", "\x16\x03\x01\x00"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := metric(t, plain, m.PlainURL, "outpost_tls_handshake_errors_total")
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			io.WriteString(c, tc.send)
			c.(*net.TCPConn).CloseWrite()
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			io.Copy(io.Discard, c) // the relay answers with an alert or closes
			c.Close()
			deadline := time.Now().Add(5 * time.Second)
			for metric(t, plain, m.PlainURL, "outpost_tls_handshake_errors_total") != before+1 {
				if time.Now().After(deadline) {
					t.Fatalf("handshake errors: got %d, want %d", metric(t, plain, m.PlainURL, "outpost_tls_handshake_errors_total"), before+1)
				}
				time.Sleep(20 * time.Millisecond)
			}
			resp, err := agent.Get(m.TLSURL + wire.PathHealth)
			if err != nil {
				t.Fatalf("agent after a failed handshake (one stalled): %v", err)
			}
			resp.Body.Close()
			if got, want := resp.ProtoMajor, 2; got != want {
				t.Errorf("agent's protocol: got HTTP/%d, want HTTP/%d", got, want)
			}
		})
	}

	t.Run("close with a handshake in progress", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		start := time.Now()
		if err := m.Relay.Close(ctx); err != nil {
			t.Fatalf("close: %v", err)
		}
		if took := time.Since(start); took > 2*time.Second {
			t.Errorf("close took %s with a handshake in progress, want under 2s", took.Round(time.Millisecond))
		}
		stalled.SetReadDeadline(time.Now().Add(2 * time.Second))
		if _, err := stalled.Read(make([]byte, 1)); err == nil || isTimeout(err) {
			t.Errorf("stalled connection after close: read got %v, want it closed", err)
		}
	})
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}
