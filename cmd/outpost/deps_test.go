package main

import (
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// depRule is one dependency rule of DESIGN.md ("Packages"): a package under
// root may reach (directly or through others) only the project packages
// that allow accepts.
type depRule struct {
	root   string // import path; its subpackages are held to the rule too
	rule   string // as DESIGN.md says it, for the failure message
	allows func(dep string) bool
}

var depRules = []depRule{
	{"outpost/store", "store imports nothing of the project except relay/wire",
		func(dep string) bool { return under(dep, "outpost/store") || dep == "outpost/relay/wire" }},
	{"outpost/agentsim", "agentsim may import only relay/wire",
		func(dep string) bool { return under(dep, "outpost/agentsim") || dep == "outpost/relay/wire" }},
	// tui reaches relay/wire through store's domain types; that is the
	// wire vocabulary, not the server.
	{"outpost/tui", "tui never imports relay",
		func(dep string) bool { return !under(dep, "outpost/relay") || dep == "outpost/relay/wire" }},
	{"outpost", "nothing imports cmd",
		func(dep string) bool { return !under(dep, "outpost/cmd") }},
}

func under(path, root string) bool { return path == root || strings.HasPrefix(path, root+"/") }

// TestDependencyRules reads the import graph with `go list -deps` and
// checks every project package against DESIGN.md's rules, naming the
// offending import and the chain that reaches it.
func TestDependencyRules(t *testing.T) {
	imports := importGraph(t)
	if _, ok := imports["outpost/store"]; !ok {
		t.Fatalf("go list found no outpost/store among %d packages", len(imports))
	}
	for _, r := range depRules {
		t.Run(r.root, func(t *testing.T) {
			for pkg := range imports {
				if !under(pkg, r.root) || (r.root == "outpost" && under(pkg, "outpost/cmd")) {
					continue
				}
				for _, bad := range forbidden(imports, pkg, r.allows) {
					t.Errorf("%s imports %s (via %s): %s", pkg, bad[len(bad)-1], strings.Join(bad, " -> "), r.rule)
				}
			}
		})
	}
}

// importGraph maps each project package (non-test) to its project imports.
func importGraph(t *testing.T) map[string][]string {
	t.Helper()
	goBin, err := exec.LookPath("go") // go test puts its own first on PATH
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(goBin, "list", "-deps", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", "./...")
	cmd.Dir = filepath.Join("..", "..")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	g := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || !under(f[0], "outpost") {
			continue
		}
		g[f[0]] = slices.DeleteFunc(f[1:], func(p string) bool { return !under(p, "outpost") })
	}
	return g
}

// forbidden returns, for each project import of pkg that allows refuses,
// the shortest chain from pkg to it; the search does not go past a
// refused package (its own imports are its rule's business).
func forbidden(g map[string][]string, pkg string, allows func(string) bool) [][]string {
	var bad [][]string
	prev := map[string]string{pkg: ""}
	queue := []string{pkg}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, dep := range g[p] {
			if _, seen := prev[dep]; seen {
				continue
			}
			prev[dep] = p
			if !allows(dep) {
				var chain []string
				for q := dep; q != ""; q = prev[q] {
					chain = append([]string{q}, chain...)
				}
				bad = append(bad, chain)
				continue
			}
			queue = append(queue, dep)
		}
	}
	return bad
}

// TestDependencyRulesCatch runs the rules on made-up graphs: each breach
// is found, with the chain that reaches it.
func TestDependencyRulesCatch(t *testing.T) {
	tests := []struct {
		name string
		g    map[string][]string
		pkg  string
		root string
		want string // the chain, "" when nothing is refused
	}{
		{"agentsim through a subpackage", map[string][]string{
			"outpost/agentsim":        {"outpost/agentsim/doctor"},
			"outpost/agentsim/doctor": {"outpost/relay/wire", "outpost/store"},
		}, "outpost/agentsim", "outpost/agentsim", "outpost/agentsim -> outpost/agentsim/doctor -> outpost/store"},
		{"agentsim with wire only", map[string][]string{"outpost/agentsim": {"outpost/relay/wire"}}, "outpost/agentsim", "outpost/agentsim", ""},
		{"store importing relay", map[string][]string{"outpost/store/ops": {"outpost/relay"}}, "outpost/store/ops", "outpost/store", "outpost/store/ops -> outpost/relay"},
		{"tui importing the relay server", map[string][]string{"outpost/tui": {"outpost/store", "outpost/relay/spool"}, "outpost/store": {"outpost/relay/wire"}},
			"outpost/tui", "outpost/tui", "outpost/tui -> outpost/relay/spool"},
		{"anything importing cmd", map[string][]string{"outpost/relay": {"outpost/cmd/outpost"}}, "outpost/relay", "outpost", "outpost/relay -> outpost/cmd/outpost"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			i := slices.IndexFunc(depRules, func(r depRule) bool { return r.root == tt.root })
			var got []string
			for _, chain := range forbidden(tt.g, tt.pkg, depRules[i].allows) {
				got = append(got, strings.Join(chain, " -> "))
			}
			if want := []string{tt.want}; (tt.want == "" && len(got) != 0) || (tt.want != "" && !slices.Equal(got, want)) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}
