package main

import (
	"strings"
	"testing"
)

// TestAzureFormsFromTheCommandLine: the forms Azure's documentation uses
// that need no YAML file of Wharf's own: an environment from flags, and a
// job without compute, which runs on the serverless cluster.
func TestAzureFormsFromTheCommandLine(t *testing.T) {
	e := newCLIEnv(t)
	dir := t.TempDir()
	e.ok("ml", "workspace", "create", "-n", "dev")
	conda := writeFile(t, dir, "conda.yml", "name: env\ndependencies:\n  - python=3.11\n")
	out := e.ok("ml", "environment", "create", "--name", "sklearn-1.5", "--conda-file", conda, "--image",
		"mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu20.04", "-w", "dev", "--query", "[name, version]", "-o", "tsv")
	if fields := strings.Fields(out); len(fields) != 2 || fields[0] != "sklearn-1.5" || fields[1] != "1" {
		t.Errorf("environment from flags: %q", out)
	}
	if got := strings.TrimSpace(e.ok("ml", "environment", "show", "-n", "sklearn-1.5", "-v", "1", "-w", "dev", "--query", "name", "-o", "tsv")); got != "sklearn-1.5" {
		t.Errorf("environment show: %q", got)
	}
	if _, errs, code := e.wharf("ml", "environment", "create", "--name", "no-image", "--conda-file", conda, "-w", "dev"); code == 0 ||
		!strings.Contains(errs, "conda_file needs an image") {
		t.Errorf("an environment without an image: exit %d, %s", code, errs)
	}

	job := writeFile(t, dir, "job.yml", `$schema: https://azuremlschemas.azureedge.net/latest/commandJob.schema.json
command: echo serverless
environment:
  image: python:3.11
resources:
  instance_type: Standard_DS3_v2
`)
	name := strings.TrimSpace(e.ok("ml", "job", "create", "--file", job, "--stream", "-w", "dev", "--query", "name", "-o", "tsv"))
	lines := strings.Split(name, "\n")
	if got := e.waitJob("dev", lines[len(lines)-1]); got != "Completed" {
		t.Errorf("job without compute: %s", got)
	}
	if c := strings.TrimSpace(e.ok("ml", "compute", "show", "-n", "serverless", "-w", "dev", "--query", "name", "-o", "tsv")); c != "serverless" {
		t.Errorf("serverless cluster: %q", c)
	}
}
