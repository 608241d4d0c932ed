package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wharfml/wharf"
)

// TestJobOutputsAreReadOnlyThroughTheirWorkspace runs a job in one
// workspace and reads its output back with job download, then asks
// another workspace, as an owner of both, for the same content by digest:
// the manifest and the file it lists are 404 there.
func TestJobOutputsAreReadOnlyThroughTheirWorkspace(t *testing.T) {
	e := newCLIEnv(t)
	dir := t.TempDir()
	e.ok("ml", "workspace", "create", "-n", "mlw")
	e.ok("ml", "workspace", "create", "-n", "other")
	e.ok("ml", "compute", "create", "-n", "cpu-cluster", "-w", "mlw")
	job := writeFile(t, dir, "job.yml", `type: pipeline
settings:
  default_compute: azureml:cpu-cluster
jobs:
  write:
    command: echo only for mlw > ${{outputs.out}}/secret.txt
    environment:
      image: python:3.11
    outputs:
      out:
`)
	name := strings.TrimSpace(e.ok("ml", "job", "create", "--file", job, "-w", "mlw", "--query", "name", "-o", "tsv"))
	e.ok("ml", "job", "stream", "-n", name, "-w", "mlw")
	_, steps := e.jobSteps("mlw", name)
	dl := t.TempDir()
	e.ok("ml", "job", "download", "-n", steps["write"].Name, "--output-name", "out", "--download-path", dl, "-w", "mlw")
	if b, err := os.ReadFile(filepath.Join(dl, "named-outputs", "out", "secret.txt")); err != nil || string(b) != "only for mlw\n" {
		t.Fatalf("downloaded output: %q %v", b, err)
	}

	var show struct {
		Outputs map[string]struct {
			Digest string `json:"digest"`
		} `json:"outputs"`
	}
	if err := json.Unmarshal([]byte(e.ok("ml", "job", "show", "-n", steps["write"].Name, "-w", "mlw")), &show); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte("only for mlw\n"))
	api := e.ownerAPI()
	for what, digest := range map[string]string{
		"the output's manifest": show.Outputs["out"].Digest,
		"the file it lists":     "sha256:" + hex.EncodeToString(sum[:]),
	} {
		body, err := api.Download(context.Background(), "/api/v1/workspaces/mlw/blobs/"+digest)
		if err != nil {
			t.Fatalf("%s through mlw: %v", what, err)
		}
		body.Close()
		if _, err := api.Download(context.Background(), "/api/v1/workspaces/other/blobs/"+digest); wharf.ErrorCode(err) != wharf.ENOTFOUND {
			t.Errorf("%s through another workspace: %v, want ENOTFOUND", what, err)
		}
	}
}
