package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// taxiProject copies the taxi-shaped pipeline into a temporary folder with
// a generated data file of n rows, and returns the folder.
func taxiProject(t *testing.T, rows int, seed int) string {
	t.Helper()
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 is not on PATH; the pipeline's steps are Python scripts")
	}
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS("testdata/taxi-pipeline")); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	b.WriteString("distance,cost\n")
	for i := 0; i < rows; i++ {
		d := float64((i*7+seed)%40)/4 + 0.5
		fmt.Fprintf(&b, "%.2f,%.2f\n", d, 2.5+d*2.1+float64(i%5)/10)
	}
	writeFile(t, dir, "taxi-data.csv", b.String())
	return dir
}

type stepView struct {
	Step       string `json:"step"`
	Status     string `json:"status"`
	ReusedFrom string `json:"reused_from"`
	Name       string `json:"name"`
	Attempts   []any  `json:"attempts"`
}

func (e *cliEnv) jobSteps(ws, name string) (string, map[string]stepView) {
	e.t.Helper()
	return e.jobStepsWith(func(args ...string) string { return e.ok(args...) }, ws, name)
}

func (e *cliEnv) jobStepsWith(wharf func(args ...string) string, ws, name string) (string, map[string]stepView) {
	e.t.Helper()
	var j struct {
		Status string     `json:"status"`
		Steps  []stepView `json:"steps"`
	}
	if err := json.Unmarshal([]byte(wharf("ml", "job", "show", "-n", name, "-w", ws)), &j); err != nil {
		e.t.Fatal(err)
	}
	out := map[string]stepView{}
	for _, s := range j.Steps {
		out[s.Step] = s
	}
	return j.Status, out
}

func TestTaxiPipelineRunsReusesAndRerunsOnDataChange(t *testing.T) {
	e := newCLIEnv(t)
	dir := taxiProject(t, 200, 0)
	e.ok("ml", "workspace", "create", "-n", "mlw")
	e.ok("ml", "compute", "create", "-n", "cpu-cluster", "--type", "AmlCompute", "--max-instances", "2", "-w", "mlw")
	e.ok("ml", "environment", "create", "--file", filepath.Join(dir, "train-env.yml"), "-w", "mlw")
	e.ok("ml", "data", "create", "--file", filepath.Join(dir, "data.yml"), "-w", "mlw")
	pipeline := filepath.Join(dir, "pipeline.yml")

	out, errs, code := e.wharf("ml", "job", "create", "--file", pipeline, "--stream", "-w", "mlw", "--query", "name", "-o", "tsv",
		"--set", "inputs.enable_monitoring=true")
	if code != 0 {
		t.Fatalf("job create --stream: exit %d\nstdout: %s\nstderr: %s", code, out, errs)
	}
	for _, want := range []string{"[prep_data] train: 140 rows", "[prep_data] monitoring true table taximonitoring",
		"[train_model] trained on 140 rows", "[evaluate_model] taxi-model MAE", `[register_model] {"model_name": "taxi-model", "deploy": true`} {
		if !strings.Contains(out, want) {
			t.Errorf("streamed log lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(errs, "4/4 steps completed") || !strings.Contains(errs, "Status: Completed") {
		t.Errorf("no progress or summary on stderr:\n%s", errs)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	first := lines[len(lines)-1]
	status, steps := e.jobSteps("mlw", first)
	if status != "Completed" || len(steps) != 4 {
		t.Fatalf("first run %s with %d steps", status, len(steps))
	}

	// The outputs of the pipeline can be downloaded.
	dl := t.TempDir()
	e.ok("ml", "job", "download", "-n", first, "--output-name", "model_info_output_path", "--download-path", dl, "-w", "mlw")
	info, err := os.ReadFile(filepath.Join(dl, "named-outputs", "model_info_output_path", "model_info.json"))
	if err != nil || !strings.Contains(string(info), `"deploy": true`) {
		t.Fatalf("downloaded model info %q, %v", info, err)
	}

	// Submitting the same thing again reuses every step.
	second := strings.TrimSpace(e.ok("ml", "job", "create", "--file", pipeline, "-w", "mlw", "--query", "name", "-o", "tsv",
		"--set", "inputs.enable_monitoring=true"))
	e.ok("ml", "job", "stream", "-n", second, "-w", "mlw")
	status, reused := e.jobSteps("mlw", second)
	if status != "Completed" {
		t.Fatalf("second run %s", status)
	}
	for name, st := range reused {
		if st.ReusedFrom != steps[name].Name || len(st.Attempts) != 0 {
			t.Errorf("resubmitted %s: reused from %q, want %s", name, st.ReusedFrom, steps[name].Name)
		}
	}

	// One byte changed in the data: a new version of the asset, and the
	// steps downstream of it run again.
	// The byte is in the first row, which lands in the training split, so
	// every step's input content changes. (A change confined to the test
	// split would leave train_model's input, and so train_model, as is.)
	raw, _ := os.ReadFile(filepath.Join(dir, "taxi-data.csv"))
	i := strings.Index(string(raw), "\n") + 1
	raw[i] = '9'
	if err := os.WriteFile(filepath.Join(dir, "taxi-data.csv"), raw, 0o644); err != nil {
		t.Fatal(err)
	}
	var asset struct{ Version string }
	if err := json.Unmarshal([]byte(e.ok("ml", "data", "create", "--file", filepath.Join(dir, "data.yml"), "-w", "mlw")), &asset); err != nil || asset.Version != "2" {
		t.Fatalf("new data version %q (%v)", asset.Version, err)
	}
	third := strings.TrimSpace(e.ok("ml", "job", "create", "--file", pipeline, "-w", "mlw", "--query", "name", "-o", "tsv",
		"--set", "inputs.enable_monitoring=true"))
	e.ok("ml", "job", "stream", "-n", third, "-w", "mlw")
	_, rerun := e.jobSteps("mlw", third)
	for name, st := range rerun {
		if st.Status != "Completed" || st.ReusedFrom != "" || len(st.Attempts) != 1 {
			t.Errorf("after the data change %s: %s, reused from %q, %d attempts", name, st.Status, st.ReusedFrom, len(st.Attempts))
		}
	}
}

func TestJobCreateRejectsBadYAMLBeforeRunning(t *testing.T) {
	e := newCLIEnv(t)
	dir := taxiProject(t, 20, 0)
	e.ok("ml", "workspace", "create", "-n", "mlw")
	e.ok("ml", "compute", "create", "-n", "cpu-cluster", "-w", "mlw")
	pipeline := filepath.Join(dir, "pipeline.yml")
	// The data asset and environment were never created.
	out, errs, code := e.wharf("ml", "job", "create", "--file", pipeline, "-w", "mlw")
	if code == 0 || out != "" || !strings.Contains(errs, "pipeline.yml:") || !strings.Contains(errs, "taxi-data") {
		t.Errorf("unknown references: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	e.ok("ml", "environment", "create", "--file", filepath.Join(dir, "train-env.yml"), "-w", "mlw")
	e.ok("ml", "data", "create", "--file", filepath.Join(dir, "data.yml"), "-w", "mlw")
	// A binding to an output that does not exist, named with its line.
	bad := strings.Replace(readText(t, pipeline), "${{parent.jobs.prep_data.outputs.train_data}}", "${{parent.jobs.prep_data.outputs.nope}}", 1)
	writeFile(t, dir, "bad.yml", bad)
	_, errs, code = e.wharf("ml", "job", "create", "--file", filepath.Join(dir, "bad.yml"), "-w", "mlw")
	if code == 0 || !strings.Contains(errs, "bad.yml:") || !strings.Contains(errs, "nope") {
		t.Errorf("missing output: exit %d, stderr %q", code, errs)
	}
	// A compute that does not exist is refused by the server.
	_, errs, code = e.wharf("ml", "job", "create", "--file", pipeline, "-w", "mlw", "--set", "settings.default_compute=azureml:gpu-cluster")
	if code == 0 || !strings.Contains(errs, "gpu-cluster") {
		t.Errorf("missing compute: exit %d, stderr %q", code, errs)
	}
	if jobs := strings.TrimSpace(e.ok("ml", "job", "list", "-w", "mlw", "--query", "length(@)", "-o", "tsv")); jobs != "0" {
		t.Errorf("%s jobs stored after refused submissions", jobs)
	}
}

func TestFailingJobStreamExitsNonZero(t *testing.T) {
	e := newCLIEnv(t)
	dir := t.TempDir()
	e.ok("ml", "workspace", "create", "-n", "mlw")
	e.ok("ml", "compute", "create", "-n", "cpu-cluster", "-w", "mlw")
	job := writeFile(t, dir, "job.yml", `$schema: https://azuremlschemas.azureedge.net/latest/commandJob.schema.json
command: echo about to fail; exit 7
environment:
  image: mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu20.04
compute: azureml:cpu-cluster
`)
	out, errs, code := e.wharf("ml", "job", "create", "--file", job, "--stream", "-w", "mlw")
	if code == 0 || !strings.Contains(out, "about to fail") || !strings.Contains(errs, "exited with code 7") {
		t.Errorf("failing job: exit %d\nstdout %s\nstderr %s", code, out, errs)
	}
}

func readText(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestScheduleCreateShowsNextRunAndRejectsBadCron(t *testing.T) {
	e := newCLIEnv(t)
	dir := taxiProject(t, 20, 0)
	e.ok("ml", "workspace", "create", "-n", "mlw")
	e.ok("ml", "compute", "create", "-n", "cpu-cluster", "-w", "mlw")
	e.ok("ml", "environment", "create", "--file", filepath.Join(dir, "train-env.yml"), "-w", "mlw")
	e.ok("ml", "data", "create", "--file", filepath.Join(dir, "data.yml"), "-w", "mlw")
	writeFile(t, dir, "schedule.yml", `$schema: https://azuremlschemas.azureedge.net/latest/schedule.schema.json
name: nightly-retrain
display_name: Nightly retraining
trigger:
  type: cron
  expression: "0 2 * * *"
  time_zone: UTC
create_job: ./pipeline.yml
`)
	var sc struct {
		Name    string `json:"name"`
		Enabled bool   `json:"is_enabled"`
		NextRun string `json:"next_run_time"`
	}
	if err := json.Unmarshal([]byte(e.ok("ml", "schedule", "create", "--file", filepath.Join(dir, "schedule.yml"), "-w", "mlw")), &sc); err != nil {
		t.Fatal(err)
	}
	if sc.Name != "nightly-retrain" || !sc.Enabled || !strings.Contains(sc.NextRun, "T02:00:00") {
		t.Errorf("schedule %+v", sc)
	}
	if got := strings.TrimSpace(e.ok("ml", "schedule", "list", "-w", "mlw", "--query", "[].name", "-o", "tsv")); got != "nightly-retrain" {
		t.Errorf("schedule list: %q", got)
	}
	writeFile(t, dir, "bad.yml", "name: bad\ntrigger:\n  type: cron\n  expression: \"61 * * * *\"\ncreate_job: ./pipeline.yml\n")
	_, errs, code := e.wharf("ml", "schedule", "create", "--file", filepath.Join(dir, "bad.yml"), "-w", "mlw")
	if code == 0 || !strings.Contains(errs, "bad.yml:4") || !strings.Contains(errs, "trigger.expression") {
		t.Errorf("bad cron: exit %d, %s", code, errs)
	}
	e.ok("ml", "schedule", "delete", "-n", "nightly-retrain", "-w", "mlw", "--yes")
	if _, _, code := e.wharf("ml", "schedule", "show", "-n", "nightly-retrain", "-w", "mlw"); code == 0 {
		t.Error("deleted schedule still shown")
	}
}

func TestJobRerunFromFailed(t *testing.T) {
	// The steps look at a flag file of the test's, which sandboxed steps
	// see only when it is shared with them.
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	e := newCLIEnvWith(t, func(o *serverOptions) { o.stepReadOnly = []string{dir} })
	e.ok("ml", "workspace", "create", "-n", "mlw")
	e.ok("ml", "compute", "create", "-n", "cpu-cluster", "-w", "mlw")
	flag := filepath.Join(dir, "fixed")
	job := writeFile(t, dir, "pipeline.yml", `type: pipeline
settings:
  default_compute: azureml:cpu-cluster
jobs:
  one:
    command: echo one > ${{outputs.out}}/one.txt
    environment:
      image: python:3.11
    outputs:
      out:
  two:
    command: test -f `+flag+` && cp ${{inputs.in}}/one.txt ${{outputs.out}}/
    environment:
      image: python:3.11
    inputs:
      in: ${{parent.jobs.one.outputs.out}}
    outputs:
      out:
`)
	first := strings.TrimSpace(e.ok("ml", "job", "create", "--file", job, "-w", "mlw", "--query", "name", "-o", "tsv"))
	if _, _, code := e.wharf("ml", "job", "stream", "-n", first, "-w", "mlw"); code == 0 {
		t.Fatal("the first run should fail")
	}
	writeFile(t, dir, "fixed", "")
	out, errs, code := e.wharf("ml", "job", "rerun", "-n", first, "--from-failed", "--stream", "-w", "mlw", "--query", "name", "-o", "tsv")
	if code != 0 {
		t.Fatalf("rerun: %s\n%s", out, errs)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	status, steps := e.jobSteps("mlw", lines[len(lines)-1])
	if status != "Completed" || steps["one"].ReusedFrom != first+"_one" || len(steps["two"].Attempts) != 1 {
		t.Errorf("rerun %s: one reused from %q, two %d attempts", status, steps["one"].ReusedFrom, len(steps["two"].Attempts))
	}
}

// TestDatastorePathsNameUploadsAndOutputs: what data create uploads and
// what steps write is reachable by azureml://datastores/ URI, from a data
// asset and from a job input.
// TestDataCreateFromFlagsAlone: az ml data create --name --path --type,
// no YAML file; what is missing or wrong is named.
func TestDataCreateFromFlagsAlone(t *testing.T) {
	e := newCLIEnv(t)
	dir := t.TempDir()
	e.ok("ml", "workspace", "create", "-n", "mlw")
	file := writeFile(t, dir, "trips.csv", "a,b\n1,2\n")
	var asset struct {
		Name, Version string
		Spec          struct {
			Type     string
			FileName string `json:"file_name"`
		}
	}
	out := e.ok("ml", "data", "create", "--name", "trips", "--type", "uri_file", "--path", file, "-w", "mlw")
	if err := json.Unmarshal([]byte(out), &asset); err != nil || asset.Name != "trips" || asset.Version != "1" || asset.Spec.FileName != "trips.csv" {
		t.Fatalf("created %q (%v)", out, err)
	}
	if got := strings.TrimSpace(e.ok("ml", "data", "show", "-n", "trips", "--version", "1", "--query", "spec.type", "-o", "tsv", "-w", "mlw")); got != "uri_file" {
		t.Errorf("stored type %q", got)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--type", "uri_file", "--path", file}, "field name: name is required"},
		{[]string{"--name", "trips", "--path", file}, "(command line): field path: local path " + file + " is a file but the type is uri_folder"},
		{[]string{"--name", "trips", "--type", "uri_file"}, "(command line):1:1: field path: path is required"},
	} {
		stdout, stderr, code := e.wharf(append([]string{"ml", "data", "create", "-w", "mlw"}, c.args...)...)
		if code == 0 || !strings.Contains(stdout+stderr, c.want) {
			t.Errorf("%v: exit %d, want an error with %q:\n%s%s", c.args, code, c.want, stdout, stderr)
		}
	}
}

func TestDatastorePathsNameUploadsAndOutputs(t *testing.T) {
	e := newCLIEnv(t)
	dir := t.TempDir()
	e.ok("ml", "workspace", "create", "-n", "mlw")
	e.ok("ml", "compute", "create", "-n", "cpu-cluster", "-w", "mlw")
	writeFile(t, dir, "raw.csv", "a,b\n1,2\n")
	writeFile(t, dir, "data.yml", "name: raw\ntype: uri_file\npath: raw.csv\n")
	var raw struct {
		Digest string `json:"digest"`
		Spec   struct {
			Path string `json:"path"`
		} `json:"spec"`
	}
	if err := json.Unmarshal([]byte(e.ok("ml", "data", "create", "--file", filepath.Join(dir, "data.yml"), "-w", "mlw")), &raw); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(raw.Spec.Path, "azureml://datastores/workspaceblobstore/paths/LocalUpload/") {
		t.Fatalf("uploaded data's path %q", raw.Spec.Path)
	}
	job := writeFile(t, dir, "job.yml", `type: pipeline
settings:
  default_compute: azureml:cpu-cluster
  default_datastore: azureml:workspaceblobstore
jobs:
  copy:
    command: cp ${{inputs.src}} ${{outputs.out}}/copy.csv
    environment:
      image: python:3.11
    inputs:
      src:
        type: uri_file
        path: `+raw.Spec.Path+`
    outputs:
      out:
`)
	name := strings.TrimSpace(e.ok("ml", "job", "create", "--file", job, "-w", "mlw", "--query", "name", "-o", "tsv"))
	e.ok("ml", "job", "stream", "-n", name, "-w", "mlw")
	_, steps := e.jobSteps("mlw", name)
	if steps["copy"].Status != "Completed" {
		t.Fatalf("copy step %s", steps["copy"].Status)
	}
	// The step's output, by its datastore path, as a new data asset.
	writeFile(t, dir, "out.yml", "name: copied\ntype: uri_folder\npath: azureml://datastores/workspaceblobstore/paths/azureml/"+steps["copy"].Name+"/out/\n")
	var copied struct {
		Digest string `json:"digest"`
	}
	if err := json.Unmarshal([]byte(e.ok("ml", "data", "create", "--file", filepath.Join(dir, "out.yml"), "-w", "mlw")), &copied); err != nil {
		t.Fatal(err)
	}
	var show struct {
		Outputs map[string]struct {
			Digest string `json:"digest"`
		} `json:"outputs"`
	}
	if err := json.Unmarshal([]byte(e.ok("ml", "job", "show", "-n", steps["copy"].Name, "-w", "mlw")), &show); err != nil {
		t.Fatal(err)
	}
	if copied.Digest == "" || copied.Digest != show.Outputs["out"].Digest {
		t.Errorf("data asset from the output's path pins %q, the output is %q", copied.Digest, show.Outputs["out"].Digest)
	}
	// A path that holds nothing yet is accepted, as Azure accepts it; the
	// asset is pinned to nothing, and a job reading it before anything
	// lands there is refused with the reason.
	writeFile(t, dir, "missing.yml", "name: missing\ntype: uri_folder\npath: azureml://datastores/workspaceblobstore/paths/nothing/here\n")
	if d := strings.TrimSpace(e.ok("ml", "data", "create", "--file", filepath.Join(dir, "missing.yml"), "-w", "mlw", "--query", "digest", "-o", "tsv")); d != "" {
		t.Errorf("an asset of an empty path pins %q", d)
	}
	reader := writeFile(t, dir, "read-missing.yml", "command: ls ${{inputs.d}}\nenvironment: {image: python:3.11}\ncompute: azureml:cpu-cluster\n"+
		"inputs:\n  d: {type: uri_folder, path: azureml:missing:1}\n")
	if _, errs, code := e.wharf("ml", "job", "create", "--file", reader, "-w", "mlw"); code == 0 || !strings.Contains(errs, "holds nothing yet") {
		t.Errorf("a job reading an empty path: exit %d, %s", code, errs)
	}
}

// TestReuseDoesNotDependOnWhereTheFileIs: the same pipeline checked out in
// another folder, with a comment added above its steps, hits the cache.
func TestReuseDoesNotDependOnWhereTheFileIs(t *testing.T) {
	e := newCLIEnv(t)
	e.ok("ml", "workspace", "create", "-n", "mlw")
	e.ok("ml", "compute", "create", "-n", "cpu-cluster", "-w", "mlw")
	src := `type: pipeline
settings:
  default_compute: azureml:cpu-cluster
jobs:
  one:
    command: echo ${{inputs.n}} > ${{outputs.out}}/n.txt
    environment:
      image: python:3.11
    inputs:
      n: 3
    outputs:
      out:
`
	first := strings.TrimSpace(e.ok("ml", "job", "create", "--file", writeFile(t, t.TempDir(), "p.yml", src), "-w", "mlw", "--query", "name", "-o", "tsv"))
	e.ok("ml", "job", "stream", "-n", first, "-w", "mlw")
	moved := writeFile(t, filepath.Join(t.TempDir()), "copy.yml", "# checked out elsewhere\n\n"+src)
	second := strings.TrimSpace(e.ok("ml", "job", "create", "--file", moved, "-w", "mlw", "--query", "name", "-o", "tsv"))
	e.ok("ml", "job", "stream", "-n", second, "-w", "mlw")
	if _, steps := e.jobSteps("mlw", second); steps["one"].ReusedFrom != first+"_one" {
		t.Errorf("moved file's step reused from %q, want %s_one", steps["one"].ReusedFrom, first)
	}
}

// TestScheduleTriggerEnableDisable: `schedule trigger` submits the
// schedule's job at once, with ${{name}} and
// ${{creation_context.trigger_time}} in its inputs replaced by the job's
// name and the time it was triggered; `disable` and `enable` stop and
// restart its firings.
func TestScheduleTriggerEnableDisable(t *testing.T) {
	e := newCLIEnv(t)
	dir := t.TempDir()
	e.ok("ml", "workspace", "create", "-n", "mlw")
	e.ok("ml", "compute", "create", "-n", "cpu-cluster", "-w", "mlw")
	writeFile(t, dir, "job.yml", `command: echo "${{inputs.when}} ${{inputs.run}}" > ${{outputs.stamp}}/stamp.txt
environment: {image: python:3.11}
compute: azureml:cpu-cluster
inputs:
  when: placeholder
  run: placeholder
outputs:
  stamp: {type: uri_folder}
`)
	writeFile(t, dir, "schedule.yml", `name: stamp
trigger:
  type: recurrence
  frequency: day
  interval: 1
create_job:
  job: ./job.yml
  inputs:
    when: ${{creation_context.trigger_time}}
    run: ${{name}}
`)
	e.ok("ml", "schedule", "create", "--file", filepath.Join(dir, "schedule.yml"), "-w", "mlw")
	before := time.Now().UTC().Truncate(time.Second)
	name := strings.TrimSpace(e.ok("ml", "schedule", "trigger", "-n", "stamp", "-w", "mlw", "--query", "name", "-o", "tsv"))
	after := time.Now().UTC()
	if got := e.waitJob("mlw", name); got != "Completed" {
		t.Fatalf("triggered job %s: %s", name, got)
	}
	dl := filepath.Join(dir, "dl")
	e.ok("ml", "job", "download", "-n", name, "--output-name", "stamp", "--download-path", dl, "-w", "mlw")
	b, err := os.ReadFile(filepath.Join(dl, "named-outputs", "stamp", "stamp.txt"))
	if err != nil {
		t.Fatal(err)
	}
	when, run, _ := strings.Cut(strings.TrimSpace(string(b)), " ")
	at, err := time.Parse(time.RFC3339, when)
	if err != nil || at.Before(before) || at.After(after) || run != name {
		t.Errorf("stamp %q: trigger time %v (%v) not in [%v, %v], or name %q not %q", b, at, err, before, after, run, name)
	}
	if last := strings.TrimSpace(e.ok("ml", "schedule", "show", "-n", "stamp", "-w", "mlw", "--query", "last_job", "-o", "tsv")); last != name {
		t.Errorf("last job %q, want %q", last, name)
	}

	out := e.ok("ml", "schedule", "disable", "-n", "stamp", "-w", "mlw", "--query", "[is_enabled, next_run_time]", "-o", "json")
	if !strings.Contains(out, "false") || !strings.Contains(out, "null") {
		t.Errorf("disabled: %s", out)
	}
	out = e.ok("ml", "schedule", "enable", "-n", "stamp", "-w", "mlw", "--query", "[is_enabled, next_run_time]", "-o", "json")
	if !strings.Contains(out, "true") || strings.Contains(out, "null") {
		t.Errorf("enabled: %s", out)
	}
	if _, errs, code := e.wharf("ml", "schedule", "trigger", "-n", "nope", "-w", "mlw"); code != exitNotFound {
		t.Errorf("trigger of a missing schedule: %d %s", code, errs)
	}
}
