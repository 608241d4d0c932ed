package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/wharfml/wharf/tabular"
)

// The batch tests below run real batch endpoint jobs: a server process
// (jobs run the wharf binary's batch-score), the CLI in this process, and
// Python workers from the MLflow test venv, which has pandas, scikit-learn
// and mlflow.

// batchPython returns the MLflow venv's interpreter, skipping the test
// without it (failing it under CI).
func batchPython(t *testing.T) string {
	t.Helper()
	py := os.Getenv("WHARF_TEST_MLFLOW2_PYTHON")
	if py == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("WHARF_TEST_MLFLOW2_PYTHON is not set; run the suite with ./scripts/test")
		}
		t.Skip("WHARF_TEST_MLFLOW2_PYTHON not set; ./scripts/test builds the mlflow venv")
	}
	if _, err := os.Stat(py); err != nil {
		t.Fatalf("WHARF_TEST_MLFLOW2_PYTHON=%s: %v", py, err)
	}
	return py
}

// batchEnv is a server process with workspace mlw and compute
// batch-cluster, whose jobs find the venv's python3 first on PATH.
type batchEnv struct {
	t       *testing.T
	py      string
	root    string
	dataDir string
	server  *exec.Cmd
	base    string
	wharf   func(args ...string) string
	flags   []string
}

func startBatchEnv(t *testing.T) *batchEnv {
	t.Helper()
	return startBatchEnvWith(t)
}

// startBatchEnvWith is startBatchEnv with extra server flags.
func startBatchEnvWith(t *testing.T, flags ...string) *batchEnv {
	t.Helper()
	py := batchPython(t)
	// Jobs get the server's PATH; deployments without an environment of
	// their own run the venv's python3, named by --python in place of the
	// environments their models were logged with, which would each be
	// built from PyPI.
	t.Setenv("PATH", filepath.Dir(py)+string(filepath.ListSeparator)+os.Getenv("PATH"))
	e := &batchEnv{t: t, py: py, root: t.TempDir(), flags: append([]string{"--python", py}, flags...)}
	e.dataDir = filepath.Join(e.root, "data")
	e.start()
	e.wharf("ml", "workspace", "create", "-n", "mlw")
	e.wharf("ml", "compute", "create", "-n", "batch-cluster", "--max-instances", "2", "-w", "mlw")
	return e
}

// start starts (or restarts) the server on the data folder.
func (e *batchEnv) start() {
	e.server, e.base = startProcess(e.t, e.dataDir, "", e.flags...)
	e.wharf = cliAgainst(e.t, e.dataDir, e.base)
}

// fail runs a command that must fail and returns its stdout and stderr.
func (e *batchEnv) fail(args ...string) string {
	e.t.Helper()
	var out, errb bytes.Buffer
	if code := run(context.Background(), args, strings.NewReader(""), &out, &errb); code == 0 {
		e.t.Fatalf("wharf %s succeeded:\n%s", strings.Join(args, " "), out.String())
	}
	return out.String() + errb.String()
}

// invoke starts a batch job and returns its name.
func (e *batchEnv) invoke(endpoint, deployment, input string) string {
	e.t.Helper()
	return strings.TrimSpace(e.wharf("ml", "batch-endpoint", "invoke", "--name", endpoint, "--deployment-name", deployment,
		"--input", input, "--query", "name", "-o", "tsv", "-w", "mlw"))
}

// finish streams the job to its end and returns its log and final status.
func (e *batchEnv) finish(job string) (string, string) {
	e.t.Helper()
	var out, errb bytes.Buffer
	run(context.Background(), []string{"ml", "job", "stream", "-n", job, "-w", "mlw"}, strings.NewReader(""), &out, &errb)
	status := strings.TrimSpace(e.wharf("ml", "job", "show", "-n", job, "--query", "status", "-o", "tsv", "-w", "mlw"))
	return out.String() + errb.String(), status
}

// batchSummary is summary.json of a batch job's output.
type batchSummary struct {
	MiniBatches int      `json:"mini_batches"`
	Reused      int      `json:"mini_batches_reused"`
	Succeeded   int      `json:"mini_batches_succeeded"`
	FailedItems int      `json:"failed_items"`
	Rows        int64    `json:"rows_scored"`
	Errors      []string `json:"first_errors"`
}

// output downloads a finished job's score output and returns its
// predictions file (empty if there is none) and summary.
func (e *batchEnv) output(job string) (string, batchSummary) {
	e.t.Helper()
	dl := e.t.TempDir()
	e.wharf("ml", "job", "download", "-n", job, "--output-name", "score", "--download-path", dl, "-w", "mlw")
	var sum batchSummary
	b, err := os.ReadFile(filepath.Join(dl, "named-outputs", "score", "summary.json"))
	if err != nil {
		e.t.Fatal(err)
	}
	if err := json.Unmarshal(b, &sum); err != nil {
		e.t.Fatalf("summary.json: %v\n%s", err, b)
	}
	pred, _ := os.ReadFile(filepath.Join(dl, "named-outputs", "score", "predictions.csv"))
	return string(pred), sum
}

// parts writes n CSV files part-<i>.csv of three rows each, columns id and
// x, ids 0 to 3n-1 and x = id + 1, and returns their folder.
func parts(t *testing.T, dir string, n int) string {
	t.Helper()
	in := filepath.Join(dir, "parts")
	if err := os.MkdirAll(in, 0o755); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		var b strings.Builder
		b.WriteString("id,x\n")
		for r := 0; r < 3; r++ {
			id := 3*i + r
			fmt.Fprintf(&b, "%d,%d\n", id, id+1)
		}
		writeFile(t, in, fmt.Sprintf("part-%d.csv", i), b.String())
	}
	return in
}

// driverRow is one output row of the test drivers: the input file's
// name, the row's id, the prediction, the worker's pid, how many times
// init() ran in that worker, and the size of the mini-batch.
type driverRow struct {
	file           string
	id             int
	pred           float64
	pid            string
	inits, batchOf int
}

// driverRows parses a driver's output: CSV, no header row.
func driverRows(t *testing.T, out string) []driverRow {
	t.Helper()
	recs, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil {
		t.Fatalf("output is not CSV: %v\n%s", err, out)
	}
	var rows []driverRow
	for _, r := range recs {
		if len(r) != 6 {
			t.Fatalf("output row %q has %d fields, want 6", r, len(r))
		}
		var d driverRow
		var errs [4]error
		d.file, d.pid = r[0], r[3]
		d.id, errs[0] = strconv.Atoi(r[1])
		d.pred, errs[1] = strconv.ParseFloat(r[2], 64)
		d.inits, errs[2] = strconv.Atoi(r[4])
		d.batchOf, errs[3] = strconv.Atoi(r[5])
		for _, err := range errs {
			if err != nil {
				t.Fatalf("output row %q: %v (a header row?)", r, err)
			}
		}
		rows = append(rows, d)
	}
	return rows
}

// checkDriverRows checks that the rows hold every id below n exactly once,
// from the right file, with prediction 2.5*(id+1), except the ids of the
// files in missing; that init ran once in every worker, at most workers
// of them; and that no mini-batch was larger than batchSize. It returns
// the pids, in order of first appearance.
func checkDriverRows(t *testing.T, rows []driverRow, n, workers, batchSize int, missing ...string) []string {
	t.Helper()
	seen := map[int]int{}
	var pids []string
	pidSeen := map[string]bool{}
	for _, r := range rows {
		seen[r.id]++
		if want := fmt.Sprintf("part-%d.csv", r.id/3); r.file != want {
			t.Errorf("id %d comes from %s, want %s", r.id, r.file, want)
		}
		if math.Abs(r.pred-2.5*float64(r.id+1)) > 1e-9 {
			t.Errorf("id %d: prediction %v, want %v", r.id, r.pred, 2.5*float64(r.id+1))
		}
		if r.inits != 1 {
			t.Errorf("id %d: init() ran %d times in worker %s", r.id, r.inits, r.pid)
		}
		if r.batchOf < 1 || r.batchOf > batchSize {
			t.Errorf("id %d was scored in a mini-batch of %d files; mini_batch_size is %d", r.id, r.batchOf, batchSize)
		}
		if !pidSeen[r.pid] {
			pidSeen[r.pid] = true
			pids = append(pids, r.pid)
		}
	}
	skip := map[string]bool{}
	for _, m := range missing {
		skip[m] = true
	}
	for id := 0; id < n; id++ {
		want := 1
		if skip[fmt.Sprintf("part-%d.csv", id/3)] {
			want = 0
		}
		if seen[id] != want {
			t.Errorf("id %d is in the output %d times, want %d", id, seen[id], want)
		}
	}
	if len(rows) != n-3*len(missing) {
		t.Errorf("%d output rows, want %d", len(rows), n-3*len(missing))
	}
	if workers > 0 && len(pids) > workers {
		t.Errorf("%d worker processes wrote rows; the deployment has %d workers", len(pids), workers)
	}
	return pids
}

// scalerModel registers a custom model folder holding scale.txt (2.5).
func (e *batchEnv) scalerModel() {
	e.t.Helper()
	model := filepath.Join(e.root, "scaler")
	if err := os.MkdirAll(model, 0o755); err != nil {
		e.t.Fatal(err)
	}
	writeFile(e.t, model, "scale.txt", "2.5\n")
	e.wharf("ml", "model", "create", "--name", "scaler", "--path", model, "--type", "custom_model", "-w", "mlw")
}

// driverCommon is imported by the test drivers from their code folder:
// init() checks AZUREML_BI_OUTPUT_PATH, reads the model's scale.txt where
// Azure ML puts it (the registered folder, scaler, keeps its name below
// AZUREML_MODEL_DIR) and counts its calls; rows turns the files of a
// mini-batch into output rows.
const driverCommon = `import glob, os

state = {"inits": 0, "scale": None}

def init():
    state["inits"] += 1
    assert os.path.isdir(os.environ["AZUREML_BI_OUTPUT_PATH"]), "AZUREML_BI_OUTPUT_PATH is not the output folder"
    root = os.environ["AZUREML_MODEL_DIR"]
    folders = glob.glob(root + "/*/")
    assert [os.path.basename(os.path.dirname(f)) for f in folders] == ["scaler"], "AZUREML_MODEL_DIR holds %s" % os.listdir(root)
    with open(os.path.join(root, "scaler/scale.txt")) as f:
        state["scale"] = float(f.read())

def rows(mini_batch):
    assert isinstance(mini_batch, list) and all(os.path.isfile(p) for p in mini_batch), mini_batch
    out = []
    for path in mini_batch:
        with open(path) as f:
            assert next(f).strip() == "id,x", path + " has no header row"
            for line in f:
                i, x = line.strip().split(",")
                out.append([os.path.basename(path), int(i), float(x) * state["scale"], os.getpid(), state["inits"], len(mini_batch)])
    return out
`

// frameDriver returns a pandas DataFrame.
const frameDriver = `import os
import pandas as pd
import common

def init():
    common.init()

def run(mini_batch):
    frames = []
    for path in mini_batch:
        df = pd.read_csv(path)
        frames.append(pd.DataFrame({"file": os.path.basename(path), "id": df["id"], "pred": df["x"] * common.state["scale"],
                                    "pid": os.getpid(), "inits": common.state["inits"], "batch": len(mini_batch)}))
    return pd.concat(frames)
`

// listDriver returns a list of rows.
const listDriver = `import common

def init():
    common.init()

def run(mini_batch):
    return common.rows(mini_batch)
`

// writeDriverCode writes the code folder src with common.py and the given
// drivers.
func writeDriverCode(t *testing.T, dir string, drivers map[string]string) {
	t.Helper()
	src := filepath.Join(dir, "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, src, "common.py", driverCommon)
	for name, text := range drivers {
		writeFile(t, src, name, text)
	}
}

// TestBatchPyfuncModelScoresAFolder logs and registers a scikit-learn
// model with the real mlflow client, deploys it to a batch endpoint
// without code, scores a folder of CSV files and compares every prediction
// with the model's own in Python.
func TestBatchPyfuncModelScoresAFolder(t *testing.T) {
	// A deployment below puts a folder of the test's on its PYTHONPATH;
	// sandboxed jobs and warm processes see it once it is shared.
	shimRoot := t.TempDir()
	if err := os.Chmod(shimRoot, 0o755); err != nil {
		t.Fatal(err)
	}
	e := startBatchEnvWith(t, "--step-ro-path", shimRoot)
	in := filepath.Join(e.root, "trips")
	if err := os.MkdirAll(in, 0o755); err != nil {
		t.Fatal(err)
	}
	// The columns in another order than the model's, with one it does
	// not use.
	for i := 0; i < 5; i++ {
		var b strings.Builder
		b.WriteString("hour,vendor,distance\n")
		for r := 0; r < 4; r++ {
			fmt.Fprintf(&b, "%d,v%d,%g\n", (i*4+r)%24, r%3, 0.5+float64(i*4+r)*1.25)
		}
		writeFile(t, in, fmt.Sprintf("trips-%d.csv", i), b.String())
	}
	token := strings.TrimSpace(e.wharf("account", "get-access-token", "--query", "accessToken", "-o", "tsv"))
	script := writeFile(t, e.root, "train.py", `import glob, json, os, sys
import numpy as np
import pandas as pd
import mlflow
from mlflow.models import infer_signature
from sklearn.linear_model import LinearRegression

rng = np.random.default_rng(0)
X = pd.DataFrame({"distance": rng.uniform(0, 20, 40), "hour": rng.integers(0, 24, 40).astype(float)})
y = 3.5 * X["distance"] + 0.25 * X["hour"] + rng.normal(0, 1, 40)
model = LinearRegression().fit(X, y)
mlflow.set_experiment("taxi-training")
with mlflow.start_run():
    mlflow.sklearn.log_model(model, "model", signature=infer_signature(X, model.predict(X)),
                             pip_requirements=["scikit-learn", "pandas"], registered_model_name="taxi-model")
preds = {}
for path in sorted(glob.glob(os.path.join(sys.argv[1], "*.csv"))):
    df = pd.read_csv(path)
    preds[os.path.basename(path)] = [float(v) for v in model.predict(df[["distance", "hour"]].astype(float))]
print(json.dumps(preds))
`)
	cmd := exec.Command(e.py, script, in)
	cmd.Dir = e.root
	cmd.Env = append(os.Environ(), "MLFLOW_TRACKING_URI="+e.base+"/mlflow/v1.0/workspaces/mlw", "MLFLOW_TRACKING_TOKEN="+token,
		"MLFLOW_HTTP_REQUEST_MAX_RETRIES=0", "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR=false", "DO_NOT_TRACK=true")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("logging the model: %v\n%s%s", err, stdout.String(), stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	var want map[string][]float64
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &want); err != nil || len(want) != 5 {
		t.Fatalf("the script's predictions %q: %v", lines[len(lines)-1], err)
	}
	if v := strings.TrimSpace(e.wharf("ml", "model", "show", "--name", "taxi-model", "--version", "1", "--query", "name", "-o", "tsv", "-w", "mlw")); v != "taxi-model" {
		t.Fatalf("the registered model: %q", v)
	}

	writeFile(t, e.root, "ep.yml", "name: taxi-batch\n")
	writeFile(t, e.root, "dep.yml", `name: mlflow-dp
endpoint_name: taxi-batch
model: azureml:taxi-model@latest
compute: azureml:batch-cluster
resources:
  instance_count: 1
max_concurrency_per_instance: 2
mini_batch_size: 2
output_action: append_row
output_file_name: predictions.csv
retry_settings:
  max_retries: 1
  timeout: 60
error_threshold: -1
`)
	e.wharf("ml", "batch-endpoint", "create", "-f", filepath.Join(e.root, "ep.yml"), "-w", "mlw")
	// Create returns once the deployment is provisioned: its jobs' Python
	// process is warm, with the model's libraries imported, and the
	// job's workers are forked from it.
	e.wharf("ml", "batch-deployment", "create", "-f", filepath.Join(e.root, "dep.yml"), "-w", "mlw")
	if got := strings.TrimSpace(e.wharf("ml", "batch-deployment", "show", "-n", "mlflow-dp", "-e", "taxi-batch", "-w", "mlw",
		"--query", "[provisioning_state, warm]", "-o", "tsv")); got != "Succeeded\nready" {
		t.Errorf("deployment provisioning state and warmth: %q, want Succeeded and ready", got)
	}
	job := e.invoke("taxi-batch", "mlflow-dp", in)
	log, status := e.finish(job)
	if status != "Completed" {
		t.Fatalf("job %s:\n%s", status, log)
	}
	if n := strings.Count(log, "forked from the warm process"); n != 2 {
		t.Errorf("%d workers were forked from the warm process, want 2:\n%s", n, log)
	}
	pred, sum := e.output(job)
	if sum.MiniBatches != 3 || sum.Succeeded != 3 || sum.FailedItems != 0 || sum.Rows != 20 {
		t.Errorf("summary %+v", sum)
	}
	recs, err := csv.NewReader(strings.NewReader(pred)).ReadAll()
	if err != nil || len(recs) != 21 || strings.Join(recs[0], ",") != "file_name,row,prediction" {
		t.Fatalf("predictions (%v):\n%s", err, pred)
	}
	seen := map[string]bool{}
	for _, r := range recs[1:] {
		row, err1 := strconv.Atoi(r[1])
		got, err2 := strconv.ParseFloat(r[2], 64)
		ws, ok := want[r[0]]
		if err1 != nil || err2 != nil || !ok || row < 1 || row > len(ws) {
			t.Errorf("row %q", r)
			continue
		}
		if seen[r[0]+":"+r[1]] {
			t.Errorf("%s row %d is written twice", r[0], row)
		}
		seen[r[0]+":"+r[1]] = true
		if math.Abs(got-ws[row-1]) > 1e-9*math.Max(1, math.Abs(ws[row-1])) {
			t.Errorf("%s row %d: %v, the model in Python says %v", r[0], row, got, ws[row-1])
		}
	}
	if len(seen) != 20 {
		t.Errorf("%d distinct rows, want 20", len(seen))
	}

	// The same rows as one Parquet file: each mini-batch goes to the
	// worker as Parquet. Then again through a deployment whose
	// environment cannot import pyarrow (a module of that name that
	// raises, first on PYTHONPATH), which falls back to JSON rows.
	pqFile := filepath.Join(e.root, "trips.parquet")
	w, err := tabular.CreateParquet(pqFile, []string{"hour", "vendor", "distance"}, []bool{true, false, true})
	if err != nil {
		t.Fatal(err)
	}
	var all []float64
	for i := 0; i < 5; i++ {
		f, err := tabular.Open(filepath.Join(in, fmt.Sprintf("trips-%d.csv", i)), tabular.Options{})
		if err != nil {
			t.Fatal(err)
		}
		fr, err := f.Next()
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		if err := w.Write(fr); err != nil {
			t.Fatal(err)
		}
		all = append(all, want[fmt.Sprintf("trips-%d.csv", i)]...)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	shim := filepath.Join(shimRoot, "pyarrow")
	if err := os.MkdirAll(shim, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, shim, "__init__.py", "raise ImportError('pyarrow is hidden from this deployment')\n")
	writeFile(t, e.root, "dep-json.yml", `name: mlflow-json
endpoint_name: taxi-batch
model: azureml:taxi-model@latest
compute: azureml:batch-cluster
resources:
  instance_count: 1
max_concurrency_per_instance: 1
environment_variables:
  PYTHONPATH: `+filepath.Dir(shim)+`
`)
	// With --no-wait the job, invoked at once, waits for the warming
	// under way rather than starting its own workers afresh.
	e.wharf("ml", "batch-deployment", "create", "-f", filepath.Join(e.root, "dep-json.yml"), "-w", "mlw", "--no-wait")
	for _, dep := range []string{"mlflow-json", "mlflow-dp"} {
		job := e.invoke("taxi-batch", dep, pqFile)
		log, status := e.finish(job)
		if status != "Completed" {
			t.Fatalf("%s: job %s:\n%s", dep, status, log)
		}
		if waited := strings.Contains(log, "waited for the warm Python process"); waited != (dep == "mlflow-json") {
			t.Errorf("%s: waited for warming: %v\n%s", dep, waited, log)
		}
		if fellBack := strings.Contains(log, "has no pyarrow"); fellBack != (dep == "mlflow-json") {
			t.Errorf("%s: fell back to JSON: %v\n%s", dep, fellBack, log)
		}
		// A PYTHONPATH of its own keys another warm process, which has
		// the shim in place of pyarrow.
		if forked := strings.Contains(log, "forked from the warm process"); !forked {
			t.Errorf("%s: workers not forked from a warm process:\n%s", dep, log)
		}
		pred, sum := e.output(job)
		recs, err := csv.NewReader(strings.NewReader(pred)).ReadAll()
		if err != nil || len(recs) != 21 || sum.Rows != 20 {
			t.Fatalf("%s: predictions (%v), summary %+v:\n%s", dep, err, sum, pred)
		}
		for i, r := range recs[1:] {
			got, _ := strconv.ParseFloat(r[2], 64)
			if r[0] != "trips.parquet" || r[1] != strconv.Itoa(i+1) || math.Abs(got-all[i]) > 1e-9*math.Max(1, math.Abs(all[i])) {
				t.Errorf("%s: row %q, the model in Python says %v", dep, r, all[i])
			}
		}
	}

	// A restarted server warms the deployments it finds.
	if err := syscall.Kill(-e.server.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = e.server.Wait()
	e.start()
	job = e.invoke("taxi-batch", "mlflow-dp", pqFile)
	if log, status := e.finish(job); status != "Completed" || !strings.Contains(log, "forked from the warm process") {
		t.Errorf("after a restart: job %s, workers forked from a warm process: %v\n%s", status,
			strings.Contains(log, "forked from the warm process"), log)
	}
}

// TestBatchDriverReturnsFramesAndLists deploys a code_configuration batch
// driver in both YAML forms: one returning a pandas DataFrame, one a list.
// init() runs once in each worker, run() gets the local paths of at most
// mini_batch_size files, and each returned row is written once, with no
// header. A single file is passed as one file of the same name.
func TestBatchDriverReturnsFramesAndLists(t *testing.T) {
	e := startBatchEnv(t)
	e.scalerModel()
	writeDriverCode(t, e.root, map[string]string{"frame_driver.py": frameDriver, "list_driver.py": listDriver})
	in := parts(t, e.root, 5)
	writeFile(t, e.root, "ep.yml", "name: drivers\n")
	e.wharf("ml", "batch-endpoint", "create", "-f", filepath.Join(e.root, "ep.yml"), "-w", "mlw")
	writeFile(t, e.root, "frame.yml", `$schema: https://azuremlschemas.azureedge.net/latest/batchDeployment.schema.json
name: frame
endpoint_name: drivers
model: azureml:scaler:1
code_configuration:
  code: src
  scoring_script: frame_driver.py
compute: azureml:batch-cluster
resources:
  instance_count: 1
max_concurrency_per_instance: 2
mini_batch_size: 2
output_action: append_row
output_file_name: predictions.csv
retry_settings:
  max_retries: 1
  timeout: 60
error_threshold: 0
`)
	writeFile(t, e.root, "list.yml", `$schema: https://azuremlschemas.azureedge.net/latest/modelBatchDeployment.schema.json
name: list
endpoint_name: drivers
type: model
model: azureml:scaler@latest
code_configuration:
  code: ./src
  scoring_script: list_driver.py
compute: azureml:batch-cluster
resources:
  instance_count: 1
settings:
  max_concurrency_per_instance: 1
  mini_batch_size: 3
  output_action: append_row
  output_file_name: scored.csv
  retry_settings:
    max_retries: 1
    timeout: 60
  error_threshold: 0
`)
	e.wharf("ml", "batch-deployment", "create", "-f", filepath.Join(e.root, "frame.yml"), "-w", "mlw")
	e.wharf("ml", "batch-deployment", "create", "-f", filepath.Join(e.root, "list.yml"), "-w", "mlw")
	if cc := strings.TrimSpace(e.wharf("ml", "batch-deployment", "show", "-n", "list", "-e", "drivers", "-w", "mlw",
		"--query", "spec.code_configuration.scoring_script", "-o", "tsv")); cc != "list_driver.py" {
		t.Errorf("the stored scoring script: %q", cc)
	}

	for _, tc := range []struct {
		deployment, file   string
		workers, batchSize int
		miniBatches        int
	}{
		{"frame", "predictions.csv", 2, 2, 3},
		{"list", "scored.csv", 1, 3, 2},
	} {
		job := e.invoke("drivers", tc.deployment, in)
		log, status := e.finish(job)
		if status != "Completed" {
			t.Fatalf("%s: job %s:\n%s", tc.deployment, status, log)
		}
		dl := t.TempDir()
		e.wharf("ml", "job", "download", "-n", job, "--output-name", "score", "--download-path", dl, "-w", "mlw")
		out, err := os.ReadFile(filepath.Join(dl, "named-outputs", "score", tc.file))
		if err != nil {
			t.Fatalf("%s: %v", tc.deployment, err)
		}
		checkDriverRows(t, driverRows(t, string(out)), 15, tc.workers, tc.batchSize)
		var sum batchSummary
		b, _ := os.ReadFile(filepath.Join(dl, "named-outputs", "score", "summary.json"))
		if err := json.Unmarshal(b, &sum); err != nil || sum.MiniBatches != tc.miniBatches || sum.Rows != 15 || sum.FailedItems != 0 {
			t.Errorf("%s: summary %+v, %v", tc.deployment, sum, err)
		}
	}

	// One file: its rows reach the driver as a file of the same name,
	// with the header row.
	job := e.invoke("drivers", "list", filepath.Join(in, "part-1.csv"))
	if log, status := e.finish(job); status != "Completed" {
		t.Fatalf("single file: job %s:\n%s", status, log)
	}
	dl := t.TempDir()
	e.wharf("ml", "job", "download", "-n", job, "--output-name", "score", "--download-path", dl, "-w", "mlw")
	out, err := os.ReadFile(filepath.Join(dl, "named-outputs", "score", "scored.csv"))
	if err != nil {
		t.Fatal(err)
	}
	rows := driverRows(t, string(out))
	if len(rows) != 3 {
		t.Fatalf("single file: %d rows\n%s", len(rows), out)
	}
	for i, r := range rows {
		if r.file != "part-1.csv" || r.id != 3+i || r.pred != 2.5*float64(4+i) || r.batchOf != 1 {
			t.Errorf("single file row %d: %+v", i, r)
		}
	}

	// list and delete.
	names := e.wharf("ml", "batch-deployment", "list", "--endpoint-name", "drivers", "-w", "mlw", "--query", "[].name", "-o", "tsv")
	if got := strings.Fields(names); len(got) != 2 || !strings.Contains(names, "frame") || !strings.Contains(names, "list") {
		t.Errorf("batch-deployment list: %q", names)
	}
	// frame, the first one created, is the endpoint's default: it stays.
	if out := e.fail("ml", "batch-deployment", "delete", "--name", "frame", "--endpoint-name", "drivers", "-w", "mlw", "--yes"); !strings.Contains(out, "default") {
		t.Errorf("deleting the default deployment: %s", out)
	}
	e.wharf("ml", "batch-deployment", "delete", "--name", "list", "--endpoint-name", "drivers", "-w", "mlw", "--yes")
	if names := strings.Fields(e.wharf("ml", "batch-deployment", "list", "-e", "drivers", "-w", "mlw", "--query", "[].name", "-o", "tsv")); len(names) != 1 || names[0] != "frame" {
		t.Errorf("after delete: %q", names)
	}
	e.fail("ml", "batch-deployment", "show", "-n", "list", "-e", "drivers", "-w", "mlw")
}

// TestBatchDriverWorkerKilledMidBatchIsRetried: run() kills its own
// process on the first attempt of one mini-batch; the attempt fails, the
// worker is restarted (init() again, in a new process), the mini-batch is
// retried, and every row is written exactly once.
func TestBatchDriverWorkerKilledMidBatchIsRetried(t *testing.T) {
	// The driver marks its progress in a folder of the test's, which a
	// sandboxed step could not write.
	e := startBatchEnvWith(t, "--unsafe-run-steps-as-server-user")
	e.scalerModel()
	marks := filepath.Join(e.root, "marks")
	if err := os.MkdirAll(marks, 0o755); err != nil {
		t.Fatal(err)
	}
	writeDriverCode(t, e.root, map[string]string{"kill_driver.py": `import os, signal
import common

def init():
    common.init()

def run(mini_batch):
    marker = os.path.join(os.environ["MARK_DIR"], "killed")
    if any(os.path.basename(p) == "part-2.csv" for p in mini_batch) and not os.path.exists(marker):
        open(marker, "w").close()
        os.kill(os.getpid(), signal.SIGKILL)
    return common.rows(mini_batch)
`})
	in := parts(t, e.root, 5)
	writeFile(t, e.root, "ep.yml", "name: crashy\n")
	writeFile(t, e.root, "dep.yml", `name: kill
endpoint_name: crashy
model: azureml:scaler:1
code_configuration:
  code: src
  scoring_script: kill_driver.py
compute: azureml:batch-cluster
max_concurrency_per_instance: 1
mini_batch_size: 1
retry_settings:
  max_retries: 2
  timeout: 60
error_threshold: 0
environment_variables:
  MARK_DIR: `+marks+`
`)
	e.wharf("ml", "batch-endpoint", "create", "-f", filepath.Join(e.root, "ep.yml"), "-w", "mlw")
	e.wharf("ml", "batch-deployment", "create", "-f", filepath.Join(e.root, "dep.yml"), "-w", "mlw")
	job := e.invoke("crashy", "kill", in)
	log, status := e.finish(job)
	if status != "Completed" {
		t.Fatalf("job %s:\n%s", status, log)
	}
	if _, err := os.Stat(filepath.Join(marks, "killed")); err != nil {
		t.Fatal("the driver never killed its worker")
	}
	if !strings.Contains(log, "mini-batch 2 attempt 1 failed") || !strings.Contains(log, "crashed") {
		t.Errorf("the log does not report the crash:\n%s", log)
	}
	pred, sum := e.output(job)
	if sum.MiniBatches != 5 || sum.Succeeded != 5 || sum.FailedItems != 0 || sum.Rows != 15 {
		t.Errorf("summary %+v", sum)
	}
	rows := driverRows(t, pred)
	pids := checkDriverRows(t, rows, 15, 0, 1)
	// One worker: parts 0 and 1 from the first process, 2 to 4 from its
	// replacement, whose init() ran once too.
	if len(pids) != 2 {
		t.Errorf("rows from %d worker processes %q, want 2 (the killed one and its replacement)", len(pids), pids)
	}
	for _, r := range rows {
		if want := pids[min(r.id/6, len(pids)-1)]; r.pid != want {
			t.Errorf("id %d from worker %s, want %s", r.id, r.pid, want)
		}
	}
}

// TestBatchJobResumesAfterServerKillWithoutDuplicates kills the server
// with SIGKILL while a driver waits in the fourth of six mini-batches,
// restarts it on the same data, and checks that the job's new attempt
// reuses the three finished mini-batches and that the output has every
// row once.
func TestBatchJobResumesAfterServerKillWithoutDuplicates(t *testing.T) {
	// The driver marks its progress in a folder of the test's, which a
	// sandboxed step could not write.
	e := startBatchEnvWith(t, "--unsafe-run-steps-as-server-user")
	e.scalerModel()
	marks := filepath.Join(e.root, "marks")
	if err := os.MkdirAll(marks, 0o755); err != nil {
		t.Fatal(err)
	}
	reached := filepath.Join(marks, "reached")
	writeDriverCode(t, e.root, map[string]string{"wait_driver.py": `import os, time
import common

def init():
    common.init()

def run(mini_batch):
    if any(os.path.basename(p) == "part-3.csv" for p in mini_batch):
        marks = os.environ["MARK_DIR"]
        with open(os.path.join(marks, "reached.tmp"), "w") as f:
            f.write("%d\n" % os.getpid())
        os.rename(os.path.join(marks, "reached.tmp"), os.path.join(marks, "reached"))
        while not os.path.exists(os.path.join(marks, "release")):
            time.sleep(0.02)
    return common.rows(mini_batch)
`})
	in := parts(t, e.root, 6)
	writeFile(t, e.root, "ep.yml", "name: slow\n")
	writeFile(t, e.root, "dep.yml", `name: wait
endpoint_name: slow
type: model
model: azureml:scaler:1
code_configuration:
  code: src
  scoring_script: wait_driver.py
compute: azureml:batch-cluster
settings:
  max_concurrency_per_instance: 1
  mini_batch_size: 1
  retry_settings:
    max_retries: 0
    timeout: 300
  error_threshold: 0
  environment_variables:
    MARK_DIR: `+marks+`
`)
	e.wharf("ml", "batch-endpoint", "create", "-f", filepath.Join(e.root, "ep.yml"), "-w", "mlw")
	e.wharf("ml", "batch-deployment", "create", "-f", filepath.Join(e.root, "dep.yml"), "-w", "mlw")
	job := e.invoke("slow", "wait", in)
	// One worker takes the mini-batches in order: parts 0 to 2 are done
	// when the driver waits in part 3.
	firstWorker, err := strconv.Atoi(waitForFile(t, reached))
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(-e.server.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = e.server.Wait()
	os.Remove(reached)

	e.start()
	// The restarted server stops the interrupted attempt and runs the job
	// again; its driver waits in part 3 again, in a new worker.
	secondWorker, err := strconv.Atoi(waitForFile(t, reached))
	if err != nil {
		t.Fatal(err)
	}
	if secondWorker == firstWorker || processAlive(firstWorker) {
		t.Errorf("the interrupted attempt's worker %d is still there (new one %d)", firstWorker, secondWorker)
	}
	writeFile(t, marks, "release", "go\n")
	log, status := e.finish(job)
	if status != "Completed" {
		t.Fatalf("job after the restart: %s\n%s", status, log)
	}
	pred, sum := e.output(job)
	if sum.MiniBatches != 6 || sum.Reused != 3 || sum.Succeeded != 3 || sum.FailedItems != 0 || sum.Rows != 9 {
		t.Errorf("summary %+v, want 3 of 6 mini-batches reused", sum)
	}
	if !strings.Contains(log, "6 mini-batches (3 reused)") {
		t.Errorf("the log does not report the reused mini-batches:\n%s", log)
	}
	checkDriverRows(t, driverRows(t, pred), 18, 0, 1)
}

// TestBatchDriverBadScripts: a code folder without the scoring script is
// refused at create; a driver without init() fails its job with the
// reason; a run() that raises fails its mini-batch after the retries, and
// the exception is in the summary and the log, counted against
// error_threshold.
func TestBatchDriverBadScripts(t *testing.T) {
	e := startBatchEnv(t)
	e.scalerModel()
	writeDriverCode(t, e.root, map[string]string{
		"no_init.py": "import common\n\ndef run(mini_batch):\n    return common.rows(mini_batch)\n",
		"raising.py": `import os
import common

def init():
    common.init()

def run(mini_batch):
    for p in mini_batch:
        if os.path.basename(p) == "part-1.csv":
            raise ValueError("cannot score " + os.path.basename(p))
    return common.rows(mini_batch)
`,
	})
	in := parts(t, e.root, 3)
	writeFile(t, e.root, "ep.yml", "name: bad\n")
	e.wharf("ml", "batch-endpoint", "create", "-f", filepath.Join(e.root, "ep.yml"), "-w", "mlw")
	dep := func(name, script, extra string) string {
		return writeFile(t, e.root, name+".yml", "name: "+name+"\nendpoint_name: bad\nmodel: azureml:scaler:1\n"+
			"code_configuration:\n  code: src\n  scoring_script: "+script+"\ncompute: azureml:batch-cluster\n"+
			"mini_batch_size: 1\nretry_settings:\n  max_retries: 1\n  timeout: 60\n"+extra)
	}

	if out := e.fail("ml", "batch-deployment", "create", "-f", dep("missing", "nowhere.py", ""), "-w", "mlw"); !strings.Contains(out, "scoring_script") || !strings.Contains(out, "nowhere.py") {
		t.Errorf("a scoring script not in the code folder: %s", out)
	}

	e.wharf("ml", "batch-deployment", "create", "-f", dep("noinit", "no_init.py", ""), "-w", "mlw")
	job := e.invoke("bad", "noinit", in)
	if log, status := e.finish(job); status != "Failed" || !strings.Contains(log, "no_init.py defines no init() function") {
		t.Errorf("a driver without init(): job %s\n%s", status, log)
	}

	e.wharf("ml", "batch-deployment", "create", "-f", dep("tolerant", "raising.py", "error_threshold: -1\n"), "-w", "mlw")
	job = e.invoke("bad", "tolerant", in)
	log, status := e.finish(job)
	if status != "Completed" {
		t.Fatalf("a failed mini-batch under error_threshold -1: job %s\n%s", status, log)
	}
	if !strings.Contains(log, "mini-batch 1 attempt 2 failed: ValueError: cannot score part-1.csv") || !strings.Contains(log, "Traceback") {
		t.Errorf("the log lacks the exception and its traceback:\n%s", log)
	}
	pred, sum := e.output(job)
	if sum.MiniBatches != 3 || sum.Succeeded != 2 || sum.FailedItems != 1 || len(sum.Errors) != 1 ||
		sum.Errors[0] != "mini-batch 1 failed after 2 attempts: ValueError: cannot score part-1.csv" {
		t.Errorf("summary %+v", sum)
	}
	checkDriverRows(t, driverRows(t, pred), 9, 0, 1, "part-1.csv")

	// The same failure over error_threshold 0, in the type: model form.
	writeFile(t, e.root, "strict.yml", `name: strict
endpoint_name: bad
type: model
model: azureml:scaler:1
code_configuration:
  code: src
  scoring_script: raising.py
compute: azureml:batch-cluster
settings:
  mini_batch_size: 1
  retry_settings:
    max_retries: 0
    timeout: 60
  error_threshold: 0
`)
	e.wharf("ml", "batch-deployment", "create", "-f", filepath.Join(e.root, "strict.yml"), "-w", "mlw")
	job = e.invoke("bad", "strict", in)
	if log, status := e.finish(job); status != "Failed" || !strings.Contains(log, "exceed error_threshold 0") ||
		!strings.Contains(log, "ValueError: cannot score part-1.csv") {
		t.Errorf("over error_threshold 0: job %s\n%s", status, log)
	}
}
