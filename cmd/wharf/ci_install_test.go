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

	"go.yaml.in/yaml/v3"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/federation/federationtest"
)

// testCIInstallers runs the install scripts of the GitHub Action, the Azure
// Pipelines template and the GitLab definition against the release folder
// releases (RELEASE-URL/vVERSION/ served over HTTP): each installs a wharf
// that runs, and each refuses an archive that does not match checksums.txt.
// Then their sign-in scripts run (testCISignIn).
func testCIInstallers(t *testing.T, releases, version string) {
	root := repoRoot(t)
	mux := http.NewServeMux()
	mux.Handle("/good/", http.StripPrefix("/good", http.FileServer(http.Dir(releases))))
	// The same archive, under a checksums.txt whose sum is wrong.
	mux.HandleFunc("/bad/", func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/checksums.txt") {
			b, _ := os.ReadFile(filepath.Join(releases, "v"+version, "checksums.txt"))
			w.Write([]byte(strings.Repeat("0", 64) + string(b[64:])))
			return
		}
		http.StripPrefix("/bad", http.FileServer(http.Dir(releases))).ServeHTTP(w, r)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	var action struct {
		Runs struct {
			Steps []struct{ Run string }
		}
	}
	readYAML(t, filepath.Join(root, ".github", "actions", "wharf-login", "action.yml"), &action)
	var ado struct {
		Steps []struct{ Bash string }
	}
	readYAML(t, filepath.Join(root, "examples", "taxi", "mlops", "devops-pipelines", "templates", "wharf-login.yml"), &ado)
	var gitlabJobs map[string]yaml.Node
	readYAML(t, filepath.Join(root, "examples", "taxi", "mlops", "gitlab-ci", ".gitlab-ci.yml"), &gitlabJobs)
	var gitlab struct {
		BeforeScript []string `yaml:"before_script"`
	}
	if n, ok := gitlabJobs[".wharf"]; ok {
		if err := n.Decode(&gitlab); err != nil {
			t.Fatal(err)
		}
	}
	if len(action.Runs.Steps) < 2 || len(ado.Steps) < 2 || len(gitlab.BeforeScript) < 2 {
		t.Fatal("the action, the Azure Pipelines template or .gitlab-ci.yml's .wharf lost its install and sign-in steps")
	}
	runnerArch := map[string]string{"amd64": "X64", "arm64": "ARM64"}[runtime.GOARCH]
	runnerOS := map[string]string{"linux": "Linux", "darwin": "macOS"}[runtime.GOOS]

	install := []struct {
		name, script string
		env          func(dir, base string) []string
		// installed finds the folder the script put wharf in.
		installed func(t *testing.T, dir, output string) string
	}{
		{"action", action.Runs.Steps[0].Run,
			func(dir, base string) []string {
				return []string{"VERSION=v" + version, "RELEASE_URL=" + base, "RUNNER_OS=" + runnerOS, "RUNNER_ARCH=" + runnerArch,
					"RUNNER_TEMP=" + dir, "GITHUB_PATH=" + filepath.Join(dir, "path"), "GITHUB_OUTPUT=" + filepath.Join(dir, "output")}
			},
			func(t *testing.T, dir, _ string) string {
				b, _ := os.ReadFile(filepath.Join(dir, "path"))
				return strings.TrimSpace(string(b))
			}},
		{"azure-pipelines", ado.Steps[0].Bash,
			func(dir, base string) []string {
				return []string{"VERSION=" + version, "RELEASE_URL=" + base, "AGENT_TEMPDIRECTORY=" + dir}
			},
			func(t *testing.T, _, output string) string { return restOfLine(output, "##vso[task.prependpath]") }},
		{"gitlab", gitlab.BeforeScript[0] + "\necho \"installed:$(dirname \"$(command -v wharf)\")\"",
			func(dir, base string) []string {
				return []string{"WHARF_VERSION=" + version, "WHARF_RELEASE_URL=" + base, "TMPDIR=" + dir}
			},
			func(t *testing.T, _, output string) string { return restOfLine(output, "installed:") }},
	}
	var wharfBin string
	// Kept after each subtest, for the sign-in below.
	installs := t.TempDir()
	for _, in := range install {
		t.Run(in.name, func(t *testing.T) {
			dir := filepath.Join(installs, in.name)
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			out, err := bash(in.script, in.env(dir, srv.URL+"/good"))
			if err != nil {
				t.Fatalf("install: %v\n%s", err, out)
			}
			bin := filepath.Join(in.installed(t, dir, out), "wharf")
			if b, err := exec.Command(bin, "version", "--query", "wharf", "-o", "tsv").CombinedOutput(); err != nil || strings.TrimSpace(string(b)) != version {
				t.Fatalf("installed %s: %v %s\ninstall said:\n%s", bin, err, b, out)
			}
			wharfBin = bin
			bad := t.TempDir()
			if out, err := bash(in.script, in.env(bad, srv.URL+"/bad")); err == nil {
				t.Fatalf("installed an archive that does not match checksums.txt:\n%s", out)
			}
		})
	}
	if wharfBin == "" {
		return
	}

	t.Run("sign-in", func(t *testing.T) {
		testCISignIn(t, wharfBin, action.Runs.Steps[1].Run, ado.Steps[1].Bash, gitlab.BeforeScript[1:])
	})
}

// testCISignIn runs the sign-in scripts of the action, the Azure Pipelines
// template and the GitLab definition with wharfBin against a real server.
// A real OIDC issuer on loopback stands in for each CI system's (GitHub's
// and Azure DevOps' token services are small HTTP servers that hand out
// its tokens); the server trusts it through federated credentials. Each
// script signs in without a secret, and later commands, with only what the
// script left behind (GITHUB_ENV, task.setvariable), reach the server as
// the federated principal. The action also signs in with a secret, which
// never reaches GITHUB_ENV, and refuses federation without an OIDC token.
func testCISignIn(t *testing.T, wharfBin, actionScript, adoScript string, gitlabScript []string) {
	iss := federationtest.New(t)
	e := newCLIEnvWith(t, func(o *serverOptions) { o.oidcCAFile = iss.CAFile })
	var owner map[string]string
	_ = json.Unmarshal([]byte(e.owner), &owner)
	e.ok("ml", "workspace", "create", "-n", "ci")
	appID := strings.TrimSpace(e.ok("ad", "sp", "create-for-rbac", "-n", "ci-deploy", "--role", "Data Scientist", "--scopes", "/workspaces/ci", "--query", "appId", "-o", "tsv"))
	const ghSubject, adoSubject, glSubject = "repo:org/repo:ref:refs/heads/main", "sc://org/project/wharf-ci", "project_path:group/project:ref_type:branch:ref:main"
	for name, sub := range map[string]string{"github": ghSubject, "ado": adoSubject, "gitlab": glSubject} {
		e.ok("ad", "app", "federated-credential", "create", "--id", appID, "--parameters",
			`{"name": "`+name+`", "issuer": "`+iss.URL+`", "subject": "`+sub+`"}`)
	}
	const requestToken, connection = "runner-request-token", "0f0e0d0c-0000-4000-8000-000000000001"
	gh := iss.GitHubTokenService(t, requestToken, ghSubject)
	ado := iss.AzureDevOpsTokenService(t, requestToken, connection, adoSubject, wharf.DefaultFederatedAudience)

	// whoAmI runs wharf as a later step would, with env alone, and
	// returns the principal the server sees.
	whoAmI := func(t *testing.T, env []string) string {
		t.Helper()
		cmd := exec.Command(wharfBin, "account", "show", "--query", "user.name", "-o", "tsv")
		cmd.Env = cleanEnv(env...)
		b, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("a later step: %v\n%s", err, b)
		}
		return strings.TrimSpace(string(b))
	}
	// exported reads NAME=VALUE lines a script left for later steps.
	exported := func(text string, re *regexp.Regexp) []string {
		var env []string
		for _, m := range re.FindAllStringSubmatch(text, -1) {
			env = append(env, m[1]+"="+m[2])
		}
		return env
	}
	githubEnv := regexp.MustCompile(`(?m)^(WHARF_[A-Z_]+)=(.*)$`)
	vsoVariable := regexp.MustCompile(`##vso\[task\.setvariable variable=(WHARF_[A-Z_]+)\](.*)`)

	t.Run("action", func(t *testing.T) {
		dir := t.TempDir()
		inputs := []string{"CLIENT_ID=", "TENANT_ID=", "CREDENTIALS=", "CA_BUNDLE=", "URL=" + e.srv.HTTP.URL, "WHARF_BIN=" + wharfBin,
			"GITHUB_ENV=" + filepath.Join(dir, "env"), "WHARF_CONFIG_DIR=" + filepath.Join(dir, "cli"), "HOME=" + dir}
		runner := []string{"ACTIONS_ID_TOKEN_REQUEST_URL=" + gh.URL + "/idtoken?api-version=2.0", "ACTIONS_ID_TOKEN_REQUEST_TOKEN=" + requestToken}
		if out, err := bash(actionScript, append(append(inputs, runner...), "CLIENT_ID="+appID, "TENANT_ID="+owner["tenantId"])); err != nil {
			t.Fatalf("federated sign-in: %v\n%s", err, out)
		}
		env, _ := os.ReadFile(filepath.Join(dir, "env"))
		later := append(append(exported(string(env), githubEnv), runner...), "WHARF_CONFIG_DIR="+filepath.Join(dir, "later"), "HOME="+dir)
		if who := whoAmI(t, later); who != appID {
			t.Errorf("a later step is %q, want the federated principal %s", who, appID)
		}
		if out, err := bash(actionScript, append(inputs, "CLIENT_ID="+appID, "TENANT_ID="+owner["tenantId"])); err == nil || !strings.Contains(out, "id-token: write") {
			t.Fatalf("federation without an OIDC token: %v\n%s", err, out)
		}

		secretDir := t.TempDir()
		secretInputs := append(inputs, "CREDENTIALS="+e.owner, "GITHUB_ENV="+filepath.Join(secretDir, "env"), "WHARF_CONFIG_DIR="+filepath.Join(secretDir, "cli"))
		if out, err := bash(actionScript, secretInputs); err != nil {
			t.Fatalf("sign-in with a secret: %v\n%s", err, out)
		}
		if who := whoAmI(t, []string{"WHARF_CONFIG_DIR=" + filepath.Join(secretDir, "cli"), "HOME=" + secretDir}); who != owner["clientId"] {
			t.Errorf("after a secret sign-in, a later step is %q", who)
		}
		if env, _ := os.ReadFile(filepath.Join(secretDir, "env")); strings.Contains(string(env), owner["clientSecret"]) || !strings.Contains(string(env), "WHARF_URL="+e.srv.HTTP.URL) {
			t.Fatalf("GITHUB_ENV:\n%s", env)
		}
	})

	t.Run("azure-pipelines", func(t *testing.T) {
		dir := t.TempDir()
		agent := []string{"SYSTEM_OIDCREQUESTURI=" + ado.URL + "/org/_apis/distributedtask/hubs/build/plans/p/jobs/j/oidctoken",
			"SYSTEM_ACCESSTOKEN=" + requestToken, "WHARF_CONFIG_DIR=" + filepath.Join(dir, "cli"), "HOME=" + dir}
		out, err := bash(adoScript, append(agent, "URL="+e.srv.HTTP.URL, "CLIENT_ID="+appID, "TENANT_ID="+owner["tenantId"],
			"SERVICE_CONNECTION="+connection, "CA_BUNDLE=", "CREDENTIALS=$(WHARF_CREDENTIALS)", "PATH="+filepath.Dir(wharfBin)+":"+os.Getenv("PATH")))
		if err != nil {
			t.Fatalf("federated sign-in: %v\n%s", err, out)
		}
		if who := whoAmI(t, append(exported(out, vsoVariable), agent...)); who != appID {
			t.Errorf("a later step is %q, want the federated principal %s", who, appID)
		}
	})

	t.Run("gitlab", func(t *testing.T) {
		dir := t.TempDir()
		job := []string{"WHARF_URL=" + e.srv.HTTP.URL, "WHARF_CLIENT_ID=" + appID, "WHARF_TENANT_ID=" + owner["tenantId"],
			"WHARF_ID_TOKEN=" + iss.Token(t, glSubject, wharf.DefaultFederatedAudience),
			"WHARF_CONFIG_DIR=" + filepath.Join(dir, "cli"), "HOME=" + dir, "PATH=" + filepath.Dir(wharfBin) + ":" + os.Getenv("PATH")}
		// The checkout the script enters.
		if err := os.MkdirAll(filepath.Join(dir, "examples", "taxi"), 0o755); err != nil {
			t.Fatal(err)
		}
		script := "cd " + dir + "\n" + strings.Join(gitlabScript, "\n") + "\nwharf account show --query user.name -o tsv"
		out, err := bash(script, job)
		if err != nil || !strings.HasSuffix(strings.TrimSpace(out), appID) {
			t.Fatalf("federated sign-in: %v\n%s", err, out)
		}
	})
}

// restOfLine is what follows marker on its line of output.
func restOfLine(output, marker string) string {
	_, after, _ := strings.Cut(output, marker)
	line, _, _ := strings.Cut(after, "\n")
	return strings.TrimSpace(line)
}

// bash runs script with only env and PATH and returns its output.
func bash(script string, env []string) (string, error) {
	cmd := exec.Command("bash", "-euo", "pipefail", "-c", script)
	cmd.Env = cleanEnv(env...)
	b, err := cmd.CombinedOutput()
	return string(b), err
}

// cleanEnv is PATH plus env: nothing of the test's own WHARF_ variables.
func cleanEnv(env ...string) []string {
	return append([]string{"PATH=" + os.Getenv("PATH")}, env...)
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
