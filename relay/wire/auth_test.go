package wire

import "testing"

func TestAgentAuthRoundTrip(t *testing.T) {
	cases := []struct{ name, id, secret string }{
		{"plain", "ag_0123456789abcdef", "as_secret"},
		{"secret with colon", "ag_1", "as_a:b"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := AgentAuth(c.id, c.secret)
			id, secret, ok := ParseAgentAuth(h)
			if !ok || id != c.id || secret != c.secret {
				t.Fatalf("ParseAgentAuth(%q) = %q, %q, %v; want %q, %q, true", h, id, secret, ok, c.id, c.secret)
			}
		})
	}
}

// The bytes old agents send must not change.
func TestAgentAuthBytes(t *testing.T) {
	if got, want := AgentAuth("ag_1", "as_x"), "Bearer ag_1:as_x"; got != want {
		t.Fatalf("AgentAuth = %q, want %q", got, want)
	}
	if got, want := Bearer("tok"), "Bearer tok"; got != want {
		t.Fatalf("Bearer = %q, want %q", got, want)
	}
}

func TestParseAgentAuthRefuses(t *testing.T) {
	cases := []struct{ name, header string }{
		{"empty", ""},
		{"no scheme", "ag_1:as_x"},
		{"lower-case scheme", "bearer ag_1:as_x"},
		{"basic scheme", "Basic ag_1:as_x"},
		{"no space", "Bearerag_1:as_x"},
		{"no colon", "Bearer ag_1"},
		{"empty id", "Bearer :as_x"},
		{"empty secret", "Bearer ag_1:"},
		{"only colon", "Bearer :"},
		{"scheme only", "Bearer "},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if id, secret, ok := ParseAgentAuth(c.header); ok {
				t.Fatalf("ParseAgentAuth(%q) = %q, %q, true; want refused", c.header, id, secret)
			}
		})
	}
}

func TestBearerIs(t *testing.T) {
	cases := []struct {
		name, header, want string
		ok                 bool
	}{
		{"match", Bearer("tok"), "tok", true},
		{"other token", Bearer("tok2"), "tok", false},
		{"empty want", Bearer(""), "", false},
		{"no scheme", "tok", "tok", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := BearerIs(c.header, c.want); got != c.ok {
				t.Fatalf("BearerIs(%q, %q) = %v, want %v", c.header, c.want, got, c.ok)
			}
		})
	}
}
