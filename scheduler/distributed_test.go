package scheduler_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/local"
	"github.com/wharfml/wharf/scheduler"
	"github.com/wharfml/wharf/snapshot"
)

func distributedJob(dist *scheduler.DistributionSpec, command string) *scheduler.Submission {
	return &scheduler.Submission{Type: wharf.JobTypeCommand, Steps: []scheduler.SubmittedStep{{Name: "main",
		Spec: scheduler.StepSpec{Compute: "cpu-cluster", Command: command, Distribution: dist,
			Outputs: map[string]scheduler.OutputSpec{"out": {Type: "uri_folder"}}}}}}
}

// outputFiles reads every file of a job's output folder.
func (f *fixture) outputFiles(o wharf.JobOutput) map[string]string {
	f.t.Helper()
	dest := filepath.Join(f.t.TempDir(), "out")
	files := map[string]string{}
	if err := snapshot.Materialize(f.t.Context(), o.Digest, f.blobs, dest); err != nil {
		f.t.Fatal(err)
	}
	entries, err := os.ReadDir(dest)
	if err != nil {
		f.t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dest, e.Name()))
		if err != nil {
			f.t.Fatal(err)
		}
		files[e.Name()] = string(b)
	}
	return files
}

func TestDistributedPytorchRunsEveryRankWithItsPlace(t *testing.T) {
	f := newFixture(t)
	j := f.wait(f.submit(distributedJob(&scheduler.DistributionSpec{Type: "pytorch", InstanceCount: 2, ProcessCountPerInstance: 2},
		`env | grep -E '^(RANK|LOCAL_RANK|NODE_RANK|WORLD_SIZE|MASTER_ADDR|MASTER_PORT|AZ_BATCH_MASTER_NODE|AZUREML_NODE_COUNT)=' | sort > ${{outputs.out}}/rank-$RANK.txt; echo "hello from $RANK"`)).Name)
	if j.Status != wharf.JobCompleted {
		t.Fatalf("job %s: %s", j.Status, j.Error)
	}
	files := f.outputFiles(j.Outputs["out"])
	if len(files) != 4 {
		t.Fatalf("%d ranks wrote their file, want 4: %v", len(files), files)
	}
	port := ""
	for r := range 4 {
		vars := map[string]string{}
		for _, line := range strings.Split(strings.TrimSpace(files["rank-"+strconv.Itoa(r)+".txt"]), "\n") {
			k, v, _ := strings.Cut(line, "=")
			vars[k] = v
		}
		if port == "" {
			port = vars["MASTER_PORT"]
		}
		want := map[string]string{"RANK": strconv.Itoa(r), "LOCAL_RANK": strconv.Itoa(r % 2), "NODE_RANK": strconv.Itoa(r / 2),
			"WORLD_SIZE": "4", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port, "AZ_BATCH_MASTER_NODE": "127.0.0.1:" + port,
			"AZUREML_NODE_COUNT": "2"}
		for k, v := range want {
			if vars[k] != v || v == "" {
				t.Errorf("rank %d: %s=%q, want %q", r, k, vars[k], v)
			}
		}
	}
	log, err := os.ReadFile(f.sched.LogPath("ws", j.Name, 1))
	if err != nil {
		t.Fatal(err)
	}
	for r := range 4 {
		line := "[rank " + strconv.Itoa(r) + "] hello from " + strconv.Itoa(r) + "\n"
		if !strings.Contains(string(log), line) {
			t.Errorf("the attempt's log lacks %q:\n%s", line, log)
		}
		own, err := os.ReadFile(strings.TrimSuffix(f.sched.LogPath("ws", j.Name, 1), ".log") + ".rank-" + strconv.Itoa(r) + ".log")
		if err != nil || string(own) != "hello from "+strconv.Itoa(r)+"\n" {
			t.Errorf("rank %d's own log: %q, %v", r, own, err)
		}
	}
	if a := j.Attempts[0]; len(a.Ranks) != 4 || a.ProcessStarted == nil {
		t.Errorf("attempt record: %d rank processes, process started %v", len(a.Ranks), a.ProcessStarted)
	}
}

func TestDistributedRankFailureStopsTheOthersAndRetries(t *testing.T) {
	f := newFixture(t)
	dir := t.TempDir()
	// Rank 1 fails once ranks 0 and 2 are running; they would sleep for
	// five minutes if nothing stopped them.
	sub := distributedJob(&scheduler.DistributionSpec{Type: "pytorch", InstanceCount: 3},
		`if [ "$RANK" = 1 ]; then while [ ! -e `+dir+`/pid-0 ] || [ ! -e `+dir+`/pid-2 ]; do sleep 0.05; done; echo broken; exit 3; fi
echo $$ >> `+dir+`/pid-$RANK; exec sleep 300`)
	sub.Steps[0].Spec.MaxRetries = 1
	j := f.wait(f.submit(sub).Name)
	if j.Status != wharf.JobFailed || !strings.Contains(j.Error, "rank 1 exited with code 3") {
		t.Fatalf("job %s: %q", j.Status, j.Error)
	}
	if len(j.Attempts) != 2 {
		t.Errorf("%d attempts, want 2 (one retry)", len(j.Attempts))
	}
	for _, a := range j.Attempts {
		if a.Status != wharf.JobFailed || len(a.Ranks) != 0 || !strings.Contains(a.Error, "rank 1 exited with code 3") {
			t.Errorf("attempt %d: %s %q, %d processes left on record", a.Number, a.Status, a.Error, len(a.Ranks))
		}
	}
	for _, r := range []string{"0", "2"} {
		b, err := os.ReadFile(filepath.Join(dir, "pid-"+r))
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Fields(string(b)) {
			pid, _ := strconv.Atoi(line)
			if p, err := local.LookupProcess(pid); err == nil && p.PID == pid && syscall.Kill(pid, 0) == nil {
				t.Errorf("rank %s (pid %d) still runs after rank 1 failed", r, pid)
			}
		}
	}
	log, _ := os.ReadFile(f.sched.LogPath("ws", j.Name, 1))
	if !strings.Contains(string(log), "[rank 1] broken\n") {
		t.Errorf("the attempt's log lacks rank 1's line:\n%s", log)
	}
}

func TestDistributedMPIAndTensorflowVariablesReachPython(t *testing.T) {
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("no python3 on PATH")
	}
	needMPI(t, false)
	f := newFixture(t)
	mpi := distributedJob(&scheduler.DistributionSpec{Type: "mpi", InstanceCount: 2, ProcessCountPerInstance: 2},
		python+` -c "import os; e = os.environ; open(os.path.join('${{outputs.out}}', 'mpi-' + e['OMPI_COMM_WORLD_RANK']), 'w').write(' '.join(e[k] for k in ('OMPI_COMM_WORLD_SIZE', 'OMPI_COMM_WORLD_LOCAL_RANK', 'OMPI_COMM_WORLD_LOCAL_SIZE', 'PMI_RANK')))"`)
	j := f.wait(f.submit(mpi).Name)
	if j.Status != wharf.JobCompleted {
		t.Fatalf("mpi job %s: %s", j.Status, j.Error)
	}
	want := map[string]string{"mpi-0": "4 0 2 0", "mpi-1": "4 1 2 1", "mpi-2": "4 0 2 2", "mpi-3": "4 1 2 3"}
	if got := f.outputFiles(j.Outputs["out"]); !equalMaps(got, want) {
		t.Errorf("mpi ranks wrote %v, want %v", got, want)
	}

	tf := distributedJob(&scheduler.DistributionSpec{Type: "tensorflow", InstanceCount: 2, WorkerCount: 2, ParameterServerCount: 1},
		python+` -c "import json, os; c = json.loads(os.environ['TF_CONFIG']); t = c['task']; open(os.path.join('${{outputs.out}}', '%s-%d' % (t['type'], t['index'])), 'w').write('%d workers %d ps' % (len(c['cluster']['worker']), len(c['cluster'].get('ps', []))))"`)
	j = f.wait(f.submit(tf).Name)
	if j.Status != wharf.JobCompleted {
		t.Fatalf("tensorflow job %s: %s", j.Status, j.Error)
	}
	want = map[string]string{"worker-0": "2 workers 1 ps", "worker-1": "2 workers 1 ps", "ps-0": "2 workers 1 ps"}
	if got := f.outputFiles(j.Outputs["out"]); !equalMaps(got, want) {
		t.Errorf("tensorflow tasks wrote %v, want %v", got, want)
	}
}

func TestRecoveryStopsEveryRankOfAnInterruptedStep(t *testing.T) {
	f := newFixture(t)
	f.stop()
	j := f.submit(distributedJob(&scheduler.DistributionSpec{Type: "pytorch", InstanceCount: 2}, `true`))
	var procs []wharf.AttemptProcess
	var exited []chan struct{}
	for range 2 {
		orphan := exec.Command("sleep", "300")
		orphan.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := orphan.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { orphan.Wait(); close(done) }()
		t.Cleanup(func() { orphan.Process.Kill() })
		p, err := local.LookupProcess(orphan.Process.Pid)
		if err != nil {
			t.Fatal(err)
		}
		procs = append(procs, wharf.AttemptProcess{PID: p.PID, PGID: p.PGID, ProcStart: p.StartTime})
		exited = append(exited, done)
	}
	if _, err := f.db.UpdateJob(t.Context(), "ws", j.Name, func(j *wharf.Job) error {
		j.Status = wharf.JobRunning
		j.Attempts = []wharf.JobAttempt{{Number: 1, Status: wharf.JobRunning, Started: time.Now(), Ranks: procs}}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	f.start()
	for i, done := range exited {
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Fatalf("rank %d of the interrupted step was not stopped", i)
		}
	}
	if done := f.wait(j.Name); done.Status != wharf.JobCompleted || len(done.Attempts) != 2 {
		t.Errorf("after recovery: %s with %d attempts", done.Status, len(done.Attempts))
	}
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestDistributedPytorchAllReduceWithGloo runs a real torch.distributed
// all-reduce on CPU across two instances: every rank must end with the
// sum of all ranks' values.
func TestDistributedPytorchAllReduceWithGloo(t *testing.T) {
	python := os.Getenv("WHARF_TEST_TORCH_PYTHON")
	if python == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("WHARF_TEST_TORCH_PYTHON is not set (scripts/test installs torch from requirements-torch.txt)")
		}
		t.Skip("WHARF_TEST_TORCH_PYTHON is not set; scripts/test installs torch")
	}
	f := newFixture(t)
	sub := distributedJob(&scheduler.DistributionSpec{Type: "pytorch", InstanceCount: 2, ProcessCountPerInstance: 1},
		`OUT=${{outputs.out}} "$TORCH_PYTHON" - <<'PY'
import os
import torch
import torch.distributed as dist
dist.init_process_group("gloo")
t = torch.tensor([float(dist.get_rank() + 1)])
dist.all_reduce(t)
open(os.path.join(os.environ["OUT"], "rank-%d" % dist.get_rank()), "w").write("%g" % t.item())
dist.destroy_process_group()
PY`)
	sub.Steps[0].Spec.EnvVars = map[string]string{"TORCH_PYTHON": python}
	j := f.wait(f.submit(sub).Name)
	if j.Status != wharf.JobCompleted {
		log, _ := os.ReadFile(f.sched.LogPath("ws", j.Name, 1))
		t.Fatalf("job %s: %s\n%s", j.Status, j.Error, log)
	}
	want := map[string]string{"rank-0": "3", "rank-1": "3"}
	if got := f.outputFiles(j.Outputs["out"]); !equalMaps(got, want) {
		t.Errorf("ranks reduced to %v, want %v", got, want)
	}
}

func TestCancelStopsEveryRank(t *testing.T) {
	f := newFixture(t)
	dir := t.TempDir()
	j := f.submit(distributedJob(&scheduler.DistributionSpec{Type: "mpi", InstanceCount: 2, ProcessCountPerInstance: 1},
		`echo $$ > `+dir+`/pid-$OMPI_COMM_WORLD_RANK; exec sleep 300`))
	waitForFiles(t, dir+"/pid-0", dir+"/pid-1")
	if _, err := f.sched.Cancel(t.Context(), "ws", j.Name); err != nil {
		t.Fatal(err)
	}
	if done := f.wait(j.Name); done.Status != wharf.JobCanceled || len(done.Attempts) != 1 || len(done.Attempts[0].Ranks) != 0 {
		t.Fatalf("after cancel: %s, attempts %+v", done.Status, done.Attempts)
	}
	for _, r := range []string{"0", "1"} {
		b, _ := os.ReadFile(filepath.Join(dir, "pid-"+r))
		pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		if p, err := local.LookupProcess(pid); err == nil && p.PID == pid && syscall.Kill(pid, 0) == nil {
			t.Errorf("rank %s (pid %d) still runs after cancel", r, pid)
		}
	}
}
