package jobspec

import (
	"encoding/json"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// pipelineComponentFiles are a command component, a pipeline component
// using it, and a pipeline component nesting that one.
var pipelineComponentFiles = map[string]string{
	"src/train.py": "print(1)\n",
	"train.yml": `type: command
name: train
inputs:
  data: {type: uri_folder}
  lr: {type: number}
outputs:
  model: {type: uri_folder}
code: ./src
environment: azureml:env:1
command: python train.py --data ${{inputs.data}} --lr ${{inputs.lr}} --model ${{outputs.model}}
`,
	"inner.yml": `$schema: https://azuremlschemas.azureedge.net/latest/pipelineComponent.schema.json
type: pipeline
name: inner_pc
version: "1"
inputs:
  data: {type: uri_folder}
  lr: {type: number, default: 0.1}
outputs:
  model: {type: uri_folder}
jobs:
  train_job:
    type: command
    component: ./train.yml
    inputs:
      data: ${{parent.inputs.data}}
      lr: ${{parent.inputs.lr}}
    outputs:
      model: ${{parent.outputs.model}}
`,
	"outer.yml": `type: pipeline
name: outer_pc
inputs:
  data: {type: uri_folder}
outputs:
  model: {type: uri_folder}
  report: {type: uri_folder}
jobs:
  train_and_eval:
    type: pipeline
    component: ./inner.yml
    inputs:
      data: ${{parent.inputs.data}}
      lr: 0.5
    outputs:
      model: ${{parent.outputs.model}}
  report:
    command: cat ${{inputs.m}}/* > ${{outputs.r}}/report.txt
    environment: azureml:env:1
    inputs:
      m: ${{parent.jobs.train_and_eval.outputs.model}}
    outputs:
      r: ${{parent.outputs.report}}
`,
	"pipeline.yml": `type: pipeline
inputs:
  raw: {type: uri_folder, path: azureml:taxi-data:1}
outputs:
  final:
settings:
  default_compute: azureml:cpu
jobs:
  prep:
    command: cp -r ${{inputs.raw}} ${{outputs.out}}
    environment: azureml:env:1
    inputs:
      raw: ${{parent.inputs.raw}}
    outputs:
      out:
  nested:
    type: pipeline
    component: file:outer.yml
    compute: azureml:gpu
    settings:
      force_rerun: true
    inputs:
      data: ${{parent.jobs.prep.outputs.out}}
    outputs:
      report: ${{parent.outputs.final}}
  after:
    command: ls ${{inputs.m}}
    environment: azureml:env:1
    inputs:
      m: ${{parent.jobs.nested.outputs.model}}
`,
}

func TestNestedPipelineComponents(t *testing.T) {
	dir := writeFiles(t, pipelineComponentFiles)
	plan, err := LoadJob(filepath.Join(dir, "pipeline.yml"), nil, testResolver())
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"prep", "nested/train_and_eval/train_job", "nested/report", "after"}
	if got := stepNames(plan); !reflect.DeepEqual(got, want) {
		t.Fatalf("steps = %v, want %v", got, want)
	}
	train := plan.Step("nested/train_and_eval/train_job")
	if b := train.Inputs["data"]; b.Kind != BindStepOutput || b.Step != "prep" || b.Port != "out" {
		t.Errorf("train data = %+v", b)
	}
	if b := train.Inputs["lr"]; b.Literal == nil || b.Literal.Type != TypeNumber || b.Literal.Float != 0.5 {
		t.Errorf("train lr = %+v", b)
	}
	if train.Compute != "gpu" || !train.ForceRerun || train.ComponentStep() != "nested/train_and_eval" {
		t.Errorf("train compute %q, force rerun %v, component step %q", train.Compute, train.ForceRerun, train.ComponentStep())
	}
	if train.Component.Code != filepath.Join(dir, "src") || train.ComponentRef != "./train.yml" {
		t.Errorf("train component = %q %q", train.Component.Code, train.ComponentRef)
	}
	if o := train.Outputs["model"]; o.ParentOutput != "" {
		t.Errorf("train model output is bound to pipeline output %q; the job does not bind it", o.ParentOutput)
	}
	report := plan.Step("nested/report")
	if b := report.Inputs["m"]; b.Kind != BindStepOutput || b.Step != "nested/train_and_eval/train_job" || b.Port != "model" {
		t.Errorf("report m = %+v", b)
	}
	if !reflect.DeepEqual(report.Deps, []string{"nested/train_and_eval/train_job"}) {
		t.Errorf("report deps = %v", report.Deps)
	}
	if o := report.Outputs["r"]; o.ParentOutput != "final" {
		t.Errorf("report r is bound to %q, want the job's output final", o.ParentOutput)
	}
	after := plan.Step("after")
	if b := after.Inputs["m"]; b.Step != "nested/train_and_eval/train_job" || b.Port != "model" {
		t.Errorf("after m = %+v", b)
	}
	if after.Compute != "cpu" || after.ForceRerun || plan.Step("prep").Compute != "cpu" {
		t.Errorf("outer steps' compute or force_rerun changed: %q %v", after.Compute, after.ForceRerun)
	}
}

// TestRegisteredPipelineComponent uses a pipeline component as a server
// holds it: its document, inlined and uploaded, survives JSON storage and
// is read at each use, by version and by @latest.
func TestRegisteredPipelineComponent(t *testing.T) {
	dir := writeFiles(t, pipelineComponentFiles)
	spec, err := LoadComponent(filepath.Join(dir, "inner.yml"), nil, testResolver())
	if err != nil {
		t.Fatal(err)
	}
	if !spec.IsPipeline() || spec.Inputs["lr"].Default == nil || spec.Outputs["model"] == nil {
		t.Fatalf("component = %+v", spec)
	}
	up := &recordingUploader{}
	doc, err := ComponentDocument(filepath.Join(dir, "inner.yml"), nil, up)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(doc.JSON), dir) || strings.Contains(string(doc.JSON), "train.yml") || strings.Contains(string(doc.JSON), "$schema") {
		t.Errorf("document holds local paths: %s", doc.JSON)
	}
	stored := spec.Clone()
	stored.Jobs = &PipelineJobs{Document: doc.JSON}
	raw, err := json.Marshal(stored)
	if err != nil {
		t.Fatal(err)
	}
	var back ComponentSpec
	if err := json.Unmarshal(raw, &back); err != nil {
		t.Fatal(err)
	}
	r := testResolver()
	r.AddComponent(&back)
	for _, ref := range []string{"azureml:inner_pc:1", "azureml:inner_pc@latest"} {
		job := `type: pipeline
inputs:
  d: {type: uri_folder, path: azureml://datastores/workspaceblobstore/paths/in/}
jobs:
  tr:
    type: pipeline
    component: ` + ref + `
    inputs:
      data: ${{parent.inputs.d}}
  use:
    command: ls ${{inputs.m}}
    environment: azureml:env:1
    inputs:
      m: ${{parent.jobs.tr.outputs.model}}
`
		plan, err := ParseJobDocument([]byte(job), r)
		if err != nil {
			t.Fatalf("%s: %v", ref, err)
		}
		st := plan.Step("tr/train_job")
		if st == nil {
			t.Fatalf("%s: steps %v", ref, stepNames(plan))
		}
		if st.Component.CodeURI == nil || st.Component.Code != "" {
			t.Errorf("%s: inner code = %+v %q, want the uploaded folder", ref, st.Component.CodeURI, st.Component.Code)
		}
		if b := st.Inputs["lr"]; b.Literal == nil || b.Literal.Float != 0.1 {
			t.Errorf("%s: lr = %+v, want the component's default", ref, b)
		}
		if b := st.Inputs["data"]; b.Kind != BindParentInput || b.ParentInput != "d" || b.Data == nil {
			t.Errorf("%s: data = %+v", ref, b)
		}
		if b := plan.Step("use").Inputs["m"]; b.Step != "tr/train_job" || b.Port != "model" {
			t.Errorf("%s: use m = %+v", ref, b)
		}
	}
}

// TestPipelineJobOfComponent is a pipeline job written as component: at
// its top level, and a step whose pipeline component is written inline.
func TestPipelineJobOfComponent(t *testing.T) {
	files := map[string]string{
		"job.yml": `type: pipeline
component: ./inner.yml
inputs:
  data: {type: uri_folder, path: azureml:taxi-data:1}
outputs:
  model: {mode: upload}
`,
		"inline.yml": `type: pipeline
jobs:
  wrap:
    type: pipeline
    inputs:
      x: 3
    component:
      type: pipeline
      inputs:
        x: {type: integer}
      outputs:
        o: {type: uri_folder}
      jobs:
        echo:
          command: echo ${{inputs.x}} > ${{outputs.o}}/x
          environment: azureml:env:1
          inputs:
            x: ${{parent.inputs.x}}
          outputs:
            o: ${{parent.outputs.o}}
`,
	}
	for k, v := range pipelineComponentFiles {
		files[k] = v
	}
	dir := writeFiles(t, files)
	plan, err := LoadJob(filepath.Join(dir, "job.yml"), nil, testResolver())
	if err != nil {
		t.Fatal(err)
	}
	st := plan.Step("train_job")
	if st == nil || len(plan.Steps) != 1 {
		t.Fatalf("steps = %v", stepNames(plan))
	}
	if b := st.Inputs["data"]; b.Kind != BindParentInput || b.ParentInput != "data" || b.Data == nil || b.Data.Asset == nil {
		t.Errorf("data = %+v", b)
	}
	if o := st.Outputs["model"]; o.ParentOutput != "model" || plan.Outputs["model"].Mode != ModeUpload {
		t.Errorf("model output = %+v, job output %+v", o, plan.Outputs["model"])
	}

	plan, err = LoadJob(filepath.Join(dir, "inline.yml"), nil, testResolver())
	if err != nil {
		t.Fatal(err)
	}
	echo := plan.Step("wrap/echo")
	if echo == nil {
		t.Fatalf("steps = %v", stepNames(plan))
	}
	if b := echo.Inputs["x"]; b.Literal == nil || b.Literal.Type != TypeInteger || b.Literal.Int != 3 {
		t.Errorf("x = %+v", b)
	}
}

func TestPipelineComponentErrors(t *testing.T) {
	base := writeFiles(t, pipelineComponentFiles)
	for _, tc := range []struct {
		name  string
		files map[string]string
		file  string
		want  []string
	}{{
		name: "cycle",
		files: map[string]string{
			"a.yml":   "type: pipeline\nname: a\njobs:\n  b:\n    type: pipeline\n    component: ./b.yml\n",
			"b.yml":   "type: pipeline\nname: b\njobs:\n  a:\n    type: pipeline\n    component: ./a.yml\n",
			"job.yml": "type: pipeline\njobs:\n  top:\n    type: pipeline\n    component: ./a.yml\n",
		},
		file: "job.yml",
		want: []string{"b.yml:6:16: field jobs.a.component: pipeline component cycle: "},
	}, {
		name: "unknown parent input",
		files: map[string]string{
			"pc.yml":  "type: pipeline\nname: pc\ninputs:\n  x: {type: integer}\njobs:\n  s:\n    command: echo ${{inputs.v}}\n    environment: azureml:env:1\n    inputs:\n      v: ${{parent.inputs.nope}}\n",
			"job.yml": "type: pipeline\njobs:\n  top:\n    type: pipeline\n    component: ./pc.yml\n    inputs:\n      x: 1\n",
		},
		file: "job.yml",
		want: []string{`pc.yml:10:10: field jobs.s.inputs.v: ${{parent.inputs.nope}}: the pipeline component has no input "nope" (inputs: x)`},
	}, {
		name: "unknown step in component",
		files: map[string]string{
			"pc.yml":  "type: pipeline\nname: pc\njobs:\n  s:\n    command: echo ${{inputs.v}}\n    environment: azureml:env:1\n    inputs:\n      v: ${{parent.jobs.ghost.outputs.o}}\n",
			"job.yml": "type: pipeline\njobs:\n  top:\n    type: pipeline\n    component: ./pc.yml\n",
		},
		file: "job.yml",
		want: []string{`pc.yml:8:10: field jobs.s.inputs.v: ${{parent.jobs.ghost.outputs.o}}: there is no step "ghost" in this pipeline (steps: s)`},
	}, {
		name: "unknown port",
		files: map[string]string{
			"job.yml": "type: pipeline\njobs:\n  top:\n    type: pipeline\n    component: " + filepath.Join(base, "inner.yml") + "\n    inputs:\n      data: {type: uri_folder, path: azureml:taxi-data:1}\n      bogus: 1\n    outputs:\n      nothing:\n",
		},
		file: "job.yml",
		want: []string{
			`job.yml:8:7: field jobs.top.inputs.bogus: component inner_pc:1 has no input "bogus" (inputs: data, lr)`,
			`job.yml:10:7: field jobs.top.outputs.nothing: component inner_pc:1 has no output "nothing" (outputs: model)`,
		},
	}, {
		name: "unread downstream output",
		files: map[string]string{
			"job.yml": "type: pipeline\njobs:\n  top:\n    type: pipeline\n    component: " + filepath.Join(base, "inner.yml") + "\n    inputs:\n      data: {type: uri_folder, path: azureml:taxi-data:1}\n  use:\n    command: ls ${{inputs.m}}\n    environment: azureml:env:1\n    inputs:\n      m: ${{parent.jobs.top.outputs.weights}}\n",
		},
		file: "job.yml",
		want: []string{`job.yml:12:10: field jobs.use.inputs.m: ${{parent.jobs.top.outputs.weights}}: step "top" has no output "weights" (outputs: model)`},
	}, {
		name: "output written by no step",
		files: map[string]string{
			"pc.yml":  "type: pipeline\nname: pc\noutputs:\n  o: {type: uri_folder}\njobs:\n  s:\n    command: echo hi\n    environment: azureml:env:1\n",
			"job.yml": "type: pipeline\njobs:\n  top:\n    type: pipeline\n    component: ./pc.yml\n",
		},
		file: "job.yml",
		want: []string{`pc.yml:4:6: field outputs.o: output "o" of pipeline component pc is written by no step`},
	}, {
		name: "inline component without steps",
		files: map[string]string{
			"job.yml": "type: pipeline\njobs:\n  w:\n    type: pipeline\n    component:\n      type: pipeline\n      inputs: {x: {type: integer}}\n",
		},
		file: "job.yml",
		want: []string{
			`job.yml:6:7: field jobs.w.component.jobs: jobs is required: a pipeline component needs at least one step`,
			`job.yml:4:5: field jobs.w.inputs.x: required input "x" of component (inline) is not set`,
		},
	}, {
		name: "step type",
		files: map[string]string{
			"job.yml": "type: pipeline\njobs:\n  top:\n    component: " + filepath.Join(base, "inner.yml") + "\n  cmd:\n    type: pipeline\n    component: " + filepath.Join(base, "train.yml") + "\n    command: echo\n",
		},
		file: "job.yml",
		want: []string{
			`job.yml:4:16: field jobs.top.component: component ` + filepath.Join(base, "inner.yml") + ` is a pipeline component: write type: pipeline on this step`,
			`job.yml:8:14: field jobs.cmd.command: command applies to command steps`,
			`job.yml:7:16: field jobs.cmd.component: component ` + filepath.Join(base, "train.yml") + ` is a command component: write type: command on this step`,
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeFiles(t, tc.files)
			_, err := LoadJob(filepath.Join(dir, tc.file), nil, testResolver())
			want := make([]string, len(tc.want))
			for i, w := range tc.want {
				if !strings.HasPrefix(w, "/") {
					w = filepath.Join(dir, w)
				}
				want[i] = w
			}
			checkErrors(t, err, want)
		})
	}
}

// TestPipelineComponentOnItsOwn checks a pipeline component as component
// create does: bindings are checked without input values, and a bad one
// is refused.
func TestPipelineComponentOnItsOwn(t *testing.T) {
	dir := writeFiles(t, pipelineComponentFiles)
	if _, err := LoadComponent(filepath.Join(dir, "outer.yml"), nil, testResolver()); err != nil {
		t.Fatal(err)
	}
	bad := writeFiles(t, map[string]string{
		"pc.yml": "type: pipeline\nname: pc\ninputs:\n  n: {type: integer}\njobs:\n  s:\n    type: pipeline\n    component: " + filepath.Join(dir, "inner.yml") + "\n    inputs:\n      data: ${{parent.inputs.n}}\n",
	})
	_, err := LoadComponent(filepath.Join(bad, "pc.yml"), nil, testResolver())
	checkErrors(t, err, []string{filepath.Join(bad, "pc.yml") + `:10:13: field jobs.s.inputs.data: type mismatch: pipeline component input "n" (integer) cannot be bound to uri_folder input "data"`})
}

func TestPipelineDeployment(t *testing.T) {
	files := map[string]string{
		"deployment.yml": "name: d\nendpoint_name: e\ntype: pipeline\ncomponent: ./outer.yml\nsettings:\n  default_compute: azureml:batch-cluster\n  continue_on_step_failure: false\n",
		"from-job.yml":   "name: j\nendpoint_name: e\ntype: pipeline\njob_definition: ./pipeline.yml\n",
		"from-name.yml":  "name: j\nendpoint_name: e\ntype: pipeline\njob_definition: azureml:calm_ferry_1\n",
		"both.yml":       "name: b\nendpoint_name: e\ntype: pipeline\ncomponent: ./outer.yml\njob_definition: ./pipeline.yml\n",
		"command.yml":    "name: c\nendpoint_name: e\ntype: pipeline\ncomponent: ./train.yml\nsettings:\n  default_compute: a b\n",
		"inputs.yml":     "inputs:\n  data: {type: uri_folder, path: src}\n  word: hi\noutputs:\n  out: {mode: upload}\n",
	}
	for k, v := range pipelineComponentFiles {
		files[k] = v
	}
	dir := writeFiles(t, files)
	up := &recordingUploader{}
	d, err := LoadPipelineDeployment(filepath.Join(dir, "deployment.yml"), nil, testResolver(), up)
	if err != nil {
		t.Fatal(err)
	}
	if d.Name != "d" || d.Settings["default_compute"] != "azureml:batch-cluster" || d.Settings["continue_on_step_failure"] != false {
		t.Errorf("deployment = %+v", d)
	}
	plan, err := ParseJobDocument([]byte(strings.Replace(string(d.Job), "{", `{"inputs":{"data":{"type":"uri_folder","path":"azureml:taxi-data:1"}},`, 1)), testResolver())
	if err != nil {
		t.Fatalf("the deployment's job does not resolve: %v\n%s", err, d.Job)
	}
	if got := stepNames(plan); !reflect.DeepEqual(got, []string{"train_and_eval/train_job", "report"}) {
		t.Errorf("steps = %v", got)
	}
	if len(up.paths) != 1 || up.paths[0] != filepath.Join(dir, "src") {
		t.Errorf("uploaded %v, want the nested component's code", up.paths)
	}

	d, err = LoadPipelineDeployment(filepath.Join(dir, "from-job.yml"), nil, testResolver(), up)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(d.Job), `"jobs"`) || strings.Contains(string(d.Job), dir) {
		t.Errorf("job_definition document = %s", d.Job)
	}
	if d, err = LoadPipelineDeployment(filepath.Join(dir, "from-name.yml"), nil, testResolver(), up); err != nil || d.JobDefinition != "calm_ferry_1" || d.Job != nil {
		t.Errorf("job_definition by name = %+v, %v", d, err)
	}
	_, err = LoadPipelineDeployment(filepath.Join(dir, "both.yml"), nil, testResolver(), up)
	checkErrors(t, err, []string{filepath.Join(dir, "both.yml") + ":5:17: field job_definition: a pipeline deployment has component or job_definition, not both"})
	_, err = LoadPipelineDeployment(filepath.Join(dir, "command.yml"), nil, testResolver(), up)
	checkErrors(t, err, []string{filepath.Join(dir, "command.yml") + `:6:20: field settings.default_compute: compute must be azureml:<name>`})

	in, out, err := InvocationDocument(filepath.Join(dir, "inputs.yml"), []string{"inputs.word=bye"}, up)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(in), `"word":"bye"`) || !strings.Contains(string(in), "LocalUpload") || string(out) != `{"out":{"mode":"upload"}}` {
		t.Errorf("invocation = %s %s", in, out)
	}
	if in, _, err = InvocationDocument("", []string{"inputs.n=3"}, up); err != nil || string(in) != `{"n":3}` {
		t.Errorf("--set alone = %s, %v", in, err)
	}
}
