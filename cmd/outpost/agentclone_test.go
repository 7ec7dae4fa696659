package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestAgentRunCopiedDirectorySameMachine copies an agent directory on the
// same machine (same machine id) and runs both: the copy is flagged and
// backs off with one line saying how to re-enrol, the original goes on.
func TestAgentRunCopiedDirectorySameMachine(t *testing.T) {
	t.Parallel()
	m := arStartManager(t, "")
	base := t.TempDir()
	dir, copyDir := filepath.Join(base, "agent"), filepath.Join(base, "agent-copy")
	a := arStartAgent(t, m, dir)
	id := arAgentID(t, a)
	waitCond(t, a.proc, 15*time.Second, "the original checked in", func() bool { return !arGetAgent(t, m, id).LastCheckin.IsZero() })
	if err := os.CopyFS(copyDir, os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	c := arStartAgent(t, m, copyDir)
	waitCond(t, c.proc, 15*time.Second, "the copy told it is a clone", func() bool {
		return regexp.MustCompile(`reports this process as a clone .*agent=` + regexp.QuoteMeta(id) + ` `).MatchString(c.stderr.String())
	})
	waitCond(t, c.proc, 5*time.Second, "the duplicate flag", func() bool { return arGetAgent(t, m, id).Duplicate })
	seen := arGetAgent(t, m, id).LastCheckin
	waitCond(t, a.proc, 10*time.Second, "the original's next check-ins", func() bool { return arGetAgent(t, m, id).LastCheckin.After(seen.Add(time.Second)) })
	if n := strings.Count(c.stderr.String(), "reports this process as a clone"); n != 1 {
		t.Errorf("copy log: got %d clone lines, want 1 (it backs off for minutes):\n%s", n, c.stderr.String())
	}
	if s := a.stderr.String(); strings.Contains(s, "as a clone") {
		t.Errorf("original log: got a clone line, want none:\n%s", s)
	}
	c.stop()
	a.stop()
}
