package main

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// distributedJob is a command job of a YAML test: instance_count 2,
// pytorch distribution with procs processes per instance.
func distributedJob(t *testing.T, command string, procs int) string {
	t.Helper()
	return writeFile(t, t.TempDir(), "job.yml", `$schema: https://azuremlschemas.azureedge.net/latest/commandJob.schema.json
command: `+command+`
environment:
  image: mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu20.04
compute: azureml:cpu-cluster
resources:
  instance_count: 2
distribution:
  type: pytorch
  process_count_per_instance: `+strconv.Itoa(procs)+`
`)
}

func TestDistributedJobStreamsEveryRankSandboxed(t *testing.T) {
	e := newCLIEnv(t)
	e.ok("ml", "workspace", "create", "-n", "mlw")
	e.ok("ml", "compute", "create", "-n", "cpu-cluster", "-w", "mlw", "--max-instances", "1")
	job := distributedJob(t, `echo "rank $RANK of $WORLD_SIZE, node $NODE_RANK, local $LOCAL_RANK, uid $(id -u)"`, 2)
	out := e.ok("ml", "job", "create", "--file", job, "--stream", "-w", "mlw")
	uid := ""
	for r, want := range []string{"rank 0 of 4, node 0, local 0", "rank 1 of 4, node 0, local 1", "rank 2 of 4, node 1, local 0", "rank 3 of 4, node 1, local 1"} {
		prefix := "[rank " + strconv.Itoa(r) + "] " + want + ", uid "
		i := strings.Index(out, prefix)
		if i < 0 {
			t.Errorf("the stream lacks %q:\n%s", prefix, out)
			continue
		}
		got, _, _ := strings.Cut(out[i+len(prefix):], "\n")
		if uid == "" {
			uid = got
		}
		if got != uid || (os.Geteuid() == 0 && got == "0") {
			t.Errorf("rank %d ran as uid %s (rank 0 as %s); steps run as the sandbox's user", r, got, uid)
		}
	}
}

func TestDistributedPytorchAllReduceFromYAML(t *testing.T) {
	python := os.Getenv("WHARF_TEST_TORCH_PYTHON")
	if python == "" {
		missing(t, "WHARF_TEST_TORCH_PYTHON is not set (scripts/test installs torch from requirements-torch.txt)")
	}
	e := newCLIEnv(t)
	e.ok("ml", "workspace", "create", "-n", "mlw")
	e.ok("ml", "compute", "create", "-n", "cpu-cluster", "-w", "mlw")
	script := `import torch, torch.distributed as dist; dist.init_process_group('gloo'); v = torch.tensor([float(dist.get_rank() + 1)]); dist.all_reduce(v); print('reduced', int(v.item()), 'on rank', dist.get_rank())`
	out := e.ok("ml", "job", "create", "--file", distributedJob(t, python+` -c "`+script+`"`, 1), "--stream", "-w", "mlw")
	for _, want := range []string{"[rank 0] reduced 3 on rank 0", "[rank 1] reduced 3 on rank 1"} {
		if !strings.Contains(out, want) {
			t.Errorf("the stream lacks %q:\n%s", want, out)
		}
	}
}

// TestGPUStepSeesTheOneGPUItAskedFor needs a machine with an NVIDIA GPU
// and the CUDA build of torch that scripts/test installs; elsewhere it is
// skipped, saying why.
func TestGPUStepSeesTheOneGPUItAskedFor(t *testing.T) {
	if _, err := exec.LookPath("nvidia-smi"); err != nil {
		t.Skip("no GPU on this machine: nvidia-smi is not on PATH")
	}
	python := os.Getenv("WHARF_TEST_TORCH_PYTHON")
	if python == "" {
		missing(t, "WHARF_TEST_TORCH_PYTHON is not set (scripts/test installs torch from requirements-torch.txt)")
	}
	e := newCLIEnv(t)
	e.ok("ml", "workspace", "create", "-n", "mlw")
	e.ok("ml", "compute", "create", "-n", "gpu-cluster", "-w", "mlw", "--size", "Standard_NC6s_v3")
	job := writeFile(t, t.TempDir(), "job.yml", `$schema: https://azuremlschemas.azureedge.net/latest/commandJob.schema.json
command: `+python+` -c "import torch; x = torch.ones(1024, device='cuda'); print('cuda devices', torch.cuda.device_count(), 'sum', int(x.sum().item()))"
environment:
  image: mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu20.04
compute: azureml:gpu-cluster
`)
	out := e.ok("ml", "job", "create", "--file", job, "--stream", "-w", "mlw")
	if !strings.Contains(out, "cuda devices 1 sum 1024") {
		t.Errorf("the GPU step did not see exactly its one GPU:\n%s", out)
	}
}
