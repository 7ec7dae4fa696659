package main

// Usage errors and refusals: one line on stderr, the exit status, and the
// database left unchanged (the CLI harness is in main_test.go).

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"outpost/store"
)

func TestUsageErrors(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.createAccount("acme")
	c.ok("cluster", "create", "--name", "gz", "--address", "10.0.0.5")
	before := c.snapshot()
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no command", nil, "missing command"},
		{"unknown command", []string{"clustr", "list"}, `unknown command "clustr" (did you mean cluster?)`},
		{"unknown subcommand", []string{"cluster", "lst"}, `cluster: unknown command "lst"`},
		{"missing subcommand", []string{"cluster"}, "cluster: missing command"},
		{"unknown flag", []string{"cluster", "list", "--foo"}, "cluster list: unknown flag: --foo"},
		{"missing argument", []string{"cluster", "show"}, "cluster show: missing NAME"},
		{"too many arguments", []string{"cluster", "show", "a", "b"}, "too many arguments"},
		{"unexpected argument", []string{"cluster", "list", "x"}, `takes no arguments, got "x"`},
		{"missing required flag", []string{"cluster", "create", "--name", "x"}, `required flag(s) "address" not set`},
		{"flag without value", []string{"audit", "--limit"}, "flag needs an argument"},
		{"bad number", []string{"audit", "--limit", "abc"}, `invalid argument "abc" for "--limit" flag: want a number`},
		{"bad bandwidth", []string{"cluster", "policy", "gz", "--bandwidth", "2Mq"}, `bandwidth "2Mq": unknown unit "Mq"`},
		{"bad frequency", []string{"cluster", "policy", "gz", "--frequency", "fast"}, `frequency "fast"`},
		{"bad cache-max", []string{"cluster", "policy", "gz", "--mode", "cache", "--cache-max", "lots"}, `size "lots"`},
		{"bad mode", []string{"cluster", "policy", "gz", "--mode", "relay"}, `invalid --mode "relay": want forward or cache`},
		{"policy without changes", []string{"cluster", "policy", "gz"}, "cluster policy: nothing to change"},
		{"cache flag in forward mode", []string{"cluster", "policy", "gz", "--cache-dir", "x"}, "--cache-dir does not apply to forward mode"},
		{"bad expires", []string{"proxy", "deploy", "--cluster", "gz", "--manual", "--expires", "abc"}, `invalid --expires "abc"`},
		{"negative expires", []string{"installcmd", "create", "--cluster", "gz", "--expires", "-1h"}, "must be positive"},
		{"bad os", []string{"installcmd", "create", "--os", "plan9"}, `invalid --os "plan9": want linux or windows`},
		{"deploy without mode", []string{"proxy", "deploy", "--cluster", "gz"}, "exactly one of --asset HOST or --manual"},
		{"deploy with both modes", []string{"proxy", "deploy", "--cluster", "gz", "--manual", "--asset", "h"}, "exactly one of"},
		{"bad manager", []string{"proxy", "deploy", "--cluster", "gz", "--manual", "--manager", "mgr:8443"}, "invalid --manager"},
		{"bad proxy id", []string{"proxy", "upgrade", "1", "x"}, `invalid proxy id "x"`},
		{"bad installcmd id", []string{"installcmd", "revoke", "one"}, `invalid install command id "one"`},
		{"bind without hosts", []string{"agent", "bind", "--cluster", "gz"}, "give hosts as arguments or --file F"},
		{"bind hosts and file", []string{"agent", "bind", "--cluster", "gz", "h1", "--file", "f"}, "give hosts as arguments or --file F"},
		{"unbind without hosts", []string{"agent", "unbind", "--cluster", "gz"}, "give HOST... or --all"},
		{"list cluster and direct", []string{"agent", "list", "--cluster", "gz", "--direct"}, "not both"},
		{"bad status", []string{"agent", "list", "--status", "up"}, `invalid --status "up": want online, offline or uninstalled`},
		{"bad agent os", []string{"agent", "list", "--os", "macos"}, `invalid --os "macos": want linux or windows`},
		{"bad sort", []string{"agent", "list", "--sort", "size"}, `sort "size"`},
		{"bad limit", []string{"agent", "list", "--limit", "0"}, "invalid --limit 0"},
		{"settings without =", []string{"settings", "set", "bind_batch_gap"}, `"bind_batch_gap": want KEY=DURATION`},
		{"unknown setting", []string{"settings", "set", "speed=1s"}, `unknown key "speed"`},
		{"bad setting value", []string{"settings", "set", "bind_batch_gap=soon"}, `invalid bind_batch_gap "soon"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := *c
			c.t = t
			c.fails(2, tt.want, tt.args...)
		})
	}
	if after := c.snapshot(); after != before {
		t.Errorf("usage errors changed the database:\nbefore %s\nafter %s", before, after)
	}
}

func TestRefusalsLeaveDatabaseUnchanged(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	key := c.createAccount("acme")
	c.ok("cluster", "create", "--name", "gz", "--address", "10.0.0.5")
	c.ok("cluster", "create", "--name", "web", "--address", "web.example.com")
	c.ok("cluster", "policy", "web", "--mode", "cache", "--cache-max", "1GB")
	seedAgents(t, c, key, 3, "主机")
	c.ok("agent", "bind", "--cluster", "web", "主机-0001")
	hostFile := filepath.Join(t.TempDir(), "hosts.txt")
	os.WriteFile(hostFile, []byte("主机-0000\n# comment\nno-such-host\n主机-0002\n"), 0o600)
	many := []string{"agent", "bind", "--cluster", "gz"}
	for i := range store.BindBatchMax + 1 {
		many = append(many, fmt.Sprintf("h%d", i))
	}

	tests := []struct {
		name string
		code int
		want string
		args []string
	}{
		{"unknown cluster", 1, `cluster "nope" not found`, []string{"cluster", "show", "nope"}},
		{"policy of unknown cluster", 1, `cluster "nope" not found`, []string{"cluster", "policy", "nope", "--bandwidth", "1Mbit"}},
		{"deploy into unknown cluster", 1, `cluster "nope" not found`, []string{"proxy", "deploy", "--cluster", "nope", "--manual"}},
		{"delete unknown cluster", 1, `cluster "nope" not found`, []string{"cluster", "delete", "nope"}},
		{"malformed address", 1, `address "10.0.0.256" is not a valid IP address or domain name`, []string{"cluster", "create", "--name", "bad", "--address", "10.0.0.256"}},
		{"duplicate cluster", 1, `cluster "gz" already exists`, []string{"cluster", "create", "--name", "gz", "--address", "10.0.0.6"}},
		{"unknown account", 1, `account "other" not found`, []string{"cluster", "create", "--name", "x", "--address", "10.0.0.7", "--account", "other"}},
		{"cache over 10 GB", 1, "cache-max 20 GB exceeds the maximum of 10 GB", []string{"cluster", "policy", "web", "--cache-max", "20GB"}},
		{"cache under minimum", 1, "below the minimum", []string{"cluster", "policy", "web", "--cache-max", "1KB"}},
		{"bad upstream", 1, `upstream "ftp://x"`, []string{"cluster", "policy", "gz", "--upstream", "ftp://x"}},
		{"bad bandwidth", 2, `bandwidth "2Mq"`, []string{"cluster", "policy", "gz", "--bandwidth", "2Mq"}},
		{"bad expires", 2, `invalid --expires "abc"`, []string{"installcmd", "create", "--cluster", "gz", "--expires", "abc"}},
		{"cluster with agents", 1, `cluster "web" still has 1 bound agent(s) (unbind them: outpost agent unbind --cluster web --all)`, []string{"cluster", "delete", "web"}},
		{"unbind unbound host", 1, `host "主机-0002" is not bound to cluster "web"`, []string{"agent", "unbind", "--cluster", "web", "主机-0001", "主机-0002"}},
		{"bind unknown host", 1, `host "no-such-host" not found`, []string{"agent", "bind", "--cluster", "gz", "主机-0000", "no-such-host"}},
		{"bind file with unknown host", 1, "hosts.txt line 3: host \"no-such-host\" not found (1 of 3 hosts cannot be bound); nothing was bound", []string{"agent", "bind", "--cluster", "gz", "--file", hostFile}},
		{"bind missing file", 1, "no such file", []string{"agent", "bind", "--cluster", "gz", "--file", filepath.Join(t.TempDir(), "none")}},
		{"bind over 500 hosts", 1, "501 hosts in one batch: at most 500 per batch", many},
		{"uninstall unknown host", 1, `host "nope" not found`, []string{"agent", "uninstall", "主机-0000", "nope"}},
		{"show unknown agent", 1, `host "nope" not found`, []string{"agent", "show", "nope"}},
		{"quick deploy onto unknown asset", 1, `host "nope" not found`, []string{"proxy", "deploy", "--cluster", "web", "--asset", "nope"}},
		{"upgrade without release", 1, "proxy server 1 not found", []string{"proxy", "upgrade", "1"}},
		{"revoke unknown install command", 1, "install command 5 not found", []string{"installcmd", "revoke", "5"}},
		{"zero setting", 1, "setting poll_timeout must be positive", []string{"settings", "set", "poll_timeout=0s"}},
	}
	before := c.snapshot()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := *c
			c.t = t
			c.fails(tt.code, tt.want, tt.args...)
			if after := c.snapshot(); after != before {
				t.Errorf("the database changed:\nbefore %s\nafter %s", before, after)
			}
		})
	}
}

func TestErrorLineIsOneLine(t *testing.T) {
	err := errors.New("unknown command \"clustr\" for \"outpost\"\n\nDid you mean this?\n\tcluster\n")
	if got, want := errorLine(nil, err), `unknown command "clustr" for "outpost" (did you mean cluster?)`; got != want {
		t.Errorf("errorLine = %q, want %q", got, want)
	}
	if got := errorLine(nil, errors.New("a\nb\x1b[31m")); got != "a; b?[31m" {
		t.Errorf("errorLine = %q", got)
	}
}
