package raytest_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wharfml/wharf/internal/raytest"
)

// TestHeadRunsJobs starts a head, submits a job through the Jobs API and
// sees it succeed with its environment and output, and a failing one fail
// with its exit code.
func TestHeadRunsJobs(t *testing.T) {
	h := raytest.Start(t, raytest.Options{CPUs: 1})
	if !strings.Contains(h.GCSAddress, ":") {
		t.Fatalf("GCSAddress %q is not HOST:PORT", h.GCSAddress)
	}

	id := h.Submit(t, `python -c 'import os, ray; print("hello", os.environ["GREETING"], ray.__version__)'`,
		map[string]string{"GREETING": "from-wharf"})
	j := h.Wait(t, id, 2*time.Minute)
	if j.Status != "SUCCEEDED" {
		t.Fatalf("job %s: %s (%s); logs:\n%s", id, j.Status, j.Message, h.Logs(t, id))
	}
	if logs := h.Logs(t, id); !strings.Contains(logs, "hello from-wharf") {
		t.Fatalf("job %s logs lack its output:\n%s", id, logs)
	}

	id = h.Submit(t, "exit 3", nil)
	j = h.Wait(t, id, 2*time.Minute)
	if j.Status != "FAILED" || j.DriverExitCode == nil || *j.DriverExitCode != 3 {
		code := "none"
		if j.DriverExitCode != nil {
			code = strconv.Itoa(*j.DriverExitCode)
		}
		t.Fatalf("job %s: %s, exit code %s; want FAILED with exit code 3", id, j.Status, code)
	}
}

// TestStopEndsRunningJobs sees that a head's cleanup ends a job still
// running, whose driver Ray starts outside the head's process group.
func TestStopEndsRunningJobs(t *testing.T) {
	raytest.Program(t) // skip here, not only in the subtest
	pidFile := filepath.Join(t.TempDir(), "pid")
	t.Run("head", func(t *testing.T) {
		h := raytest.Start(t, raytest.Options{CPUs: 1})
		h.Submit(t, "echo $$ > "+pidFile+".tmp && mv "+pidFile+".tmp "+pidFile+" && exec sleep 600", nil)
		for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(100 * time.Millisecond) {
			if _, err := os.Stat(pidFile); err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the job did not start within 2 minutes")
			}
		}
	})
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	// Signal 0 checks that the process exists; a zombie would still count,
	// but the driver's parent, Ray's supervisor, is gone and init reaps it.
	for deadline := time.Now().Add(30 * time.Second); syscall.Kill(pid, 0) == nil; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the job's process %d outlived its head", pid)
		}
	}
}

// TestAddNodeJoinsTheCluster adds a node to a head of 1 CPU: a job sees two
// nodes alive, and two tasks that each need 2 CPUs can only run there, on
// the node added.
func TestAddNodeJoinsTheCluster(t *testing.T) {
	h := raytest.Start(t, raytest.Options{CPUs: 1})
	h.AddNode(t, 2)
	id := h.Submit(t, `python -c '
import ray
ray.init()
alive = [n for n in ray.nodes() if n["Alive"]]
where = ray.get([ray.remote(lambda: ray.get_runtime_context().get_node_id()).options(num_cpus=2).remote() for _ in range(2)])
head = ray.get_runtime_context().get_node_id()
print("alive", len(alive), "away", sum(w != head for w in where))
'`, nil)
	if j := h.Wait(t, id, 2*time.Minute); j.Status != "SUCCEEDED" {
		t.Fatalf("job %s: %s (%s); logs:\n%s", id, j.Status, j.Message, h.Logs(t, id))
	}
	if logs := h.Logs(t, id); !strings.Contains(logs, "alive 2 away 2") {
		t.Fatalf("job %s does not see the node added:\n%s", id, logs)
	}
}
