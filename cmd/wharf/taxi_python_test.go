package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// taxiPythonRows is how many trips of the sample (or generated) data the
// test trains on: enough for a stable r2, few enough to keep steps quick.
const taxiPythonRows = 3000

// TestTaxiPythonExample runs examples/taxi-python the way its README does:
// infra apply, environment from the conda file, data, the four-step
// pipeline with the real mlflow client in every step, a second run that
// must not register a worse model, and a no-code online deployment of the
// registered model. The server is a separate process because batch jobs
// run the wharf binary (in this process, $WHARF would be the test binary).
func TestTaxiPythonExample(t *testing.T) {
	py := os.Getenv("WHARF_TEST_MLFLOW2_PYTHON")
	if py == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("WHARF_TEST_MLFLOW2_PYTHON is not set; run the suite with ./scripts/test")
		}
		t.Skip("WHARF_TEST_MLFLOW2_PYTHON not set; ./scripts/test builds the mlflow venv")
	}
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 is not on PATH; the example's environment is built from it")
	}
	began := time.Now()
	defer func() { t.Logf("TestTaxiPythonExample took %s", time.Since(began).Round(time.Second)) }()

	root := t.TempDir()
	dataDir := filepath.Join(root, "data")
	shareEnvCache(t, dataDir)
	_, base := startProcess(t, dataDir, "")
	e := &taxiEnv{t: t, ok: cliAgainst(t, dataDir, base)}
	project := filepath.Join(root, "project")
	if err := os.CopyFS(project, os.DirFS("../../examples/taxi-python")); err != nil {
		t.Fatal(err)
	}
	request := taxiPythonData(t, e, filepath.Join(project, "data"))

	// Infra and set-up, as the MLOps pipelines run them.
	e.ok("infra", "apply", "--file", "../../examples/taxi/config-infra-dev.yml")
	const ws = "mlw-taxi-0001dev"
	e.ok("configure", "--defaults", "group=rg-taxi-0001dev", "workspace="+ws)
	train := filepath.Join(project, "mlops", "azureml", "train")
	e.ok("ml", "environment", "create", "--name", "taxi-train-env", "--file", filepath.Join(train, "train-env.yml"))
	e.ok("ml", "data", "create", "--file", filepath.Join(train, "data.yml"), "--name", "taxi-data", "--type", "uri_file")

	// First run: nothing is registered, so the model is promoted.
	first := e.runTaxiPipeline(filepath.Join(train, "pipeline.yml"))
	firstSteps := first.steps
	for _, step := range []string{"prep_data", "train_model", "evaluate_model", "register_model"} {
		if st := firstSteps[step]; st.Status != "Completed" || st.ReusedFrom != "" {
			t.Errorf("first run: %s %s, reused from %q", step, st.Status, st.ReusedFrom)
		}
	}
	prep := e.stepMetrics(firstSteps["prep_data"].Name)
	if prep["raw_rows"] != taxiPythonRows || prep["train_rows"]+prep["val_rows"]+prep["test_rows"] != taxiPythonRows ||
		prep["train_rows"] != math.Floor(taxiPythonRows*0.7) {
		t.Errorf("prep split: %v", prep)
	}
	ev := e.stepMetrics(firstSteps["evaluate_model"].Name)
	r2 := ev["test_r2"]
	// Fares are nearly linear in distance: a working fit explains most of
	// their variance; a broken one (wrong columns, label leaked) does not
	// land here.
	if !(r2 > 0.8 && r2 < 0.9999) || math.Abs(ev["test_rmse"]-math.Sqrt(ev["test_mse"])) > 1e-9 || !(ev["test_mae"] > 0) {
		t.Errorf("evaluate metrics: %v", ev)
	}
	if tr := e.stepMetrics(firstSteps["train_model"].Name); !(tr["train_r2"] > 0.8) {
		t.Errorf("train metrics: %v", tr)
	}
	if first.deployFlag != "1" || ev["deploy_flag"] != 1 {
		t.Errorf("first run: deploy_flag %q (metric %v), want 1 with no version registered", first.deployFlag, ev["deploy_flag"])
	}
	if first.info.ID != "taxi-model:1" || !first.info.Registered {
		t.Errorf("first run model_info.json: %+v", first.info)
	}

	// The version leads back to the register step: job_name is the step
	// (as az ml shows the job a model came from), lineage its run, which
	// is a child of the pipeline's run.
	var mv struct {
		Version string `json:"version"`
		Type    string `json:"type"`
		JobName string `json:"job_name"`
		Lineage struct {
			RunID string `json:"run_id"`
		} `json:"lineage"`
	}
	if err := json.Unmarshal([]byte(e.ok("ml", "model", "show", "--name", "taxi-model", "--version", "1")), &mv); err != nil {
		t.Fatal(err)
	}
	regRun := firstSteps["register_model"].RunID
	if mv.Version != "1" || mv.Type != "mlflow_model" || regRun == "" || mv.Lineage.RunID != regRun || mv.JobName != firstSteps["register_model"].Name {
		t.Errorf("taxi-model:1 = %+v, want job %s, run %s", mv, firstSteps["register_model"].Name, regRun)
	}
	var run struct {
		Run struct {
			Data struct {
				Tags []struct{ Key, Value string } `json:"tags"`
			} `json:"data"`
		} `json:"run"`
	}
	if err := ownerClient(t, dataDir, base).Do(t.Context(), "GET", "/mlflow/v1.0/workspaces/"+ws+"/api/2.0/mlflow/runs/get?run_id="+regRun, nil, &run); err != nil {
		t.Fatal(err)
	}
	tags := map[string]string{}
	for _, kv := range run.Run.Data.Tags {
		tags[kv.Key] = kv.Value
	}
	if tags["wharf.pipeline"] != first.name || tags["mlflow.parentRunId"] != first.runID || first.runID == "" {
		t.Errorf("register run tags %v, want pipeline %s (run %s)", tags, first.name, first.runID)
	}

	// Second run on the same data with coefficients forced non-negative:
	// a worse fit of these fares, which must not be registered. prep_data
	// sees the same data and code and is reused.
	second := e.runTaxiPipeline(filepath.Join(train, "pipeline.yml"), "--set", "jobs.train_model.inputs.positive=true")
	if st := second.steps["prep_data"]; st.ReusedFrom != firstSteps["prep_data"].Name {
		t.Errorf("second run: prep_data reused from %q, want %s", st.ReusedFrom, firstSteps["prep_data"].Name)
	}
	for _, step := range []string{"train_model", "evaluate_model", "register_model"} {
		if st := second.steps[step]; st.Status != "Completed" || st.ReusedFrom != "" {
			t.Errorf("second run: %s %s, reused from %q", step, st.Status, st.ReusedFrom)
		}
	}
	ev2 := e.stepMetrics(second.steps["evaluate_model"].Name)
	var score struct {
		RegisteredR2 map[string]float64 `json:"registered_r2"`
	}
	if err := json.Unmarshal(second.score, &score); err != nil {
		t.Fatalf("score.json: %v\n%s", err, second.score)
	}
	// Version 1 is scored on the same test rows it was evaluated on.
	if len(score.RegisteredR2) != 1 || math.Abs(score.RegisteredR2["1"]-r2) > 1e-12 {
		t.Errorf("registered versions scored %v, want v1 at %v", score.RegisteredR2, r2)
	}
	if !(ev2["test_r2"] < r2) {
		t.Fatalf("the non-negative fit is not worse (r2 %v vs %v): the second run tests nothing", ev2["test_r2"], r2)
	}
	if second.deployFlag != "0" || ev2["deploy_flag"] != 0 || second.info.Registered {
		t.Errorf("a worse model: deploy_flag %q, model_info %+v", second.deployFlag, second.info)
	}
	versions := strings.Fields(e.ok("ml", "model", "list", "--name", "taxi-model", "--query", "[].version", "-o", "tsv"))
	// The registry follows the flag evaluate wrote: one more version for
	// 1, none for 0.
	if want := 1 + int(ev2["deploy_flag"]); len(versions) != want {
		t.Errorf("versions %v after deploy_flag %v, want %d", versions, ev2["deploy_flag"], want)
	}

	// Online: a no-code deployment of taxi-model@latest, invoked with the
	// sample's request; its answers must be the model's own predictions.
	online := filepath.Join(project, "mlops", "azureml", "deploy", "online")
	const endpoint = "taxi-online-taxi0001dev"
	e.ok("ml", "online-endpoint", "create", "--name", endpoint, "-f", filepath.Join(online, "online-endpoint.yml"))
	e.ok("ml", "online-deployment", "create", "--name", "taxi-online-dp", "--endpoint", endpoint, "-f", filepath.Join(online, "online-deployment.yml"))
	e.ok("ml", "online-endpoint", "update", "--name", endpoint, "--traffic", "taxi-online-dp=100")
	out := e.ok("ml", "online-endpoint", "invoke", "-n", endpoint, "--deployment-name", "taxi-online-dp", "--request-file", request)
	var body string
	if err := json.Unmarshal([]byte(out), &body); err != nil {
		t.Fatalf("invoke prints the response as a JSON string: %v\n%s", err, out)
	}
	var got []float64
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatalf("response %s: %v", body, err)
	}
	modelDir := t.TempDir()
	e.ok("ml", "model", "download", "--name", "taxi-model", "--version", "1", "--download-path", modelDir)
	want := modelPredictions(t, py, filepath.Join(modelDir, "taxi-model"), "request", request)
	if len(got) != len(want) || len(got) == 0 {
		t.Fatalf("endpoint answered %v, the model predicts %v", got, want)
	}
	for i := range want {
		if math.Abs(got[i]-want[i]) > 1e-6 {
			t.Errorf("row %d: endpoint %v, model %v", i, got[i], want[i])
		}
	}

	t.Run("batch", func(t *testing.T) {
		batchInput := filepath.Join(filepath.Dir(request), "taxi-batch.csv")
		dir := filepath.Join(project, "mlops", "azureml", "deploy", "batch")
		const bep = "taxi-batch-taxi0001dev"
		e.ok("ml", "batch-endpoint", "create", "--name", bep, "-f", filepath.Join(dir, "batch-endpoint.yml"))
		e.ok("ml", "batch-deployment", "create", "--name", "taxi-batch-dp", "--endpoint", bep, "-f", filepath.Join(dir, "batch-deployment.yml"), "--set-default")
		job := strings.TrimSpace(e.ok("ml", "batch-endpoint", "invoke", "--name", bep, "--deployment-name", "taxi-batch-dp",
			"--input", batchInput, "--input-type", "uri_file", "--query", "name", "-o", "tsv"))
		out, errs, code := e.call("ml", "job", "stream", "-n", job)
		if code != 0 {
			t.Fatalf("batch job: exit %d\n%s\n%s", code, out, errs)
		}
		// The driver's own log line: the scoring script ran, not the
		// built-in MLflow scorer.
		if !strings.Contains(out, "batch_driver: ") {
			t.Errorf("batch_driver.py did not run:\n%s", out)
		}
		dl := t.TempDir()
		e.ok("ml", "job", "download", "-n", job, "--output-name", "score", "--download-path", dl)
		got := predictionColumn(t, filepath.Join(dl, "named-outputs", "score", "predictions.csv"))
		want := modelPredictions(t, py, filepath.Join(modelDir, "taxi-model"), "csv", batchInput)
		if len(got) != len(want) {
			t.Fatalf("%d predictions for %d rows", len(got), len(want))
		}
		for i := range want {
			if math.Abs(got[i]-want[i]) > 1e-6 {
				t.Fatalf("batch row %d: %v, model %v", i, got[i], want[i])
			}
		}
	})
}

// taxiPythonData writes data/taxi-data.csv for the example (the first
// taxiPythonRows trips of the sample, or generated ones when the sample is
// not there) plus taxi-batch.csv and a request file, and returns the
// request file's path.
func taxiPythonData(t *testing.T, e *taxiEnv, dir string) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	const sample = "../../../shared/data/taxi"
	head, err := readLines(filepath.Join(sample, "taxi-data.csv"), taxiPythonRows+1)
	if err == nil && len(head) == taxiPythonRows+1 && strings.Contains(head[0], ",cost,") {
		writeFile(t, dir, "taxi-data.csv", strings.Join(head, "\n")+"\n")
		batch, err := readLines(filepath.Join(sample, "taxi-batch.csv"), 201)
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, dir, "taxi-batch.csv", strings.Join(batch, "\n")+"\n")
		req, err := os.ReadFile(filepath.Join(sample, "taxi-request.json"))
		if err != nil {
			t.Fatal(err)
		}
		return writeFile(t, dir, "taxi-request.json", string(req))
	}
	t.Logf("no sample data at %s (%v): generating %d trips", sample, err, taxiPythonRows)
	e.ok("generate", "taxi", "--rows", strconv.Itoa(taxiPythonRows), "--batch-rows", "200", "--seed", "7", "--out", dir)
	return filepath.Join(dir, "taxi-request.json")
}

// readLines returns up to n lines of a file.
func readLines(path string, n int) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for len(lines) < n && sc.Scan() {
		lines = append(lines, sc.Text())
	}
	return lines, sc.Err()
}

// shareEnvCache makes the server's Python environments live in one folder
// shared by test runs: building the example's environment installs mlflow
// and scikit-learn, minutes on a cold machine, and its spec never changes.
// WHARF_TEST_PYENV_CACHE names the folder; by default it is in the user's
// cache directory. Builds of one spec are serialised by pyenv's file lock,
// so concurrent test processes share it safely.
func shareEnvCache(t *testing.T, dataDir string) {
	t.Helper()
	cache := os.Getenv("WHARF_TEST_PYENV_CACHE")
	if cache == "" {
		base, err := os.UserCacheDir()
		if err != nil {
			return // a cold build in the data dir
		}
		cache = filepath.Join(base, "wharf-test", "pyenv")
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(cache, filepath.Join(dataDir, "envs")); err != nil {
		t.Fatal(err)
	}
}

// taxiEnv is the CLI in this process against a server process.
type taxiEnv struct {
	t  *testing.T
	ok func(args ...string) string // fails the test unless the command succeeds
}

// call runs a command line and returns stdout, stderr and the exit code.
func (e *taxiEnv) call(args ...string) (string, string, int) {
	var out, errb bytes.Buffer
	code := run(context.Background(), args, strings.NewReader(""), &out, &errb)
	return out.String(), errb.String(), code
}

type taxiRun struct {
	name, runID string
	steps       map[string]taxiStep
	deployFlag  string
	score       []byte
	info        struct {
		ID         string `json:"id"`
		Registered bool   `json:"registered"`
	}
}

type taxiStep struct {
	Step       string `json:"step"`
	Name       string `json:"name"`
	Status     string `json:"status"`
	RunID      string `json:"run_id"`
	ReusedFrom string `json:"reused_from"`
}

// runTaxiPipeline submits the pipeline with --stream, as a CI step does,
// and reads back its steps and the evaluate and register outputs.
func (e *taxiEnv) runTaxiPipeline(pipeline string, extra ...string) taxiRun {
	t := e.t
	t.Helper()
	args := append([]string{"ml", "job", "create", "--file", pipeline, "--stream", "--query", "name", "-o", "tsv"}, extra...)
	out, errs, code := e.call(args...)
	if code != 0 {
		t.Fatalf("job create --stream: exit %d\nstdout: %s\nstderr: %s", code, out, errs)
	}
	if !strings.Contains(errs, "4/4 steps completed") {
		t.Errorf("no 4/4 progress line:\n%s", errs)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	r := taxiRun{name: lines[len(lines)-1], steps: map[string]taxiStep{}}
	var j struct {
		Status string     `json:"status"`
		RunID  string     `json:"run_id"`
		Steps  []taxiStep `json:"steps"`
	}
	if err := json.Unmarshal([]byte(e.ok("ml", "job", "show", "-n", r.name)), &j); err != nil {
		t.Fatal(err)
	}
	if j.Status != "Completed" || len(j.Steps) != 4 {
		t.Fatalf("pipeline %s: %s with %d steps\n%s", r.name, j.Status, len(j.Steps), out)
	}
	r.runID = j.RunID
	for _, s := range j.Steps {
		r.steps[s.Step] = s
	}
	dl := t.TempDir()
	e.ok("ml", "job", "download", "-n", r.name, "--output-name", "evaluation_output", "--download-path", dl)
	e.ok("ml", "job", "download", "-n", r.name, "--output-name", "model_info_output_path", "--download-path", dl)
	flag, err := os.ReadFile(filepath.Join(dl, "named-outputs", "evaluation_output", "deploy_flag"))
	if err != nil {
		t.Fatal(err)
	}
	r.deployFlag = strings.TrimSpace(string(flag))
	if r.score, err = os.ReadFile(filepath.Join(dl, "named-outputs", "evaluation_output", "score.json")); err != nil {
		t.Fatal(err)
	}
	info, err := os.ReadFile(filepath.Join(dl, "named-outputs", "model_info_output_path", "model_info.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(info, &r.info); err != nil {
		t.Fatalf("model_info.json: %v\n%s", err, info)
	}
	return r
}

// stepMetrics returns the metrics a step logged to its run.
func (e *taxiEnv) stepMetrics(step string) map[string]float64 {
	e.t.Helper()
	var j struct {
		Metrics map[string]float64 `json:"metrics"`
	}
	if err := json.Unmarshal([]byte(e.ok("ml", "job", "show", "-n", step)), &j); err != nil {
		e.t.Fatal(err)
	}
	return j.Metrics
}

// modelPredictions loads the MLflow model in dir with the mlflow client and
// predicts either the rows of a request file ({"input_data": [[...]]}, in
// the order of the model's signature) or a CSV file.
func modelPredictions(t *testing.T, py, dir, kind, input string) []float64 {
	t.Helper()
	const script = `import json, sys
import mlflow.pyfunc, pandas as pd
model = mlflow.pyfunc.load_model(sys.argv[1])
schema = model.metadata.get_input_schema()
if sys.argv[2] == "request":
    rows = json.load(open(sys.argv[3]))["input_data"]
    df = pd.DataFrame(rows, columns=schema.input_names())
else:
    df = pd.read_csv(sys.argv[3])[schema.input_names()]
df = df.astype({n: t.to_numpy() for n, t in zip(schema.input_names(), schema.input_types())})
print(json.dumps([float(v) for v in model.predict(df)]))
`
	cmd := exec.Command(py, "-c", script, dir, kind, input)
	cmd.Env = append(os.Environ(), "PYTHONWARNINGS=ignore")
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("predicting with the model: %v\n%s", err, stderr)
	}
	var preds []float64
	if err := json.Unmarshal(out, &preds); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	return preds
}

// predictionColumn reads the predictions of a batch job's
// predictions.csv, in row order: the "prediction" column when there is a
// header row, else the last field (batch_driver.py returns file_name and
// prediction, and a driver's rows are written without a header).
func predictionColumn(t *testing.T, path string) []float64 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	if err != nil || len(recs) == 0 {
		t.Fatalf("predictions %s: %v\n%s", path, err, b)
	}
	col := len(recs[0]) - 1
	if i := slices.Index(recs[0], "prediction"); i >= 0 {
		col, recs = i, recs[1:]
	}
	var out []float64
	for _, r := range recs {
		v, err := strconv.ParseFloat(r[col], 64)
		if err != nil {
			t.Fatalf("prediction in %q: %v", r, err)
		}
		out = append(out, v)
	}
	return out
}
