package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBatchEndpointScoresAFileWithANativeModel runs the template's batch
// commands: endpoint, deployment (both YAML forms), invoke with a local
// file, stream, download the score output.
func TestBatchEndpointScoresAFileWithANativeModel(t *testing.T) {
	root := t.TempDir()
	dataDir := filepath.Join(root, "data")
	_, base := startProcess(t, dataDir, "")
	wharf := cliAgainst(t, dataDir, base)
	wharf("ml", "workspace", "create", "-n", "mlw")
	wharf("ml", "compute", "create", "-n", "batch-cluster", "--max-instances", "2", "-w", "mlw")
	wharf("ml", "model", "create", "--name", "taxi-model", "--path", nativeModel(t, 2, 0.5, 1), "-w", "mlw")
	var b strings.Builder
	b.WriteString("distance,hour,vendor\n")
	for i := 0; i < 2500; i++ {
		fmt.Fprintf(&b, "%d,%d,v%d\n", i%50, i%24, i%3)
	}
	b.WriteString("oops,3,v1\n") // an unreadable row: one failed item
	b.WriteString(",5,v1\n")     // a missing value: another
	input := writeFile(t, root, "taxi-batch.csv", b.String())
	writeFile(t, root, "batch-endpoint.yml", "$schema: https://azuremlschemas.azureedge.net/latest/batchEndpoint.schema.json\nname: taxi-batch\ndescription: taxi batch endpoint\nauth_mode: aad_token\n")
	writeFile(t, root, "batch-deployment.yml", `$schema: https://azuremlschemas.azureedge.net/latest/batchDeployment.schema.json
name: batch-dp
endpoint_name: taxi-batch
model: azureml:taxi-model@latest
compute: azureml:batch-cluster
resources:
  instance_count: 1
max_concurrency_per_instance: 2
mini_batch_size: 10
output_action: append_row
output_file_name: predictions.csv
retry_settings:
  max_retries: 3
  timeout: 30
error_threshold: -1
logging_level: info
`)
	wharf("ml", "batch-endpoint", "create", "--name", "taxi-batch", "-f", filepath.Join(root, "batch-endpoint.yml"), "-w", "mlw")
	wharf("ml", "batch-deployment", "create", "--name", "batch-dp", "--endpoint", "taxi-batch", "-f", filepath.Join(root, "batch-deployment.yml"), "-w", "mlw")
	if d := strings.TrimSpace(wharf("ml", "batch-endpoint", "show", "-n", "taxi-batch", "-w", "mlw", "--query", "default_deployment", "-o", "tsv")); d != "batch-dp" {
		t.Errorf("the only deployment is not the default: %q", d)
	}
	job := strings.TrimSpace(wharf("ml", "batch-endpoint", "invoke", "--name", "taxi-batch", "--deployment-name", "batch-dp",
		"--input", input, "--input-type", "uri_file", "--query", "name", "-o", "tsv", "-w", "mlw"))
	out := wharf("ml", "job", "stream", "-n", job, "-w", "mlw")
	if !strings.Contains(out, "2500 rows scored, 2 failed items") ||
		!strings.Contains(out, `taxi-batch.csv row 2501: column distance: "oops" is not a number`) ||
		!strings.Contains(out, "taxi-batch.csv row 2502: column distance is empty (a missing value)") {
		t.Errorf("stream does not report the run:\n%s", out)
	}
	if st := strings.TrimSpace(wharf("ml", "job", "show", "-n", job, "--query", "status", "-o", "tsv", "-w", "mlw")); st != "Completed" {
		t.Fatalf("job %s", st)
	}
	dl := t.TempDir()
	wharf("ml", "job", "download", "-n", job, "--output-name", "score", "--download-path", dl, "-w", "mlw")
	pred, err := os.ReadFile(filepath.Join(dl, "named-outputs", "score", "predictions.csv"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(pred)), "\n")
	// Row 3 is distance 2, hour 2: 2*2 + 0.5*2 + 1 = 6.
	if len(lines) != 2501 || lines[0] != "file_name,row,prediction" || lines[3] != "taxi-batch.csv,3,6" {
		t.Errorf("%d lines, first rows %q", len(lines), lines[:min(4, len(lines))])
	}

	// The newer type: model form with settings:, summary only.
	writeFile(t, root, "model-deployment.yml", `name: summary
endpoint_name: taxi-batch
type: model
model: azureml:taxi-model:1
compute: azureml:batch-cluster
resources:
  instance_count: 1
settings:
  max_concurrency_per_instance: 1
  mini_batch_size: 5
  output_action: summary_only
  error_threshold: 0
`)
	wharf("ml", "batch-deployment", "create", "-f", filepath.Join(root, "model-deployment.yml"), "-w", "mlw")
	job2 := strings.TrimSpace(wharf("ml", "batch-endpoint", "invoke", "--name", "taxi-batch", "--deployment-name", "summary",
		"--input", input, "--query", "name", "-o", "tsv", "-w", "mlw"))
	// error_threshold 0 and one unreadable row: the job fails, and says why.
	var so, se bytes.Buffer
	if code := run(context.Background(), []string{"ml", "job", "stream", "-n", job2, "-w", "mlw"}, strings.NewReader(""), &so, &se); code == 0 ||
		!strings.Contains(so.String(), "exceed error_threshold 0") {
		t.Errorf("a run over its error threshold: exit %d\n%s%s", code, so.String(), se.String())
	}
	if st := strings.TrimSpace(wharf("ml", "job", "show", "-n", job2, "--query", "status", "-o", "tsv", "-w", "mlw")); st != "Failed" {
		t.Errorf("job over the threshold: %s", st)
	}

	// A file without a column the model reads fails at once, naming it.
	wrong := writeFile(t, root, "no-hour.csv", "distance,vendor\n1,v1\n")
	job3 := strings.TrimSpace(wharf("ml", "batch-endpoint", "invoke", "--name", "taxi-batch", "--deployment-name", "batch-dp",
		"--input", wrong, "--query", "name", "-o", "tsv", "-w", "mlw"))
	so.Reset()
	se.Reset()
	if code := run(context.Background(), []string{"ml", "job", "stream", "-n", job3, "-w", "mlw"}, strings.NewReader(""), &so, &se); code == 0 ||
		!strings.Contains(so.String(), "input no-hour.csv: missing column(s) hour (the data has distance, vendor)") {
		t.Errorf("a file without the model's columns: exit %d\n%s%s", code, so.String(), se.String())
	}
}
