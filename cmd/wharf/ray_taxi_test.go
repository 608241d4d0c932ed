package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestTaxiPipelineOnRayRegistersTheSameModel runs the quickstart's taxi
// training pipeline, whose steps are the server's built-in components
// ("$WHARF" prep split, train, evaluate, register), on local compute and
// on a Ray-backed cluster, changing only the compute (and the model's
// name, so that each run registers its own). Both complete, and the two
// registered models carry the same metrics and the same files. The server
// is a process of the wharf binary, which its Ray nodes fetch and run.
func TestTaxiPipelineOnRayRegistersTheSameModel(t *testing.T) {
	addr := rayAddress(t)
	root := t.TempDir()
	dataDir := filepath.Join(root, "server")
	_, base := startProcess(t, dataDir, "", "--unsafe-run-steps-as-server-user")
	wharf := cliAgainst(t, dataDir, base)
	example := filepath.Join(root, "taxi")
	copyTree(t, filepath.Join(repoRoot(t), "examples", "taxi"), example)
	sample, err := os.ReadFile(filepath.Join(repoRoot(t), "..", "shared", "data", "taxi", "taxi-data.csv"))
	if err != nil {
		missing(t, "the taxi sample data is not here (%v); it lives outside the repository, in ../shared/data/taxi", err)
	}
	if err := os.MkdirAll(filepath.Join(example, "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(example, "data"), "taxi-data.csv", string(sample))
	train := filepath.Join(example, "mlops", "azureml", "train")

	const ws = "mlw"
	wharf("ml", "workspace", "create", "-n", ws)
	wharf("ml", "compute", "create", "-n", "cpu-cluster", "-w", ws)
	wharf("ml", "compute", "attach", "--type", "ray", "--address", addr, "-n", "ray-cluster", "-w", ws)
	t.Cleanup(func() { wharf("ml", "compute", "delete", "-n", "ray-cluster", "-w", ws, "--yes") })
	wharf("ml", "environment", "create", "--file", filepath.Join(train, "train-env.yml"), "-w", ws)
	wharf("ml", "data", "create", "--file", filepath.Join(train, "data.yml"), "-w", ws)

	type registered struct {
		metrics map[string]any
		tags    map[string]any
		files   map[string]string
	}
	got := map[string]registered{}
	for _, compute := range []string{"cpu-cluster", "ray-cluster"} {
		model := "taxi-" + compute
		name := strings.TrimSpace(wharf("ml", "job", "create", "--file", filepath.Join(train, "pipeline.yml"), "-w", ws,
			"--set", "settings.default_compute=azureml:"+compute, "--set", "settings.force_rerun=true",
			"--set", "inputs.model_name="+model, "--query", "name", "-o", "tsv"))
		wharf("ml", "job", "stream", "-n", name, "-w", ws)
		if compute == "ray-cluster" {
			for _, step := range []string{"prep_data", "train_model", "evaluate_model", "register_model"} {
				if log := wharf("ml", "job", "stream", "-n", name+"_"+step, "-w", ws); !strings.Contains(log, "[ray] attempt") {
					t.Errorf("step %s did not run on Ray:\n%s", step, log)
				}
			}
		}
		var r registered
		if err := json.Unmarshal([]byte(wharf("ml", "job", "show", "-n", name+"_evaluate_model", "-w", ws, "--query", "metrics")), &r.metrics); err != nil {
			t.Fatal(err)
		}
		var v struct {
			Tags map[string]any `json:"tags"`
		}
		if err := json.Unmarshal([]byte(wharf("ml", "model", "show", "--name", model, "--version", "1", "-w", ws)), &v); err != nil {
			t.Fatal(err)
		}
		r.tags = v.Tags
		dl := filepath.Join(root, "dl-"+compute)
		wharf("ml", "model", "download", "--name", model, "--version", "1", "--download-path", dl, "-w", ws)
		r.files = treeDigests(t, filepath.Join(dl, model))
		got[compute] = r
	}
	local, onRay := got["cpu-cluster"], got["ray-cluster"]
	if len(local.metrics) == 0 || local.metrics["test_r2"] == nil || len(local.files) == 0 {
		t.Fatalf("the local run's evaluation has metrics %v and its model files %v", local.metrics, local.files)
	}
	t.Logf("local: evaluation metrics %v, model tags %v, files %v", local.metrics, local.tags, local.files)
	if !reflect.DeepEqual(onRay.metrics, local.metrics) {
		t.Errorf("evaluation metrics on Ray %v, locally %v", onRay.metrics, local.metrics)
	}
	if !reflect.DeepEqual(onRay.tags, local.tags) {
		t.Errorf("registered model's tags on Ray %v, locally %v", onRay.tags, local.tags)
	}
	if !reflect.DeepEqual(onRay.files, local.files) {
		t.Errorf("registered model's files on Ray %v, locally %v", onRay.files, local.files)
	}
}

// treeDigests maps each file under dir to its SHA-256.
func treeDigests(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		sum := sha256.Sum256(b)
		out[rel] = hex.EncodeToString(sum[:])
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
