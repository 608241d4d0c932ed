package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wharfml/wharf/internal/raytest"
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
	job := allReduceJob(t, dir, python, "pytorch", 1)
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
		if got := fileBelow(dl, f); got != "3" {
			t.Errorf("output %s: %q, want 3", f, got)
		}
	}
}

// allReduceJob writes a job of 2 instances x perInstance processes of
// distribution kind on the Ray-backed cluster that runs allreduce.py in dir
// with python, OUT naming its output folder.
func allReduceJob(t *testing.T, dir, python, kind string, perInstance int) string {
	return rayDistributedJob(t, dir, "OUT=${{outputs.out}} "+python+" allreduce.py", kind, perInstance,
		"code: .\noutputs:\n  out:\n    type: uri_folder\n")
}

// rayDistributedJob writes a job of 2 instances x perInstance processes of
// distribution kind on the Ray-backed cluster running command, with more
// of the job's fields in extra.
func rayDistributedJob(t *testing.T, dir, command, kind string, perInstance int, extra string) string {
	return writeFile(t, dir, "job.yml", `$schema: https://azuremlschemas.azureedge.net/latest/commandJob.schema.json
command: `+command+`
environment:
  image: mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04
compute: azureml:ray-cluster
resources:
  instance_count: 2
distribution:
  type: `+kind+`
  process_count_per_instance: `+strconv.Itoa(perInstance)+`
`+extra)
}

// fileBelow returns what the file named name somewhere below dir holds.
func fileBelow(dir, name string) string {
	var got []byte
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Name() == name {
			got, _ = os.ReadFile(p)
		}
		return nil
	})
	return string(got)
}

// TestRayDistributedRankFailureStopsTheOthers: when one process of a
// distributed step on Ray fails, the others are stopped and the attempt
// fails with its exit code. Ray's workers run on this machine, so rank 0's
// process can be looked for.
func TestRayDistributedRankFailureStopsTheOthers(t *testing.T) {
	e, _ := rayEnv(t)
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "rank-0.pid")
	job := rayDistributedJob(t, dir, `'if [ "$RANK" = 1 ]; then while [ ! -s `+pidFile+` ]; do sleep 0.1; done; echo broken; exit 3; fi; echo $$ > `+pidFile+`.tmp; mv `+pidFile+`.tmp `+pidFile+`; exec sleep 100000'`, "pytorch", 1, "")
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

// mpiRayEnv is rayEnv (steps unsandboxed) on mpiRayHead.
func mpiRayEnv(t *testing.T) *cliEnv {
	e, _ := rayEnvAt(t, mpiRayHead(t, raytest.Options{}).URL, "--sandbox=false")
	return e
}

// mpiRayHead is a Ray head with the options opts, of 4 CPUs unless they
// say otherwise, enough for an MPI step of 2 instances of 2 processes; it
// skips the
// test (failing it under CI) without Open MPI's mpirun.
func mpiRayHead(t *testing.T, opts raytest.Options) *raytest.Head {
	if _, err := exec.LookPath("mpirun"); err != nil {
		missing(t, "no mpirun on PATH; ./scripts/test installs Debian's openmpi-bin")
	}
	if opts.CPUs == 0 {
		opts.CPUs = 4
	}
	return raytest.Start(t, opts)
}

// mpiDaemonLine is the line the task of Open MPI's daemon for a bundle
// writes when mpirun has started it through the launch agent.
var mpiDaemonLine = regexp.MustCompile(`\[(wharf-bundle-\d)\] \[ray\] Open MPI's daemon for wharf-bundle-\d, started by mpirun ` +
	`through the launch agent, on node \S+ \(Ray node (\w+)\), worker pid (\d+), in (\S+)`)

// TestRayDistributedMPIAllreduce runs a script written for mpirun,
// unchanged, as an MPI job of 2 instances x 2 processes on a Ray-backed
// cluster: mpirun, in a task in bundle 0, starts Open MPI's daemon in each
// bundle's task through the launch agent, and the four processes do an
// mpi4py allreduce. Each reports the sum, its rank and size, and its
// folder: those of instance 1 run in bundle 1's daemon's folder, not in
// bundle 0's; and each has Open MPI's and Azure's variables. Every rank's
// file comes back as the job's output.
func TestRayDistributedMPIAllreduce(t *testing.T) {
	python := os.Getenv("WHARF_TEST_MPI4PY_PYTHON")
	if python == "" {
		missing(t, "WHARF_TEST_MPI4PY_PYTHON is not set (scripts/test installs mpi4py)")
	}
	e := mpiRayEnv(t)
	dir := t.TempDir()
	writeFile(t, dir, "allreduce.py", `import os
from mpi4py import MPI
c = MPI.COMM_WORLD
total = c.allreduce(c.Get_rank() + 1)
print('reduced', total, 'rank', c.Get_rank(), 'of', c.Get_size(), 'node', os.environ['NODE_RANK'], 'in', os.getcwd())
print('azure', *[os.environ.get(k) for k in ('OMPI_COMM_WORLD_RANK', 'OMPI_COMM_WORLD_SIZE', 'OMPI_COMM_WORLD_LOCAL_RANK',
      'PMI_RANK', 'AZ_BATCHAI_TASK_INDEX', 'AZUREML_NODE_COUNT', 'AZ_BATCHAI_MPI_MASTER_NODE', 'AZ_BATCH_MASTER_NODE')])
open(os.path.join(os.environ['OUT'], 'rank-%d.txt' % c.Get_rank()), 'w').write(str(total))
`)
	job := allReduceJob(t, dir, python, "mpi", 2)
	out := e.ok("ml", "job", "create", "--file", job, "--stream", "-w", "dev")
	daemons := map[string][]string{}
	for _, m := range mpiDaemonLine.FindAllStringSubmatch(out, -1) {
		daemons[m[1]] = m[3:]
	}
	if len(daemons) != 2 || daemons["wharf-bundle-0"] == nil || daemons["wharf-bundle-1"] == nil {
		t.Fatalf("the daemons' tasks: %v\n%s", daemons, out)
	}
	if d0, d1 := daemons["wharf-bundle-0"], daemons["wharf-bundle-1"]; d0[0] == d1[0] || d0[1] == d1[1] {
		t.Errorf("both daemons ran in one worker or one folder: %v", daemons)
	}
	for r := range 4 {
		folder := daemons["wharf-bundle-"+strconv.Itoa(r/2)][1]
		want := "[rank " + strconv.Itoa(r) + "] reduced 10 rank " + strconv.Itoa(r) + " of 4 node " + strconv.Itoa(r/2) +
			" in " + filepath.Join(folder, "code") + "\n"
		if !strings.Contains(out, want) {
			t.Errorf("the stream lacks %q:\n%s", want, out)
		}
	}
	// Open MPI's variables and Azure's, as on local compute, the meeting
	// point on bundle 0's node (where mpirun runs) for every rank.
	azure := regexp.MustCompile(`\[rank (\d)\] azure (\d) 4 (\d) (\d) (\d) 2 (\S+) (\S+):\d+\n`).FindAllStringSubmatch(out, -1)
	if len(azure) != 4 {
		t.Fatalf("the ranks' variables: %v\n%s", azure, out)
	}
	for _, m := range azure {
		r, _ := strconv.Atoi(m[1])
		if m[2] != m[1] || m[3] != strconv.Itoa(r%2) || m[4] != m[1] || m[5] != strconv.Itoa(r/2) || m[6] != m[7] || m[6] != azure[0][6] {
			t.Errorf("rank %d's variables (rank, local rank, PMI rank, task index, master node twice): %q", r, m[2:])
		}
	}
	name := lastLine(e.ok("ml", "job", "list", "-w", "dev", "--query", "[0].name", "-o", "tsv"))
	dl := filepath.Join(dir, "dl")
	e.ok("ml", "job", "download", "-n", name, "--output-name", "out", "--download-path", dl, "-w", "dev")
	for r := range 4 {
		f := "rank-" + strconv.Itoa(r) + ".txt"
		if got := fileBelow(dl, f); got != "10" {
			t.Errorf("output %s: %q, want 10", f, got)
		}
	}
}

// mpiSleepers is an MPI job of 2 instances x 2 processes on the Ray-backed
// cluster whose processes write their process id and their parent's
// (Open MPI's daemon) to pid-RANK in dir, then sleep, except the ranks
// failing, which wait for the others' files, say "broken" and exit 3.
// The cluster runs its steps unsandboxed, so the ids are this machine's.
func mpiSleepers(t *testing.T, dir string, failing ...int) string {
	fail := "-1"
	for _, r := range failing {
		fail += "|" + strconv.Itoa(r)
	}
	return rayDistributedJob(t, dir, `'cd `+dir+` && case $OMPI_COMM_WORLD_RANK in `+fail+`) while [ $(ls | grep -c "^pid-[0-9]*$") -lt `+strconv.Itoa(4-len(failing))+` ]; do sleep 0.1; done; echo broken; exit 3;; *) echo $$ $PPID > pid-$OMPI_COMM_WORLD_RANK.tmp && mv pid-$OMPI_COMM_WORLD_RANK.tmp pid-$OMPI_COMM_WORLD_RANK && exec sleep 100000;; esac'`, "mpi", 2, "")
}

// mpiPIDs returns the process ids the sleeping ranks of mpiSleepers wrote:
// theirs and their daemons'.
func mpiPIDs(t *testing.T, dir string) []int {
	files, _ := filepath.Glob(filepath.Join(dir, "pid-[0-9]"))
	var pids []int
	for _, f := range files {
		for _, field := range strings.Fields(waitForFile(t, f)) {
			pid, err := strconv.Atoi(field)
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			pids = append(pids, pid)
		}
	}
	return pids
}

// waitGone fails t when one of pids still runs after a while: a process
// ends by signals Ray and Open MPI send, which take a moment to arrive.
func waitGone(t *testing.T, pids []int) {
	t.Helper()
	for _, pid := range pids {
		for i := 0; syscall.Kill(pid, 0) == nil; i++ {
			b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
			if strings.Contains(string(b), ") Z ") {
				break // ended, and not yet reaped by whoever adopted it
			}
			if i == 150 {
				b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
				t.Fatalf("process %d (%q) still runs after the job ended", pid, b)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// TestRayDistributedMPIRankFailureStopsEveryProcess: when one process of
// an MPI step on Ray fails, mpirun stops the others, in both bundles, and
// the attempt fails with its exit code; no process or daemon is left.
func TestRayDistributedMPIRankFailureStopsEveryProcess(t *testing.T) {
	e := mpiRayEnv(t)
	dir := t.TempDir()
	out, _, code := e.wharf("ml", "job", "create", "--file", mpiSleepers(t, dir, 3), "--stream", "-w", "dev")
	if code == 0 {
		t.Fatalf("the job succeeded:\n%s", out)
	}
	for _, want := range []string{"[rank 3] broken", "[mpirun]   Exit code:    3", "[ray] mpirun exited with code 3"} {
		if !strings.Contains(out, want) {
			t.Errorf("the stream lacks %q:\n%s", want, out)
		}
	}
	pids := mpiPIDs(t, dir)
	if len(pids) != 6 {
		t.Fatalf("process ids %v, want 3 ranks' and their daemons'", pids)
	}
	waitGone(t, pids)
}

// TestRayDistributedMPICancelStopsEveryProcess: cancelling an MPI job on
// Ray stops mpirun, the daemons in both bundles and every process.
func TestRayDistributedMPICancelStopsEveryProcess(t *testing.T) {
	e := mpiRayEnv(t)
	dir := t.TempDir()
	name := lastLine(e.ok("ml", "job", "create", "--file", mpiSleepers(t, dir), "-w", "dev", "--query", "name", "-o", "tsv"))
	waitForFile(t, filepath.Join(dir, "pid-3"))
	for r := range 3 {
		waitForFile(t, filepath.Join(dir, "pid-"+strconv.Itoa(r)))
	}
	pids := mpiPIDs(t, dir)
	e.ok("ml", "job", "cancel", "-n", name, "-w", "dev")
	if got := e.waitJob("dev", name); got != "Canceled" {
		t.Fatalf("job: %s", got)
	}
	waitGone(t, pids)
}

// allReduceWithLibMPI is an MPI program for the system's Python, which a
// sandbox shows: it calls Open MPI's library through ctypes, as mpi4py
// would, and does an allreduce of each rank's rank + 1.
const allReduceWithLibMPI = `import ctypes, os, socket
lib = ctypes.CDLL("libmpi.so.40", mode=ctypes.RTLD_GLOBAL)
sym = lambda name: ctypes.c_void_p(ctypes.addressof(ctypes.c_char.in_dll(lib, name)))
lib.MPI_Init(None, None)
world = sym("ompi_mpi_comm_world")
rank, size, total = ctypes.c_int(), ctypes.c_int(), ctypes.c_int()
lib.MPI_Comm_rank(world, ctypes.byref(rank))
lib.MPI_Comm_size(world, ctypes.byref(size))
mine = ctypes.c_int(rank.value + 1)
lib.MPI_Allreduce(ctypes.byref(mine), ctypes.byref(total), 1, sym("ompi_mpi_int"), sym("ompi_mpi_op_sum"), world)
print("reduced", total.value, "rank", rank.value, "of", size.value, "host", socket.gethostname(), "in", os.getcwd(), flush=True)
lib.MPI_Finalize()
`

// TestRayDistributedMPIRunsSandboxed: on a compute whose steps run
// sandboxed (the default), mpirun and the daemons run in sandboxes on the
// node, and so do the processes: each sees the sandbox's host name and its
// daemon's folder, and they still meet, across bundles, for an allreduce.
func TestRayDistributedMPIRunsSandboxed(t *testing.T) {
	sandboxedMPIAllreduce(t, mpiRayHead(t, raytest.Options{}))
}

// TestRayDistributedMPIAcrossTwoRayNodes runs the sandboxed allreduce on a
// cluster of two Ray nodes of 2 CPUs each (on this machine): each bundle
// fits one node only, so the daemons run on different Ray nodes, mpirun
// on bundle 0's and the other daemon's launch crossing to the other node.
func TestRayDistributedMPIAcrossTwoRayNodes(t *testing.T) {
	head := mpiRayHead(t, raytest.Options{CPUs: 2})
	head.AddNode(t, 2)
	if nodes := sandboxedMPIAllreduce(t, head); nodes["wharf-bundle-0"] == nodes["wharf-bundle-1"] {
		t.Errorf("both daemons ran on Ray node %s", nodes["wharf-bundle-0"])
	}
}

// sandboxedMPIAllreduce runs allReduceWithLibMPI as a sandboxed MPI job of
// 2 instances x 2 processes on head and checks every rank's report; it
// returns the Ray node each bundle's daemon ran on.
func sandboxedMPIAllreduce(t *testing.T, head *raytest.Head) map[string]string {
	if _, err := os.Stat("/usr/lib/x86_64-linux-gnu/libmpi.so.40"); err != nil {
		missing(t, "no Open MPI library libmpi.so.40 (Debian's libopenmpi3, which openmpi-bin installs): %v", err)
	}
	e, _ := rayEnvAt(t, head.URL)
	dir := t.TempDir()
	writeFile(t, dir, "allreduce.py", allReduceWithLibMPI)
	out := e.ok("ml", "job", "create", "--file", rayDistributedJob(t, dir, "/usr/bin/python3 allreduce.py", "mpi", 2, "code: .\n"),
		"--stream", "-w", "dev")
	folders, nodes := map[string]string{}, map[string]string{}
	for _, m := range mpiDaemonLine.FindAllStringSubmatch(out, -1) {
		nodes[m[1]], folders[m[1]] = m[2], m[4]
	}
	if len(folders) != 2 {
		t.Fatalf("the daemons' tasks: %v\n%s", folders, out)
	}
	for r := range 4 {
		want := "[rank " + strconv.Itoa(r) + "] reduced 10 rank " + strconv.Itoa(r) + " of 4 host wharf in " +
			filepath.Join(folders["wharf-bundle-"+strconv.Itoa(r/2)], "code") + "\n"
		if !strings.Contains(out, want) {
			t.Errorf("the stream lacks %q:\n%s", want, out)
		}
	}
	return nodes
}

// TestRayNodeWithoutMPIRunSaysWhatToInstall: on a Ray node whose PATH has
// no Open MPI (the head and its workers started with a PATH that lacks
// mpirun and orted), an MPI step fails without running, saying what the
// node lacks and what to install.
func TestRayNodeWithoutMPIRunSaysWhatToInstall(t *testing.T) {
	head := mpiRayHead(t, raytest.Options{Env: []string{"PATH=" + pathWithout(t, raytest.Program(t), "mpirun", "orted")}})
	e, _ := rayEnvAt(t, head.URL, "--sandbox=false")
	dir := t.TempDir()
	marker := filepath.Join(dir, "ran")
	failsBeforeRunning(t, e, rayDistributedJob(t, dir, "echo ran >> "+marker, "mpi", 2, ""), marker,
		"has no mpirun", "distribution type mpi", "install Open MPI on every node", "apt-get install openmpi-bin")
}

// failsBeforeRunning submits job and checks that it fails, its attempt's
// error saying each of wants, without its command having written marker.
func failsBeforeRunning(t *testing.T, e *cliEnv, job, marker string, wants ...string) {
	t.Helper()
	name := lastLine(e.ok("ml", "job", "create", "--file", job, "-w", "dev", "--query", "name", "-o", "tsv"))
	if got := e.waitJob("dev", name); got != "Failed" {
		t.Fatalf("job %s: %s, want Failed\n%s", job, got, e.ok("ml", "job", "stream", "-n", name, "-w", "dev"))
	}
	msg := strings.TrimSpace(e.ok("ml", "job", "show", "-n", name, "-w", "dev", "--query", "attempts[0].error", "-o", "tsv"))
	for _, want := range wants {
		if !strings.Contains(msg, want) {
			t.Errorf("the attempt's error lacks %q:\n%s", want, msg)
		}
	}
	if _, err := os.Stat(marker); err == nil {
		t.Errorf("the command of %s ran, though its attempt failed", job)
	}
}
