package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// readmeSection returns the ```sh and ```text fenced blocks under the
// "## Command-line walkthrough" heading of the README.
func readmeSection(t *testing.T) (script, transcript []string) {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	in, fence := false, ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case fence != "":
			if line == "```" {
				fence = ""
			} else if fence == "sh" {
				script = append(script, line)
			} else if fence == "text" {
				transcript = append(transcript, line)
			}
		case strings.HasPrefix(line, "## "):
			in = line == "## Command-line walkthrough"
		case in && strings.HasPrefix(line, "```"):
			fence = strings.TrimPrefix(line, "```")
			if fence == "" {
				t.Fatalf("README walkthrough: a fenced block without a language")
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(script) == 0 || len(transcript) == 0 {
		t.Fatal("README has no walkthrough blocks")
	}
	return script, transcript
}

// volatile are the parts of the output that differ on every run.
var volatile = regexp.MustCompile(`\b(vk|ik|jt)_[0-9a-f]+|\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(\.\d+)?Z?`)

func normalize(line string) string {
	return strings.TrimRight(volatile.ReplaceAllStringFunc(line, func(s string) string {
		if i := strings.IndexByte(s, '_'); i == 2 {
			return s[:3] + "SECRET"
		}
		return "TIME"
	}), " ")
}

// TestReadmeWalkthrough runs the README's walkthrough with bash against the
// built binary on a fresh data directory, and checks that every output line
// the README shows appears, in order.
func TestReadmeWalkthrough(t *testing.T) {
	t.Parallel()
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("bash not found")
	}
	script, transcript := readmeSection(t)
	c := newCLI(t)
	tmp := t.TempDir()
	cmd := exec.Command(bash, "-c", "set -e\n"+strings.Join(script, "\n"))
	cmd.Env = append(c.env, "PATH="+filepath.Dir(outpostBin)+string(os.PathListSeparator)+os.Getenv("PATH"), "TMPDIR="+tmp)
	for i, kv := range cmd.Env {
		if strings.HasPrefix(kv, "USER=") {
			cmd.Env[i] = "USER=alice" // the actor shown in the README
		}
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("README walkthrough failed: %v\n%s", err, out)
	}
	got := strings.Split(string(out), "\n")
	for i := range got {
		got[i] = normalize(got[i])
	}
	pos := 0
	for _, want := range transcript {
		if strings.TrimSpace(want) == "" {
			continue
		}
		w := normalize(want)
		for pos < len(got) && got[pos] != w {
			pos++
		}
		if pos == len(got) {
			t.Fatalf("README shows %q but the walkthrough does not print it (in this order); output:\n%s", want, out)
		}
		pos++
	}
	if entries, _ := os.ReadDir(tmp); len(entries) == 0 {
		t.Errorf("the walkthrough did not use a fresh data directory under TMPDIR")
	}
}
