package main

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// curlJSON sends a request with curl, as a user without the CLI would,
// and returns the HTTP status and the decoded body.
func curlJSON(t *testing.T, method, url, token, body string) (int, map[string]any) {
	t.Helper()
	curl, err := exec.LookPath("curl")
	if err != nil {
		missing(t, "curl is not installed")
	}
	out, err := exec.Command(curl, "-sS", "-X", method, "-H", "Authorization: Bearer "+token,
		"-H", "Content-Type: application/json", "--data-binary", body, "-w", "\n%{http_code}", url).Output()
	if err != nil {
		t.Fatalf("curl %s %s: %v", method, url, err)
	}
	text, code, _ := strings.Cut(string(out), "\n")
	status := 0
	if err := json.Unmarshal([]byte(code), &status); err != nil {
		t.Fatalf("curl: no status in %q", out)
	}
	var v map[string]any
	if err := json.Unmarshal([]byte(text), &v); err != nil {
		t.Fatalf("curl: body %q is not JSON: %v", text, err)
	}
	return status, v
}

// waitJob polls job show until the job ends and returns its status.
func (e *cliEnv) waitJob(ws, name string) string {
	e.t.Helper()
	deadline := time.Now().Add(120 * time.Second)
	for time.Now().Before(deadline) {
		status := strings.TrimSpace(e.ok("ml", "job", "show", "-n", name, "-w", ws, "--query", "status", "-o", "tsv"))
		switch status {
		case "Completed", "Failed", "Canceled":
			return status
		}
		time.Sleep(100 * time.Millisecond)
	}
	e.t.Fatalf("job %s did not end", name)
	return ""
}

// TestJobDocumentOverHTTP: a client without the CLI PUTs the az ml job
// document as JSON and it runs; a document with a mistake gets a 400 that
// names the field path.
func TestJobDocumentOverHTTP(t *testing.T) {
	e := newCLIEnv(t)
	dir := t.TempDir()
	e.ok("ml", "workspace", "create", "-n", "dev")
	e.ok("ml", "compute", "create", "-n", "cpu-cluster", "-w", "dev")
	writeFile(t, dir, "fares.csv", "fare\n12.5\n")
	e.ok("ml", "data", "create", "-n", "fares", "--path", filepath.Join(dir, "fares.csv"), "--type", "uri_file", "-w", "dev")
	token := strings.TrimSpace(e.ok("account", "get-access-token", "--query", "accessToken", "-o", "tsv"))
	jobs := e.srv.HTTP.URL + "/api/v1/workspaces/dev/jobs/"

	doc := `{
  "$schema": "https://azuremlschemas.azureedge.net/latest/commandJob.schema.json",
  "command": "cat ${{inputs.fares}} > ${{outputs.copy}}/fares.csv",
  "environment": {"image": "python:3.11"},
  "compute": "azureml:cpu-cluster",
  "inputs": {"fares": {"type": "uri_file", "path": "azureml:fares@latest"}},
  "outputs": {"copy": {"type": "uri_folder"}},
  "experiment_name": "from-curl"
}`
	status, body := curlJSON(t, "PUT", jobs+"curl_job_1", token, doc)
	if status != 201 || body["name"] != "curl_job_1" {
		t.Fatalf("PUT job: %d %v", status, body)
	}
	if got := e.waitJob("dev", "curl_job_1"); got != "Completed" {
		t.Fatalf("the job ended %s", got)
	}
	var shown struct {
		Command    string                           `json:"command"`
		Inputs     map[string]struct{ Path string } `json:"inputs"`
		Resolution struct {
			Resolved map[string]struct{ Source string } `json:"resolved"`
		} `json:"resolution"`
	}
	if err := json.Unmarshal([]byte(e.ok("ml", "job", "show", "-n", "curl_job_1", "-w", "dev")), &shown); err != nil {
		t.Fatal(err)
	}
	if shown.Inputs["fares"].Path != "azureml:fares@latest" || shown.Resolution.Resolved["fares"].Source != "azureml:fares:1" ||
		!strings.HasPrefix(shown.Command, "cat ") {
		t.Errorf("job show does not give the document and what it resolved: %+v", shown)
	}
	// A job's name is never reused.
	if status, body := curlJSON(t, "PUT", jobs+"curl_job_1", token, doc); status != 409 {
		t.Errorf("PUT to an existing job: %d %v", status, body)
	}

	for _, c := range []struct{ name, doc, field string }{
		{"unknown field", strings.Replace(doc, `"experiment_name"`, `"colour": "red", "experiment_name"`, 1), "colour"},
		{"missing component", `{"type": "pipeline", "settings": {"default_compute": "azureml:cpu-cluster"},
		  "jobs": {"train": {"component": "azureml:no_such_component:1"}}}`, "jobs.train.component"},
		{"bad binding", `{"type": "pipeline", "settings": {"default_compute": "azureml:cpu-cluster"},
		  "jobs": {"train": {"type": "command", "command": "echo ${{inputs.x}}", "environment": {"image": "python:3.11"},
		    "inputs": {"x": "${{parent.jobs.prep.outputs.data}}"}}}}`, "jobs.train.inputs.x"},
		{"missing data", strings.Replace(doc, "azureml:fares@latest", "azureml:nowhere:3", 1), "inputs.fares.path"},
		{"local path", strings.Replace(doc, "azureml:fares@latest", "./fares.csv", 1), "inputs.fares.path"},
	} {
		status, body := curlJSON(t, "PUT", jobs+"curl_bad", token, c.doc)
		e, _ := body["error"].(map[string]any)
		if status != 400 || e["target"] != c.field {
			t.Errorf("%s: %d %v, want 400 naming %s", c.name, status, body, c.field)
		}
	}
}

// TestJobShowYAMLRoundTrips: what job show -o yaml prints can be
// submitted again with job create -f, for a command job and for the taxi
// pipeline; the resubmitted pipeline runs on the same data, so it reuses
// every step.
func TestJobShowYAMLRoundTrips(t *testing.T) {
	e := newCLIEnv(t)
	dir := taxiProject(t, 200, 0)
	e.ok("ml", "workspace", "create", "-n", "mlw")
	e.ok("ml", "compute", "create", "-n", "cpu-cluster", "--type", "AmlCompute", "--max-instances", "2", "-w", "mlw")
	e.ok("ml", "environment", "create", "--file", filepath.Join(dir, "train-env.yml"), "-w", "mlw")
	e.ok("ml", "data", "create", "--file", filepath.Join(dir, "data.yml"), "-w", "mlw")

	writeFile(t, dir, "src/hello.py", "import sys\nprint('hello', sys.argv[1])\n")
	cmdJob := writeFile(t, dir, "hello.yml", `$schema: https://azuremlschemas.azureedge.net/latest/commandJob.schema.json
code: src
command: python hello.py ${{inputs.who}}
inputs:
  who: world
environment:
  image: python:3.11
compute: azureml:cpu-cluster
`)
	for _, file := range []string{cmdJob, filepath.Join(dir, "pipeline.yml")} {
		name := strings.TrimSpace(e.ok("ml", "job", "create", "--file", file, "--stream", "-w", "mlw", "--query", "name", "-o", "tsv"))
		lines := strings.Split(name, "\n")
		name = lines[len(lines)-1]
		shown := e.ok("ml", "job", "show", "-n", name, "-w", "mlw", "-o", "yaml")
		again := writeFile(t, t.TempDir(), "again.yml", shown)
		out, errs, code := e.wharf("ml", "job", "create", "--file", again, "--stream", "-w", "mlw", "--query", "name", "-o", "tsv")
		if code != 0 {
			t.Fatalf("%s: job create -f of job show -o yaml: exit %d\n%s\n%s\nshown:\n%s", filepath.Base(file), code, out, errs, shown)
		}
		if !strings.Contains(errs, "as a new job") {
			t.Errorf("%s: no note that the shown job's fields were left out:\n%s", filepath.Base(file), errs)
		}
		outLines := strings.Split(strings.TrimSpace(out), "\n")
		second := outLines[len(outLines)-1]
		if second == name {
			t.Fatalf("the resubmission reused the name %s", name)
		}
		if strings.HasSuffix(file, "pipeline.yml") {
			status, steps := e.jobSteps("mlw", second)
			if status != "Completed" || len(steps) != 4 {
				t.Fatalf("resubmitted pipeline: %s with %d steps", status, len(steps))
			}
			for step, s := range steps {
				if s.ReusedFrom == "" {
					t.Errorf("step %s of the resubmitted pipeline ran again; the same document on the same data should reuse it", step)
				}
			}
		}
	}
}
