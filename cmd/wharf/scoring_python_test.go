package main

import (
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// scoreScript is a score.py: init reads a file of the model, registered
// from a folder named model, where Azure ML puts it; run echoes, sleeps,
// or kills its own worker on request.
const scoreScript = `import glob, json, os, time
model = None
def init():
    global model
    folders = glob.glob(os.getenv("AZUREML_MODEL_DIR") + "/*/")
    assert [os.path.basename(os.path.dirname(f)) for f in folders] == ["model"], folders
    with open(os.path.join(os.getenv("AZUREML_MODEL_DIR"), "model/weights.txt")) as f:
        model = float(f.read())
def run(raw_data):
    data = json.loads(raw_data)
    if data.get("sleep"):
        time.sleep(data["sleep"])
    if data.get("crash"):
        os._exit(1)
    return [model * x for x in data["data"]]
`

func scoreScriptEndpoint(t *testing.T, e *cliEnv, maxConcurrent int, timeoutMS int) (*endpointFixture, string) {
	t.Helper()
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 is not on PATH")
	}
	dir := t.TempDir()
	model := filepath.Join(dir, "model")
	os.MkdirAll(model, 0o755)
	writeFile(t, model, "weights.txt", "2.5")
	os.MkdirAll(filepath.Join(dir, "code"), 0o755)
	writeFile(t, filepath.Join(dir, "code"), "score.py", scoreScript)
	e.ok("ml", "workspace", "create", "-n", "mlw")
	e.ok("ml", "model", "create", "--name", "scaled", "--path", model, "--type", "custom_model", "-w", "mlw")
	writeFile(t, dir, "ep.yml", "name: custom\n")
	writeFile(t, dir, "dep.yml", `name: blue
endpoint_name: custom
model: azureml:scaled:1
code_configuration:
  code: code
  scoring_script: score.py
environment: azureml:host-env@latest
instance_count: 1
request_settings:
  max_concurrent_requests_per_instance: `+strconv.Itoa(maxConcurrent)+`
  request_timeout_ms: `+strconv.Itoa(timeoutMS)+`
`)
	writeFile(t, dir, "env.yml", "name: host-env\nimage: mcr.microsoft.com/azureml/minimal-ubuntu22.04-py39-cpu-inference\n")
	e.ok("ml", "environment", "create", "-f", filepath.Join(dir, "env.yml"), "-w", "mlw")
	e.ok("ml", "online-endpoint", "create", "-f", filepath.Join(dir, "ep.yml"), "-w", "mlw")
	e.ok("ml", "online-deployment", "create", "-f", filepath.Join(dir, "dep.yml"), "-w", "mlw", "--all-traffic")
	f := &endpointFixture{e: e}
	f.scoringURI = strings.TrimSpace(e.ok("ml", "online-endpoint", "show", "-n", "custom", "-w", "mlw", "--query", "scoring_uri", "-o", "tsv"))
	f.key = strings.TrimSpace(e.ok("ml", "online-endpoint", "get-credentials", "-n", "custom", "-w", "mlw", "--query", "primaryKey", "-o", "tsv"))
	return f, dir
}

func TestScoreScriptDeploymentLimitsAndCrashes(t *testing.T) {
	e := newCLIEnv(t)
	f, _ := scoreScriptEndpoint(t, e, 1, 1500)
	status, body, _ := f.post(t, f.scoringURI, f.key, "", `{"data": [1, 2]}`)
	if status != 200 || strings.TrimSpace(body) != "[2.5, 5.0]" {
		t.Fatalf("score.py: %d %s", status, body)
	}
	// One slot: a second request while one is running is refused with
	// 429, not queued.
	var wg sync.WaitGroup
	wg.Add(1)
	slow := make(chan int, 1)
	go func() {
		defer wg.Done()
		s, _, _ := f.post(t, f.scoringURI, f.key, "", `{"data": [1], "sleep": 0.8}`)
		slow <- s
	}()
	time.Sleep(200 * time.Millisecond)
	if s, _, _ := f.post(t, f.scoringURI, f.key, "", `{"data": [1]}`); s != 429 {
		t.Errorf("request beyond max_concurrent_requests_per_instance: %d, want 429", s)
	}
	wg.Wait()
	if s := <-slow; s != 200 {
		t.Errorf("the slow request: %d", s)
	}
	// Past request_timeout_ms: 408, and the next request gets its own
	// answer, not the late one.
	if s, _, _ := f.post(t, f.scoringURI, f.key, "", `{"data": [1], "sleep": 5}`); s != 408 {
		t.Errorf("slow request: %d, want 408", s)
	}
	if s, body, _ := f.post(t, f.scoringURI, f.key, "", `{"data": [4]}`); s != 200 || strings.TrimSpace(body) != "[10.0]" {
		t.Errorf("after a timeout: %d %s", s, body)
	}
	// A worker that dies mid-request: that request fails at once with a
	// 5xx, the worker is restarted, the next request is answered.
	if s, _, _ := f.post(t, f.scoringURI, f.key, "", `{"data": [1], "crash": true}`); s < 500 {
		t.Errorf("crashing request: %d, want 5xx", s)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		s, body, _ := f.post(t, f.scoringURI, f.key, "", `{"data": [2]}`)
		if s == 200 && strings.TrimSpace(body) == "[5.0]" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no answer after the crash: %d %s", s, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if r := metricValue(t, e, `wharf_endpoint_worker_restarts{deployment="blue",endpoint="custom",workspace="mlw"}`); r < 1 {
		t.Errorf("worker restarts metric %v", r)
	}
	logs := e.ok("ml", "online-deployment", "get-logs", "-n", "blue", "-e", "custom", "-w", "mlw")
	if logs == "" {
		t.Error("get-logs printed nothing")
	}
}

// TestPyfuncDeploymentServesARealMLflowModel trains and logs a scikit-learn
// model with the real mlflow client, registers it, and serves it without
// a scoring script.
func TestPyfuncDeploymentServesARealMLflowModel(t *testing.T) {
	py := os.Getenv("WHARF_TEST_MLFLOW2_PYTHON")
	if py == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("WHARF_TEST_MLFLOW2_PYTHON is not set; run the suite with ./scripts/test")
		}
		t.Skip("WHARF_TEST_MLFLOW2_PYTHON not set")
	}
	dir := t.TempDir()
	model := filepath.Join(dir, "model")
	train := `import sys, pandas as pd, mlflow
from sklearn.linear_model import LinearRegression
from mlflow.models import infer_signature
X = pd.DataFrame({"distance": [1.0, 2.0, 3.0, 4.0], "hour": [1.0, 5.0, 2.0, 8.0]})
y = 2 * X["distance"] + 0.5 * X["hour"] + 1
m = LinearRegression().fit(X, y)
mlflow.sklearn.save_model(m, sys.argv[1], signature=infer_signature(X, m.predict(X)))
print(list(m.predict(pd.DataFrame({"distance": [3.0], "hour": [10.0]}))))
`
	out, err := exec.Command(py, "-c", train, model).CombinedOutput()
	if err != nil {
		t.Fatalf("training: %v\n%s", err, out)
	}
	e := newPythonCLIEnv(t, py)
	e.ok("ml", "workspace", "create", "-n", "mlw")
	e.ok("ml", "model", "create", "--name", "taxi-model", "--path", model, "-w", "mlw")
	writeFile(t, dir, "ep.yml", "name: taxi\n")
	writeFile(t, dir, "dep.yml", "name: blue\nendpoint_name: taxi\nmodel: azureml:taxi-model@latest\ninstance_count: 1\n")
	e.ok("ml", "online-endpoint", "create", "-f", filepath.Join(dir, "ep.yml"), "-w", "mlw")
	e.ok("ml", "online-deployment", "create", "-f", filepath.Join(dir, "dep.yml"), "-w", "mlw", "--all-traffic")
	f := &endpointFixture{e: e}
	f.scoringURI = strings.TrimSpace(e.ok("ml", "online-endpoint", "show", "-n", "taxi", "-w", "mlw", "--query", "scoring_uri", "-o", "tsv"))
	f.key = strings.TrimSpace(e.ok("ml", "online-endpoint", "get-credentials", "-n", "taxi", "-w", "mlw", "--query", "primaryKey", "-o", "tsv"))
	base := strings.TrimSuffix(f.scoringURI, "/score")
	for body, want := range map[string]float64{
		`{"input_data": {"columns": ["distance", "hour"], "index": [0], "data": [[3, 10]]}}`: 12,
		`{"input_data": {"distance": [3], "hour": [10]}}`:                                    12,
		`{"input_data": [[3, 10]]}`:                                                          12,
		`{"dataframe_split": {"columns": ["hour", "distance"], "data": [[10, 3]]}}`:          12,
		`{"dataframe_records": [{"hour": 10, "distance": 3}]}`:                               12,
		`{"instances": [{"distance": 3, "hour": 10}]}`:                                       12,
		`{"inputs": {"distance": [3], "hour": [10]}}`:                                        12,
		`{"inputs": [{"name": "distance", "shape": [1], "datatype": "FP64", "data": [3]}, {"name": "hour", "shape": [1], "datatype": "FP64", "data": [10]}]}`: 12,
	} {
		url := f.scoringURI
		if strings.Contains(body, `"datatype"`) {
			url = base + "/v2/models/taxi-model/infer"
		}
		status, resp, _ := f.post(t, url, f.key, "", body)
		var got any
		_ = json.Unmarshal([]byte(resp), &got)
		v := firstNumber(got)
		if status != 200 || math.Abs(v-want) > 1e-9 {
			t.Errorf("%s: %d %s, want %v", body, status, resp, want)
		}
	}
	if status, resp, _ := f.post(t, f.scoringURI, f.key, "", `{"input_data": {"columns": ["distance"], "data": [[3]]}}`); status != 400 || !strings.Contains(resp, "hour") {
		t.Errorf("missing column: %d %s", status, resp)
	}
}

func firstNumber(v any) float64 {
	switch t := v.(type) {
	case float64:
		return t
	case []any:
		if len(t) > 0 {
			return firstNumber(t[0])
		}
	case map[string]any:
		if outs, ok := t["outputs"].([]any); ok && len(outs) > 0 {
			if o, ok := outs[0].(map[string]any); ok {
				return firstNumber(o["data"])
			}
		}
		return firstNumber(t["predictions"])
	}
	return math.NaN()
}

// newPythonCLIEnv is newCLIEnv with a server that runs model deployments
// with python.
func newPythonCLIEnv(t *testing.T, python string) *cliEnv {
	t.Helper()
	return newCLIEnvWith(t, func(o *serverOptions) { o.python = python })
}
