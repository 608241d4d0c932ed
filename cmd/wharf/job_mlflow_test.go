package main

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
)

// TestJobLogsIntoItsRunWithTheRealClient runs a command job whose script
// uses the unchanged mlflow client with no configuration of its own: the
// executor's environment must point it at the job's run, and the metric
// must show in `job show`.
func TestJobLogsIntoItsRunWithTheRealClient(t *testing.T) {
	py := os.Getenv("WHARF_TEST_MLFLOW2_PYTHON")
	if py == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("WHARF_TEST_MLFLOW2_PYTHON is not set; run the suite with ./scripts/test")
		}
		t.Skip("WHARF_TEST_MLFLOW2_PYTHON not set; ./scripts/test builds the mlflow venv")
	}
	e := newCLIEnv(t)
	dir := t.TempDir()
	e.ok("ml", "workspace", "create", "-n", "mlw")
	e.ok("ml", "compute", "create", "-n", "cpu-cluster", "-w", "mlw")
	// start_run consumes MLFLOW_RUN_ID from the environment, so it is read
	// first.
	writeFile(t, dir, "train.py", `import os, mlflow
job_run = os.environ["MLFLOW_RUN_ID"]
with mlflow.start_run() as run:
    assert run.info.run_id == job_run, "a new run instead of the job's"
    mlflow.log_param("alpha", "0.5")
    mlflow.log_metric("rmse", 0.25)
print("logged to", mlflow.get_tracking_uri())
`)
	job := writeFile(t, dir, "job.yml", `$schema: https://azuremlschemas.azureedge.net/latest/commandJob.schema.json
code: .
command: `+py+` train.py
environment:
  image: mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu20.04
compute: azureml:cpu-cluster
experiment_name: taxi-training
`)
	name := strings.TrimSpace(e.ok("ml", "job", "create", "--file", job, "-w", "mlw", "--query", "name", "-o", "tsv"))
	out, errs, code := e.wharf("ml", "job", "stream", "-n", name, "-w", "mlw")
	if code != 0 {
		t.Fatalf("job failed: %s\n%s", out, errs)
	}
	var j struct {
		Status       string             `json:"status"`
		RunID        string             `json:"run_id"`
		ExperimentID string             `json:"experiment_id"`
		Metrics      map[string]float64 `json:"metrics"`
	}
	if err := json.Unmarshal([]byte(e.ok("ml", "job", "show", "-n", name, "-w", "mlw")), &j); err != nil {
		t.Fatal(err)
	}
	if j.Status != "Completed" || j.RunID == "" || j.Metrics["rmse"] != 0.25 {
		t.Fatalf("job show: %+v", j)
	}
	run, err := e.srv.DB.FindRun(t.Context(), "mlw", j.RunID)
	if err != nil {
		t.Fatal(err)
	}
	if run.Params["alpha"] != "0.5" || run.Status != "FINISHED" || run.Tags["wharf.job"] != name {
		t.Errorf("the job's run: params %v status %s tags %v", run.Params, run.Status, run.Tags)
	}
	exp, err := e.srv.DB.FindExperiment(t.Context(), "mlw", j.ExperimentID)
	if err != nil || exp.Name != "taxi-training" {
		t.Errorf("experiment %+v, %v", exp, err)
	}
}
