package agentsim_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"outpost/agentsim"
	"outpost/relay/logs/logstest"
	"outpost/relay/relaytest"
	"outpost/relay/wire"
	"outpost/store"
)

// cloneAgent is one agent process on an identity directory, all on the
// same machine (same host facts, same machine fingerprint).
type cloneAgent struct {
	ag   *agentsim.Agent
	log  *logstest.Lines
	done chan error
	stop context.CancelFunc
}

func startCloneAgent(t *testing.T, m *relaytest.Manager, key, dir string) *cloneAgent {
	t.Helper()
	ids, err := agentsim.OpenDiskIdentity(dir)
	if err != nil {
		t.Fatal(err)
	}
	h, inv := agentsim.FakeHost(7, 1, "test")
	lg, l := logstest.Record(t)
	ag := &agentsim.Agent{
		Client:         agentsim.NewClient(agentsim.ClientOptions{Proxies: []string{m.TLSURL}, CASHA256: m.Pin(), Timeout: 5 * time.Second}),
		Key:            key,
		Host:           h,
		Inventory:      func() wire.Inventory { return inv },
		Identity:       ids,
		Buffer:         &agentsim.MemBuffer{},
		Wait:           2 * time.Second,
		InventoryEvery: time.Hour,
		Stats:          &agentsim.Stats{},
		CloneBackoff:   time.Minute, // longer than the test: a clone must not come back within it
		Log:            lg,
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &cloneAgent{ag: ag, log: l, done: make(chan error, 1), stop: cancel}
	go func() { c.done <- ag.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-c.done:
		case <-time.After(10 * time.Second):
			t.Errorf("agent on %s did not stop", dir)
		}
	})
	return c
}

// copyDir copies the agent directory as cp -r would: same bytes, new inode.
func copyDir(t *testing.T, from, to string) {
	t.Helper()
	if err := os.MkdirAll(to, 0o700); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func cloneWaitUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func identityOf(t *testing.T, dir string) agentsim.Identity {
	t.Helper()
	id, ok, err := (&agentsim.DiskIdentity{Dir: dir}).Load()
	if err != nil || !ok {
		t.Fatalf("identity in %s: ok=%v err=%v", dir, ok, err)
	}
	return id
}

// legacyIdentity enrols as an agent from before identities recorded where
// they live: the machine's fingerprint, no location in identity.json.
func legacyIdentity(t *testing.T, m *relaytest.Manager, key, dir string) string {
	t.Helper()
	h, inv := agentsim.FakeHost(7, 1, "test")
	c := agentsim.NewClient(agentsim.ClientOptions{Proxies: []string{m.TLSURL}, CASHA256: m.Pin(), Timeout: 5 * time.Second})
	resp, err := c.Enrol(context.Background(), key, h, &inv)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := agentsim.OpenDiskIdentity(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := ids.Save(agentsim.Identity{AgentID: resp.AgentID, Secret: resp.Secret, Proxies: []string{m.TLSURL}}); err != nil {
		t.Fatal(err)
	}
	return resp.AgentID
}

// TestCopiedAgentDirectory runs two agents of one identity on one machine:
// the copy is found (by its fingerprint, or by two live connections when
// the copy predates fingerprints that cover the directory), flagged, told
// it is a clone, and backs off, logging once how to re-enrol; the original
// goes on checking in. A legitimately moved directory and an upgraded
// agent are not flagged.
func TestCopiedAgentDirectory(t *testing.T) {
	t.Parallel()
	m := relaytest.Start(t, relaytest.Options{})
	ctx := context.Background()
	_, key, err := m.DB.CreateAccount(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	flagged := func(id string) bool {
		a, err := m.DB.GetAgent(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return a.Duplicate
	}

	for _, tc := range []struct {
		name   string
		legacy bool // identity written before locations were recorded, copied before the upgrade
	}{
		{"copy of a current directory", false},
		{"copy made before the upgrade", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := t.TempDir()
			origDir, copyDirPath := filepath.Join(base, "agent"), filepath.Join(base, "agent-copy")
			var orig *cloneAgent
			var id string
			if tc.legacy {
				id = legacyIdentity(t, m, key, origDir)
				copyDir(t, origDir, copyDirPath)
				orig = startCloneAgent(t, m, key, origDir)
			} else {
				orig = startCloneAgent(t, m, key, origDir)
				cloneWaitUntil(t, 20*time.Second, "the original's enrolment", func() bool {
					_, ok, _ := (&agentsim.DiskIdentity{Dir: origDir}).Load()
					return ok
				})
				id = identityOf(t, origDir).AgentID
				copyDir(t, origDir, copyDirPath)
			}
			cloneWaitUntil(t, 20*time.Second, "the original's held check-in", func() bool { return orig.ag.Stats.Held.Load() == 1 && orig.ag.Stats.Checkins.Load() > 0 })

			cp := startCloneAgent(t, m, key, copyDirPath)
			cloneWaitUntil(t, 20*time.Second, "the copy told it is a clone", func() bool {
				return cp.log.Count("reports this process as a clone") > 0
			})
			cloneWaitUntil(t, 15*time.Second, "the duplicate flag in the store", func() bool { return flagged(id) })
			// From now on: the copy stays quiet, the original goes on.
			copyCheckins, origCheckins := cp.ag.Stats.Checkins.Load(), orig.ag.Stats.Checkins.Load()
			cloneWaitUntil(t, 20*time.Second, "two more check-ins of the original", func() bool {
				return orig.ag.Stats.Checkins.Load() >= origCheckins+2
			})
			if got := cp.ag.Stats.Checkins.Load(); got != copyCheckins {
				t.Errorf("copy check-ins during its back-off: got %d more, want none", got-copyCheckins)
			}
			if got, want := cp.log.Count("reports this process as a clone"), 1; got != want {
				t.Errorf("clone log lines: got %d, want %d (once per back-off)", got, want)
			}
			if got := cp.log.Count(store.DuplicateFix); got != 1 {
				t.Errorf("copy log: got %d lines saying how to re-enrol, want 1:\n%s", got, strings.Join(cp.log.All(), "\n"))
			}
			if got := orig.log.Count("as a clone"); got != 0 {
				t.Errorf("original log: got %d clone lines, want none", got)
			}
			if got := orig.ag.Stats.CheckinErrors.Load(); got != 0 {
				t.Errorf("original check-in errors: got %d, want 0", got)
			}
		})
	}

	// Not clones: an agent from before the upgrade on its own, and an
	// agent whose directory was moved (mv keeps the inode).
	t.Run("upgraded and moved agents are not flagged", func(t *testing.T) {
		base := t.TempDir()
		dir := filepath.Join(base, "agent")
		id := legacyIdentity(t, m, key, dir)
		a := startCloneAgent(t, m, key, dir)
		cloneWaitUntil(t, 20*time.Second, "the upgraded agent's check-in", func() bool { return a.ag.Stats.Checkins.Load() > 0 })
		a.stop()
		<-a.done
		a.done <- nil // for the cleanup
		if got := identityOf(t, dir); got.DirIno == 0 || got.Fingerprint == "" {
			t.Errorf("upgraded identity: got %+v, want the directory and fingerprint recorded", got)
		}
		moved := filepath.Join(base, "moved")
		if err := os.Rename(dir, moved); err != nil {
			t.Fatal(err)
		}
		b := startCloneAgent(t, m, key, moved)
		cloneWaitUntil(t, 20*time.Second, "the moved agent's check-ins", func() bool { return b.ag.Stats.Checkins.Load() >= 2 })
		if got := identityOf(t, moved); got.AgentID != id {
			t.Errorf("moved agent id: got %s, want %s", got.AgentID, id)
		}
		if flagged(id) {
			t.Errorf("agent %s: got flagged as a duplicate, want not (upgraded, then moved)", id)
		}
		if got := b.log.Count("as a clone"); got != 0 {
			t.Errorf("moved agent: got %d clone lines, want none", got)
		}
	})
}
