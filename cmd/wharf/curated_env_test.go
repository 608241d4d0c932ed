package main

import (
	"strings"
	"testing"

	"github.com/wharfml/wharf/curated"
	"github.com/wharfml/wharf/pyenv"
)

// TestCuratedEnvironmentJob: a command job in Azure's curated environment
// AzureML-sklearn-1.0-ubuntu20.04-py38-cpu@latest, as Azure's samples
// write it, runs in a virtual environment built from PyPI with the
// packages of Azure's definition, and imports the scikit-learn the
// definition pins. The registry's environments are listed and shown as az
// ml shows them, and a curated name Wharf does not know is refused by the
// CLI's own check with how to stand one in.
//
// The environment is built once and kept in the test suite's shared
// Python environment cache (see shareEnvCache): minutes the first time.
func TestCuratedEnvironmentJob(t *testing.T) {
	const name = "AzureML-sklearn-1.0-ubuntu20.04-py38-cpu"
	env, _, ok := curated.Find(name)
	if !ok {
		t.Fatalf("%s is not in the catalog", name)
	}
	if !(&pyenv.Builder{}).HasPython(t.Context(), env.Python) {
		missing(t, "Python %s, which %s pins, is not installed where environments are built from", env.Python, name)
	}
	want := pinnedPrefix(t, env.Pip, "scikit-learn~=")
	e := newCLIEnvWith(t, func(o *serverOptions) { shareEnvCache(t, o.dataDir) })
	dir := t.TempDir()
	e.ok("ml", "workspace", "create", "-n", "dev")

	list := e.ok("ml", "environment", "list", "--registry-name", "azureml", "--query", "[].name", "-o", "tsv")
	for _, n := range []string{"sklearn-1.5", name, "tensorflow-2.12-cuda11"} {
		if !strings.Contains("\n"+list, "\n"+n+"\n") {
			t.Errorf("registry list lacks %s:\n%s", n, list)
		}
	}
	show := strings.Fields(e.ok("ml", "environment", "show", "--registry-name", "azureml", "-n", "sklearn-1.5", "--label", "latest",
		"--query", "[name, version, spec.python_version]", "-o", "tsv"))
	if s15, _, _ := curated.Find("sklearn-1.5"); len(show) != 3 || show[0] != "sklearn-1.5" || show[1] != s15.Version || show[2] != s15.Python {
		t.Errorf("registry show: %q", show)
	}
	if _, errs, code := e.wharf("ml", "environment", "show", "--registry-name", "azureml", "-n", "sklearn-0.1"); code != 3 {
		t.Errorf("registry show of an unknown environment: exit %d, %s", code, errs)
	}
	if got := strings.Fields(e.ok("ml", "environment", "show", "-n", name, "-v", "7", "-w", "dev", "--query", "[name, version]", "-o", "tsv")); len(got) != 2 || got[0] != name || got[1] != "7" {
		t.Errorf("a curated environment shown in a workspace: %q", got)
	}

	unknown := writeFile(t, dir, "unknown.yml", "command: echo hi\nenvironment: azureml:AzureML-sklearn-0.1-ubuntu12.04-py27-cpu@latest\n")
	if _, errs, code := e.wharf("ml", "job", "create", "--file", unknown, "-w", "dev"); code == 0 ||
		!strings.Contains(errs, "wharf ml environment create --name AzureML-sklearn-0.1-ubuntu12.04-py27-cpu --version 1") {
		t.Errorf("an unknown curated environment: exit %d, %s", code, errs)
	}

	job := writeFile(t, dir, "job.yml", `$schema: https://azuremlschemas.azureedge.net/latest/commandJob.schema.json
command: python -c "import sys, sklearn; print('python', '%d.%d' % sys.version_info[:2], 'sklearn', sklearn.__version__)"
environment: azureml:`+name+`@latest
`)
	out, errs, code := e.wharf("ml", "job", "create", "--file", job, "--stream", "-w", "dev")
	if code != 0 {
		t.Fatalf("job: exit %d\nstdout: %s\nstderr: %s", code, out, errs)
	}
	if !strings.Contains(out, "python "+env.Python+" sklearn "+want) {
		t.Errorf("job output lacks python %s and scikit-learn %s*:\n%s", env.Python, want, out)
	}
	if !strings.Contains(out, "is Azure's curated environment "+env.Name) {
		t.Errorf("job log does not say where the environment comes from:\n%s", out)
	}
}

// pinnedPrefix returns the versions a compatible-release pin allows, as
// a prefix: scikit-learn~=1.0.0 allows 1.0.*, so "1.0.".
func pinnedPrefix(t *testing.T, pip []string, pin string) string {
	t.Helper()
	for _, p := range pip {
		if v, ok := strings.CutPrefix(p, pin); ok {
			return v[:strings.LastIndex(v, ".")+1]
		}
	}
	t.Fatalf("no %s pin in %v", pin, pip)
	return ""
}
