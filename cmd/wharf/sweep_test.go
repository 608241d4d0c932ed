package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// mlflowPython is a Python with the mlflow client, for trials that log
// their metrics with it.
func mlflowPython(t *testing.T) string {
	t.Helper()
	for _, v := range []string{"WHARF_TEST_MLFLOW2_PYTHON", "WHARF_TEST_MLFLOW3_PYTHON"} {
		if py := os.Getenv(v); py != "" {
			return py
		}
	}
	missing(t, "neither WHARF_TEST_MLFLOW2_PYTHON nor WHARF_TEST_MLFLOW3_PYTHON is set; ./scripts/test builds the mlflow venvs")
	return ""
}

// sweepView is the part of a sweep or trial the tests read.
type sweepView struct {
	Name       string            `json:"name"`
	Type       string            `json:"type"`
	Parent     string            `json:"parent"`
	Status     string            `json:"status"`
	Error      string            `json:"error"`
	RunID      string            `json:"run_id"`
	Parameters map[string]string `json:"parameters"`
	Properties map[string]string `json:"properties"`
	BestTrial  *struct {
		Name       string            `json:"name"`
		Parameters map[string]string `json:"parameters"`
		Metric     string            `json:"metric"`
		Value      float64           `json:"value"`
	} `json:"best_trial"`
	Steps []sweepView `json:"steps"`
}

func (e *cliEnv) showSweep(ws, name string) sweepView {
	e.t.Helper()
	var v sweepView
	if err := json.Unmarshal([]byte(e.ok("ml", "job", "show", "-n", name, "-w", ws)), &v); err != nil {
		e.t.Fatal(err)
	}
	return v
}

// TestSweepJobWithBanditEarlyTermination sweeps two hyperparameters over a
// grid, one trial at a time. Each trial logs its accuracy every epoch with
// the real mlflow client; the third trial's first report is far behind the
// best trial's first report, so the bandit policy stops it while it waits
// to be stopped. The sweep then completes with the best trial, whose
// output is the sweep's.
func TestSweepJobWithBanditEarlyTermination(t *testing.T) {
	py := mlflowPython(t)
	e := newCLIEnv(t)
	dir := t.TempDir()
	e.ok("ml", "workspace", "create", "-n", "mlw")
	e.ok("ml", "compute", "create", "-n", "cpu-cluster", "-w", "mlw")
	writeFile(t, dir, "train.py", `import argparse, os, time, mlflow
p = argparse.ArgumentParser()
p.add_argument("--alpha", type=float)
p.add_argument("--beta", type=int)
p.add_argument("--rows", type=int)
p.add_argument("--model")
a = p.parse_args()
assert os.environ["AZUREML_SWEEP_beta"] == str(a.beta)
with mlflow.start_run():
    if a.alpha < 0.1:
        mlflow.log_metric("accuracy", 0.05, step=0)
        time.sleep(300)  # a bad trial: it waits to be stopped
        raise SystemExit("the bandit policy did not stop this trial")
    for epoch in range(3):
        mlflow.log_metric("accuracy", 0.5 + 0.1 * epoch + 0.01 * a.beta, step=epoch)
    with open(os.path.join(a.model, "model.txt"), "w") as f:
        f.write("alpha=%s beta=%s rows=%d\n" % (a.alpha, a.beta, a.rows))
`)
	job := writeFile(t, dir, "sweep.yml", `$schema: https://azuremlschemas.azureedge.net/latest/sweepJob.schema.json
type: sweep
experiment_name: sweep-test
compute: azureml:cpu-cluster
trial:
  code: .
  command: >-
    `+py+` train.py --alpha ${{search_space.alpha}} --beta ${{search_space.beta}}
    --rows ${{inputs.rows}} --model ${{outputs.model}}
  environment:
    image: python:3.11
inputs:
  rows: 100
outputs:
  model:
    type: uri_folder
search_space:
  alpha:
    type: choice
    values: [1.0, 0.01]
  beta:
    type: choice
    values: [1, 2]
sampling_algorithm: grid
objective:
  goal: maximize
  primary_metric: accuracy
limits:
  max_total_trials: 3
  max_concurrent_trials: 1
early_termination:
  type: bandit
  slack_factor: 0.1
  evaluation_interval: 1
  delay_evaluation: 0
`)
	name := strings.TrimSpace(e.ok("ml", "job", "create", "--file", job, "-w", "mlw", "--query", "name", "-o", "tsv"))
	out, errs, code := e.wharf("ml", "job", "stream", "-n", name, "-w", "mlw")
	if code != 0 {
		t.Fatalf("sweep did not complete: %s\n%s", out, errs)
	}
	sw := e.showSweep("mlw", name)
	if sw.Status != "Completed" || sw.Type != "sweep" || len(sw.Steps) != 3 {
		t.Fatalf("sweep: %s %s with %d trials: %s", sw.Type, sw.Status, len(sw.Steps), sw.Error)
	}
	best := sw.BestTrial
	if best == nil || best.Name != name+"_1" || best.Metric != "accuracy" || best.Value < 0.7199 || best.Value > 0.7201 ||
		best.Parameters["alpha"] != "1.0" || best.Parameters["beta"] != "2" {
		t.Fatalf("best trial %+v, want %s_1 with alpha 1.0, beta 2 and accuracy 0.72", best, name)
	}
	if sw.Properties["best_child_run_id"] != name+"_1" {
		t.Errorf("properties %v", sw.Properties)
	}

	var trials []sweepView
	if err := json.Unmarshal([]byte(e.ok("ml", "job", "list", "--parent-job-name", name, "-w", "mlw")), &trials); err != nil {
		t.Fatal(err)
	}
	if len(trials) != 3 {
		t.Fatalf("job list --parent-job-name: %d trials", len(trials))
	}
	wantParams := []string{"1.0/1", "1.0/2", "0.01/1"}
	for i, tr := range trials {
		if tr.Parent != name || tr.Parameters["alpha"]+"/"+tr.Parameters["beta"] != wantParams[i] {
			t.Errorf("trial %d: parent %s, parameters %v; want grid point %s", i, tr.Parent, tr.Parameters, wantParams[i])
		}
	}
	bad := e.showSweep("mlw", name+"_2")
	if bad.Status != "Canceled" || !strings.Contains(bad.Error, "bandit policy (slack_factor 0.1)") || !strings.Contains(bad.Error, "0.05") {
		t.Fatalf("the bad trial: %s, %q; want Canceled by the bandit policy", bad.Status, bad.Error)
	}
	if bad.Parameters["alpha"] != "0.01" {
		t.Errorf("job show of the bad trial: parameters %v", bad.Parameters)
	}
	for _, n := range []string{name + "_0", name + "_1"} {
		if tr := e.showSweep("mlw", n); tr.Status != "Completed" {
			t.Errorf("trial %s: %s %s", n, tr.Status, tr.Error)
		}
	}

	// Each trial is an MLflow run of its own, a child of the sweep's.
	if sw.RunID == "" {
		t.Fatal("the sweep has no run")
	}
	for _, tr := range trials {
		v := e.showSweep("mlw", tr.Name)
		run, err := e.srv.DB.FindRun(t.Context(), "mlw", v.RunID)
		if err != nil {
			t.Fatalf("trial %s run: %v", tr.Name, err)
		}
		if run.Tags["mlflow.parentRunId"] != sw.RunID {
			t.Errorf("trial %s run's parent %q, want the sweep's run %s", tr.Name, run.Tags["mlflow.parentRunId"], sw.RunID)
		}
	}

	// The sweep's output is the best trial's.
	dl := t.TempDir()
	e.ok("ml", "job", "download", "-n", name, "--output-name", "model", "--download-path", dl, "-w", "mlw")
	b, err := os.ReadFile(filepath.Join(dl, "named-outputs", "model", "model.txt"))
	if err != nil || strings.TrimSpace(string(b)) != "alpha=1.0 beta=2 rows=100" {
		t.Fatalf("the sweep's model output: %q, %v", b, err)
	}
}

// TestSweepAsPipelineStep runs a sweep over a component as a pipeline
// step; the step after it reads the sweep's output, which is the best
// trial's.
func TestSweepAsPipelineStep(t *testing.T) {
	py := mlflowPython(t)
	e := newCLIEnv(t)
	dir := t.TempDir()
	e.ok("ml", "workspace", "create", "-n", "mlw")
	e.ok("ml", "compute", "create", "-n", "cpu-cluster", "-w", "mlw", "--max-instances", "2")
	writeFile(t, dir, "train.py", `import argparse, os, mlflow
p = argparse.ArgumentParser()
p.add_argument("--lr", type=float)
p.add_argument("--data")
p.add_argument("--model")
a = p.parse_args()
rows = open(os.path.join(a.data, "rows.txt")).read().strip()
mlflow.log_metric("acc", 1 - abs(a.lr - 0.3))
with open(os.path.join(a.model, "model.txt"), "w") as f:
    f.write("lr=%s rows=%s\n" % (a.lr, rows))
`)
	writeFile(t, dir, "train.yml", `$schema: https://azuremlschemas.azureedge.net/latest/commandComponent.schema.json
name: train_lr
version: "1"
type: command
inputs:
  data:
    type: uri_folder
  lr:
    type: number
    default: 0.01
outputs:
  model:
    type: uri_folder
code: .
environment:
  image: python:3.11
command: `+py+` train.py --lr ${{inputs.lr}} --data ${{inputs.data}} --model ${{outputs.model}}
`)
	job := writeFile(t, dir, "pipeline.yml", `type: pipeline
experiment_name: sweep-pipeline
settings:
  default_compute: azureml:cpu-cluster
jobs:
  prep:
    command: echo 42 > ${{outputs.out}}/rows.txt
    environment:
      image: python:3.11
    outputs:
      out:
  tune:
    type: sweep
    trial: ./train.yml
    inputs:
      data: ${{parent.jobs.prep.outputs.out}}
    outputs:
      model:
    search_space:
      lr:
        type: choice
        values: [0.1, 0.25, 0.9]
    sampling_algorithm: grid
    objective:
      goal: maximize
      primary_metric: acc
    limits:
      max_total_trials: 3
      max_concurrent_trials: 2
  use:
    command: cp ${{inputs.m}}/model.txt ${{outputs.out}}/best.txt
    environment:
      image: python:3.11
    inputs:
      m: ${{parent.jobs.tune.outputs.model}}
    outputs:
      out:
`)
	name := strings.TrimSpace(e.ok("ml", "job", "create", "--file", job, "-w", "mlw", "--query", "name", "-o", "tsv"))
	out, errs, code := e.wharf("ml", "job", "stream", "-n", name, "-w", "mlw")
	if code != 0 {
		t.Fatalf("pipeline did not complete: %s\n%s", out, errs)
	}
	status, steps := e.jobSteps("mlw", name)
	if status != "Completed" {
		t.Fatalf("pipeline %s", status)
	}
	tune := e.showSweep("mlw", steps["tune"].Name)
	if tune.Type != "sweep" || tune.Status != "Completed" || len(tune.Steps) != 3 {
		t.Fatalf("sweep step: %s %s with %d trials", tune.Type, tune.Status, len(tune.Steps))
	}
	if tune.BestTrial == nil || tune.BestTrial.Parameters["lr"] != "0.25" {
		t.Fatalf("best trial %+v, want lr 0.25", tune.BestTrial)
	}
	for _, tr := range tune.Steps {
		if tr.Parent != tune.Name || tr.Status != "Completed" {
			t.Errorf("trial %s: parent %s, %s", tr.Name, tr.Parent, tr.Status)
		}
	}
	dl := t.TempDir()
	e.ok("ml", "job", "download", "-n", steps["use"].Name, "--output-name", "out", "--download-path", dl, "-w", "mlw")
	b, err := os.ReadFile(filepath.Join(dl, "named-outputs", "out", "best.txt"))
	if err != nil || strings.TrimSpace(string(b)) != "lr=0.25 rows=42" {
		t.Fatalf("the step after the sweep read %q, %v; want the best trial's model", b, err)
	}
}

// TestSIGKILLDuringSweepGoesOn kills the server with SIGKILL while the
// second of three trials runs, restarts it on the same data folder, and
// checks that the sweep goes on from its stored trials: the finished trial
// is kept, the interrupted one runs again, the third is made once, and
// the sweep completes with the best of them. Trials log their metric over
// the MLflow REST API.
func TestSIGKILLDuringSweepGoesOn(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		missing(t, "curl is not installed")
	}
	root := t.TempDir()
	dataDir := filepath.Join(root, "data")
	cmd, base := startProcess(t, dataDir, "", "--unsafe-run-steps-as-server-user")
	wharf := cliAgainst(t, dataDir, base)
	wharf("ml", "workspace", "create", "-n", "mlw")
	wharf("ml", "compute", "create", "-n", "cpu-cluster", "-w", "mlw")

	started, release := filepath.Join(root, "started"), filepath.Join(root, "release")
	code := filepath.Join(root, "code")
	if err := os.MkdirAll(code, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, code, "run.sh", `v=$1
curl -sf -X POST -H "Authorization: Bearer $MLFLOW_TRACKING_TOKEN" -H "Content-Type: application/json" \
  "$MLFLOW_TRACKING_URI/api/2.0/mlflow/runs/log-metric" \
  -d "{\"run_id\": \"$MLFLOW_RUN_ID\", \"key\": \"acc\", \"value\": $v, \"timestamp\": 1, \"step\": 0}" || exit 1
if [ "$v" = 0.5 ]; then
  echo $$ > `+started+`.tmp && mv `+started+`.tmp `+started+`
  while [ ! -f `+release+` ]; do sleep 0.05; done
fi
echo $v > "$2/v.txt"
`)
	job := writeFile(t, root, "sweep.yml", `type: sweep
compute: azureml:cpu-cluster
trial:
  code: ./code
  command: sh run.sh ${{search_space.v}} ${{outputs.model}}
  environment:
    image: python:3.11
outputs:
  model:
search_space:
  v: {type: choice, values: [0.2, 0.5, 0.9]}
sampling_algorithm: grid
objective: {goal: maximize, primary_metric: acc}
limits: {max_total_trials: 3, max_concurrent_trials: 1}
`)
	name := strings.TrimSpace(wharf("ml", "job", "create", "--file", job, "-w", "mlw", "--query", "name", "-o", "tsv"))
	waitForFile(t, started)
	if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	os.Remove(started)

	_, base2 := startProcess(t, dataDir, "", "--unsafe-run-steps-as-server-user")
	wharf = cliAgainst(t, dataDir, base2)
	// The interrupted trial runs again, and waits again until released.
	waitForFile(t, started)
	writeFile(t, root, "release", "go\n")
	wharf("ml", "job", "stream", "-n", name, "-w", "mlw")

	var sw struct {
		sweepView
		Steps []struct {
			Name       string            `json:"name"`
			Status     string            `json:"status"`
			Parameters map[string]string `json:"parameters"`
			Attempts   []any             `json:"attempts"`
		} `json:"steps"`
	}
	if err := json.Unmarshal([]byte(wharf("ml", "job", "show", "-n", name, "-w", "mlw")), &sw); err != nil {
		t.Fatal(err)
	}
	if sw.Status != "Completed" || len(sw.Steps) != 3 {
		t.Fatalf("sweep after the restart: %s with %d trials (%s)", sw.Status, len(sw.Steps), sw.Error)
	}
	wantAttempts := []int{1, 2, 1}
	for i, tr := range sw.Steps {
		if tr.Name != name+"_"+strconv.Itoa(i) || tr.Status != "Completed" || len(tr.Attempts) != wantAttempts[i] {
			t.Errorf("trial %d: %s %s with %d attempts, want %s_%d Completed with %d", i, tr.Name, tr.Status,
				len(tr.Attempts), name, i, wantAttempts[i])
		}
	}
	if sw.BestTrial == nil || sw.BestTrial.Name != name+"_2" || sw.BestTrial.Parameters["v"] != "0.9" {
		t.Fatalf("best trial %+v, want %s_2 (v 0.9)", sw.BestTrial, name)
	}
}

// TestSweepCancelCancelsItsTrials cancels a sweep while its trials run:
// they are stopped, and the sweep ends Canceled.
func TestSweepCancelCancelsItsTrials(t *testing.T) {
	e := newCLIEnv(t)
	dir := t.TempDir()
	e.ok("ml", "workspace", "create", "-n", "mlw")
	e.ok("ml", "compute", "create", "-n", "cpu-cluster", "-w", "mlw", "--max-instances", "2")
	job := writeFile(t, dir, "sweep.yml", `type: sweep
compute: azureml:cpu-cluster
trial:
  command: echo ${{search_space.n}} && sleep 300
  environment:
    image: python:3.11
search_space:
  n: {type: randint, upper: 1000}
sampling_algorithm: {type: random, seed: 3}
objective: {goal: minimize, primary_metric: loss}
limits: {max_total_trials: 5, max_concurrent_trials: 2}
`)
	name := strings.TrimSpace(e.ok("ml", "job", "create", "--file", job, "-w", "mlw", "--query", "name", "-o", "tsv"))
	var trials []sweepView
	for giveUp := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if err := json.Unmarshal([]byte(e.ok("ml", "job", "list", "--parent-job-name", name, "-w", "mlw")), &trials); err != nil {
			t.Fatal(err)
		}
		running := 0
		for _, tr := range trials {
			if tr.Status == "Running" {
				running++
			}
		}
		if running == 2 {
			break
		}
		if time.Now().After(giveUp) {
			t.Fatalf("two trials never ran at once: %+v", trials)
		}
	}
	e.ok("ml", "job", "cancel", "-n", name, "-w", "mlw")
	if _, _, code := e.wharf("ml", "job", "stream", "-n", name, "-w", "mlw"); code == 0 {
		t.Fatal("job stream of a canceled sweep exited 0")
	}
	sw := e.showSweep("mlw", name)
	if sw.Status != "Canceled" || len(sw.Steps) != 2 {
		t.Fatalf("sweep %s with %d trials, want Canceled with the 2 it had started", sw.Status, len(sw.Steps))
	}
	for _, tr := range sw.Steps {
		if tr.Status != "Canceled" {
			t.Errorf("trial %s: %s", tr.Name, tr.Status)
		}
		if n := tr.Parameters["n"]; n == "" || strings.Trim(n, "0123456789") != "" {
			t.Errorf("trial %s: randint value %q", tr.Name, n)
		}
	}
}
