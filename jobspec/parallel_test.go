package jobspec

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// parallelPipeline is Azure's iris batch prediction form: an inline
// parallel step over tabular data, every setting written.
const parallelPipeline = `type: pipeline
settings:
  default_compute: azureml:cpu-cluster
jobs:
  batch_prediction:
    type: parallel
    compute: azureml:cpu-cluster
    inputs:
      input_data:
        type: mltable
        path: ./iris-mltable
        mode: direct
      score_model:
        type: uri_folder
        path: ./iris-model
    outputs:
      job_output_file:
        type: uri_file
        mode: rw_mount
    input_data: ${{inputs.input_data}}
    mini_batch_size: "10kb"
    resources:
      instance_count: 2
    max_concurrency_per_instance: 3
    logging_level: "DEBUG"
    mini_batch_error_threshold: 5
    retry_settings:
      max_retries: 4
      timeout: 90
    environment_variables:
      AZUREML_PARALLEL_EXAMPLE: "2a_yaml"
    task:
      type: run_function
      code: ./script
      entry_script: iris_prediction.py
      environment:
        image: python:3.11
      program_arguments: >-
        --model ${{inputs.score_model}}
        --error_threshold 5
        --allowed_failed_percent 30
      append_row_to: ${{outputs.job_output_file}}
  summarize:
    command: wc -l ${{inputs.rows}}
    environment: {image: python:3.11}
    inputs:
      rows: ${{parent.jobs.batch_prediction.outputs.job_output_file}}
`

func parallelFiles(t *testing.T, extra map[string]string) string {
	t.Helper()
	files := map[string]string{
		"script/iris_prediction.py": "def init(): pass\ndef run(b): return b\n",
		"iris-mltable/MLTable":      "paths:\n  - file: ./iris.csv\n",
		"iris-mltable/iris.csv":     "a,b\n1,2\n",
		"iris-model/model.txt":      "m\n",
		"pipeline.yml":              parallelPipeline,
	}
	for k, v := range extra {
		files[k] = v
	}
	return writeFiles(t, files)
}

// TestParallelStepInPipeline reads an inline parallel step: every setting
// reaches the spec, retry_settings are the mini-batches' (not the step's),
// and the command is wharf parallel-run with the program arguments after
// --.
func TestParallelStepInPipeline(t *testing.T) {
	dir := parallelFiles(t, nil)
	plan, err := LoadJob(filepath.Join(dir, "pipeline.yml"), nil, testResolver())
	if err != nil {
		t.Fatal(err)
	}
	st := plan.Step("batch_prediction")
	c := st.Component
	want := &ParallelSpec{InputData: "input_data", MiniBatchSize: "10kb", MaxConcurrencyPerInstance: 3, MiniBatchErrorThreshold: 5,
		ErrorThreshold: -1, LoggingLevel: "DEBUG", MaxRetries: 4, TimeoutSeconds: 90, EntryScript: "iris_prediction.py",
		ProgramArguments: "--model ${{inputs.score_model}} --error_threshold 5 --allowed_failed_percent 30", AppendRowTo: "job_output_file"}
	if !reflect.DeepEqual(c.Parallel, want) {
		t.Errorf("parallel = %+v\nwant       %+v", c.Parallel, want)
	}
	if st.Retry.MaxRetries != 0 || st.Retry.Timeout != 0 || st.Timeout != 0 {
		t.Errorf("the step's own retry settings were set: %+v, timeout %v", st.Retry, st.Timeout)
	}
	if c.Code != filepath.Join(dir, "script") || c.Environment.Inline == nil || c.Environment.Inline.Image != "python:3.11" {
		t.Errorf("code %q, environment %+v", c.Code, c.Environment)
	}
	wantCmd := `"$WHARF" parallel-run --input ${{inputs.input_data}} --entry-script 'iris_prediction.py' --mini-batch-size '10kb'` +
		` --instances 2 --max-concurrency 3 --max-retries 4 --timeout 90 --mini-batch-error-threshold 5 --error-threshold -1` +
		` --logging-level DEBUG --append-row-to ${{outputs.job_output_file}} -- --model ${{inputs.score_model}} --error_threshold 5 --allowed_failed_percent 30`
	if c.Command != wantCmd {
		t.Errorf("command\n got %s\nwant %s", c.Command, wantCmd)
	}
	if b := st.Inputs["input_data"]; b.Type != TypeMLTable || b.Mode != ModeDirect {
		t.Errorf("input_data bound as %s %s", b.Type, b.Mode)
	}
	if o := st.Outputs["job_output_file"]; o.Type != TypeURIFile {
		t.Errorf("output type %s", o.Type)
	}
	if st.EnvironmentVariables["AZUREML_PARALLEL_EXAMPLE"] != "2a_yaml" || st.Compute != "cpu-cluster" {
		t.Errorf("env %v, compute %q", st.EnvironmentVariables, st.Compute)
	}
	if deps := plan.Step("summarize").Deps; !reflect.DeepEqual(deps, []string{"batch_prediction"}) {
		t.Errorf("summarize deps %v", deps)
	}
}

const parallelComponent = `$schema: https://azuremlschemas.azureedge.net/latest/parallelComponent.schema.json
type: parallel
name: file_batch_score
version: "1"
inputs:
  job_data_path:
    type: uri_folder
  score_model:
    type: uri_folder
  prefix:
    type: string
    default: p
outputs:
  job_output_path:
    type: uri_folder
input_data: ${{inputs.job_data_path}}
mini_batch_size: "2"
resources:
  instance_count: 1
max_concurrency_per_instance: 2
mini_batch_error_threshold: 1
retry_settings:
  max_retries: 1
  timeout: 30
task:
  type: run_function
  code: ./src
  entry_script: digit_identification.py
  environment:
    image: python:3.11
  program_arguments: --model ${{inputs.score_model}} --prefix ${{inputs.prefix}}
  append_row_to: ${{outputs.job_output_path}}
`

// TestParallelComponentForms uses one parallel component as a file, as
// a registered component (stored as JSON, as the server keeps it) and
// inline; a step may override its settings but not its task.
func TestParallelComponentForms(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"components/parallel.yml":                parallelComponent,
		"components/src/digit_identification.py": "def init(): pass\ndef run(b): return b\n",
		"data/a.png":                             "x",
		"model/m.txt":                            "m",
	})
	comp, err := LoadComponent(filepath.Join(dir, "components/parallel.yml"), nil, testResolver())
	if err != nil {
		t.Fatal(err)
	}
	if comp.Parallel == nil || comp.Parallel.MiniBatchSize != "2" || comp.Parallel.MaxRetries != 1 || comp.Parallel.TimeoutSeconds != 30 ||
		comp.Code != filepath.Join(dir, "components/src") || !strings.Contains(comp.Command, "--max-concurrency 2 ") {
		t.Fatalf("component = %+v, parallel %+v", comp, comp.Parallel)
	}
	// Registered: the server stores the spec as JSON.
	b, err := json.Marshal(comp)
	if err != nil {
		t.Fatal(err)
	}
	var stored ComponentSpec
	if err := json.Unmarshal(b, &stored); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(stored.Parallel, comp.Parallel) {
		t.Fatalf("stored parallel = %+v, want %+v", stored.Parallel, comp.Parallel)
	}
	r := testResolver()
	r.AddComponent(&stored)
	inline := "    component:\n" + indent(strings.Replace(parallelComponent[strings.Index(parallelComponent, "\n")+1:], "./src", "../components/src", 1), "      ")
	for _, form := range []struct{ name, component string }{
		{"file", "    component: ../components/parallel.yml\n"},
		{"registered", "    component: azureml:file_batch_score:1\n"},
		{"inline", inline},
	} {
		t.Run(form.name, func(t *testing.T) {
			pipeline := `type: pipeline
settings: {default_compute: azureml:cpu-cluster}
jobs:
  score:
    type: parallel
` + form.component + `    inputs:
      job_data_path: {type: uri_folder, path: ../data}
      score_model: {type: uri_folder, path: ../model}
    mini_batch_size: "5"
    max_concurrency_per_instance: 4
    resources: {instance_count: 2}
    retry_settings: {max_retries: 3, timeout: 45}
    mini_batch_error_threshold: -1
`
			file := filepath.Join(dir, "project", form.name+".yml")
			mustWrite(t, file, pipeline)
			plan, err := LoadJob(file, nil, r)
			if err != nil {
				t.Fatal(err)
			}
			p := plan.Step("score").Component.Parallel
			if p.MiniBatchSize != "5" || p.MaxConcurrencyPerInstance != 4 || p.MaxRetries != 3 || p.TimeoutSeconds != 45 ||
				p.MiniBatchErrorThreshold != -1 || p.EntryScript != "digit_identification.py" || p.AppendRowTo != "job_output_path" {
				t.Errorf("parallel = %+v", p)
			}
			cmd := plan.Step("score").Component.Command
			if !strings.Contains(cmd, "--mini-batch-size '5' --instances 2 --max-concurrency 4 --max-retries 3 --timeout 45") ||
				!strings.HasSuffix(cmd, "-- --model ${{inputs.score_model}} --prefix ${{inputs.prefix}}") {
				t.Errorf("command %s", cmd)
			}
			if v, _ := plan.Step("score").Inputs["prefix"].Text(); v != "p" {
				t.Errorf("prefix = %q (the component's default)", v)
			}
		})
	}
	if comp.Parallel.MiniBatchSize != "2" || stored.Parallel.MiniBatchSize != "2" {
		t.Errorf("a step's overrides changed the shared component")
	}
}

func indent(text, prefix string) string {
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	for i, l := range lines {
		lines[i] = prefix + l
	}
	return strings.Join(lines, "\n") + "\n"
}

func mustWrite(t *testing.T, path, text string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestParallelErrors: each refusal names file, line and field.
func TestParallelErrors(t *testing.T) {
	step := func(body string) string {
		return "type: pipeline\nsettings: {default_compute: azureml:cpu}\njobs:\n  score:\n    type: parallel\n" + body
	}
	task := "    task:\n      code: ./script\n      entry_script: iris_prediction.py\n      environment: {image: python:3.11}\n"
	ins := "    inputs:\n      data: {type: uri_folder, path: ./iris-model}\n      n: 3\n    outputs:\n      out:\n"
	cases := []struct {
		name, file string
		want       []string
	}{
		{"bad mini_batch_size", step(ins + "    input_data: ${{inputs.data}}\n    mini_batch_size: ten\n" + task), []string{
			`:12:22: field jobs.score.mini_batch_size: mini_batch_size "ten" is neither a number of files (10) nor a size with a unit (10kb, 1mb)`}},
		{"unknown unit", step(ins + "    input_data: ${{inputs.data}}\n    mini_batch_size: 10kib\n" + task), []string{
			`:12:22: field jobs.score.mini_batch_size: mini_batch_size "10kib" has an unknown unit "kib" (b, kb, mb or gb)`}},
		{"zero mini_batch_size", step(ins + "    input_data: ${{inputs.data}}\n    mini_batch_size: 0\n" + task), []string{
			`:12:22: field jobs.score.mini_batch_size: mini_batch_size must be positive, got "0"`}},
		{"missing entry_script", step(ins + "    input_data: ${{inputs.data}}\n    task:\n      code: ./script\n      environment: {image: python:3.11}\n"), []string{
			`:13:7: field jobs.score.task.entry_script: task.entry_script is required: the script in task.code with init() and run(mini_batch)`}},
		{"input_data not an input", step(ins + "    input_data: ${{inputs.dta}}\n" + task), []string{
			`:11:17: field jobs.score.input_data: input_data names input "dta", which is not declared (inputs: data, n)`}},
		{"input_data not an expression", step(ins + "    input_data: ./iris-model\n" + task), []string{
			`:11:17: field jobs.score.input_data: input_data must be ${{inputs.<name>}}, naming the input split into mini-batches`}},
		{"input_data a literal", step(ins + "    input_data: ${{inputs.n}}\n" + task), []string{
			`:11:17: field jobs.score.input_data: input_data names input "n", which is bound to a literal value; it must be data (uri_folder, uri_file or mltable)`}},
		{"missing input_data and task", step(ins), []string{
			`:5:5: field jobs.score.input_data: input_data is required`,
			`:5:5: field jobs.score.task: task is required`}},
		{"append_row_to and program_arguments", step(ins + "    input_data: ${{inputs.data}}\n" + task +
			"      append_row_to: ${{outputs.result}}\n      program_arguments: --m ${{inputs.model}}\n"), []string{
			`:16:22: field jobs.score.task.append_row_to: append_row_to names output "result", which is not declared (outputs: out)`,
			`:17:26: field jobs.score.task.program_arguments: program_arguments uses ${{inputs.model}} but no input "model" is declared`}},
		{"command keys", step(ins + "    input_data: ${{inputs.data}}\n    command: python x.py\n    partition_keys: [a]\n" + task), []string{
			`:12:14: field jobs.score.command: a parallel job has no command: task.entry_script runs, with task.program_arguments`,
			`:13:21: field jobs.score.partition_keys: partition_keys is not supported; split the input with mini_batch_size`}},
		{"task type and logging level", step(ins + "    input_data: ${{inputs.data}}\n    logging_level: TRACE\n" + strings.Replace(task, "    task:\n", "    task:\n      type: model\n", 1)), []string{
			`:12:20: field jobs.score.logging_level: logging_level must be DEBUG, INFO or WARNING, got "TRACE"`,
			`:14:13: field jobs.score.task.type: task type "model" is not supported (run_function only)`}},
		{"negative concurrency", step(ins + "    input_data: ${{inputs.data}}\n    max_concurrency_per_instance: 0\n" + task), []string{
			`:12:35: field jobs.score.max_concurrency_per_instance: max_concurrency_per_instance must be 1 or more, got 0`}},
		{"top-level parallel job", "type: parallel\ninput_data: ${{inputs.data}}\n", []string{
			`:1:7: field type: a parallel job runs only as a step of a pipeline job, as in Azure ML: put it under jobs: of a type: pipeline job`}},
		{"parallel step with a command component", step("    component: azureml:score_model:1\n"), []string{
			`:6:16: field jobs.score.component: a parallel step needs a parallel component; component score_model:1 is a command component`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := parallelFiles(t, map[string]string{"job.yml": tc.file})
			file := filepath.Join(dir, "job.yml")
			want := make([]string, len(tc.want))
			for i, w := range tc.want {
				want[i] = file + w
			}
			_, err := LoadJob(file, nil, testResolver())
			checkErrors(t, err, want)
		})
	}
}

// TestParallelJobDocument: the CLI uploads a parallel task's code like a
// command's, and the server reads the document to the same step.
func TestParallelJobDocument(t *testing.T) {
	dir := parallelFiles(t, nil)
	up := &recordingUploader{}
	doc, err := JobDocument(filepath.Join(dir, "pipeline.yml"), nil, up)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(doc.JSON), dir) {
		t.Errorf("the document still names local paths:\n%s", doc.JSON)
	}
	plan, err := ParseJobDocument(doc.JSON, &MapResolver{})
	if err != nil {
		t.Fatalf("%v\n%s", err, doc.JSON)
	}
	c := plan.Step("batch_prediction").Component
	if c.CodeURI == nil || !strings.HasSuffix(c.CodeURI.Path, "/script/") || c.Parallel == nil || c.Parallel.EntryScript != "iris_prediction.py" {
		t.Errorf("code %+v, parallel %+v", c.CodeURI, c.Parallel)
	}
}

func TestParseMiniBatchSize(t *testing.T) {
	for in, want := range map[string][2]int64{"10": {10, 0}, " 5 ": {5, 0}, "10kb": {0, 10 << 10}, "1 MB": {0, 1 << 20},
		"100b": {0, 100}, "2gb": {0, 2 << 30}} {
		files, bytes, err := ParseMiniBatchSize(in)
		if err != nil || int64(files) != want[0] || bytes != want[1] {
			t.Errorf("%q = %d files, %d bytes, %v; want %v", in, files, bytes, err, want)
		}
	}
	for _, bad := range []string{"", "kb", "-1", "0kb", "1.5mb", "10 files", "99999999999999999999"} {
		if _, _, err := ParseMiniBatchSize(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
