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

// ciDefinitions are the CI files that run wharf: the example's GitHub
// Actions, Azure Pipelines (with their templates) and GitLab CI
// definitions, and the repository's reusable GitHub Action.
func ciDefinitions(t *testing.T) map[string][]string {
	t.Helper()
	root := repoRoot(t)
	glob := func(parts ...string) []string {
		files, err := filepath.Glob(filepath.Join(append([]string{root}, parts...)...))
		if err != nil {
			t.Fatal(err)
		}
		return files
	}
	return map[string][]string{
		"github-actions":   glob("examples", "*", "mlops", "github-actions", "*.yml"),
		"devops-pipelines": append(glob("examples", "*", "mlops", "devops-pipelines", "*.yml"), glob("examples", "*", "mlops", "devops-pipelines", "templates", "*.yml")...),
		"gitlab-ci":        glob("examples", "*", "mlops", "gitlab-ci", ".gitlab-ci.yml"),
		"action":           glob(".github", "actions", "*", "action.yml"),
	}
}

// TestExampleCIDefinitionsUseRealCommands parses the CI definitions and
// checks that every wharf command they run exists and that every long flag
// it passes is one the command accepts, so the CI files cannot drift from
// the CLI.
func TestExampleCIDefinitionsUseRealCommands(t *testing.T) {
	defs := ciDefinitions(t)
	for kind, want := range map[string]int{"github-actions": 3, "devops-pipelines": 4, "gitlab-ci": 1, "action": 1} {
		if len(defs[kind]) < want {
			t.Fatalf("found %d %s definitions, want %d", len(defs[kind]), kind, want)
		}
	}
	var ci []string
	for _, files := range defs {
		ci = append(ci, files...)
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
				name, _, _ := strings.Cut(strings.Trim(strings.TrimPrefix(tok, "--"), "`\"'.,;:"), "=")
				if cmd.Flags().Lookup(name) == nil && cmd.InheritedFlags().Lookup(name) == nil {
					t.Errorf("%s: `%s` has no flag --%s", filepath.Base(f), cmd.CommandPath(), name)
				}
			}
			calls++
		}
	}
	if calls < 50 {
		t.Errorf("checked only %d wharf calls", calls)
	}
}

// TestCIDefinitionsSignInWithFederation checks that every CI definition
// installs a release (never builds from source) and signs in with
// workload identity federation by default, with the secret variant
// documented beside it.
func TestCIDefinitionsSignInWithFederation(t *testing.T) {
	defs := ciDefinitions(t)
	for _, files := range defs {
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			for _, bad := range []string{"go build", "setup-go", "go install"} {
				if strings.Contains(string(b), bad) {
					t.Errorf("%s builds wharf from source (%s): install a release", f, bad)
				}
			}
			if !strings.Contains(string(b), "WHARF_CREDENTIALS") && !strings.Contains(string(b), "WHARF_CLIENT_SECRET") {
				t.Errorf("%s does not document the secret variant", f)
			}
		}
	}
	for _, f := range defs["github-actions"] {
		var wf struct {
			Permissions map[string]string
			Jobs        map[string]struct {
				Steps []struct {
					Uses string
					With map[string]string
				}
			}
		}
		readYAML(t, f, &wf)
		if wf.Permissions["id-token"] != "write" {
			t.Errorf("%s: permissions: id-token: %q, want write", f, wf.Permissions["id-token"])
		}
		for name, job := range wf.Jobs {
			signed := false
			for _, s := range job.Steps {
				ref, ok := strings.CutPrefix(s.Uses, "wharfml/wharf/.github/actions/wharf-login@v")
				if !ok {
					continue
				}
				signed = true
				if s.With["version"] != ref || s.With["client-id"] == "" || s.With["tenant-id"] == "" || s.With["credentials"] != "" {
					t.Errorf("%s job %s: wharf-login@v%s with %v: want version %s and federation (client-id, tenant-id)", f, name, ref, s.With, ref)
				}
			}
			if !signed {
				t.Errorf("%s job %s does not use the wharf-login action", f, name)
			}
		}
	}
	for _, f := range defs["devops-pipelines"] {
		if filepath.Base(filepath.Dir(f)) == "templates" {
			continue
		}
		b, _ := os.ReadFile(f)
		if !regexp.MustCompile(`- template: templates/wharf-login\.yml\n\s+parameters:\n(?:\s+.*\n)*?\s+serviceConnection: \S+`).Match(b) {
			t.Errorf("%s does not sign in through templates/wharf-login.yml with a serviceConnection", f)
		}
		// The CLI asks Azure DevOps for the federated token with the
		// job's access token, which a step sees only when it maps it.
		var pipeline struct {
			Stages []struct {
				Jobs []struct {
					Steps []struct {
						Script      string
						DisplayName string `yaml:"displayName"`
						Env         map[string]string
					}
				}
			}
		}
		readYAML(t, f, &pipeline)
		for _, st := range pipeline.Stages {
			for _, j := range st.Jobs {
				for _, step := range j.Steps {
					if strings.Contains(step.Script, "wharf ") && step.Env["SYSTEM_ACCESSTOKEN"] != "$(System.AccessToken)" {
						t.Errorf("%s: step %q runs wharf without SYSTEM_ACCESSTOKEN: $(System.AccessToken)", f, step.DisplayName)
					}
				}
			}
		}
	}
	for _, f := range defs["gitlab-ci"] {
		var jobs map[string]yaml.Node
		readYAML(t, f, &jobs)
		var base struct {
			IDTokens map[string]struct{ Aud string } `yaml:"id_tokens"`
		}
		n := jobs[".wharf"]
		if err := n.Decode(&base); err != nil || base.IDTokens["WHARF_ID_TOKEN"].Aud != "api://AzureADTokenExchange" {
			t.Errorf("%s: .wharf has no id_tokens WHARF_ID_TOKEN with aud api://AzureADTokenExchange (%v)", f, err)
		}
		for name, n := range jobs {
			var job struct {
				Extends string
				Script  []string
			}
			if n.Kind != yaml.MappingNode || n.Decode(&job) != nil || len(job.Script) == 0 {
				continue
			}
			if job.Extends != ".wharf" {
				t.Errorf("%s: job %s does not extend .wharf", f, name)
			}
		}
	}
}
