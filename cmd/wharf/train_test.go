package main

import (
	"fmt"
	"math"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestGoTrainedModelServedNatively trains with the built-in Go trainer in
// a pipeline step, registers its output and serves it in process.
func TestGoTrainedModelServedNatively(t *testing.T) {
	root := t.TempDir()
	dataDir := filepath.Join(root, "data")
	_, base := startProcess(t, dataDir, "")
	wharf := cliAgainst(t, dataDir, base)
	wharf("ml", "workspace", "create", "-n", "mlw")
	wharf("ml", "compute", "create", "-n", "cpu-cluster", "-w", "mlw")
	var b strings.Builder
	b.WriteString("distance,hour,vendor,cost\n")
	for i := 0; i < 300; i++ {
		d, h := float64(i%37)/3, float64(i%24)
		fmt.Fprintf(&b, "%.4f,%.0f,v%d,%.6f\n", d, h, i%3, 2.5+2.1*d+0.3*h)
	}
	writeFile(t, root, "trips.csv", b.String())
	job := writeFile(t, root, "train.yml", `type: pipeline
settings:
  default_compute: azureml:cpu-cluster
inputs:
  trips:
    type: uri_file
    path: ./trips.csv
jobs:
  train:
    command: $WHARF train linear-regression --train-data ${{inputs.data}} --target cost --model-output ${{outputs.model}}
    environment:
      image: mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu20.04
    inputs:
      data: ${{parent.inputs.trips}}
    outputs:
      model:
        type: mlflow_model
`)
	name := strings.TrimSpace(wharf("ml", "job", "create", "--file", job, "-w", "mlw", "--query", "name", "-o", "tsv"))
	wharf("ml", "job", "stream", "-n", name, "-w", "mlw")
	r2, err := strconv.ParseFloat(strings.TrimSpace(wharf("ml", "job", "show", "-n", name+"_train", "-w", "mlw", "--query", "metrics.training_r2", "-o", "tsv")), 64)
	if err != nil || r2 < 0.999999 {
		t.Errorf("training r2 logged to the step's run: %v (%v)", r2, err)
	}
	dl := t.TempDir()
	wharf("ml", "job", "download", "-n", name+"_train", "--output-name", "model", "--download-path", dl, "-w", "mlw")
	wharf("ml", "model", "create", "--name", "fare", "--path", filepath.Join(dl, "named-outputs", "model"), "-w", "mlw")
	writeFile(t, root, "ep.yml", "name: fare\n")
	writeFile(t, root, "dep.yml", "name: blue\nendpoint_name: fare\nmodel: azureml:fare@latest\ninstance_count: 1\n")
	wharf("ml", "online-endpoint", "create", "-f", filepath.Join(root, "ep.yml"), "-w", "mlw")
	wharf("ml", "online-deployment", "create", "-f", filepath.Join(root, "dep.yml"), "-w", "mlw", "--all-traffic")
	req := writeFile(t, root, "req.json", `{"input_data": {"columns": ["hour", "distance"], "index": [0], "data": [[10, 3]]}}`)
	out := wharf("ml", "online-endpoint", "invoke", "-n", "fare", "--request-file", req, "-w", "mlw", "-o", "tsv")
	var got []float64
	if _, err := fmt.Sscanf(strings.Trim(strings.TrimSpace(out), "[]"), "%g", new(float64)); err == nil {
		v, _ := strconv.ParseFloat(strings.Trim(strings.TrimSpace(out), "[]"), 64)
		got = append(got, v)
	}
	if len(got) != 1 || math.Abs(got[0]-(2.5+2.1*3+0.3*10)) > 1e-4 {
		t.Errorf("native prediction %q, want %v", out, 2.5+2.1*3+0.3*10)
	}
	if p := strings.TrimSpace(wharf("ml", "online-deployment", "show", "-n", "blue", "-e", "fare", "-w", "mlw", "--query", "provisioning_state", "-o", "tsv")); p != "Succeeded" {
		t.Errorf("deployment state %q", p)
	}
}
