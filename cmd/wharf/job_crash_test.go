package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// cliAgainst points the in-process CLI at a server process.
func cliAgainst(t *testing.T, dataDir, base string) func(args ...string) string {
	b, err := os.ReadFile(filepath.Join(dataDir, "owner-credentials.json"))
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("WHARF_CONFIG_DIR", filepath.Join(dataDir, "..", "cli"))
	t.Setenv("WHARF_URL", base)
	t.Setenv("WHARF_CREDENTIALS", string(b))
	t.Setenv("WHARF_CLIENT_ID", "")
	return func(args ...string) string {
		t.Helper()
		var out, errb bytes.Buffer
		if code := run(context.Background(), args, strings.NewReader(""), &out, &errb); code != 0 {
			t.Fatalf("wharf %s: exit %d\n%s%s", strings.Join(args, " "), code, out.String(), errb.String())
		}
		return out.String()
	}
}

func waitForFile(t *testing.T, p string) string {
	t.Helper()
	for giveUp := time.Now().Add(60 * time.Second); time.Now().Before(giveUp); time.Sleep(20 * time.Millisecond) {
		if b, err := os.ReadFile(p); err == nil && len(b) > 0 && bytes.HasSuffix(b, []byte("\n")) {
			return strings.TrimSpace(string(b))
		}
	}
	t.Fatalf("%s never appeared", p)
	return ""
}

// TestSIGKILLDuringPipelineRecovers kills the server with SIGKILL while a
// pipeline's middle step runs, restarts it on the same data folder, and
// checks that the finished step is kept, the interrupted one is stopped
// and run again, and the pipeline completes.
func TestSIGKILLDuringPipelineRecovers(t *testing.T) {
	root := t.TempDir()
	dataDir := filepath.Join(root, "data")
	// The test follows the step's grandchild by its host process id,
	// which a sandboxed step, in a PID namespace of its own, cannot see;
	// TestSIGKILLedServerTakesItsSandboxedStepsWithIt covers sandboxes.
	cmd, base := startProcess(t, dataDir, "", "--unsafe-run-steps-as-server-user")
	wharf := cliAgainst(t, dataDir, base)
	wharf("ml", "workspace", "create", "-n", "mlw")
	wharf("ml", "compute", "create", "-n", "cpu-cluster", "-w", "mlw")

	pidFile, release := filepath.Join(root, "waiter.pid"), filepath.Join(root, "release")
	job := writeFile(t, root, "pipeline.yml", `type: pipeline
settings:
  default_compute: azureml:cpu-cluster
  continue_on_step_failure: false
jobs:
  first:
    command: echo one > ${{outputs.out}}/one.txt
    environment:
      image: python:3.11
    outputs:
      out:
  middle:
    # The waiting is done by a grandchild of the step, which outlives the
    # step's own shell when the server is killed.
    command: >-
      sh -c 'echo $$ > `+pidFile+`.tmp && mv `+pidFile+`.tmp `+pidFile+`; while [ ! -f `+release+` ]; do sleep 0.05; done'
      && cat ${{inputs.in}}/one.txt > ${{outputs.out}}/two.txt
    environment:
      image: python:3.11
    inputs:
      in: ${{parent.jobs.first.outputs.out}}
    outputs:
      out:
  last:
    command: cat ${{inputs.in}}/two.txt > ${{outputs.out}}/three.txt
    environment:
      image: python:3.11
    inputs:
      in: ${{parent.jobs.middle.outputs.out}}
    outputs:
      out:
`)
	name := strings.TrimSpace(wharf("ml", "job", "create", "--file", job, "-w", "mlw", "--query", "name", "-o", "tsv"))
	waiter, err := strconv.Atoi(waitForFile(t, pidFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	os.Remove(pidFile)

	_, base2 := startProcess(t, dataDir, "", "--unsafe-run-steps-as-server-user")
	wharf = cliAgainst(t, dataDir, base2)
	// Recovery stops what the killed server left running.
	for giveUp := time.Now().Add(30 * time.Second); processAlive(waiter) && time.Now().Before(giveUp); time.Sleep(20 * time.Millisecond) {
	}
	if processAlive(waiter) {
		syscall.Kill(waiter, syscall.SIGKILL)
		t.Fatalf("process %d of the interrupted attempt survived the restart", waiter)
	}
	// The step runs again: its new attempt waits too, until released.
	waitForFile(t, pidFile)
	writeFile(t, root, "release", "go\n")
	wharf("ml", "job", "stream", "-n", name, "-w", "mlw")

	e := &cliEnv{t: t}
	status, steps := e.jobStepsWith(wharf, "mlw", name)
	if status != "Completed" {
		t.Fatalf("pipeline after the restart: %s", status)
	}
	if n := len(steps["first"].Attempts); n != 1 {
		t.Errorf("first ran %d times; a completed step must be kept", n)
	}
	mid := steps["middle"]
	if len(mid.Attempts) != 2 {
		t.Fatalf("middle has %d attempts, want the interrupted one and its re-run", len(mid.Attempts))
	}
	a1, _ := mid.Attempts[0].(map[string]any)
	if errText, _ := a1["error"].(string); !strings.HasPrefix(errText, "interrupted") {
		t.Errorf("first attempt of middle: %v, want it recorded as interrupted", a1)
	}
	if steps["last"].Status != "Completed" {
		t.Errorf("last: %s", steps["last"].Status)
	}
	dl := t.TempDir()
	wharf("ml", "job", "download", "-n", steps["last"].Name, "--all", "--download-path", dl, "-w", "mlw")
	if b, err := os.ReadFile(filepath.Join(dl, "named-outputs", "out", "three.txt")); err != nil || strings.TrimSpace(string(b)) != "one" {
		t.Errorf("last step's output %q, %v", b, err)
	}
}

func processAlive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	end := bytes.LastIndexByte(b, ')')
	return end >= 0 && !bytes.HasPrefix(bytes.TrimSpace(b[end+1:]), []byte("Z"))
}
