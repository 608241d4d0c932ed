package main

import (
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDefaultArtifactsDownloadAndRun: what a command job writes to
// ./outputs and ./logs comes back with job download (under artifacts/,
// beside named-outputs/) and is listed in the job's run.
func TestDefaultArtifactsDownloadAndRun(t *testing.T) {
	e := newCLIEnv(t)
	dir := t.TempDir()
	e.ok("ml", "workspace", "create", "-n", "dev")
	e.ok("ml", "compute", "create", "-n", "cpu-cluster", "-w", "dev")
	job := writeFile(t, dir, "job.yml", `command: echo weights > outputs/model.txt && echo step > logs/extra.log && echo named > ${{outputs.out}}/n.txt
environment: {image: python:3.11}
compute: azureml:cpu-cluster
outputs:
  out: {type: uri_folder}
`)
	name := lastLine(e.ok("ml", "job", "create", "--file", job, "--stream", "-w", "dev", "--query", "name", "-o", "tsv"))
	if got := e.waitJob("dev", name); got != "Completed" {
		t.Fatalf("job: %s", got)
	}
	dl := filepath.Join(dir, "dl")
	e.ok("ml", "job", "download", "-n", name, "--all", "--download-path", dl, "-w", "dev")
	for file, want := range map[string]string{"artifacts/outputs/model.txt": "weights\n", "artifacts/logs/extra.log": "step\n",
		"named-outputs/out/n.txt": "named\n"} {
		if b, err := os.ReadFile(filepath.Join(dl, file)); err != nil || string(b) != want {
			t.Errorf("%s: %q %v, want %q", file, b, err, want)
		}
	}

	runID := strings.TrimSpace(e.ok("ml", "job", "show", "-n", name, "-w", "dev", "--query", "run_id", "-o", "tsv"))
	for folder, want := range map[string]string{"outputs": "outputs/model.txt", "logs": "logs/extra.log"} {
		var list struct {
			Files []struct {
				Path string `json:"path"`
			} `json:"files"`
		}
		if err := e.ownerAPI().Do(t.Context(), "GET", "/mlflow/v1.0/workspaces/dev/api/2.0/mlflow/artifacts/list?run_id="+
			url.QueryEscape(runID)+"&path="+folder, nil, &list); err != nil {
			t.Fatal(err)
		}
		if len(list.Files) != 1 || list.Files[0].Path != want {
			t.Errorf("run artifacts under %s: %+v, want %s", folder, list.Files, want)
		}
	}
}

// TestFileOutputBetweenSteps: a uri_file output is a file the step
// writes; the next step reads it as a uri_file input, and job download
// returns it as a file. A step that does not write it fails.
func TestFileOutputBetweenSteps(t *testing.T) {
	e := newCLIEnv(t)
	dir := t.TempDir()
	e.ok("ml", "workspace", "create", "-n", "dev")
	e.ok("ml", "compute", "create", "-n", "cpu-cluster", "-w", "dev")
	job := writeFile(t, dir, "pipeline.yml", `type: pipeline
settings:
  default_compute: azureml:cpu-cluster
jobs:
  write:
    command: echo coef=2 > ${{outputs.model}}
    environment: {image: python:3.11}
    outputs:
      model: {type: uri_file}
  read:
    command: cp ${{inputs.model}} ${{outputs.out}}/copy.txt
    environment: {image: python:3.11}
    inputs:
      model:
        type: uri_file
        path: ${{parent.jobs.write.outputs.model}}
    outputs:
      out: {type: uri_folder}
`)
	name := lastLine(e.ok("ml", "job", "create", "--file", job, "-w", "dev", "--query", "name", "-o", "tsv"))
	if got := e.waitJob("dev", name); got != "Completed" {
		t.Fatalf("pipeline: %s", got)
	}
	_, steps := e.jobSteps("dev", name)
	dl := filepath.Join(dir, "dl")
	e.ok("ml", "job", "download", "-n", steps["read"].Name, "--output-name", "out", "--download-path", dl, "-w", "dev")
	e.ok("ml", "job", "download", "-n", steps["write"].Name, "--output-name", "model", "--download-path", dl, "-w", "dev")
	for file, want := range map[string]string{"named-outputs/out/copy.txt": "coef=2\n", "named-outputs/model/model": "coef=2\n"} {
		if b, err := os.ReadFile(filepath.Join(dl, file)); err != nil || string(b) != want {
			t.Errorf("%s: %q %v, want %q", file, b, err, want)
		}
	}

	missing := writeFile(t, dir, "missing.yml", `command: "true"
environment: {image: python:3.11}
compute: azureml:cpu-cluster
outputs:
  model: {type: uri_file}
`)
	name = lastLine(e.ok("ml", "job", "create", "--file", missing, "-w", "dev", "--query", "name", "-o", "tsv"))
	if got := e.waitJob("dev", name); got != "Failed" {
		t.Fatalf("a job that wrote no uri_file output: %s", got)
	}
	if msg := e.ok("ml", "job", "show", "-n", name, "-w", "dev", "--query", "error", "-o", "tsv"); !strings.Contains(msg, "output model is a uri_file and the step wrote no file") {
		t.Errorf("error: %s", msg)
	}
}
