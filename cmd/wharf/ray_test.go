package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wharfml/wharf/internal/raytest"
	"github.com/wharfml/wharf/pyenv"
	"github.com/wharfml/wharf/ray"
)

// rayAddress starts a Ray head for the test (internal/raytest, which
// skips the test without WHARF_TEST_RAY) and returns its dashboard's
// address.
func rayAddress(t *testing.T) string {
	t.Helper()
	return raytest.Start(t, raytest.Options{}).URL
}

// rayEnv is a server with a workspace holding a local cluster and a
// Ray-backed one on a Ray head of the test's own, and that head's address.
// The Ray-backed one runs its steps unsandboxed (--sandbox=false): the
// tests' steps leave marks in the test's folders, which a sandboxed step
// cannot reach.
func rayEnv(t *testing.T) (*cliEnv, string) {
	return rayEnvWith(t, "--sandbox=false")
}

// rayEnvWith is rayEnv with the Ray-backed cluster attached with flags.
func rayEnvWith(t *testing.T, flags ...string) (*cliEnv, string) {
	return rayEnvAt(t, rayAddress(t), flags...)
}

// rayEnvAt is rayEnvWith on the Ray head at addr.
func rayEnvAt(t *testing.T, addr string, flags ...string) (*cliEnv, string) {
	e := newCLIEnv(t)
	e.ok("ml", "workspace", "create", "-n", "dev")
	e.ok("ml", "compute", "create", "-n", "cpu-cluster", "-w", "dev")
	e.ok(append([]string{"ml", "compute", "attach", "--type", "ray", "--address", addr, "-n", "ray-cluster", "-w", "dev"}, flags...)...)
	t.Cleanup(func() {
		// The driver job ends with the compute.
		e.wharf("ml", "compute", "delete", "-n", "ray-cluster", "-w", "dev", "--yes")
	})
	return e, addr
}

// rayPipeline is a two-step pipeline whose second step reads the first's
// output, on the named compute.
func rayPipeline(t *testing.T, dir, compute string) string {
	writeFile(t, dir, "fares.csv", "fare\n12.5\n7.25\n")
	return writeFile(t, dir, "pipeline-"+compute+".yml", `type: pipeline
settings:
  default_compute: azureml:`+compute+`
  force_rerun: true
inputs:
  raw:
    type: uri_file
    path: ./fares.csv
jobs:
  prep:
    command: echo "prep says hello" && sort -r ${{inputs.raw}} > ${{outputs.out}}/sorted.csv && echo done > outputs/prep.txt
    environment: {image: python:3.11}
    inputs:
      raw: ${{parent.inputs.raw}}
    outputs:
      out: {type: uri_folder}
  count:
    command: wc -l < ${{inputs.data}}/sorted.csv > ${{outputs.n}}/n.txt && cat ${{inputs.data}}/sorted.csv >> ${{outputs.n}}/n.txt
    environment: {image: python:3.11}
    inputs:
      data: ${{parent.jobs.prep.outputs.out}}
    outputs:
      n: {type: uri_folder}
`)
}

// TestRayPipelineMatchesLocal: the same pipeline runs on local compute
// and on a Ray cluster by changing only compute; on Ray each step runs as
// a Ray task, its log reaches job stream, and the outputs are
// byte-identical to the local run's. Its steps use only their own
// folders, and run sandboxed on the node, the default.
func TestRayPipelineMatchesLocal(t *testing.T) {
	e, _ := rayEnvWith(t)
	dir := t.TempDir()
	outputs := map[string]string{}
	for _, compute := range []string{"cpu-cluster", "ray-cluster"} {
		name := lastLine(e.ok("ml", "job", "create", "--file", rayPipeline(t, dir, compute), "-w", "dev", "--query", "name", "-o", "tsv"))
		if got := e.waitJob("dev", name); got != "Completed" {
			t.Fatalf("%s: %s\n%s", compute, got, e.ok("ml", "job", "show", "-n", name, "-w", "dev"))
		}
		steps := e.ok("ml", "job", "list", "--parent-job-name", name, "-w", "dev", "--query", "[].name", "-o", "tsv")
		var b []byte
		for _, step := range strings.Fields(steps) {
			dl := filepath.Join(dir, "dl-"+step)
			e.ok("ml", "job", "download", "-n", step, "--all", "--download-path", dl, "-w", "dev")
			if got, err := os.ReadFile(filepath.Join(dl, "named-outputs", "n", "n.txt")); err == nil {
				b = got
			}
		}
		if b == nil {
			t.Fatalf("%s: no step has output n with n.txt", compute)
		}
		outputs[compute] = string(b)
		for _, step := range strings.Fields(steps) {
			log := e.ok("ml", "job", "stream", "-n", step, "-w", "dev")
			if compute == "ray-cluster" && !strings.Contains(log, "[ray] attempt") {
				t.Errorf("step %s's log does not say where Ray ran it:\n%s", step, log)
			}
			if strings.Contains(e.ok("ml", "job", "show", "-n", step, "-w", "dev", "--query", "display_name", "-o", "tsv"), "prep") &&
				!strings.Contains(log, "prep says hello") {
				t.Errorf("step %s's log lacks its output:\n%s", step, log)
			}
		}
	}
	if want := "3\nfare\n7.25\n12.5\n"; outputs["cpu-cluster"] != want {
		t.Errorf("local output %q, want %q", outputs["cpu-cluster"], want)
	}
	if outputs["ray-cluster"] != outputs["cpu-cluster"] {
		t.Errorf("Ray output %q differs from local %q", outputs["ray-cluster"], outputs["cpu-cluster"])
	}
}

// TestRayFailingStepRetries: a step that fails on Ray is retried by its
// retry policy, as on local compute, and each attempt is kept.
func TestRayFailingStepRetries(t *testing.T) {
	e, _ := rayEnv(t)
	dir := t.TempDir()
	// The Ray worker runs on this machine, so the step can leave a mark
	// for its next attempt where both see it.
	mark := filepath.Join(dir, "first-attempt-ran")
	job := writeFile(t, dir, "job.yml", `command: if [ -f `+mark+` ]; then echo second; else touch `+mark+`; echo first; exit 3; fi
environment: {image: python:3.11}
compute: azureml:ray-cluster
retry_settings: {max_retries: 1}
`)
	name := lastLine(e.ok("ml", "job", "create", "--file", job, "-w", "dev", "--query", "name", "-o", "tsv"))
	if got := e.waitJob("dev", name); got != "Completed" {
		t.Fatalf("job: %s\n%s", got, e.ok("ml", "job", "show", "-n", name, "-w", "dev"))
	}
	attempts := e.ok("ml", "job", "show", "-n", name, "-w", "dev", "--query", "attempts[].[status, exit_code]", "-o", "tsv")
	if f := strings.Fields(attempts); len(f) != 4 || f[0] != "Failed" || f[1] != "3" || f[2] != "Completed" || f[3] != "0" {
		t.Errorf("attempts: %q, want Failed 3 then Completed 0", attempts)
	}
}

// TestRayCancelStopsTheTask: cancelling a job whose step runs on Ray
// cancels its Ray task; the step's command is stopped before it reaches
// its end.
func TestRayCancelStopsTheTask(t *testing.T) {
	e, _ := rayEnv(t)
	dir := t.TempDir()
	started, finished := filepath.Join(dir, "started"), filepath.Join(dir, "finished")
	job := writeFile(t, dir, "job.yml", `command: echo yes > `+started+` && sleep 30 && echo yes > `+finished+`
environment: {image: python:3.11}
compute: azureml:ray-cluster
`)
	name := lastLine(e.ok("ml", "job", "create", "--file", job, "-w", "dev", "--query", "name", "-o", "tsv"))
	waitForFile(t, started)
	e.ok("ml", "job", "cancel", "-n", name, "-w", "dev")
	if got := e.waitJob("dev", name); got != "Canceled" {
		t.Fatalf("job: %s", got)
	}
	time.Sleep(2 * time.Second)
	if _, err := os.Stat(finished); err == nil {
		t.Error("the step's command ran to its end after the job was canceled")
	}
}

// TestRayKilledWorkerFailsTheAttempt: killing the Ray worker that runs a
// step fails the attempt, saying so, and the retry policy runs it again.
func TestRayKilledWorkerFailsTheAttempt(t *testing.T) {
	e, _ := rayEnv(t)
	dir := t.TempDir()
	// The step's shell is the worker's child: $PPID is the worker.
	worker, again := filepath.Join(dir, "worker.pid"), filepath.Join(dir, "second")
	job := writeFile(t, dir, "job.yml", `command: if [ -f `+worker+` ]; then echo yes > `+again+`; else echo $PPID > `+worker+`; sleep 60; fi
environment: {image: python:3.11}
compute: azureml:ray-cluster
retry_settings: {max_retries: 1}
`)
	name := lastLine(e.ok("ml", "job", "create", "--file", job, "-w", "dev", "--query", "name", "-o", "tsv"))
	pid, err := strconv.Atoi(waitForFile(t, worker))
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("killing the Ray worker %d: %v", pid, err)
	}
	if got := e.waitJob("dev", name); got != "Completed" {
		t.Fatalf("job: %s\n%s", got, e.ok("ml", "job", "show", "-n", name, "-w", "dev"))
	}
	first := e.ok("ml", "job", "show", "-n", name, "-w", "dev", "--query", "attempts[0].[status, error]", "-o", "tsv")
	if !strings.Contains(first, "Failed") || !strings.Contains(first, "Ray worker running the step died") {
		t.Errorf("first attempt: %q, want it failed by the worker's death", first)
	}
	if _, err := os.Stat(again); err != nil {
		t.Error("the retry did not run the command")
	}
}

// TestRayDriverEndedFailsItsAttempts: when the driver's Ray job is
// stopped behind the server's back, the attempt it ran fails naming it,
// and the retry runs on a new driver.
func TestRayDriverEndedFailsItsAttempts(t *testing.T) {
	e, addr := rayEnv(t)
	dir := t.TempDir()
	started, again := filepath.Join(dir, "started"), filepath.Join(dir, "second")
	job := writeFile(t, dir, "job.yml", `command: if [ -f `+started+` ]; then echo yes > `+again+`; else echo yes > `+started+`; sleep 60; fi
environment: {image: python:3.11}
compute: azureml:ray-cluster
retry_settings: {max_retries: 1}
`)
	name := lastLine(e.ok("ml", "job", "create", "--file", job, "-w", "dev", "--query", "name", "-o", "tsv"))
	waitForFile(t, started)
	driver := strings.TrimSpace(e.ok("ml", "job", "show", "-n", name, "-w", "dev", "--query", "attempts[0].cluster.driver", "-o", "tsv"))
	if !strings.HasPrefix(driver, "wharf-ray-cluster-") {
		t.Fatalf("attempt's driver: %q", driver)
	}
	rc := &ray.Client{Address: addr}
	if err := rc.Stop(t.Context(), driver); err != nil {
		t.Fatal(err)
	}
	if got := e.waitJob("dev", name); got != "Completed" {
		t.Fatalf("job: %s\n%s", got, e.ok("ml", "job", "show", "-n", name, "-w", "dev"))
	}
	first := e.ok("ml", "job", "show", "-n", name, "-w", "dev", "--query", "attempts[0].error", "-o", "tsv")
	if !strings.Contains(first, "Ray driver job "+driver) {
		t.Errorf("first attempt's error: %q, want it to name the driver that ended", first)
	}
	second := strings.TrimSpace(e.ok("ml", "job", "show", "-n", name, "-w", "dev", "--query", "attempts[1].cluster.driver", "-o", "tsv"))
	if second == driver || second == "" {
		t.Errorf("the retry ran on driver %q, want a new one", second)
	}
}

// TestRaySIGKILLedServerFollowsItsTasks kills the server with SIGKILL
// while a step runs as a Ray task and restarts it at the same address:
// the task is found and followed to its end, not run again, and its
// outputs are committed.
func TestRaySIGKILLedServerFollowsItsTasks(t *testing.T) {
	addr := rayAddress(t)
	root := t.TempDir()
	dataDir := filepath.Join(root, "data")
	// The driver reaches the server at its address, which the restarted
	// server must keep.
	listen := "127.0.0.1:" + freePort(t)
	cmd, base := startProcess(t, dataDir, "", "--addr", listen, "--unsafe-run-steps-as-server-user")
	wharf := cliAgainst(t, dataDir, base)
	wharf("ml", "workspace", "create", "-n", "mlw")
	wharf("ml", "compute", "attach", "--type", "ray", "--address", addr, "-n", "ray-cluster", "-w", "mlw", "--sandbox=false")
	job, started := followedStep(t, root, "after the restart")
	name := strings.TrimSpace(wharf("ml", "job", "create", "--file", job, "-w", "mlw", "--query", "name", "-o", "tsv"))
	waitForFile(t, started)
	if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()

	_, base2 := startProcess(t, dataDir, "", "--addr", listen, "--unsafe-run-steps-as-server-user")
	wharf = cliAgainst(t, dataDir, base2)
	deleteRayClusterAtEnd(t, "mlw")
	releaseFollowedStep(t, wharf, root, name, "after the restart")
}

// followedStep writes a job whose step on ray-cluster notes each run in
// root/runs and that it started in root/started, waits for root/release,
// then says after and writes an output; it returns the job's file and
// the started file.
func followedStep(t *testing.T, root, after string) (job, started string) {
	runs, started, release := filepath.Join(root, "runs"), filepath.Join(root, "started"), filepath.Join(root, "release")
	job = writeFile(t, root, "job.yml", `command: >-
  echo run >> `+runs+` && echo yes > `+started+` &&
  while [ ! -f `+release+` ]; do sleep 0.05; done && echo "`+after+`" && echo done > ${{outputs.out}}/o.txt
environment: {image: python:3.11}
compute: azureml:ray-cluster
outputs:
  out: {type: uri_folder}
`)
	return job, started
}

// releaseFollowedStep lets followedStep's step end, and checks that its
// one attempt was followed to Completed: run once, its log followed past
// after, its output saved.
func releaseFollowedStep(t *testing.T, wharf func(args ...string) string, root, name, after string) {
	t.Helper()
	writeFile(t, root, "release", "go\n")
	log := wharf("ml", "job", "stream", "-n", name, "-w", "mlw")
	if got := waitJobVia(t, wharf, "mlw", name); got != "Completed" {
		t.Fatalf("job: %s\n%s", got, wharf("ml", "job", "show", "-n", name, "-w", "mlw"))
	}
	if b, _ := os.ReadFile(filepath.Join(root, "runs")); string(b) != "run\n" {
		t.Errorf("the step's command ran %d times, want once", strings.Count(string(b), "run"))
	}
	if n := strings.Fields(wharf("ml", "job", "show", "-n", name, "-w", "mlw", "--query", "length(attempts)", "-o", "tsv")); len(n) != 1 || n[0] != "1" {
		t.Errorf("attempts: %v, want the one followed", n)
	}
	if !strings.Contains(log, after) || !strings.Contains(log, "following task") {
		t.Errorf("log does not show the task followed to its end:\n%s", log)
	}
	dl := t.TempDir()
	wharf("ml", "job", "download", "-n", name, "--all", "--download-path", dl, "-w", "mlw")
	if b, err := os.ReadFile(filepath.Join(dl, "named-outputs", "out", "o.txt")); err != nil || string(b) != "done\n" {
		t.Errorf("output: %q %v", b, err)
	}
}

// deleteRayClusterAtEnd deletes the workspace's ray-cluster when the test
// ends, which stops its driver job, through whatever server the CLI's
// environment names then.
func deleteRayClusterAtEnd(t *testing.T, workspace string) {
	t.Cleanup(func() {
		var out, errb bytes.Buffer
		run(context.Background(), []string{"ml", "compute", "delete", "-n", "ray-cluster", "-w", workspace, "--yes"}, strings.NewReader(""), &out, &errb)
	})
}

// waitJobVia waits for a job to end, asking through wharf, and returns
// its status.
func waitJobVia(t *testing.T, wharf func(args ...string) string, ws, name string) string {
	t.Helper()
	for giveUp := time.Now().Add(120 * time.Second); time.Now().Before(giveUp); time.Sleep(100 * time.Millisecond) {
		switch status := strings.TrimSpace(wharf("ml", "job", "show", "-n", name, "-w", ws, "--query", "status", "-o", "tsv")); status {
		case "Completed", "Failed", "Canceled":
			return status
		}
	}
	t.Fatalf("job %s did not end", name)
	return ""
}

// TestRayRerunFromFailedAndReuse: on a Ray cluster as on local compute,
// rerun --from-failed keeps the completed step and runs the failed one,
// and the same pipeline submitted again reuses every step.
func TestRayRerunFromFailedAndReuse(t *testing.T) {
	e, _ := rayEnv(t)
	dir := t.TempDir()
	flag := filepath.Join(dir, "fixed")
	job := writeFile(t, dir, "pipeline.yml", `type: pipeline
settings:
  default_compute: azureml:ray-cluster
jobs:
  one:
    command: echo one > ${{outputs.out}}/one.txt
    environment: {image: python:3.11}
    outputs:
      out:
  two:
    command: test -f `+flag+` && cp ${{inputs.in}}/one.txt ${{outputs.out}}/
    environment: {image: python:3.11}
    inputs:
      in: ${{parent.jobs.one.outputs.out}}
    outputs:
      out:
`)
	first := strings.TrimSpace(e.ok("ml", "job", "create", "--file", job, "-w", "dev", "--query", "name", "-o", "tsv"))
	if got := e.waitJob("dev", first); got != "Failed" {
		t.Fatalf("first run: %s, want Failed", got)
	}
	writeFile(t, dir, "fixed", "")
	out, errs, code := e.wharf("ml", "job", "rerun", "-n", first, "--from-failed", "-w", "dev", "--query", "name", "-o", "tsv")
	if code != 0 {
		t.Fatalf("rerun: %s\n%s", out, errs)
	}
	rerun := lastLine(out)
	if got := e.waitJob("dev", rerun); got != "Completed" {
		t.Fatalf("rerun: %s", got)
	}
	_, steps := e.jobSteps("dev", rerun)
	if steps["one"].ReusedFrom != first+"_one" || len(steps["two"].Attempts) != 1 {
		t.Errorf("rerun: one reused from %q, two %d attempts", steps["one"].ReusedFrom, len(steps["two"].Attempts))
	}
	again := strings.TrimSpace(e.ok("ml", "job", "create", "--file", job, "-w", "dev", "--query", "name", "-o", "tsv"))
	if got := e.waitJob("dev", again); got != "Completed" {
		t.Fatalf("again: %s", got)
	}
	_, steps = e.jobSteps("dev", again)
	for _, s := range []string{"one", "two"} {
		if steps[s].ReusedFrom == "" || len(steps[s].Attempts) != 0 {
			t.Errorf("step %s submitted again: reused from %q, %d attempts; want it reused", s, steps[s].ReusedFrom, len(steps[s].Attempts))
		}
	}
}

// TestRayStepLogsToItsRunWithItsJobToken: a step on Ray gets its code
// folder and the tracking variables of a local step, logs a metric to its
// own run over the server's URL with its job token, and sees neither the
// driver's credential nor the server's files: its $WHARF is the node's
// copy of the server's executable. The driver's registration
// code, which a step can read from the Ray dashboard as anyone can, is
// spent: trading it for the compute's token is refused.
func TestRayStepLogsToItsRunWithItsJobToken(t *testing.T) {
	e, addr := rayEnv(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, src, "log_metric.py", `import json, os, sys, urllib.error, urllib.request
if os.environ.get("WHARF_DRIVER_CODE") or os.environ.get("WHARF_COMPUTE_TOKEN"):
    sys.exit("the step sees the driver's credential")
jobs = json.load(urllib.request.urlopen(os.environ["RAY_DASHBOARD"] + "/api/jobs/"))
codes = [(j["submission_id"], ((j.get("runtime_env") or {}).get("env_vars") or {}).get("WHARF_DRIVER_CODE")) for j in jobs]
codes = [c for c in codes if c[1]]
if not codes:
    sys.exit("no driver job with a registration code on the dashboard: %r" % jobs)
for driver, code in codes:
    req = urllib.request.Request(os.environ["WHARF_REGISTER"], data=json.dumps({"driver": driver, "code": code}).encode(),
        headers={"Content-Type": "application/json"})
    try:
        urllib.request.urlopen(req).read()
        sys.exit("the step traded driver %s's code for the compute's token" % driver)
    except urllib.error.HTTPError as e:
        if e.code != 403:
            sys.exit("registering with a spent code: %d %s" % (e.code, e.read()))
print("the driver's code is spent")
for k in ("WHARF_JOB_STATE_DIR", "WHARF_STEP_ERROR_FILE"):
    if k in os.environ:
        sys.exit("the step sees %s, a path on the server" % k)
if os.environ.get("WHARF") == os.environ["SERVER_EXECUTABLE"] or "/wharf/bin/" not in os.environ.get("WHARF", ""):
    sys.exit("$WHARF is %r, not the node's copy of the server's executable" % os.environ.get("WHARF"))
body = {"run_id": os.environ["MLFLOW_RUN_ID"], "key": "accuracy", "value": 0.91, "timestamp": 1, "step": 0}
req = urllib.request.Request(os.environ["MLFLOW_TRACKING_URI"] + "/api/2.0/mlflow/runs/log-metric", data=json.dumps(body).encode(),
    headers={"Authorization": "Bearer " + os.environ["MLFLOW_TRACKING_TOKEN"], "Content-Type": "application/json"})
urllib.request.urlopen(req).read()
print("logged from", os.getcwd())
`)
	job := writeFile(t, dir, "job.yml", `code: ./src
command: python log_metric.py
environment: {image: python:3.11}
environment_variables:
  RAY_DASHBOARD: `+addr+`
  WHARF_REGISTER: http://`+e.srv.Addr+`/api/v1/workspaces/dev/computes/ray-cluster/driver/register
  SERVER_EXECUTABLE: `+exe+`
compute: azureml:ray-cluster
`)
	name := lastLine(e.ok("ml", "job", "create", "--file", job, "-w", "dev", "--query", "name", "-o", "tsv"))
	if got := e.waitJob("dev", name); got != "Completed" {
		t.Fatalf("job: %s\n%s", got, e.ok("ml", "job", "stream", "-n", name, "-w", "dev"))
	}
	runID := strings.TrimSpace(e.ok("ml", "job", "show", "-n", name, "-w", "dev", "--query", "run_id", "-o", "tsv"))
	var run struct {
		Run struct {
			Data struct {
				Metrics []struct {
					Key   string  `json:"key"`
					Value float64 `json:"value"`
				} `json:"metrics"`
			} `json:"data"`
		} `json:"run"`
	}
	if err := e.ownerAPI().Do(t.Context(), "GET", "/mlflow/v1.0/workspaces/dev/api/2.0/mlflow/runs/get?run_id="+runID, nil, &run); err != nil {
		t.Fatal(err)
	}
	if m := run.Run.Data.Metrics; len(m) != 1 || m[0].Key != "accuracy" || m[0].Value != 0.91 {
		t.Errorf("run %s metrics: %+v, want accuracy 0.91", runID, m)
	}
}

// executableFetches is how many times the server served its executable
// whole, read from its own request counter.
func executableFetches(t *testing.T, base string) int {
	t.Helper()
	for _, line := range strings.Split(getPage(t, http.DefaultClient, base+"/metrics"), "\n") {
		if strings.HasPrefix(line, "wharf_http_requests_total{") && strings.Contains(line, `route="GET `+ray.ExecutablePath+`"`) &&
			strings.Contains(line, `code="200"`) {
			n, err := strconv.Atoi(line[strings.LastIndex(line, " ")+1:])
			if err != nil {
				t.Fatalf("metrics line %q: %v", line, err)
			}
			return n
		}
	}
	return 0
}

// TestRayNodeFetchesTheServerExecutableOnce: steps on Ray run the
// server's own executable as $WHARF. Two steps starting together on one
// node fetch it once between them; a cached copy that no longer matches
// its digest is fetched again, not run.
func TestRayNodeFetchesTheServerExecutableOnce(t *testing.T) {
	e, _ := rayEnv(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	digest := hex.EncodeToString(sum[:])
	dir := t.TempDir()
	step := `command: echo "wharf=$WHARF" && sha256sum "$WHARF" && command -v wharf
    environment: {image: python:3.11}`
	pipeline := writeFile(t, dir, "pipeline.yml", `type: pipeline
settings: {default_compute: azureml:ray-cluster, force_rerun: true}
jobs:
  one:
    `+step+`
  two:
    `+step+`
`)
	name := lastLine(e.ok("ml", "job", "create", "--file", pipeline, "-w", "dev", "--query", "name", "-o", "tsv"))
	if got := e.waitJob("dev", name); got != "Completed" {
		t.Fatalf("pipeline: %s\n%s", got, e.ok("ml", "job", "show", "-n", name, "-w", "dev"))
	}
	cached := ""
	for _, s := range []string{"one", "two"} {
		log := e.ok("ml", "job", "stream", "-n", name+"_"+s, "-w", "dev")
		if !strings.Contains(log, digest+"  ") {
			t.Errorf("step %s: $WHARF is not the server's executable (sha256 %s):\n%s", s, digest, log)
		}
		_, rest, _ := strings.Cut(log, "\nwharf=")
		cached, _, _ = strings.Cut(rest, "\n")
		if !filepath.IsAbs(cached) || !strings.Contains(log, "\n"+cached+"\n") {
			t.Errorf("step %s: wharf on PATH is not $WHARF (%s):\n%s", s, cached, log)
		}
	}
	if n := executableFetches(t, e.srv.HTTP.URL); n != 1 {
		t.Errorf("two steps on one node fetched the executable %d times, want 1", n)
	}

	// The cached copy is damaged: the next step fetches it again.
	if !strings.HasSuffix(cached, "/"+digest+"/wharf") {
		t.Fatalf("$WHARF is %q, not in the node's cache by its digest", cached)
	}
	if err := os.WriteFile(cached, []byte("#!/bin/sh\necho damaged\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	job := writeFile(t, dir, "job.yml", `command: sha256sum "$WHARF"
environment: {image: python:3.11}
compute: azureml:ray-cluster
`)
	name = lastLine(e.ok("ml", "job", "create", "--file", job, "-w", "dev", "--query", "name", "-o", "tsv"))
	if got := e.waitJob("dev", name); got != "Completed" {
		t.Fatalf("job: %s\n%s", got, e.ok("ml", "job", "show", "-n", name, "-w", "dev"))
	}
	log := e.ok("ml", "job", "stream", "-n", name, "-w", "dev")
	if !strings.Contains(log, digest+"  ") || !strings.Contains(log, "does not match its digest") {
		t.Errorf("after damaging the cached executable, the step's log:\n%s", log)
	}
	if n := executableFetches(t, e.srv.HTTP.URL); n != 2 {
		t.Errorf("after damaging the cached copy: %d fetches, want 2", n)
	}
}

// TestRayStepRunsInItsEnvironment: a step whose environment's conda file
// names a Python version (not the Ray worker's) and a pip package runs on
// Ray in that environment, built on the node by the server's own builder:
// the same Python and package as on local compute. An environment whose
// package cannot be installed fails the attempt with pip's ERROR line, as
// on local compute, without running the command.
func TestRayStepRunsInItsEnvironment(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		missing(t, "no python3 on PATH")
	}
	const version = "3.10"
	if !(&pyenv.Builder{}).HasPython(t.Context(), version) {
		missing(t, "Python %s is not installed where the environment builder finds it", version)
	}
	e, _ := rayEnv(t)
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	wheel := writeWheel(t, dir, "1234")
	if err := os.Chmod(wheel, 0o644); err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, "conda.yml", "name: ray-env\ndependencies:\n  - python="+version+"\n  - pip\n  - pip:\n    - "+wheel+"\n")
	writeFile(t, dir, "bad-conda.yml", "name: bad-env\ndependencies:\n  - python="+version+"\n  - pip:\n    - "+
		filepath.Join(dir, "missing", "wharf_no_such_demo-1.0-py3-none-any.whl")+"\n")
	got := map[string]string{}
	for _, compute := range []string{"cpu-cluster", "ray-cluster"} {
		// The command names the compute, so that the second job is not
		// the first one's reuse.
		job := writeFile(t, dir, "job-"+compute+".yml", `command: >-
  : `+compute+` && python -c "import sys, wharf_overlay_demo; print(sys.version); print(wharf_overlay_demo.VALUE); print(sys.prefix != sys.base_prefix)"
  > ${{outputs.out}}/got.txt
environment: {image: python:3.10, conda_file: conda.yml}
compute: azureml:`+compute+`
outputs:
  out: {type: uri_folder}
`)
		name := lastLine(e.ok("ml", "job", "create", "--file", job, "-w", "dev", "--query", "name", "-o", "tsv"))
		if st := e.waitJob("dev", name); st != "Completed" {
			t.Fatalf("%s: %s\n%s", compute, st, e.ok("ml", "job", "stream", "-n", name, "-w", "dev"))
		}
		dl := filepath.Join(dir, "dl-"+compute)
		e.ok("ml", "job", "download", "-n", name, "--output-name", "out", "--download-path", dl, "-w", "dev")
		b, err := os.ReadFile(filepath.Join(dl, "named-outputs", "out", "got.txt"))
		if err != nil {
			t.Fatal(err)
		}
		got[compute] = string(b)
		if compute == "ray-cluster" {
			if log, errs, _ := e.wharf("ml", "job", "stream", "-n", name, "-w", "dev"); !strings.Contains(log, "wharf: building Python "+version) {
				t.Errorf("the step's log lacks the environment's build:\n%s%s", log, errs)
			}
		}
	}
	if !strings.HasPrefix(got["cpu-cluster"], version+".") || !strings.HasSuffix(got["cpu-cluster"], "\n1234\nTrue\n") {
		t.Errorf("local step printed %q, want Python %s and the package", got["cpu-cluster"], version)
	}
	if got["ray-cluster"] != got["cpu-cluster"] {
		t.Errorf("on Ray the step printed %q, locally %q", got["ray-cluster"], got["cpu-cluster"])
	}

	errs := map[string]string{}
	for _, compute := range []string{"cpu-cluster", "ray-cluster"} {
		job := writeFile(t, dir, "bad-"+compute+".yml", `command: echo the command ran on `+compute+`
environment: {image: python:3.10, conda_file: bad-conda.yml}
compute: azureml:`+compute+`
`)
		name := lastLine(e.ok("ml", "job", "create", "--file", job, "-w", "dev", "--query", "name", "-o", "tsv"))
		if st := e.waitJob("dev", name); st != "Failed" {
			t.Fatalf("%s: %s, want Failed", compute, st)
		}
		errs[compute] = strings.TrimSpace(e.ok("ml", "job", "show", "-n", name, "-w", "dev", "--query", "attempts[0].error", "-o", "tsv"))
		if log, _, _ := e.wharf("ml", "job", "stream", "-n", name, "-w", "dev"); strings.Contains(log, "\nthe command ran") {
			t.Errorf("%s: the command ran in an environment that failed to build:\n%s", compute, log)
		}
	}
	if !strings.Contains(errs["cpu-cluster"], "preparing the environment failed") || !strings.Contains(errs["cpu-cluster"], "ERROR: ") {
		t.Errorf("local attempt's error %q lacks pip's ERROR line", errs["cpu-cluster"])
	}
	if errs["ray-cluster"] != errs["cpu-cluster"] {
		t.Errorf("on Ray the attempt failed with\n%s\nlocally with\n%s", errs["ray-cluster"], errs["cpu-cluster"])
	}
}
