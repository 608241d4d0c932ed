package main

import (
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// hostPython returns the major.minor of python3 on PATH, which the tests'
// environments are built from; the test is skipped without one.
func hostPython(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("python3", "-c", `import sys; print("%d.%d" % sys.version_info[:2])`).Output()
	if err != nil {
		missing(t, "python3 does not run: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// needPyPI skips a test that installs packages from PyPI when it is out of
// reach (it fails under CI, whose machines reach it).
func needPyPI(t *testing.T) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", "pypi.org:443", 5*time.Second)
	if err != nil {
		missing(t, "PyPI is unreachable: %v", err)
	}
	conn.Close()
}

// envScoreScript loads a pickled model from where Azure ML puts a
// registered model's files (MODEL_FILE, below AZUREML_MODEL_DIR), and
// answers with what shows which Python ran it: the packages only the
// deployment's environment has, and the folders AZUREML_MODEL_DIR holds.
const envScoreScript = `import glob, json, os, pickle, sys
import inflection, six

model = None

def init():
    global model
    with open(os.path.join(os.getenv("AZUREML_MODEL_DIR"), os.environ["MODEL_FILE"]), "rb") as f:
        model = pickle.load(f)

def run(raw_data):
    data = json.loads(raw_data)["data"]
    root = os.getenv("AZUREML_MODEL_DIR")
    return {"predictions": [model["scale"] * x for x in data],
            "title": inflection.titleize("wharf environment"),
            "six": six.__version__, "six_file": six.__file__, "prefix": sys.prefix,
            "folders": sorted(os.path.basename(os.path.dirname(d)) for d in glob.glob(root + "/*/")),
            "files": sorted(os.listdir(root))}
`

// TestOnlineDeploymentRunsInItsInlineEnvironment deploys a score.py with an
// inline environment (image and conda file, as Azure ML deployments are
// written): its conda pin and its pip package, neither of which the
// server's Python has, are installed in a virtual environment the
// sandboxed workers run (a registered environment's likewise), and the
// model registered from a folder named model is at AZUREML_MODEL_DIR/model,
// one registered from a single file directly in AZUREML_MODEL_DIR.
func TestOnlineDeploymentRunsInItsInlineEnvironment(t *testing.T) {
	py := hostPython(t)
	if exec.Command("python3", "-c", "import inflection").Run() == nil {
		t.Skip("the host's python3 has inflection, which this test installs")
	}
	needPyPI(t)
	e := newCLIEnv(t)
	dir := t.TempDir()
	model, pkl := pickledModel(t, dir)
	writeFile(t, model, "README.txt", "a model folder with more than the pickle\n")
	if err := os.MkdirAll(filepath.Join(dir, "onlinescoring", "env"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "onlinescoring"), "score.py", envScoreScript)
	// six 1.16 where the host has another: the conda pin is what is
	// installed, as pip's six==1.16.*.
	writeFile(t, filepath.Join(dir, "onlinescoring", "env"), "conda.yml", `name: model-env
channels:
  - conda-forge
dependencies:
  - python=`+py+`
  - six=1.16
  - pip
  - pip:
    - inflection==0.5.1
`)
	e.ok("ml", "workspace", "create", "-n", "mlw")
	e.ok("ml", "model", "create", "--name", "folder-model", "--path", model, "-w", "mlw")
	e.ok("ml", "model", "create", "--name", "file-model", "--path", pkl, "-w", "mlw")
	writeFile(t, dir, "ep.yml", "name: envs\n")
	e.ok("ml", "online-endpoint", "create", "-f", filepath.Join(dir, "ep.yml"), "-w", "mlw")
	inline := `
  image: mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu20.04:latest
  conda_file: onlinescoring/env/conda.yml`
	deployment := func(name, model, file, env string) string {
		return writeFile(t, dir, name+".yml", `$schema: https://azuremlschemas.azureedge.net/latest/managedOnlineDeployment.schema.json
name: `+name+`
endpoint_name: envs
model: azureml:`+model+`:1
code_configuration:
  code: onlinescoring
  scoring_script: score.py
environment: `+env+`
environment_variables:
  MODEL_FILE: `+file+`
instance_type: Standard_DS3_v2
instance_count: 1
`)
	}
	e.ok("ml", "online-deployment", "create", "-f", deployment("blue", "folder-model", "model/sklearn_regression_model.pkl", inline), "-w", "mlw", "--all-traffic")
	e.ok("ml", "online-deployment", "create", "-f", deployment("green", "file-model", "sklearn_regression_model.pkl", inline), "-w", "mlw")
	// The same conda file registered: its conda pin is installed too.
	e.ok("ml", "environment", "create", "--name", "score-env", "--image", "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu20.04:latest",
		"--conda-file", filepath.Join(dir, "onlinescoring", "env", "conda.yml"), "-w", "mlw")
	e.ok("ml", "online-deployment", "create", "-f", deployment("yellow", "folder-model", "model/sklearn_regression_model.pkl", "azureml:score-env@latest"), "-w", "mlw")
	if got := e.ok("ml", "online-deployment", "show", "-n", "blue", "-e", "envs", "-w", "mlw", "--query", "spec.environment.pip[0]", "-o", "tsv"); strings.TrimSpace(got) != "inflection==0.5.1" {
		t.Errorf("the stored environment's pip list: %q", got)
	}

	f := scoreFixture(e, "envs")
	for deployment, layout := range map[string]struct{ folders, files string }{
		"blue":   {"model", "model"},
		"green":  {"", "sklearn_regression_model.pkl"},
		"yellow": {"model", "model"},
	} {
		got := f.scoreInEnvironment(t, deployment)
		if strings.Join(got.Folders, ",") != layout.folders || strings.Join(got.Files, ",") != layout.files {
			t.Errorf("%s: AZUREML_MODEL_DIR holds %q (folders %q), want %q (folders %q)", deployment, got.Files, got.Folders, layout.files, layout.folders)
		}
	}

	// The model registered from a file downloads as that file.
	dl := t.TempDir()
	e.ok("ml", "model", "download", "--name", "file-model", "--version", "1", "--download-path", dl, "-w", "mlw")
	if _, err := os.Stat(filepath.Join(dl, "file-model", "sklearn_regression_model.pkl")); err != nil {
		t.Errorf("download of a model registered from a file: %v", err)
	}
}

// pickledModel writes a folder named model holding a pickled model (a
// dict whose scale is 2.5) and returns the folder and the file.
func pickledModel(t *testing.T, dir string) (string, string) {
	t.Helper()
	model := filepath.Join(dir, "model")
	if err := os.MkdirAll(model, 0o755); err != nil {
		t.Fatal(err)
	}
	pkl := filepath.Join(model, "sklearn_regression_model.pkl")
	if out, err := exec.Command("python3", "-c", `import pickle, sys; pickle.dump({"scale": 2.5}, open(sys.argv[1], "wb"))`, pkl).CombinedOutput(); err != nil {
		t.Fatalf("pickling the model: %v\n%s", err, out)
	}
	return model, pkl
}

// scoreFixture is the endpoint's scoring URI and key.
func scoreFixture(e *cliEnv, endpoint string) *endpointFixture {
	f := &endpointFixture{e: e}
	f.scoringURI = strings.TrimSpace(e.ok("ml", "online-endpoint", "show", "-n", endpoint, "-w", "mlw", "--query", "scoring_uri", "-o", "tsv"))
	f.key = strings.TrimSpace(e.ok("ml", "online-endpoint", "get-credentials", "-n", endpoint, "-w", "mlw", "--query", "primaryKey", "-o", "tsv"))
	return f
}

// envScore is envScoreScript's answer.
type envScore struct {
	Predictions []float64 `json:"predictions"`
	Title       string    `json:"title"`
	Six         string    `json:"six"`
	SixFile     string    `json:"six_file"`
	Prefix      string    `json:"prefix"`
	Folders     []string  `json:"folders"`
	Files       []string  `json:"files"`
}

// scoreInEnvironment scores with envScoreScript on deployment and checks
// that it ran in a virtual environment of the server's cache, with six
// 1.16 and inflection installed, on the model whose scale is 2.5.
func (f *endpointFixture) scoreInEnvironment(t *testing.T, deployment string) envScore {
	t.Helper()
	status, body, _ := f.post(t, f.scoringURI, f.key, deployment, `{"data": [1, 2]}`)
	if status != 200 {
		t.Fatalf("%s: %d %s", deployment, status, body)
	}
	var got envScore
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatalf("%s: %v\n%s", deployment, err, body)
	}
	if len(got.Predictions) != 2 || got.Predictions[0] != 2.5 || got.Predictions[1] != 5 {
		t.Errorf("%s: predictions %v", deployment, got.Predictions)
	}
	if got.Title != "Wharf Environment" || !strings.HasPrefix(got.Six, "1.16.") {
		t.Errorf("%s: inflection said %q, six is %q; want the environment's packages", deployment, got.Title, got.Six)
	}
	// A virtual environment built in the server's cache, not the host's
	// Python.
	if !strings.Contains(got.Prefix, string(filepath.Separator)+filepath.Join("envs", ".store")+string(filepath.Separator)) ||
		!strings.HasPrefix(got.SixFile, got.Prefix+string(filepath.Separator)) {
		t.Errorf("%s: sys.prefix %s, six from %s; want both in the server's environment cache", deployment, got.Prefix, got.SixFile)
	}
	return got
}

// TestDeploymentWithoutEnvironmentRunsInTheModels: an MLflow model's own
// environment (python_env.yaml and the requirements.txt it reads in)
// decides where a deployment that gives none runs, as mlflow models serve
// decides: python_env.yaml over conda.yaml.
func TestDeploymentWithoutEnvironmentRunsInTheModels(t *testing.T) {
	py := hostPython(t)
	needPyPI(t)
	e := newCLIEnv(t)
	dir := t.TempDir()
	model, _ := pickledModel(t, dir)
	writeFile(t, model, "MLmodel", "flavors:\n  python_function:\n    loader_module: mlflow.sklearn\n    env:\n      conda: conda.yaml\n      virtualenv: python_env.yaml\n")
	writeFile(t, model, "python_env.yaml", "python: "+py+".0\nbuild_dependencies:\n- pip\ndependencies:\n- -r requirements.txt\n")
	writeFile(t, model, "requirements.txt", "six==1.16.0\ninflection==0.5.1\n")
	writeFile(t, model, "conda.yaml", "dependencies:\n- python="+py+"\n- pip:\n  - not-this-one==0.0\n")
	if err := os.MkdirAll(filepath.Join(dir, "code"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "code"), "score.py", envScoreScript)
	e.ok("ml", "workspace", "create", "-n", "mlw")
	e.ok("ml", "model", "create", "--name", "logged", "--path", model, "-w", "mlw")
	writeFile(t, dir, "ep.yml", "name: logged\n")
	writeFile(t, dir, "dep.yml", "name: blue\nendpoint_name: logged\nmodel: azureml:logged:1\ncode_configuration:\n  code: code\n  scoring_script: score.py\n"+
		"environment_variables:\n  MODEL_FILE: model/sklearn_regression_model.pkl\ninstance_count: 1\n")
	e.ok("ml", "online-endpoint", "create", "-f", filepath.Join(dir, "ep.yml"), "-w", "mlw")
	e.ok("ml", "online-deployment", "create", "-f", filepath.Join(dir, "dep.yml"), "-w", "mlw", "--all-traffic")
	scoreFixture(e, "logged").scoreInEnvironment(t, "blue")
}

// pyfuncModelFolder writes an MLflow pyfunc model's MLmodel, enough to
// choose the mlflow runtime and to need mlflow to load.
func pyfuncModelFolder(t *testing.T, dir string) string {
	t.Helper()
	model := filepath.Join(dir, "model")
	if err := os.MkdirAll(model, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, model, "MLmodel", "flavors:\n  python_function:\n    loader_module: mlflow.sklearn\n    model_path: model.pkl\n    python_version: 3.11.7\n    env:\n      conda: conda.yaml\n      virtualenv: python_env.yaml\n")
	writeFile(t, model, "model.pkl", "not a pickle")
	return model
}

// TestPyfuncDeploymentWithoutMLflowFailsAtCreate: an MLflow model deployed
// in an environment that lacks mlflow fails when it is created, with the
// worker's reason, and says so in show and list alike, rather than being
// Succeeded and failing every request.
func TestPyfuncDeploymentWithoutMLflowFailsAtCreate(t *testing.T) {
	py := hostPython(t)
	if exec.Command("python3", "-c", "import mlflow").Run() == nil {
		t.Skip("the host's python3 has mlflow")
	}
	e := newCLIEnv(t)
	dir := t.TempDir()
	e.ok("ml", "workspace", "create", "-n", "mlw")
	e.ok("ml", "model", "create", "--name", "pyfunc", "--path", pyfuncModelFolder(t, dir), "-w", "mlw")
	e.ok("ml", "model", "create", "--name", "native", "--path", nativeModel(t, 2, 0, 0), "-w", "mlw")
	// A conda file that installs nothing: a bare virtual environment.
	writeFile(t, dir, "conda.yml", "dependencies:\n  - python="+py+"\n  - pip\n")
	writeFile(t, dir, "ep.yml", "name: bare\n")
	writeFile(t, dir, "red.yml", "name: red\nendpoint_name: bare\nmodel: azureml:pyfunc:1\nenvironment:\n  image: python:"+py+"-slim\n  conda_file: conda.yml\ninstance_count: 1\n")
	writeFile(t, dir, "blue.yml", "name: blue\nendpoint_name: bare\nmodel: azureml:native:1\ninstance_count: 1\n")
	e.ok("ml", "online-endpoint", "create", "-f", filepath.Join(dir, "ep.yml"), "-w", "mlw")
	e.ok("ml", "online-deployment", "create", "-f", filepath.Join(dir, "blue.yml"), "-w", "mlw")
	out, errs, code := e.wharf("ml", "online-deployment", "create", "-f", filepath.Join(dir, "red.yml"), "-w", "mlw")
	if code == 0 || !strings.Contains(errs, "No module named 'mlflow'") {
		t.Fatalf("create: exit %d, want a failure naming the missing mlflow\nstdout: %s\nstderr: %s", code, out, errs)
	}
	show := e.ok("ml", "online-deployment", "show", "-n", "red", "-e", "bare", "-w", "mlw", "--query", "[provisioning_state, error]", "-o", "tsv")
	if !strings.HasPrefix(show, "Failed\n") || !strings.Contains(show, "No module named 'mlflow'") {
		t.Errorf("show: %q", show)
	}
	// list says what show says, deployment by deployment.
	var listed []struct {
		Name              string `json:"name"`
		ProvisioningState string `json:"provisioning_state"`
		Error             string `json:"error"`
	}
	if err := json.Unmarshal([]byte(e.ok("ml", "online-deployment", "list", "-e", "bare", "-w", "mlw")), &listed); err != nil {
		t.Fatal(err)
	}
	if len(listed) != 2 {
		t.Fatalf("list: %+v", listed)
	}
	for _, d := range listed {
		shown := strings.TrimSpace(e.ok("ml", "online-deployment", "show", "-n", d.Name, "-e", "bare", "-w", "mlw", "--query", "provisioning_state", "-o", "tsv"))
		if d.ProvisioningState != shown {
			t.Errorf("%s: list says %q, show %q", d.Name, d.ProvisioningState, shown)
		}
		if want := map[string]string{"red": "Failed", "blue": "Succeeded"}[d.Name]; d.ProvisioningState != want {
			t.Errorf("%s: %q, want %q", d.Name, d.ProvisioningState, want)
		}
	}
}

// envDriver is a batch driver that needs its deployment's environment
// (inflection, six 1.16) and finds the model where Azure ML puts it.
const envDriver = `import glob, os, sys
import inflection, six

scale = None

def init():
    global scale
    root = os.environ["AZUREML_MODEL_DIR"]
    folder = glob.glob(root + "/*/")[0]
    with open(os.path.join(folder, "scale.txt")) as f:
        scale = float(f.read())

def run(mini_batch):
    return [[os.path.basename(p), scale, six.__version__, inflection.titleize("batch env"), os.path.dirname(six.__file__)] for p in mini_batch]
`

// TestBatchDeploymentRunsInItsInlineEnvironment: a batch driver's inline
// environment installs its conda pin and pip package for the job's
// workers, as an online deployment's does.
func TestBatchDeploymentRunsInItsInlineEnvironment(t *testing.T) {
	py := hostPython(t)
	needPyPI(t)
	e := startBatchEnv(t)
	e.scalerModel()
	src := filepath.Join(e.root, "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, src, "env_driver.py", envDriver)
	writeFile(t, e.root, "conda.yml", "dependencies:\n  - python="+py+"\n  - six=1.16\n  - pip\n  - pip:\n    - inflection==0.5.1\n")
	in := parts(t, e.root, 2)
	writeFile(t, e.root, "ep.yml", "name: envs\n")
	e.wharf("ml", "batch-endpoint", "create", "-f", filepath.Join(e.root, "ep.yml"), "-w", "mlw")
	writeFile(t, e.root, "dep.yml", `name: inline
endpoint_name: envs
model: azureml:scaler:1
code_configuration:
  code: src
  scoring_script: env_driver.py
environment:
  image: mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu20.04:latest
  conda_file: conda.yml
compute: azureml:batch-cluster
mini_batch_size: 1
`)
	e.wharf("ml", "batch-deployment", "create", "-f", filepath.Join(e.root, "dep.yml"), "-w", "mlw")
	job := e.invoke("envs", "inline", in)
	if log, status := e.finish(job); status != "Completed" {
		t.Fatalf("job %s:\n%s", status, log)
	}
	pred, _ := e.output(job)
	lines := strings.Split(strings.TrimSpace(pred), "\n")
	if len(lines) != 2 {
		t.Fatalf("output:\n%s", pred)
	}
	for _, line := range lines {
		f := strings.Split(line, ",")
		if len(f) != 5 || f[1] != "2.5" || !strings.HasPrefix(f[2], "1.16.") || f[3] != "Batch Env" ||
			!strings.Contains(f[4], string(filepath.Separator)+filepath.Join("envs", ".store")+string(filepath.Separator)) {
			t.Errorf("output row %q: want the scale, six 1.16, inflection and the deployment's environment", line)
		}
	}
}

// TestBatchPyfuncDeploymentWithoutMLflowFailsAtCreate: a batch deployment
// that scores an MLflow model in an environment lacking mlflow fails when
// it is created, with the reason, and takes no jobs, rather than being
// warm and failing every mini-batch.
func TestBatchPyfuncDeploymentWithoutMLflowFailsAtCreate(t *testing.T) {
	py := hostPython(t)
	e := startBatchEnv(t)
	e.wharf("ml", "model", "create", "--name", "pyfunc", "--path", pyfuncModelFolder(t, e.root), "-w", "mlw")
	writeFile(t, e.root, "conda.yml", "dependencies:\n  - python="+py+"\n  - pip\n")
	writeFile(t, e.root, "ep.yml", "name: bare\n")
	e.wharf("ml", "batch-endpoint", "create", "-f", filepath.Join(e.root, "ep.yml"), "-w", "mlw")
	writeFile(t, e.root, "dep.yml", "name: red\nendpoint_name: bare\nmodel: azureml:pyfunc:1\nenvironment:\n  image: python:"+py+"-slim\n  conda_file: conda.yml\ncompute: azureml:batch-cluster\n")
	if out := e.fail("ml", "batch-deployment", "create", "-f", filepath.Join(e.root, "dep.yml"), "-w", "mlw"); !strings.Contains(out, "No module named 'mlflow'") {
		t.Fatalf("create: want a failure naming the missing mlflow, got\n%s", out)
	}
	show := e.wharf("ml", "batch-deployment", "show", "-n", "red", "-e", "bare", "-w", "mlw", "--query", "[provisioning_state, error]", "-o", "tsv")
	if !strings.HasPrefix(show, "Failed\n") || !strings.Contains(show, "No module named 'mlflow'") {
		t.Errorf("show: %q", show)
	}
	if listed := e.wharf("ml", "batch-deployment", "list", "-e", "bare", "-w", "mlw", "--query", "[].provisioning_state", "-o", "tsv"); strings.TrimSpace(listed) != "Failed" {
		t.Errorf("list: %q", listed)
	}
	if out := e.fail("ml", "batch-endpoint", "invoke", "-n", "bare", "--deployment-name", "red", "--input", parts(t, e.root, 1), "-w", "mlw"); !strings.Contains(out, "No module named 'mlflow'") {
		t.Errorf("invoking a failed deployment: %s", out)
	}
}
