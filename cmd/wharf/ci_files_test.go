package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// wharfCall matches a wharf command line in a CI script, up to the end
// of the line or of a command substitution.
var wharfCall = regexp.MustCompile(`\bwharf ((?:[a-z][a-z-]* ?)+)([^\n)|;&]*)`)

// TestExampleCIDefinitionsUseRealCommands parses the example's GitHub
// Actions and Azure Pipelines definitions and checks that every wharf
// command they run exists and that every long flag it passes is one the
// command accepts, so the CI files cannot drift from the CLI.
func TestExampleCIDefinitionsUseRealCommands(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(repoRoot(t), "examples", "*", "mlops", "*", "*.yml"))
	var ci []string
	for _, f := range files {
		if d := filepath.Base(filepath.Dir(f)); d == "github-actions" || d == "devops-pipelines" {
			ci = append(ci, f)
		}
	}
	if len(ci) < 6 {
		t.Fatalf("found %d CI definitions, want the three workflows for each of GitHub Actions and Azure Pipelines", len(ci))
	}
	root := newApp(strings.NewReader(""), os.Stdout, os.Stderr).rootCommand()
	calls := 0
	for _, f := range ci {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var doc map[string]any
		if err := yaml.Unmarshal(b, &doc); err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		for _, m := range wharfCall.FindAllStringSubmatch(string(b), -1) {
			words := strings.Fields(m[1])
			cmd, rest, err := root.Find(words)
			if err != nil || cmd == root {
				t.Errorf("%s: `wharf %s` is not a command", filepath.Base(f), m[1])
				continue
			}
			if len(rest) > 0 {
				t.Errorf("%s: `wharf %s`: %q is not a subcommand of %s", filepath.Base(f), m[1], rest[0], cmd.CommandPath())
			}
			for _, tok := range strings.Fields(m[2]) {
				if !strings.HasPrefix(tok, "--") {
					continue
				}
				name, _, _ := strings.Cut(strings.Trim(strings.TrimPrefix(tok, "--"), "`\"'"), "=")
				if cmd.Flags().Lookup(name) == nil && cmd.InheritedFlags().Lookup(name) == nil {
					t.Errorf("%s: `%s` has no flag --%s", filepath.Base(f), cmd.CommandPath(), name)
				}
			}
			calls++
		}
	}
	if calls < 30 {
		t.Errorf("checked only %d wharf calls", calls)
	}
}
