package main

import (
	"os"
	"path/filepath"
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

// TestDataAssetAtADatastorePath: a data asset may name a datastore path
// that holds nothing yet, as Azure allows; a job reading it then reads
// what the path holds when the job is created. An asset made once the
// path holds data is pinned to that content.
func TestDataAssetAtADatastorePath(t *testing.T) {
	e := newCLIEnv(t)
	dir := t.TempDir()
	e.ok("ml", "workspace", "create", "-n", "dev")
	e.ok("ml", "compute", "create", "-n", "cpu-cluster", "-w", "dev")
	landing := "azureml://datastores/workspaceblobstore/paths/landing/fares"
	e.ok("ml", "data", "create", "-n", "fares", "--path", landing, "--type", "uri_folder", "-w", "dev")

	// A job lands a file there.
	writer := writeFile(t, dir, "land.yml", `command: echo 'fare\n7' > ${{outputs.out}}/jan.csv
environment: {image: python:3.11}
compute: azureml:cpu-cluster
outputs:
  out: {type: uri_folder, path: `+landing+`}
`)
	name := lastLine(e.ok("ml", "job", "create", "--file", writer, "--stream", "-w", "dev", "--query", "name", "-o", "tsv"))
	if got := e.waitJob("dev", name); got != "Completed" {
		t.Fatalf("landing job: %s", got)
	}
	reader := writeFile(t, dir, "read.yml", `command: cat ${{inputs.fares}}/jan.csv
environment: {image: python:3.11}
compute: azureml:cpu-cluster
inputs:
  fares: {type: uri_folder, path: azureml:fares@latest}
`)
	out, errs, code := e.wharf("ml", "job", "create", "--file", reader, "--stream", "-w", "dev")
	if code != 0 || !strings.Contains(out, "7") {
		t.Fatalf("reading the asset after data landed: exit %d\n%s\n%s", code, out, errs)
	}
	// Created now, the asset is pinned to the folder's content.
	e.ok("ml", "data", "create", "-n", "fares", "--path", landing, "--type", "uri_folder", "-w", "dev")
	if d := strings.TrimSpace(e.ok("ml", "data", "show", "-n", "fares", "-v", "2", "-w", "dev", "--query", "digest", "-o", "tsv")); !strings.HasPrefix(d, "sha256:") {
		t.Errorf("version 2 is not pinned: %q", d)
	}
	// The wrong type for what is there is refused.
	if _, errs, code := e.wharf("ml", "data", "create", "-n", "fares-file", "--path", landing, "--type", "uri_file", "-w", "dev"); code == 0 || !strings.Contains(errs, "needs a file") {
		t.Errorf("uri_file over a folder: exit %d %s", code, errs)
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// TestComponentAdditionalIncludes: a component's additional_includes join
// its code folder, each under its own name, whether the component is a
// file a pipeline names by bare path or a registered one.
func TestComponentAdditionalIncludes(t *testing.T) {
	e := newCLIEnv(t)
	dir := t.TempDir()
	e.ok("ml", "workspace", "create", "-n", "dev")
	e.ok("ml", "compute", "create", "-n", "cpu-cluster", "-w", "dev")
	for _, d := range []string{"shared/lib", "components/src"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, dir, "shared/greeting.txt", "hello from an include\n")
	writeFile(t, dir, "shared/lib/name.txt", "library folder\n")
	writeFile(t, dir, "components/src/run.sh", "cat greeting.txt lib/name.txt\n")
	writeFile(t, dir, "components/say.yml", `$schema: https://azuremlschemas.azureedge.net/latest/commandComponent.schema.json
name: say
type: command
code: ./src
additional_includes:
  - ../shared/greeting.txt
  - ../shared/lib
environment:
  image: python:3.11
command: sh run.sh
`)
	pipeline := writeFile(t, dir, "pipeline.yml", `type: pipeline
settings: {default_compute: azureml:cpu-cluster}
jobs:
  say:
    component: ./components/say.yml
`)
	out, errs, code := e.wharf("ml", "job", "create", "--file", pipeline, "--stream", "-w", "dev")
	if code != 0 || !strings.Contains(out, "hello from an include") || !strings.Contains(out, "library folder") {
		t.Fatalf("pipeline with includes: exit %d\n%s\n%s", code, out, errs)
	}
	e.ok("ml", "component", "create", "--file", filepath.Join(dir, "components/say.yml"), "-w", "dev")
	registered := writeFile(t, dir, "registered.yml", `type: pipeline
settings: {default_compute: azureml:cpu-cluster}
jobs:
  say:
    component: azureml:say:1
`)
	// Reuse would skip the step (same code, same component); it must run.
	out, errs, code = e.wharf("ml", "job", "create", "--file", registered, "--stream", "-w", "dev", "--set", "settings.force_rerun=true")
	if code != 0 || !strings.Contains(out, "library folder") {
		t.Fatalf("registered component with includes: exit %d\n%s\n%s", code, out, errs)
	}
	// An include that would replace a code file is refused.
	writeFile(t, dir, "components/src/greeting.txt", "clash\n")
	if _, errs, code := e.wharf("ml", "job", "create", "--file", pipeline, "-w", "dev"); code == 0 || !strings.Contains(errs, "would replace") {
		t.Errorf("clashing include: exit %d %s", code, errs)
	}
}

// TestInlineBuildContextAndFileURIs: a job whose inline environment is a
// Docker build context (environment.build.path, as Azure's R, Julia and
// Java samples write it) is uploaded and runs, and an input path written
// as a file URI (file://data, file:data) is the local folder it names.
func TestInlineBuildContextAndFileURIs(t *testing.T) {
	e := newCLIEnv(t)
	dir := t.TempDir()
	e.ok("ml", "workspace", "create", "-n", "dev")
	e.ok("ml", "compute", "create", "-n", "cpu-cluster", "-w", "dev")
	if err := os.MkdirAll(filepath.Join(dir, "docker-context"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "docker-context"), "Dockerfile", "FROM python:3.11-slim\n")
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "data"), "rows.csv", "a\n1\n")
	for _, path := range []string{"file://data", "file:data"} {
		job := writeFile(t, dir, "job.yml", `command: cat ${{inputs.rows}}/rows.csv > ${{outputs.out}}/copy.csv
environment:
  build:
    path: docker-context
compute: azureml:cpu-cluster
inputs:
  rows: {type: uri_folder, path: `+path+`}
outputs:
  out: {type: uri_folder}
`)
		name := lastLine(e.ok("ml", "job", "create", "--file", job, "-w", "dev", "--query", "name", "-o", "tsv"))
		if got := e.waitJob("dev", name); got != "Completed" {
			t.Fatalf("%s: job %s", path, got)
		}
		dl := filepath.Join(dir, "dl-"+strings.ReplaceAll(path, "/", "_"))
		e.ok("ml", "job", "download", "-n", name, "--output-name", "out", "--download-path", dl, "-w", "dev")
		if b, err := os.ReadFile(filepath.Join(dl, "named-outputs", "out", "copy.csv")); err != nil || string(b) != "a\n1\n" {
			t.Errorf("%s: copy %q %v", path, b, err)
		}
	}
}
