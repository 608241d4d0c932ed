package main

import (
	"encoding/csv"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// The parallel job tests run pipelines with a parallel step through a
// server process and the CLI, the entry script in Python workers of the
// MLflow test venv (which has pandas).

// parallelScript is the entry script: it reads --tag and --scale with
// argparse in init(), as Azure's examples do, and in run() names each
// file of a file mini-batch (raising for a file named bad) or scales a
// DataFrame's distance.
const parallelScript = `import argparse, os

def init():
    global args
    p = argparse.ArgumentParser()
    p.add_argument("--tag", default="none")
    p.add_argument("--scale", type=float, default=1)
    args, _ = p.parse_known_args()
    print("init in pid %d with tag %s" % (os.getpid(), args.tag), flush=True)

def run(mini_batch):
    if isinstance(mini_batch, list):
        rows = []
        for path in mini_batch:
            name = os.path.basename(path)
            if "bad" in name:
                raise ValueError("cannot read " + name)
            rows.append("%s %s %s" % (args.tag, name, open(path).read().strip()))
        return rows
    out = mini_batch[["distance", "passengers"]].copy()
    out["scaled"] = out["distance"] * args.scale
    return out
`

// parallelTask runs the entry script with --tag, appending its rows to
// output rows.
const parallelTask = `task:
  type: run_function
  code: ./src
  entry_script: score.py
  environment: {image: python:3.11}
  program_arguments: --tag ${{inputs.tag}}
  append_row_to: ${{outputs.rows}}
`

// parallelFilesPipeline scores a folder two files to a mini-batch; the
// count step reads the rows the parallel step appended.
const parallelFilesPipeline = `type: pipeline
settings:
  default_compute: azureml:batch-cluster
inputs:
  files: {type: uri_folder, path: ./files}
outputs:
  counted:
jobs:
  score:
    type: parallel
    inputs:
      data: ${{parent.inputs.files}}
      tag: scored
    outputs:
      rows:
    input_data: ${{inputs.data}}
    mini_batch_size: "2"
    resources:
      instance_count: 1
    max_concurrency_per_instance: 2
    mini_batch_error_threshold: MBET
    logging_level: DEBUG
    retry_settings:
      max_retries: 1
      timeout: 60
TASK  count:
    command: cp ${{inputs.rows}}/parallel_run_step.txt ${{outputs.out}}/rows.txt
    environment: {image: python:3.11}
    inputs:
      rows: ${{parent.jobs.score.outputs.rows}}
    outputs:
      out: ${{parent.outputs.counted}}
`

// parallelFilesProject writes the pipeline with the given
// mini_batch_error_threshold, its entry script and six good files and one
// bad one, which sorts last and so makes a mini-batch of its own.
func parallelFilesProject(t *testing.T, threshold int) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{"src", "files"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, dir, "src/score.py", parallelScript)
	for i := 1; i <= 6; i++ {
		writeFile(t, dir, "files/f"+strconv.Itoa(i)+".txt", strconv.Itoa(i*10)+"\n")
	}
	writeFile(t, dir, "files/zz_bad.txt", "x\n")
	text := strings.Replace(parallelFilesPipeline, "MBET", strconv.Itoa(threshold), 1)
	var task strings.Builder
	for _, l := range strings.SplitAfter(parallelTask, "\n") {
		if l != "" {
			task.WriteString("    " + l)
		}
	}
	return writeFile(t, dir, "pipeline.yml", strings.Replace(text, "TASK", task.String(), 1))
}

// runParallel runs a pipeline to its end, streaming its log, and returns
// its name and log; it must complete.
func (e *batchEnv) runParallel(t *testing.T, pipeline string) (string, string) {
	t.Helper()
	out := e.wharf("ml", "job", "create", "--file", pipeline, "--stream", "-w", "mlw", "--query", "name", "-o", "tsv")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	job := lines[len(lines)-1]
	if status := strings.TrimSpace(e.wharf("ml", "job", "show", "-n", job, "--query", "status", "-o", "tsv", "-w", "mlw")); status != "Completed" {
		t.Fatalf("job %s is %s:\n%s", job, status, out)
	}
	return job, out
}

// TestParallelStepOverFiles: mini-batches of two files, two workers; the
// mini-batch whose run() raises is retried, then tolerated by
// mini_batch_error_threshold, its traceback in the log, and the
// downstream step reads every other file's row exactly once. A threshold
// of 0 fails the step and says why.
func TestParallelStepOverFiles(t *testing.T) {
	e := startBatchEnv(t)
	job, out := e.runParallel(t, parallelFilesProject(t, 1))
	for _, want := range []string{
		"ValueError: cannot read zz_bad.txt",          // the traceback
		"mini-batch 3 attempt 2 failed: ValueError",   // retried once
		"mini-batch 3 failed after 2 attempts",        // then failed
		"4 mini-batches (0 reused), 1 failed, 6 rows", // the summary
		"with tag scored",                             // init() parsed the resolved program argument
		"files, 2 to a mini-batch) with 2 workers",    // instance_count x max_concurrency_per_instance
	} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	if pids := regexp.MustCompile(`init in pid (\d+)`).FindAllStringSubmatch(out, -1); len(pids) != 2 || pids[0][1] == pids[1][1] {
		t.Errorf("init() should run once in each of two workers: %v", pids)
	}
	if !regexp.MustCompile(`of 4 mini-batches done, [01] failed`).MatchString(out) {
		t.Errorf("log shows no progress of 4 mini-batches:\n%s", out)
	}
	dl := t.TempDir()
	e.wharf("ml", "job", "download", "-n", job, "--output-name", "counted", "--download-path", dl, "-w", "mlw")
	b, err := os.ReadFile(filepath.Join(dl, "named-outputs", "counted", "rows.txt"))
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Split(strings.TrimSpace(string(b)), "\n")
	slices.Sort(got)
	want := []string{"scored f1.txt 10", "scored f2.txt 20", "scored f3.txt 30", "scored f4.txt 40", "scored f5.txt 50", "scored f6.txt 60"}
	if !slices.Equal(got, want) {
		t.Errorf("appended rows:\n%s\nwant each of %v once", b, want)
	}

	t.Run("registered component", func(t *testing.T) {
		dir := filepath.Dir(parallelFilesProject(t, 1))
		writeFile(t, dir, "parallel.yml", `$schema: https://azuremlschemas.azureedge.net/latest/parallelComponent.schema.json
type: parallel
name: file_score
version: "1"
inputs:
  data: {type: uri_folder}
  tag: {type: string, default: registered}
outputs:
  rows: {type: uri_folder}
input_data: ${{inputs.data}}
mini_batch_size: "2"
mini_batch_error_threshold: 1
retry_settings: {max_retries: 0}
`+parallelTask)
		e.wharf("ml", "component", "create", "--file", filepath.Join(dir, "parallel.yml"), "-w", "mlw")
		pipeline := writeFile(t, dir, "registered.yml", `type: pipeline
settings: {default_compute: azureml:batch-cluster}
outputs:
  rows:
jobs:
  score:
    type: parallel
    component: azureml:file_score:1
    inputs:
      data: {type: uri_folder, path: ./files}
    outputs:
      rows: ${{parent.outputs.rows}}
    mini_batch_size: "3"
    max_concurrency_per_instance: 2
`)
		job, out := e.runParallel(t, pipeline)
		if !strings.Contains(out, "3 mini-batches (0 reused), 1 failed, 6 rows") {
			t.Errorf("log lacks the summary of 3 mini-batches of 3 files:\n%s", out)
		}
		dl := t.TempDir()
		e.wharf("ml", "job", "download", "-n", job, "--output-name", "rows", "--download-path", dl, "-w", "mlw")
		b, err := os.ReadFile(filepath.Join(dl, "named-outputs", "rows", "parallel_run_step.txt"))
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Count(string(b), "registered f"); got != 6 || strings.Contains(string(b), "zz_bad") {
			t.Errorf("rows of the registered component's step:\n%s", b)
		}
	})

	t.Run("threshold exceeded", func(t *testing.T) {
		job := strings.TrimSpace(e.wharf("ml", "job", "create", "--file", parallelFilesProject(t, 0), "-w", "mlw", "--query", "name", "-o", "tsv"))
		log, status := e.finish(job)
		step := strings.TrimSpace(e.wharf("ml", "job", "show", "-n", job+"_score", "--query", "status", "-o", "tsv", "-w", "mlw"))
		if status != "Failed" || step != "Failed" {
			t.Errorf("pipeline %s, score step %s; want both Failed", status, step)
		}
		const why = "1 failed mini-batches exceed mini_batch_error_threshold 0"
		if !strings.Contains(log, why) {
			t.Errorf("the log does not say the threshold was exceeded:\n%s", log)
		}
		if msg := e.wharf("ml", "job", "show", "-n", job+"_score", "--query", "error", "-o", "tsv", "-w", "mlw"); !strings.Contains(msg, why) {
			t.Errorf("the step's error %q does not say the threshold was exceeded", msg)
		}
	})
}

// TestParallelStepOverTable: a CSV file in mini-batches of about 16 KB of
// rows, each given to run() as a DataFrame; the rows it returns are
// appended space-separated, without header, to a uri_file output, every
// input row exactly once.
func TestParallelStepOverTable(t *testing.T) {
	const sample = "../../../shared/data/taxi/taxi-batch.csv"
	data, err := os.ReadFile(sample)
	if err != nil {
		missing(t, "the taxi sample is not at %s: %v", sample, err)
	}
	records, err := csv.NewReader(strings.NewReader(string(data))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	col := slices.Index(records[0], "distance")
	var wantSum float64
	for _, r := range records[1:] {
		v, _ := strconv.ParseFloat(r[col], 64)
		wantSum += v
	}
	e := startBatchEnv(t)
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "src"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, "src/score.py", parallelScript)
	writeFile(t, dir, "taxi-batch.csv", string(data))
	pipeline := writeFile(t, dir, "pipeline.yml", `type: pipeline
settings:
  default_compute: azureml:batch-cluster
outputs:
  scores: {type: uri_file}
jobs:
  score:
    type: parallel
    inputs:
      trips: {type: uri_file, path: ./taxi-batch.csv}
    outputs:
      scores: ${{parent.outputs.scores}}
    input_data: ${{inputs.trips}}
    mini_batch_size: "16kb"
    max_concurrency_per_instance: 2
    task:
      code: ./src
      entry_script: score.py
      environment: {image: python:3.11}
      program_arguments: --scale 2
      append_row_to: ${{outputs.scores}}
`)
	job, out := e.runParallel(t, pipeline)
	m := regexp.MustCompile(`done: (\d+) mini-batches \(0 reused\), 0 failed, (\d+) rows`).FindStringSubmatch(out)
	if m == nil || m[2] != strconv.Itoa(len(records)-1) {
		t.Fatalf("summary %v, want %d rows:\n%s", m, len(records)-1, out)
	}
	if n, _ := strconv.Atoi(m[1]); n < len(data)/(16<<10) || n > len(data)/(16<<10)+2 {
		t.Errorf("%d mini-batches of about 16 KB for %d bytes", n, len(data))
	}
	dl := t.TempDir()
	e.wharf("ml", "job", "download", "-n", job, "--output-name", "scores", "--download-path", dl, "-w", "mlw")
	var file string
	_ = filepath.WalkDir(dl, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			file = p
		}
		return err
	})
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	rows := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(rows) != len(records)-1 {
		t.Fatalf("%d rows appended to %s, want %d", len(rows), file, len(records)-1)
	}
	var sum float64
	for _, r := range rows {
		f := strings.Split(r, " ")
		if len(f) != 3 {
			t.Fatalf("row %q is not distance passengers scaled, space-separated", r)
		}
		d, _ := strconv.ParseFloat(f[0], 64)
		s, _ := strconv.ParseFloat(f[2], 64)
		if math.Abs(s-2*d) > 1e-9 {
			t.Fatalf("row %q: scaled is not distance × --scale 2", r)
		}
		sum += d
	}
	if math.Abs(sum-wantSum) > 1e-6 {
		t.Errorf("sum of distances %v, want %v: a row is missing or repeated", sum, wantSum)
	}
}
