package main

import (
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// testCIInstallers runs the install scripts of the GitHub Action, the Azure
// Pipelines template and the GitLab definition against the release folder
// releases (RELEASE-URL/vVERSION/ served over HTTP): each installs a wharf
// that runs, and each refuses an archive that does not match checksums.txt.
// Then the Action's sign-in step signs in to a real server with a secret,
// and refuses federation in a job without an OIDC token.
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

	t.Run("action-sign-in", func(t *testing.T) {
		e := newCLIEnv(t)
		dir := t.TempDir()
		// The step's inputs, empty unless given, as GitHub passes them.
		base := []string{"CLIENT_ID=", "TENANT_ID=", "CREDENTIALS=", "CA_BUNDLE=", "URL=" + e.srv.HTTP.URL, "WHARF_BIN=" + wharfBin, "GITHUB_ENV=" + filepath.Join(dir, "env"),
			"WHARF_CONFIG_DIR=" + filepath.Join(dir, "cli"), "HOME=" + dir}
		out, err := bash(action.Runs.Steps[1].Run, append(base, "CREDENTIALS="+e.owner))
		if err != nil {
			t.Fatalf("sign-in with a secret: %v\n%s", err, out)
		}
		// Later steps run wharf with what the step left behind alone.
		later := exec.Command(wharfBin, "account", "show", "--query", "tenantId", "-o", "tsv")
		later.Env = cleanEnv("WHARF_CONFIG_DIR="+filepath.Join(dir, "cli"), "HOME="+dir)
		if b, err := later.CombinedOutput(); err != nil || strings.TrimSpace(string(b)) == "" {
			t.Fatalf("a later step: %v %s", err, b)
		}
		if env, _ := os.ReadFile(filepath.Join(dir, "env")); strings.Contains(string(env), "clientSecret") || !strings.Contains(string(env), "WHARF_URL="+e.srv.HTTP.URL) {
			t.Fatalf("GITHUB_ENV:\n%s", env)
		}
		out, err = bash(action.Runs.Steps[1].Run, append(base, "CLIENT_ID=app", "TENANT_ID=tenant"))
		if err == nil || !strings.Contains(out, "id-token: write") {
			t.Fatalf("federation without an OIDC token: %v\n%s", err, out)
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
