package scheduler_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/local"
	"github.com/wharfml/wharf/scheduler"
)

func gpuJob(gpus int, dist *scheduler.DistributionSpec, command string) *scheduler.Submission {
	sub := distributedJob(dist, command)
	sub.Steps[0].Spec.GPUsPerInstance = &gpus
	return sub
}

// waitForFiles polls until every path exists; a broken scheduler fails
// the test instead of hanging it.
func waitForFiles(t *testing.T, paths ...string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for _, p := range paths {
		for {
			if _, err := os.Stat(p); err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s never appeared", p)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// TestGPUsArePartitionedAmongSteps runs on a host whose GPUs are listed
// by a stand-in for nvidia-smi: it checks how they are shared out, not
// that a step can use one (see the cmd/wharf GPU test for that).
func TestGPUsArePartitionedAmongSteps(t *testing.T) {
	smi := filepath.Join(t.TempDir(), "nvidia-smi")
	if err := os.WriteFile(smi, []byte("#!/bin/sh\nprintf 'GPU-a\\nGPU-b\\nGPU-c\\n'\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	f := newFixture(t)
	f.stop()
	f.gpus = &local.GPUs{NvidiaSMI: smi}
	f.start()
	f.setMaxInstances(4)
	dir := t.TempDir()

	// Two instances of one GPU each, held until release exists.
	holder := f.submit(gpuJob(1, &scheduler.DistributionSpec{Type: "pytorch", InstanceCount: 2},
		`echo "$CUDA_VISIBLE_DEVICES" > `+dir+`/holder-$RANK; while [ ! -e `+dir+`/release ]; do sleep 0.05; done`))
	waitForFiles(t, dir+"/holder-0", dir+"/holder-1")
	seen := map[string]bool{}
	for _, r := range []string{"0", "1"} {
		b, _ := os.ReadFile(dir + "/holder-" + r)
		id := strings.TrimSpace(string(b))
		if !strings.HasPrefix(id, "GPU-") || strings.Contains(id, ",") || seen[id] {
			t.Errorf("rank %s sees CUDA_VISIBLE_DEVICES=%q (others: %v)", r, id, seen)
		}
		seen[id] = true
	}

	// Two GPUs more than the one left: it waits, Queued, for the holder.
	waiter := f.submit(gpuJob(2, nil, `echo "$CUDA_VISIBLE_DEVICES" > `+dir+`/waiter`))
	f.waitFor(waiter.Name, "queue for its GPUs", func(j *wharf.Job) bool { return j.Status == wharf.JobQueued })
	// A step that asks for none sees none, while the others run.
	none := f.wait(f.submit(gpuJob(0, nil, `test "${CUDA_VISIBLE_DEVICES-unset}" = ""`)).Name)
	if none.Status != wharf.JobCompleted {
		t.Errorf("a step without GPUs saw some: %s %s", none.Status, none.Error)
	}
	if _, err := os.Stat(dir + "/waiter"); err == nil {
		t.Fatal("the waiting step ran while its GPUs were held")
	}
	if err := os.WriteFile(dir+"/release", nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if j := f.wait(holder.Name); j.Status != wharf.JobCompleted {
		t.Fatalf("holder %s: %s", j.Status, j.Error)
	}
	if j := f.wait(waiter.Name); j.Status != wharf.JobCompleted {
		t.Fatalf("waiter %s: %s", j.Status, j.Error)
	}
	b, _ := os.ReadFile(dir + "/waiter")
	if ids := strings.Split(strings.TrimSpace(string(b)), ","); len(ids) != 2 || ids[0] == ids[1] {
		t.Errorf("the waiter sees CUDA_VISIBLE_DEVICES=%q, want two GPUs", b)
	}

	// More than the host has fails at once, in Queued, saying why.
	tooMany := f.wait(f.submit(gpuJob(2, &scheduler.DistributionSpec{Type: "pytorch", InstanceCount: 2}, `true`)).Name)
	if tooMany.Status != wharf.JobFailed || len(tooMany.Attempts) != 0 ||
		!strings.Contains(tooMany.Error, "asks for 4 GPUs (2 per instance from resources.gpus_per_instance, 2 instances), more than exist: ") {
		t.Errorf("asking for 4 of 3 GPUs: %s, %d attempts, %q", tooMany.Status, len(tooMany.Attempts), tooMany.Error)
	}
}

func TestGPUStepFailsInQueuedOnAHostWithoutGPUs(t *testing.T) {
	f := newFixture(t)
	f.stop()
	f.gpus = &local.GPUs{NvidiaSMI: filepath.Join(t.TempDir(), "missing-nvidia-smi")}
	f.start()
	c := &wharf.Compute{Workspace: "ws", Name: "gpu-cluster", Size: "Standard_NC6s_v3"}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if _, err := f.db.PutCompute(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	sub := distributedJob(nil, `true`)
	sub.Steps[0].Spec.Compute = "gpu-cluster"
	j := f.wait(f.submit(sub).Name)
	if j.Status != wharf.JobFailed || !strings.Contains(j.Error, "asks for 1 GPU (1 per instance from compute gpu-cluster's size Standard_NC6s_v3, 1 instance)") ||
		!strings.Contains(j.Error, "missing-nvidia-smi") {
		t.Errorf("job %s: %q", j.Status, j.Error)
	}
}
