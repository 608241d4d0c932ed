package main

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// distributedJob is a command job of a YAML test: instance_count 2,
// distribution typ with procs processes per instance.
func distributedJob(t *testing.T, typ, command string, procs int) string {
	t.Helper()
	return writeFile(t, t.TempDir(), "job.yml", `$schema: https://azuremlschemas.azureedge.net/latest/commandJob.schema.json
command: `+command+`
environment:
  image: mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu20.04
compute: azureml:cpu-cluster
resources:
  instance_count: 2
distribution:
  type: `+typ+`
  process_count_per_instance: `+strconv.Itoa(procs)+`
`)
}

func TestDistributedJobStreamsEveryRankSandboxed(t *testing.T) {
	e := newCLIEnv(t)
	e.ok("ml", "workspace", "create", "-n", "mlw")
	e.ok("ml", "compute", "create", "-n", "cpu-cluster", "-w", "mlw", "--max-instances", "1")
	job := distributedJob(t, "pytorch", `echo "rank $RANK of $WORLD_SIZE, node $NODE_RANK, local $LOCAL_RANK, uid $(id -u)"`, 2)
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
	streamAllReduce(t, "pytorch", "WHARF_TEST_TORCH_PYTHON", "scripts/test installs torch from requirements-torch.txt",
		`import torch, torch.distributed as dist; dist.init_process_group('gloo'); v = torch.tensor([float(dist.get_rank() + 1)]); dist.all_reduce(v); print('reduced', int(v.item()), 'on rank', dist.get_rank())`,
		"[rank 0] reduced 3 on rank 0", "[rank 1] reduced 3 on rank 1")
}

// TestDistributedMPIAllreduceFromYAMLSandboxed runs a script written for
// mpirun, unchanged, as an MPI job of two instances in the step's
// sandbox: its ranks do an allreduce with mpi4py and agree.
func TestDistributedMPIAllreduceFromYAMLSandboxed(t *testing.T) {
	streamAllReduce(t, "mpi", "WHARF_TEST_MPI4PY_PYTHON", "scripts/test installs Open MPI and mpi4py",
		`from mpi4py import MPI; c = MPI.COMM_WORLD; print('reduced', c.allreduce(c.Get_rank() + 1), 'on rank', c.Get_rank(), 'of', c.Get_size())`,
		"[rank 0] reduced 3 on rank 0 of 2", "[rank 1] reduced 3 on rank 1 of 2")
}

// streamAllReduce runs script with the Python named by pythonVar as a
// job of two instances of one process each, distribution typ, and checks
// that its stream holds every line of want.
func streamAllReduce(t *testing.T, typ, pythonVar, install, script string, want ...string) {
	t.Helper()
	python := os.Getenv(pythonVar)
	if python == "" {
		missing(t, "%s is not set (%s)", pythonVar, install)
	}
	e := newCLIEnv(t)
	e.ok("ml", "workspace", "create", "-n", "mlw")
	e.ok("ml", "compute", "create", "-n", "cpu-cluster", "-w", "mlw")
	out := e.ok("ml", "job", "create", "--file", distributedJob(t, typ, python+` -c "`+script+`"`, 1), "--stream", "-w", "mlw")
	for _, line := range want {
		if !strings.Contains(out, line) {
			t.Errorf("the stream lacks %q:\n%s", line, out)
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
