package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestRayDistributedPytorchAllReduce runs a pytorch job of two instances
// on a Ray-backed cluster: its processes, Ray tasks in a placement group
// of two bundles, meet with the variables they get on local compute and
// do a real gloo all-reduce; each one's lines reach the stream with its
// rank, and the files every rank writes come back as the job's output.
func TestRayDistributedPytorchAllReduce(t *testing.T) {
	python := os.Getenv("WHARF_TEST_TORCH_PYTHON")
	if python == "" {
		missing(t, "WHARF_TEST_TORCH_PYTHON is not set (scripts/test installs torch from requirements-torch.txt)")
	}
	e, _ := rayEnv(t)
	dir := t.TempDir()
	script := `import os, torch, torch.distributed as dist
dist.init_process_group('gloo')
v = torch.tensor([float(dist.get_rank() + 1)])
dist.all_reduce(v)
r = dist.get_rank()
print('reduced', int(v.item()), 'on rank', r, 'of', dist.get_world_size(), 'node', os.environ['NODE_RANK'])
open(os.path.join(os.environ['OUT'], 'rank-%d.txt' % r), 'w').write('%d' % int(v.item()))
`
	writeFile(t, dir, "allreduce.py", script)
	job := writeFile(t, dir, "job.yml", `$schema: https://azuremlschemas.azureedge.net/latest/commandJob.schema.json
code: .
command: OUT=${{outputs.out}} `+python+` allreduce.py
environment:
  image: mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04
compute: azureml:ray-cluster
outputs:
  out:
    type: uri_folder
resources:
  instance_count: 2
distribution:
  type: pytorch
  process_count_per_instance: 1
`)
	out := e.ok("ml", "job", "create", "--file", job, "--stream", "-w", "dev")
	for _, want := range []string{"placement group of 2 bundles", "[rank 0] reduced 3 on rank 0 of 2 node 0", "[rank 1] reduced 3 on rank 1 of 2 node 1"} {
		if !strings.Contains(out, want) {
			t.Errorf("the stream lacks %q:\n%s", want, out)
		}
	}
	name := lastLine(e.ok("ml", "job", "list", "-w", "dev", "--query", "[0].name", "-o", "tsv"))
	dl := filepath.Join(dir, "dl")
	e.ok("ml", "job", "download", "-n", name, "--output-name", "out", "--download-path", dl, "-w", "dev")
	for _, f := range []string{"rank-0.txt", "rank-1.txt"} {
		var got []byte
		_ = filepath.WalkDir(dl, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.Name() == f {
				got, _ = os.ReadFile(p)
			}
			return nil
		})
		if string(got) != "3" {
			t.Errorf("output %s: %q, want 3", f, got)
		}
	}
}

// TestRayDistributedRankFailureStopsTheOthers: when one process of a
// distributed step on Ray fails, the others are stopped and the attempt
// fails with its exit code. Ray's workers run on this machine, so rank 0's
// process can be looked for.
func TestRayDistributedRankFailureStopsTheOthers(t *testing.T) {
	e, _ := rayEnv(t)
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "rank-0.pid")
	job := writeFile(t, dir, "job.yml", `$schema: https://azuremlschemas.azureedge.net/latest/commandJob.schema.json
command: 'if [ "$RANK" = 1 ]; then while [ ! -s `+pidFile+` ]; do sleep 0.1; done; echo broken; exit 3; fi; echo $$ > `+pidFile+`.tmp; mv `+pidFile+`.tmp `+pidFile+`; exec sleep 100000'
environment:
  image: mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04
compute: azureml:ray-cluster
resources:
  instance_count: 2
distribution:
  type: pytorch
  process_count_per_instance: 1
`)
	out, _, code := e.wharf("ml", "job", "create", "--file", job, "--stream", "-w", "dev")
	if code == 0 {
		t.Fatalf("the job succeeded:\n%s", out)
	}
	for _, want := range []string{"[rank 1] broken", "[ray] rank 1 exited with code 3"} {
		if !strings.Contains(out, want) {
			t.Errorf("the stream lacks %q:\n%s", want, out)
		}
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	// Its worker was killed; the process follows by its parent-death
	// signal, which takes a moment to be delivered.
	for i := 0; syscall.Kill(pid, 0) == nil; i++ {
		if i == 100 {
			t.Fatalf("rank 0 (pid %d) still runs after rank 1 failed and the job ended", pid)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
