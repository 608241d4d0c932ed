package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// pipelineComponentProject writes a command component with a code folder,
// a pipeline component using it, a pipeline component nesting that file
// twice (once through the registered version), and data.
func pipelineComponentProject(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for name, text := range map[string]string{
		"code/add.sh": "cat \"$1\"/* > \"$3\"/out.txt\necho \"$2\" >> \"$3\"/out.txt\n",
		"data/in.txt": "start\n",
		"add.yml": `type: command
name: add_line
inputs:
  data: {type: uri_folder}
  word: {type: string}
outputs:
  out: {type: uri_folder}
code: ./code
environment:
  image: python:3.11
command: sh add.sh ${{inputs.data}} ${{inputs.word}} ${{outputs.out}}
`,
		"inner.yml": `$schema: https://azuremlschemas.azureedge.net/latest/pipelineComponent.schema.json
type: pipeline
name: inner_pc
version: "1"
inputs:
  data: {type: uri_folder}
  word: {type: string, default: inner}
outputs:
  out: {type: uri_folder}
jobs:
  add:
    type: command
    component: ./add.yml
    inputs:
      data: ${{parent.inputs.data}}
      word: ${{parent.inputs.word}}
    outputs:
      out: ${{parent.outputs.out}}
`,
		"outer.yml": `type: pipeline
name: outer_pc
inputs:
  data: {type: uri_folder}
outputs:
  out: {type: uri_folder}
jobs:
  first:
    type: pipeline
    component: ./inner.yml
    inputs:
      data: ${{parent.inputs.data}}
      word: one
  second:
    type: pipeline
    component: azureml:inner_pc@latest
    inputs:
      data: ${{parent.jobs.first.outputs.out}}
      word: two
    outputs:
      out: ${{parent.outputs.out}}
`,
		"pipeline.yml": `type: pipeline
inputs:
  raw: {type: uri_folder, path: ./data}
outputs:
  final:
settings:
  default_compute: azureml:cpu-cluster
jobs:
  reg:
    type: pipeline
    component: azureml:inner_pc:1
    inputs:
      data: ${{parent.inputs.raw}}
      word: reg
  nest:
    type: pipeline
    component: file:outer.yml
    inputs:
      data: ${{parent.jobs.reg.outputs.out}}
  last:
    command: cp ${{inputs.x}}/out.txt ${{outputs.o}}/final.txt
    environment:
      image: python:3.11
    inputs:
      x: ${{parent.jobs.nest.outputs.out}}
    outputs:
      o: ${{parent.outputs.final}}
`,
	} {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Dir(p), filepath.Base(p), text)
	}
	return dir
}

// TestPipelineComponentsRunNestedAndReuse registers a pipeline component,
// runs a pipeline using it and a file pipeline component nesting it, and
// checks that data flows through every level, later steps read the
// components' outputs, and an identical run reuses every inner step.
func TestPipelineComponentsRunNestedAndReuse(t *testing.T) {
	e := newCLIEnv(t)
	dir := pipelineComponentProject(t)
	e.ok("ml", "workspace", "create", "-n", "mlw")
	e.ok("ml", "compute", "create", "-n", "cpu-cluster", "-w", "mlw")
	e.ok("ml", "component", "create", "--file", filepath.Join(dir, "inner.yml"), "-w", "mlw")

	var shown struct {
		Spec struct {
			Component struct {
				Type   string         `json:"Type"`
				Inputs map[string]any `json:"Inputs"`
				Jobs   struct {
					Document struct {
						Jobs map[string]struct {
							Component struct {
								Code string `json:"code"`
							} `json:"component"`
						} `json:"jobs"`
					} `json:"document"`
				} `json:"Jobs"`
			} `json:"component"`
		} `json:"spec"`
	}
	if err := json.Unmarshal([]byte(e.ok("ml", "component", "show", "-n", "inner_pc", "-v", "1", "-w", "mlw")), &shown); err != nil {
		t.Fatal(err)
	}
	c := shown.Spec.Component
	if c.Type != "pipeline" || c.Inputs["word"] == nil || !strings.HasPrefix(c.Jobs.Document.Jobs["add"].Component.Code, "azureml://datastores/") {
		t.Fatalf("component show: %+v", c)
	}
	if list := e.ok("ml", "component", "list", "-w", "mlw"); !strings.Contains(list, "inner_pc") {
		t.Errorf("component list: %s", list)
	}

	run := func() (string, map[string]stepView) {
		name := strings.TrimSpace(e.ok("ml", "job", "create", "--file", filepath.Join(dir, "pipeline.yml"), "-w", "mlw", "--query", "name", "-o", "tsv"))
		e.ok("ml", "job", "stream", "-n", name, "-w", "mlw")
		status, steps := e.jobSteps("mlw", name)
		if status != "Completed" {
			t.Fatalf("job %s %s: %+v", name, status, steps)
		}
		return name, steps
	}
	first, steps := run()
	inner := []string{"reg/add", "nest/first/add", "nest/second/add"}
	for _, s := range append(inner, "last") {
		if steps[s].Status != "Completed" {
			t.Errorf("step %s: %+v", s, steps[s])
		}
	}
	if len(steps) != 4 {
		t.Errorf("steps: %+v", steps)
	}
	dl := t.TempDir()
	e.ok("ml", "job", "download", "-n", first, "--output-name", "final", "--download-path", dl, "-w", "mlw")
	if got := readText(t, filepath.Join(dl, "named-outputs", "final", "final.txt")); got != "start\nreg\none\ntwo\n" {
		t.Errorf("final output = %q", got)
	}
	// job show tells which pipeline component step a step belongs to.
	var step struct {
		Step string            `json:"step"`
		Tags map[string]string `json:"tags"`
	}
	if err := json.Unmarshal([]byte(e.ok("ml", "job", "show", "-n", steps["nest/second/add"].Name, "-w", "mlw")), &step); err != nil {
		t.Fatal(err)
	}
	if step.Step != "nest/second/add" || step.Tags["wharf.pipeline_component_step"] != "nest/second" {
		t.Errorf("inner step shows %q, tags %v", step.Step, step.Tags)
	}

	_, again := run()
	for _, s := range append(inner, "last") {
		if again[s].ReusedFrom != steps[s].Name {
			t.Errorf("second run's %s reused from %q, want %s", s, again[s].ReusedFrom, steps[s].Name)
		}
	}
}

// TestPipelineBatchDeployment deploys a pipeline component behind a batch
// endpoint and invokes it with a literal and a data input, from an inputs
// file and from --input with --set; a deployment of a pipeline job file
// runs that job's pipeline with the invocation's inputs.
func TestPipelineBatchDeployment(t *testing.T) {
	e := newCLIEnv(t)
	dir := pipelineComponentProject(t)
	e.ok("ml", "workspace", "create", "-n", "mlw")
	e.ok("ml", "compute", "create", "-n", "batch-cluster", "-w", "mlw")
	e.ok("ml", "batch-endpoint", "create", "-n", "lines", "-w", "mlw")
	writeFile(t, dir, "deployment.yml", `$schema: https://azuremlschemas.azureedge.net/latest/pipelineComponentBatchDeployment.schema.json
name: add-line
endpoint_name: lines
type: pipeline
component: ./inner.yml
settings:
  default_compute: azureml:batch-cluster
  continue_on_step_failure: false
`)
	var dep struct {
		Type  string `json:"type"`
		State string `json:"provisioning_state"`
	}
	if err := json.Unmarshal([]byte(e.ok("ml", "batch-deployment", "create", "--file", filepath.Join(dir, "deployment.yml"), "-w", "mlw")), &dep); err != nil {
		t.Fatal(err)
	}
	if dep.Type != "pipeline" || dep.State != "Succeeded" {
		t.Fatalf("deployment: %+v", dep)
	}
	writeFile(t, dir, "inputs.yml", "inputs:\n  data:\n    type: uri_folder\n    path: data\n  word: hello\noutputs:\n  out:\n    mode: upload\n")

	invoke := func(args ...string) string {
		t.Helper()
		var job struct {
			Name    string         `json:"name"`
			Outputs map[string]any `json:"outputs"`
		}
		out := e.ok(append([]string{"ml", "batch-endpoint", "invoke", "-n", "lines", "-w", "mlw"}, args...)...)
		if err := json.Unmarshal([]byte(out), &job); err != nil {
			t.Fatal(err)
		}
		if _, ok := job.Outputs["out"]; !ok {
			t.Errorf("the invocation reports no output out: %s", out)
		}
		e.ok("ml", "job", "stream", "-n", job.Name, "-w", "mlw")
		return job.Name
	}
	output := func(job string) string {
		t.Helper()
		dl := t.TempDir()
		e.ok("ml", "job", "download", "-n", job, "--output-name", "out", "--download-path", dl, "-w", "mlw")
		return readText(t, filepath.Join(dl, "named-outputs", "out", "out.txt"))
	}
	first := invoke("--file", filepath.Join(dir, "inputs.yml"))
	if got := output(first); got != "start\nhello\n" {
		t.Errorf("first invocation's output = %q", got)
	}
	second := invoke("--deployment-name", "add-line", "--input", filepath.Join(dir, "data"), "--set", "inputs.word=bye")
	if got := output(second); got != "start\nbye\n" {
		t.Errorf("second invocation's output = %q", got)
	}
	if status, steps := e.jobSteps("mlw", second); status != "Completed" || steps["add"].Status != "Completed" {
		t.Errorf("second invocation: %s %+v", status, steps)
	}
	list := e.ok("ml", "batch-endpoint", "list-jobs", "-n", "lines", "-w", "mlw")
	if !strings.Contains(list, first) || !strings.Contains(list, second) {
		t.Errorf("list-jobs: %s", list)
	}

	// A deployment of a pipeline job file.
	writeFile(t, dir, "job.yml", "type: pipeline\ninputs:\n  d: {type: uri_folder, path: ./data}\n  w: job\noutputs:\n  out:\njobs:\n  step:\n    type: pipeline\n    component: ./inner.yml\n    inputs:\n      data: ${{parent.inputs.d}}\n      word: ${{parent.inputs.w}}\n    outputs:\n      out: ${{parent.outputs.out}}\n")
	writeFile(t, dir, "from-job.yml", "name: from-job\nendpoint_name: lines\ntype: pipeline\njob_definition: ./job.yml\nsettings:\n  default_compute: azureml:batch-cluster\n")
	e.ok("ml", "batch-deployment", "create", "--file", filepath.Join(dir, "from-job.yml"), "-w", "mlw")
	third := invoke("-d", "from-job", "--set", "inputs.w=again")
	if got := output(third); got != "start\nagain\n" {
		t.Errorf("job deployment's output = %q", got)
	}
	if _, errs, code := e.wharf("ml", "batch-endpoint", "invoke", "-n", "lines", "-d", "from-job", "--set", "inputs.nope=1", "-w", "mlw"); code == 0 || !strings.Contains(errs, `has no input "nope"`) {
		t.Errorf("an unknown input: exit %d, %s", code, errs)
	}
}
