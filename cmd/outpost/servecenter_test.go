package main

// `outpost center` and `outpost agentsim` run as an operator runs them
// (helpers and the relay command in serve_test.go).

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"outpost/relay/relaytest"
	"outpost/relay/wire"
)

// TestCenterCommand runs the standalone collector: ingest, duplicates,
// per-agent stats, clean stop, NDJSON on disk.
func TestCenterCommand(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	out := t.TempDir()
	p := svStart(t, c, "center", "--listen", "127.0.0.1:0", "--out", out)
	info := svRunFile(t, p, c.data, "center")
	if len(info.URLs) != 1 || !strings.HasPrefix(info.URLs[0], "http://127.0.0.1:") || !strings.HasSuffix(info.URLs[0], wire.PathIngest) {
		t.Fatalf("center.json URLs: got %q, want one http://127.0.0.1:PORT%s", info.URLs, wire.PathIngest)
	}
	ingest := info.URLs[0]
	base := strings.TrimSuffix(ingest, wire.PathIngest)

	now := time.Now().UTC()
	batch := wire.IngestBatch{Relay: "test-relay", Records: []wire.Record{
		{Agent: "agent-a", Seq: 1, Time: now, Type: "process_start", Data: json.RawMessage(`{"pid":1}`)},
		{Agent: "agent-a", Seq: 2, Time: now, Type: "process_start", Data: json.RawMessage(`{"pid":2}`)},
	}}
	body, err := json.Marshal(batch)
	if err != nil {
		t.Fatal(err)
	}
	tokB, err := os.ReadFile(filepath.Join(c.data, "center.token"))
	if err != nil {
		t.Fatalf("ingest token: %v", err)
	}
	token := strings.TrimSpace(string(tokB))
	client := &http.Client{Timeout: 10 * time.Second}
	for _, tc := range []struct {
		name   string
		auth   string
		status int
		want   wire.IngestAck
	}{
		{"no token", "", http.StatusUnauthorized, wire.IngestAck{}},
		{"wrong token", "Bearer ct_wrong", http.StatusUnauthorized, wire.IngestAck{}},
		{"first delivery", "Bearer " + token, http.StatusOK, wire.IngestAck{Accepted: 2}},
		{"same batch again", "Bearer " + token, http.StatusOK, wire.IngestAck{Duplicates: 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, ingest, bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status {
				t.Fatalf("POST %s: got %s %s, want %d", wire.PathIngest, resp.Status, b, tc.status)
			}
			if tc.status != http.StatusOK {
				return
			}
			var got wire.IngestAck
			if err := json.Unmarshal(b, &got); err != nil {
				t.Fatalf("ingest ack: %v: %q", err, b)
			}
			if got != tc.want {
				t.Errorf("ingest ack: got %+v, want %+v", got, tc.want)
			}
		})
	}

	if code, sb := svGet(t, client, base+wire.PathCollStats); code != http.StatusUnauthorized {
		t.Errorf("GET %s without a token: got %d %q, want 401", wire.PathCollStats, code, sb)
	}
	client.Transport = bearer{token}
	code, sb := svGet(t, client, base+wire.PathCollStats)
	var st wire.CollectorStats
	if err := json.Unmarshal([]byte(sb), &st); err != nil || code != http.StatusOK {
		t.Fatalf("GET %s: got %d %q (%v), want 200 with stats", wire.PathCollStats, code, sb, err)
	}
	if got, want := st.Received["agent-a"], uint64(2); got != want {
		t.Errorf("stats received[agent-a]: got %d, want %d", got, want)
	}
	if got, want := st.Duplicates, uint64(2); got != want {
		t.Errorf("stats duplicates: got %d, want %d", got, want)
	}

	p.signal(syscall.SIGTERM)
	p.wantExit0(5 * time.Second)
	svRunFileGone(t, c.data, "center")

	files, _ := filepath.Glob(filepath.Join(out, "*.ndjson"))
	if len(files) == 0 {
		t.Fatalf("no NDJSON file under --out after the stop")
	}
	var lines int
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			var r wire.Record
			if l == "" {
				continue
			}
			if err := json.Unmarshal([]byte(l), &r); err != nil || r.Agent != "agent-a" {
				t.Errorf("%s: line %q is not a record of agent-a (%v)", filepath.Base(f), l, err)
			}
			lines++
		}
	}
	if got, want := lines, 2; got != want {
		t.Errorf("records on disk: got %d, want %d (duplicates are not written)", got, want)
	}
}

// svSimReport is the part of `agentsim --json` the tests read.
type svSimReport struct {
	Agents        int   `json:"agents"`
	Enrolled      int64 `json:"enrolled"`
	EnrolFailures int64 `json:"enrol_failures"`
	EventsAcked   int64 `json:"events_acked"`
	Received      int64 `json:"received_by_collector"`
	Lost          int64 `json:"lost"`
}

// TestAgentsimCommand runs simulated agents against an in-process
// management host.
func TestAgentsimCommand(t *testing.T) {
	t.Parallel()
	m := relaytest.Start(t, relaytest.Options{})
	_, key, err := m.DB.CreateAccount(context.Background(), "acme")
	if err != nil {
		t.Fatal(err)
	}
	common := []string{"agentsim", "--proxy", m.TLSURL, "--ca-sha256", m.Pin(), "--collector", m.TLSURL,
		"--collector-token-file", filepath.Join(m.Dir, "stats.token")}

	t.Run("fleet", func(t *testing.T) {
		t.Parallel()
		c := newCLI(t)
		var rep svSimReport
		c.json(&rep, append(common, "--key", key, "--agents", "20", "--events-per-sec", "5", "--duration", "3s",
			"--drain-timeout", "10s")...)
		t.Logf("report: %+v", rep)
		if rep.Agents != 20 || rep.Enrolled != 20 || rep.EnrolFailures != 0 {
			t.Errorf("agents/enrolled/enrol_failures: got %d/%d/%d, want 20/20/0", rep.Agents, rep.Enrolled, rep.EnrolFailures)
		}
		if rep.EventsAcked <= 0 {
			t.Errorf("events_acked: got %d, want > 0", rep.EventsAcked)
		}
		if rep.Lost != 0 {
			t.Errorf("lost: got %d, want 0", rep.Lost)
		}
		if rep.Received != rep.EventsAcked {
			t.Errorf("received_by_collector: got %d, want events_acked %d", rep.Received, rep.EventsAcked)
		}
	})

	// A refused key ends each agent at its first enrolment; the run still
	// lasts --duration and reports the failures. It exits 0 today (see
	// RunSim: only lost events fail the command).
	t.Run("bad key", func(t *testing.T) {
		t.Parallel()
		// Every agent is refused: the run ends at once (not after its
		// 20 s), exit 1 with the relay's reason, the report still on stdout.
		c := newCLI(t)
		start := time.Now()
		r := c.run(append(common, "--json", "--key", "vk_"+strings.Repeat("0", 48), "--agents", "5", "--duration", "20s")...)
		if took := time.Since(start); took > 10*time.Second {
			t.Errorf("took %s, want the run to end as soon as every agent gave up", took)
		}
		if got, want := r.code, 1; got != want {
			t.Fatalf("exit: got %d, want %d\n%s", got, want, r)
		}
		if lines := strings.Split(strings.TrimSpace(r.stderr), "\n"); len(lines) != 1 || !strings.Contains(lines[0], "no agent could enrol: 401 install key not recognised") {
			t.Errorf("stderr: got %q, want one line naming the refusal", r.stderr)
		}
		var rep svSimReport
		if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
			t.Fatalf("report: %v\n%s", err, r.stdout)
		}
		if rep.Enrolled != 0 || rep.EnrolFailures < 5 || rep.EventsAcked != 0 || rep.Lost != 0 {
			t.Errorf("report: got enrolled %d, failures %d, acked %d, lost %d; want 0, >=5, 0, 0", rep.Enrolled, rep.EnrolFailures, rep.EventsAcked, rep.Lost)
		}
	})

	t.Run("usage", func(t *testing.T) {
		t.Parallel()
		for _, tc := range []struct {
			name string
			args []string
			want string
		}{
			{"no agents", []string{"agentsim", "--proxy", m.TLSURL, "--key", key, "--agents", "0"}, "agentsim: --agents must be positive"},
			{"no key", []string{"agentsim", "--proxy", m.TLSURL, "--agents", "1"}, "agentsim: --key KEY is required"},
			{"no proxy", []string{"agentsim", "--key", key, "--agents", "1"}, "agentsim: --proxy URL[,URL] is required"},
			{"churn out of range", []string{"agentsim", "--proxy", m.TLSURL, "--key", key, "--churn", "2"}, "agentsim: --churn must be between 0 and 1"},
			{"malformed duration", []string{"agentsim", "--proxy", m.TLSURL, "--key", key, "--duration", "soon"}, "--duration"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				newCLI(t).fails(2, tc.want, tc.args...)
			})
		}
	})
}

// TestRelayForwardsToCenterWithItsToken: a management host whose upstream
// is outpost center delivers with --upstream-token-file (center refuses
// ingest without its token); agentsim's loss check reads center's stats
// with center's token.
func TestRelayForwardsToCenterWithItsToken(t *testing.T) {
	t.Parallel()
	cc := newCLI(t)
	center := svStart(t, cc, "center", "--listen", "127.0.0.1:0", "--out", t.TempDir())
	ingest := svRunFile(t, center, cc.data, "center").URLs[0]
	tokenFile := filepath.Join(cc.data, "center.token")

	c := newCLI(t)
	key := c.createAccount("acme")
	p := svStart(t, c, "relay", "--listen", "https://127.0.0.1:0", "--upstream", ingest, "--upstream-token-file", tokenFile)
	info := svRunFile(t, p, c.data, "relay")
	var rep svSimReport
	c.json(&rep, "agentsim", "--proxy", info.URLs[0], "--ca-sha256", info.CASHA256, "--key", key, "--agents", "3",
		"--events-per-sec", "5", "--duration", "2s", "--wait", "1s", "--drain-timeout", "20s",
		"--collector", strings.TrimSuffix(ingest, wire.PathIngest), "--collector-token-file", tokenFile)
	if rep.EventsAcked == 0 || rep.Received != rep.EventsAcked || rep.Lost != 0 {
		t.Errorf("got %d acknowledged, %d received by center, %d lost; want > 0, all, 0", rep.EventsAcked, rep.Received, rep.Lost)
	}
}
