package scheduler_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/internal/testneed"
	"github.com/wharfml/wharf/local"
	"github.com/wharfml/wharf/scheduler"
)

// needMPI skips a test (fails it under CI) without Open MPI's mpirun and
// returns the Python that has mpi4py, when asked for it.
func needMPI(t *testing.T, python bool) string {
	t.Helper()
	if _, err := exec.LookPath("mpirun"); err != nil {
		testneed.Missing(t, "no mpirun on PATH; ./scripts/test installs Debian's openmpi-bin")
	}
	if !python {
		return ""
	}
	py := os.Getenv("WHARF_TEST_MPI4PY_PYTHON")
	if py == "" {
		testneed.Missing(t, "WHARF_TEST_MPI4PY_PYTHON not set; ./scripts/test installs mpi4py into .tools/")
	}
	return py
}

// TestMPIAllreduceAcrossInstances runs a script written for mpirun, which
// calls MPI.COMM_WORLD and does not read a variable of Wharf's, as two
// instances: the ranks form one world and agree on an allreduce.
func TestMPIAllreduceAcrossInstances(t *testing.T) {
	python := needMPI(t, true)
	f := newFixture(t)
	script := filepath.Join(t.TempDir(), "allreduce.py")
	if err := os.WriteFile(script, []byte(`import os, sys
from mpi4py import MPI
comm = MPI.COMM_WORLD
total = comm.allreduce(comm.Get_rank() + 1, op=MPI.SUM)
gathered = comm.allgather(os.environ["NODE_RANK"])
with open(os.path.join(sys.argv[1], "rank-%d" % comm.Get_rank()), "w") as f:
    f.write("size=%d total=%d nodes=%s" % (comm.Get_size(), total, ",".join(gathered)))
print("rank %d of %d: total %d" % (comm.Get_rank(), comm.Get_size(), total))
`), 0o644); err != nil {
		t.Fatal(err)
	}
	j := f.wait(f.submit(distributedJob(&scheduler.DistributionSpec{Type: "mpi", InstanceCount: 2, ProcessCountPerInstance: 1},
		python+" "+script+" ${{outputs.out}}")).Name)
	log, _ := os.ReadFile(f.sched.LogPath("ws", j.Name, 1))
	if j.Status != wharf.JobCompleted {
		t.Fatalf("job %s: %s\n%s", j.Status, j.Error, log)
	}
	want := map[string]string{"rank-0": "size=2 total=3 nodes=0,1", "rank-1": "size=2 total=3 nodes=0,1"}
	if got := f.outputFiles(j.Outputs["out"]); !equalMaps(got, want) {
		t.Errorf("ranks wrote %v, want %v", got, want)
	}
	for r := range 2 {
		line := "rank " + strconv.Itoa(r) + " of 2: total 3\n"
		if !strings.Contains(string(log), "[rank "+strconv.Itoa(r)+"] "+line) {
			t.Errorf("the attempt's log lacks rank %d's line:\n%s", r, log)
		}
		own, err := os.ReadFile(strings.TrimSuffix(f.sched.LogPath("ws", j.Name, 1), ".log") + ".rank-" + strconv.Itoa(r) + ".log")
		if err != nil || string(own) != line {
			t.Errorf("rank %d's own log: %q, %v", r, own, err)
		}
	}
}

// TestMPIRankFailureNamesTheRank: when one rank fails, mpirun stops the
// others, and the step fails naming the rank and its exit code.
func TestMPIRankFailureNamesTheRank(t *testing.T) {
	needMPI(t, false)
	f := newFixture(t)
	dir := t.TempDir()
	j := f.wait(f.submit(distributedJob(&scheduler.DistributionSpec{Type: "mpi", InstanceCount: 3, ProcessCountPerInstance: 1},
		`if [ "$OMPI_COMM_WORLD_RANK" = 1 ]; then while [ ! -e `+dir+`/pid-0 ] || [ ! -e `+dir+`/pid-2 ]; do sleep 0.05; done; echo broken; exit 3; fi
echo $$ > `+dir+`/pid-$OMPI_COMM_WORLD_RANK.tmp; mv `+dir+`/pid-$OMPI_COMM_WORLD_RANK.tmp `+dir+`/pid-$OMPI_COMM_WORLD_RANK; exec sleep 300`)).Name)
	log, _ := os.ReadFile(f.sched.LogPath("ws", j.Name, 1))
	if j.Status != wharf.JobFailed || !strings.Contains(j.Error, "rank 1 exited with code 3") {
		t.Fatalf("job %s: %q\n%s", j.Status, j.Error, log)
	}
	if !strings.Contains(string(log), "[rank 1] broken\n") {
		t.Errorf("the attempt's log lacks rank 1's line:\n%s", log)
	}
	for _, r := range []string{"0", "2"} {
		b, err := os.ReadFile(filepath.Join(dir, "pid-"+r))
		if err != nil {
			t.Fatal(err)
		}
		pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		if p, err := local.LookupProcess(pid); err == nil && p.PID == pid && syscall.Kill(pid, 0) == nil {
			st, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
			t.Errorf("rank %s (pid %d) still runs after rank 1 failed: %s (test %d)", r, pid, st, os.Getpid())
		}
	}
}
