package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/wharfml/wharf/federation/federationtest"
)

// ghStep is one step of a GitHub Actions job or composite action.
type ghStep struct {
	ID               string
	Name             string
	Uses             string
	With             map[string]string
	Env              map[string]string
	Run              string
	Shell            string
	WorkingDirectory string `yaml:"working-directory"`
}

// TestFederatedGitHubTrainingWorkflowCompletesWithoutASecret runs the taxi example's
// GitHub Actions training workflow the way a GitHub runner does, step by
// step as shell: the wharf-login action's own scripts (installing the
// release archive from a loopback mirror of the release downloads,
// checksum verified, and signing in through federation), then the
// workflow's `wharf` steps, against a server where a service principal
// trusts the workflow's subject and holds no secret anywhere the runner
// can see. The training pipeline it submits must end Completed.
//
// federationtest's GitHub token service plays GitHub's ID-token service
// (ACTIONS_ID_TOKEN_REQUEST_URL): it hands out tokens of a real HTTPS OIDC
// issuer on loopback, which the server trusts as it would
// token.actions.githubusercontent.com. `${{ ... }}` expressions are
// replaced from a small table of what a real run would have; an expression
// the table lacks fails the test, so the workflow and this test cannot
// drift apart silently.
func TestFederatedGitHubTrainingWorkflowCompletesWithoutASecret(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a release binary and runs the training pipeline")
	}
	root := repoRoot(t)
	const ws = "mlw-taxi-0001dev"
	const subject = "repo:org/repo:ref:refs/heads/main"

	var wf struct {
		Env         map[string]string
		Permissions map[string]string
		Defaults    struct {
			Run struct {
				WorkingDirectory string `yaml:"working-directory"`
			}
		}
		Jobs map[string]struct {
			Env   map[string]string
			Steps []ghStep
		}
	}
	readYAML(t, filepath.Join(root, "examples", "taxi", "mlops", "github-actions", "deploy-model-training-pipeline.yml"), &wf)
	job, ok := wf.Jobs["train"]
	if !ok || len(wf.Jobs) != 1 {
		t.Fatalf("the training workflow should have the one job train: %v", wf.Jobs)
	}
	var action struct {
		Inputs map[string]struct {
			Required bool
			Default  string
		}
		Runs struct {
			Using string
			Steps []ghStep
		}
	}
	readYAML(t, filepath.Join(root, ".github", "actions", "wharf-login", "action.yml"), &action)
	if action.Runs.Using != "composite" {
		t.Fatalf("wharf-login runs %q, want composite", action.Runs.Using)
	}

	// The release the action installs: the version the workflow names,
	// served as RELEASE-URL/vVERSION/ on loopback.
	const version = "0.1.0"
	releases, _ := buildRelease(t, version, "0123456789abcdef0123456789abcdef01234567", "2026-12-07T01:02:03Z")
	mirror := httptest.NewServer(http.FileServer(http.Dir(releases)))
	defer mirror.Close()

	// The platform engineer's side: the server trusts the issuer, the
	// example's infrastructure exists (compute is not the Data
	// Scientist's to create), and a principal trusts the workflow's subject.
	// The server is a wharf process, as its steps run `"$WHARF" prep ...`.
	iss := federationtest.New(t)
	dataDir := filepath.Join(t.TempDir(), "server")
	_, base := startProcess(t, dataDir, "", "--oidc-ca-file", iss.CAFile)
	wharf := cliAgainst(t, dataDir, base)
	var owner, sp map[string]string
	if err := json.Unmarshal([]byte(os.Getenv("WHARF_CREDENTIALS")), &owner); err != nil {
		t.Fatal(err)
	}
	wharf("infra", "apply", "--file", filepath.Join(root, "examples", "taxi", "config-infra-dev.yml"))
	if err := json.Unmarshal([]byte(wharf("ad", "sp", "create-for-rbac", "-n", "github-train", "--role", "Data Scientist", "--scopes", "/workspaces/"+ws, "--sdk-auth")), &sp); err != nil {
		t.Fatal(err)
	}
	wharf("ad", "app", "federated-credential", "create", "--id", sp["clientId"], "--parameters",
		`{"name": "github-main", "issuer": "`+iss.URL+`", "subject": "`+subject+`"}`)
	const requestToken = "runner-request-token"
	gh := iss.GitHubTokenService(t, requestToken, subject)
	secrets := []string{owner["clientSecret"], sp["clientSecret"]}
	if secrets[0] == "" || secrets[1] == "" {
		t.Fatalf("no client secrets to look for: %v %v", owner, sp)
	}

	// The runner: a checkout, its temp folder and home.
	runnerDir := t.TempDir()
	checkout := filepath.Join(runnerDir, "work", "repo")
	r := &ghRunner{t: t, dir: runnerDir, workspace: checkout, secrets: secrets, exported: map[string]string{}}
	r.base = map[string]string{
		"CI": "true", "GITHUB_ACTIONS": "true", "HOME": filepath.Join(runnerDir, "home"),
		"GITHUB_WORKSPACE": checkout, "GITHUB_REPOSITORY": "org/repo", "GITHUB_REF": "refs/heads/main", "GITHUB_REF_NAME": "main",
		"GITHUB_RUN_ID": "7001", "GITHUB_EVENT_NAME": "workflow_dispatch",
		"RUNNER_OS":   map[string]string{"linux": "Linux", "darwin": "macOS"}[runtime.GOOS],
		"RUNNER_ARCH": map[string]string{"amd64": "X64", "arm64": "ARM64"}[runtime.GOARCH],
		"RUNNER_TEMP": filepath.Join(runnerDir, "temp"),
	}
	// permissions: id-token: write is what gives a job these two.
	if wf.Permissions["id-token"] != "write" {
		t.Fatalf("the workflow lacks permissions: id-token: write: %v", wf.Permissions)
	}
	r.base["ACTIONS_ID_TOKEN_REQUEST_URL"] = gh.URL + "/idtoken?api-version=2.0"
	r.base["ACTIONS_ID_TOKEN_REQUEST_TOKEN"] = requestToken
	for k, v := range wf.Env {
		r.base[k] = v
	}
	for k, v := range job.Env {
		r.base[k] = v
	}
	for _, d := range []string{r.base["HOME"], r.base["RUNNER_TEMP"], checkout} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}

	// What a real run's expressions would evaluate to.
	vars := map[string]string{
		"vars.WHARF_URL":       base,
		"vars.WHARF_CLIENT_ID": sp["clientId"],
		"vars.WHARF_TENANT_ID": owner["tenantId"],
	}
	// The one input the workflow leaves to its default and the test sets:
	// the release downloads come from the loopback mirror, not github.com.
	const mirroredInput = "release-url"

	for _, s := range job.Steps {
		switch s.Uses {
		case "":
			r.run(s, vars, wf.Defaults.Run.WorkingDirectory)
		case "actions/checkout@v4":
			copyTree(t, filepath.Join(root, "examples", "taxi"), filepath.Join(checkout, "examples", "taxi"))
		case "wharfml/wharf/.github/actions/wharf-login@v0.1.0":
			inputs := map[string]string{}
			for name, in := range action.Inputs {
				inputs["inputs."+name] = in.Default
			}
			for name, v := range s.With {
				if _, ok := action.Inputs[name]; !ok {
					t.Fatalf("step %q passes %s, which wharf-login does not take", s.Name, name)
				}
				inputs["inputs."+name] = r.expand(v, vars, s.Name+": with."+name)
			}
			for name, in := range action.Inputs {
				if in.Required && inputs["inputs."+name] == "" {
					t.Fatalf("step %q leaves wharf-login's required input %s empty", s.Name, name)
				}
			}
			if _, set := s.With[mirroredInput]; set {
				t.Fatalf("the workflow sets %s itself", mirroredInput)
			}
			inputs["inputs."+mirroredInput] = mirror.URL
			for _, as := range action.Runs.Steps {
				outputs := r.run(as, inputs, "")
				for k, v := range outputs {
					inputs["steps."+as.ID+".outputs."+k] = v
				}
			}
		default:
			t.Fatalf("step %q uses %s, which this test does not know", s.Name, s.Uses)
		}
	}
	if gh.Asked() == 0 {
		t.Error("no step asked GitHub's ID-token service for a token")
	}

	// What the steps submitted ended Completed (the workflow's last step
	// checks the same).
	jobs := wharf("ml", "job", "list", "-w", ws, "--query", "[?type=='pipeline'].[name, status]", "-o", "tsv")
	if f := strings.Fields(jobs); len(f) != 2 || f[1] != "Completed" {
		t.Fatalf("pipeline jobs: %q", jobs)
	}
	r.assertNoSecretIn(r.base["HOME"])
	r.assertNoSecretIn(checkout)
}

// ghRunner runs steps as a GitHub runner does: each in bash with the
// runner's variables, what earlier steps wrote to $GITHUB_ENV and
// $GITHUB_PATH, and its own env.
type ghRunner struct {
	t         *testing.T
	dir       string
	workspace string
	base      map[string]string
	exported  map[string]string // from $GITHUB_ENV
	path      []string          // from $GITHUB_PATH, latest first
	secrets   []string
	steps     int
}

var ghExpression = regexp.MustCompile(`\$\{\{\s*(.*?)\s*\}\}`)

// expand replaces each ${{ expr }} in s with table[expr]; an expression
// the table lacks fails the test.
func (r *ghRunner) expand(s string, table map[string]string, where string) string {
	r.t.Helper()
	return ghExpression.ReplaceAllStringFunc(s, func(m string) string {
		expr := ghExpression.FindStringSubmatch(m)[1]
		v, ok := table[expr]
		if !ok {
			r.t.Fatalf("%s: the test does not know the expression ${{ %s }}", where, expr)
		}
		return v
	})
}

// run runs one `run:` step and returns what it wrote to $GITHUB_OUTPUT.
func (r *ghRunner) run(s ghStep, table map[string]string, defaultDir string) map[string]string {
	t := r.t
	t.Helper()
	r.steps++
	if s.Run == "" {
		t.Fatalf("step %q has neither uses nor run", s.Name)
	}
	files := filepath.Join(r.dir, "files", strings.Repeat("s", r.steps))
	if err := os.MkdirAll(files, 0o755); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for k, v := range r.base {
		env[k] = v
	}
	for k, v := range r.exported {
		env[k] = v
	}
	for k, v := range s.Env {
		env[k] = r.expand(v, table, s.Name+": env."+k)
	}
	for _, k := range []string{"GITHUB_ENV", "GITHUB_PATH", "GITHUB_OUTPUT"} {
		env[k] = filepath.Join(files, strings.ToLower(k))
		writeFile(t, files, strings.ToLower(k), "")
	}
	env["PATH"] = strings.Join(append(append([]string{}, r.path...), os.Getenv("PATH")), string(os.PathListSeparator))
	var list []string
	for k, v := range env {
		if k == "WHARF_CREDENTIALS" || k == "AZURE_CLIENT_SECRET" {
			t.Fatalf("step %q gets %s", s.Name, k)
		}
		for _, secret := range r.secrets {
			if strings.Contains(v, secret) {
				t.Fatalf("step %q gets a client secret in %s", s.Name, k)
			}
		}
		list = append(list, k+"="+v)
	}
	script := writeFile(t, files, "script.sh", r.expand(s.Run, table, s.Name+": run"))
	var args []string
	switch s.Shell {
	case "bash":
		args = []string{"--noprofile", "--norc", "-eo", "pipefail", script}
	case "":
		args = []string{"-e", script}
	default:
		t.Fatalf("step %q: shell %q", s.Name, s.Shell)
	}
	cmd := exec.Command("bash", args...)
	cmd.Env = list
	cmd.Dir = r.workspace
	if d := s.WorkingDirectory; d != "" {
		cmd.Dir = filepath.Join(r.workspace, d)
	} else if defaultDir != "" {
		cmd.Dir = filepath.Join(r.workspace, defaultDir)
	}
	b, err := cmd.CombinedOutput()
	t.Logf("step %q:\n%s", s.Name, b)
	if err != nil {
		t.Fatalf("step %q: %v\n%s", s.Name, err, b)
	}

	lines := func(name string) []string {
		b, err := os.ReadFile(env[name])
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, l := range strings.Split(string(b), "\n") {
			if l != "" {
				out = append(out, l)
			}
		}
		return out
	}
	pairs := func(name string) map[string]string {
		m := map[string]string{}
		for _, l := range lines(name) {
			k, v, ok := strings.Cut(l, "=")
			if !ok || strings.Contains(k, "<<") {
				t.Fatalf("step %q wrote %q to $%s: the test reads NAME=VALUE lines only", s.Name, l, name)
			}
			m[k] = v
		}
		return m
	}
	for k, v := range pairs("GITHUB_ENV") {
		r.exported[k] = v
	}
	for _, p := range lines("GITHUB_PATH") {
		r.path = append([]string{p}, r.path...)
	}
	return pairs("GITHUB_OUTPUT")
}

// assertNoSecretIn fails the test if a file under dir holds a client secret.
func (r *ghRunner) assertNoSecretIn(dir string) {
	r.t.Helper()
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, secret := range r.secrets {
			if strings.Contains(string(b), secret) {
				r.t.Errorf("%s holds a client secret", p)
			}
		}
		return nil
	})
	if err != nil {
		r.t.Fatal(err)
	}
}
