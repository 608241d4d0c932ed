package main

import (
	"context"
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	wharfhttp "github.com/wharfml/wharf/http"
)

// ownerAPI returns an API client with the owner's token, for checks from
// the server's side.
func (e *cliEnv) ownerAPI() *wharfhttp.Client {
	e.t.Helper()
	var c wharfhttp.SDKAuth
	if err := json.Unmarshal([]byte(e.owner), &c); err != nil {
		e.t.Fatal(err)
	}
	tok, _, err := wharfhttp.RequestToken(context.Background(), e.srv.HTTP.URL, c.TenantID, c.ClientID, c.ClientSecret)
	if err != nil {
		e.t.Fatal(err)
	}
	return wharfhttp.NewClient(e.srv.HTTP.URL, func(context.Context) (string, error) { return tok, nil })
}

func TestModelRegistryIsOneStore(t *testing.T) {
	e := newCLIEnv(t)
	e.ok("ml", "workspace", "create", "-n", "ws1")
	dir := t.TempDir()
	model := filepath.Join(dir, "taxi-model")
	if err := os.MkdirAll(filepath.Join(model, "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, model, "MLmodel", "flavors:\n  python_function: {loader_module: mlflow.sklearn}\n")
	writeFile(t, filepath.Join(model, "data"), "coef.json", `{"coef":[1.5,2.5],"intercept":0.5}`)

	out := e.ok("ml", "model", "create", "--name", "taxi-model", "--path", model, "-w", "ws1", "--query", "[[name, version, type]]", "-o", "tsv")
	if strings.TrimSpace(out) != "taxi-model\t1\tmlflow_model" {
		t.Fatalf("create: %q", out)
	}
	e.ok("ml", "model", "create", "--name", "taxi-model", "--path", filepath.Join(model, "data", "coef.json"), "--type", "custom_model", "-w", "ws1")
	// Versions need not follow each other, as in Azure: 7 is taken as
	// asked, and an existing one is refused.
	if out := e.ok("ml", "model", "create", "--name", "taxi-model", "--version", "7", "--path", model, "-w", "ws1", "--query", "version", "-o", "tsv"); strings.TrimSpace(out) != "7" {
		t.Fatalf("version 7: %q", out)
	}
	if _, errs, code := e.wharf("ml", "model", "create", "--name", "taxi-model", "--version", "2", "--path", model, "-w", "ws1"); code == 0 || !strings.Contains(errs, "taxi-model version 2 already exists") {
		t.Fatalf("existing version: %d %s", code, errs)
	}

	// The mlflow client's view of the same registry.
	api := e.ownerAPI()
	ctx := context.Background()
	var search struct {
		ModelVersions []map[string]any `json:"model_versions"`
	}
	q := url.Values{"filter": {"name='taxi-model'"}}
	if err := api.Do(ctx, "GET", "/mlflow/v1.0/workspaces/ws1/api/2.0/mlflow/model-versions/search?"+q.Encode(), nil, &search); err != nil {
		t.Fatal(err)
	}
	if len(search.ModelVersions) != 3 {
		t.Fatalf("mlflow sees %d versions: %v", len(search.ModelVersions), search.ModelVersions)
	}

	// A version registered through the MLflow API, with a run, shows up in
	// `wharf ml model` with its lineage.
	var exp struct {
		ExperimentID string `json:"experiment_id"`
	}
	base := "/mlflow/v1.0/workspaces/ws1/api/2.0/mlflow/"
	if err := api.Do(ctx, "POST", base+"experiments/create", map[string]any{"name": "taxi"}, &exp); err != nil {
		t.Fatal(err)
	}
	var run struct {
		Run struct {
			Info struct {
				RunID string `json:"run_id"`
			} `json:"info"`
		} `json:"run"`
	}
	if err := api.Do(ctx, "POST", base+"runs/create", map[string]any{"experiment_id": exp.ExperimentID}, &run); err != nil {
		t.Fatal(err)
	}
	runID := run.Run.Info.RunID
	if err := api.Do(ctx, "POST", base+"runs/log-batch", map[string]any{"run_id": runID,
		"metrics": []map[string]any{{"key": "r2", "value": 0.91, "timestamp": 1, "step": 0}},
		"params":  []map[string]any{{"key": "alpha", "value": "0.1"}}}, nil); err != nil {
		t.Fatal(err)
	}
	if err := api.Do(ctx, "POST", base+"model-versions/create", map[string]any{"name": "taxi-model", "source": "runs:/" + runID + "/model", "run_id": runID}, nil); err != nil {
		t.Fatal(err)
	}
	list := e.ok("ml", "model", "list", "--name", "taxi-model", "-w", "ws1", "--query", "[].version", "-o", "tsv")
	if list != "8\n7\n2\n1\n" {
		t.Fatalf("versions after MLflow numbered one past 7: %q", list)
	}
	show := e.ok("ml", "model", "show", "--name", "taxi-model", "--label", "latest", "-w", "ws1", "--query", "[[job_name, lineage.metrics.r2, lineage.params.alpha]]", "-o", "tsv")
	if strings.TrimSpace(show) != runID+"\t0.91\t0.1" {
		t.Fatalf("lineage: %q", show)
	}

	// A version string that is not a number is az ml's name for the
	// version; MLflow numbers it on from the highest.
	if out := e.ok("ml", "model", "create", "--name", "taxi-model", "--version", "1.0.0-rc1", "--path", model, "-w", "ws1", "--query", "version", "-o", "tsv"); strings.TrimSpace(out) != "1.0.0-rc1" {
		t.Fatalf("string version: %q", out)
	}
	if _, errs, code := e.wharf("ml", "model", "create", "--name", "taxi-model", "--version", "1.0.0-rc1", "--path", model, "-w", "ws1"); code == 0 || !strings.Contains(errs, "taxi-model version 1.0.0-rc1 already exists") {
		t.Fatalf("existing string version: %d %s", code, errs)
	}
	if _, errs, code := e.wharf("ml", "model", "create", "--name", "taxi-model", "--version", "1 0", "--path", model, "-w", "ws1"); code == 0 || !strings.Contains(errs, `"1 0" is not a valid version`) {
		t.Fatalf("invalid version: %d %s", code, errs)
	}
	if out := e.ok("ml", "model", "show", "--name", "taxi-model", "--version", "1.0.0-rc1", "-w", "ws1", "--query", "[[version, type]]", "-o", "tsv"); strings.TrimSpace(out) != "1.0.0-rc1\tmlflow_model" {
		t.Fatalf("show by string version: %q", out)
	}
	var mv struct {
		ModelVersion struct {
			Version string `json:"version"`
		} `json:"model_version"`
	}
	if err := api.Do(ctx, "GET", base+"model-versions/get?name=taxi-model&version=9", nil, &mv); err != nil || mv.ModelVersion.Version != "9" {
		t.Fatalf("mlflow's number for 1.0.0-rc1: %+v %v", mv, err)
	}
	if list := e.ok("ml", "model", "list", "--name", "taxi-model", "-w", "ws1", "--query", "[].version", "-o", "tsv"); list != "1.0.0-rc1\n8\n7\n2\n1\n" {
		t.Fatalf("versions: %q", list)
	}

	// Download returns the files as uploaded.
	dest := t.TempDir()
	e.ok("ml", "model", "download", "--name", "taxi-model", "--version", "1", "--download-path", dest, "-w", "ws1")
	b, err := os.ReadFile(filepath.Join(dest, "taxi-model", "data", "coef.json"))
	if err != nil || string(b) != `{"coef":[1.5,2.5],"intercept":0.5}` {
		t.Fatalf("downloaded file: %q %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(dest, "taxi-model", "MLmodel")); err != nil {
		t.Fatal(err)
	}
	if _, _, code := e.wharf("ml", "model", "show", "--name", "nope", "--version", "1", "-w", "ws1"); code != exitNotFound {
		t.Fatalf("missing model exit %d", code)
	}
}

// TestFolderUploadsFollowNoLinkOut uploads model and data folders holding
// symbolic links: a link inside the folder uploads its target's content,
// a link out of it (absolute, or climbing out with ../) fails the upload
// with a message naming the link, before anything is registered.
func TestFolderUploadsFollowNoLinkOut(t *testing.T) {
	e := newCLIEnv(t)
	e.ok("ml", "workspace", "create", "-n", "ws")
	parent := t.TempDir()
	writeFile(t, parent, "secret", "not for the server")
	folder := func(name, link, target string) string {
		dir := filepath.Join(parent, name)
		if err := os.MkdirAll(filepath.Join(dir, "sub"), 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, dir, "sub/weights.txt", "w = 42")
		if err := os.Symlink(target, filepath.Join(dir, link)); err != nil {
			t.Fatal(err)
		}
		return dir
	}

	inside := folder("inside", "alias.txt", "sub/weights.txt")
	e.ok("ml", "model", "create", "--name", "linked", "--path", inside, "-w", "ws")
	dest := t.TempDir()
	e.ok("ml", "model", "download", "--name", "linked", "--version", "1", "--download-path", dest, "-w", "ws")
	got := filepath.Join(dest, "linked", "alias.txt")
	if b, err := os.ReadFile(got); err != nil || string(b) != "w = 42" {
		t.Errorf("linked file downloaded as %q, %v", b, err)
	}
	if info, err := os.Lstat(got); err != nil || !info.Mode().IsRegular() {
		t.Errorf("linked file downloaded as %v, %v; want a regular file", info, err)
	}

	for _, c := range []struct{ link, target string }{
		{"passwd", "/etc/passwd"},
		{"leak", "../secret"},
	} {
		dir := folder("out-"+c.link, c.link, c.target)
		for _, cmd := range [][]string{
			{"ml", "model", "create", "--name", "m-" + c.link, "--path", dir, "-w", "ws"},
			{"ml", "data", "create", "--name", "d-" + c.link, "--path", dir, "--type", "uri_folder", "-w", "ws"},
		} {
			_, errs, code := e.wharf(cmd...)
			if code != exitError || !strings.Contains(errs, `link "`+c.link+`"`) || !strings.Contains(errs, "outside") ||
				strings.Contains(errs, "cannot reach") {
				t.Errorf("%s %s with a link to %s: exit %d, stderr %q; want a refusal naming the link", cmd[1], cmd[2], c.target, code, errs)
			}
		}
		if _, _, code := e.wharf("ml", "model", "show", "--name", "m-"+c.link, "--version", "1", "-w", "ws"); code != exitNotFound {
			t.Errorf("model m-%s was registered despite the refused upload (exit %d)", c.link, code)
		}
	}
}

// TestRegisteredModelsAsJobInputs: a job's mlflow_model or custom_model
// input naming a registered version (by number, by version string, or
// @latest) reads that version's files as one folder, as Azure mounts a
// model input: MLmodel at its top for a model registered from a folder,
// the file itself in it for a model registered from one file.
func TestRegisteredModelsAsJobInputs(t *testing.T) {
	e := newCLIEnv(t)
	dir := t.TempDir()
	e.ok("ml", "workspace", "create", "-n", "dev")
	e.ok("ml", "compute", "create", "-n", "cpu-cluster", "-w", "dev")
	model := filepath.Join(dir, "model")
	if err := os.MkdirAll(filepath.Join(model, "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, model, "MLmodel", "flavors: {}\n")
	writeFile(t, filepath.Join(model, "data"), "coef.json", `{"coef":[2]}`)
	e.ok("ml", "model", "create", "--name", "taxi", "--version", "v1", "--path", model, "-w", "dev")
	single := writeFile(t, dir, "weights.pkl", "pickled")
	e.ok("ml", "model", "create", "--name", "taxi", "--path", single, "--type", "custom_model", "-w", "dev")

	job := writeFile(t, dir, "job.yml", `command: >-
  cat ${{inputs.named}}/data/coef.json > ${{outputs.out}}/named.txt &&
  ls ${{inputs.named}} > ${{outputs.out}}/named-ls.txt &&
  cat ${{inputs.newest}}/weights.pkl > ${{outputs.out}}/newest.txt
environment: {image: python:3.11}
compute: azureml:cpu-cluster
inputs:
  named: {type: mlflow_model, path: azureml:taxi:v1}
  newest: {type: custom_model, path: azureml:taxi@latest}
outputs:
  out: {type: uri_folder}
`)
	name := lastLine(e.ok("ml", "job", "create", "--file", job, "-w", "dev", "--query", "name", "-o", "tsv"))
	if got := e.waitJob("dev", name); got != "Completed" {
		t.Fatalf("job: %s\n%s", got, e.ok("ml", "job", "show", "-n", name, "-w", "dev"))
	}
	dl := filepath.Join(dir, "dl")
	e.ok("ml", "job", "download", "-n", name, "--output-name", "out", "--download-path", dl, "-w", "dev")
	for file, want := range map[string]string{"named.txt": `{"coef":[2]}`, "named-ls.txt": "MLmodel\ndata\n", "newest.txt": "pickled"} {
		if b, err := os.ReadFile(filepath.Join(dl, "named-outputs", "out", file)); err != nil || string(b) != want {
			t.Errorf("%s: %q %v, want %q", file, b, err, want)
		}
	}
	if src := e.ok("ml", "job", "show", "-n", name, "-w", "dev", "--query", "resolution.inputs.named.source", "-o", "tsv"); strings.TrimSpace(src) != "azureml:taxi:v1" {
		t.Errorf("input source: %q", src)
	}

	missing := writeFile(t, dir, "missing.yml", `command: "true"
environment: {image: python:3.11}
compute: azureml:cpu-cluster
inputs:
  m: {type: mlflow_model, path: azureml:taxi:v9}
`)
	if _, errs, code := e.wharf("ml", "job", "create", "--file", missing, "-w", "dev"); code == 0 || !strings.Contains(errs, "taxi:v9") {
		t.Errorf("missing model version: %d %s", code, errs)
	}
}
