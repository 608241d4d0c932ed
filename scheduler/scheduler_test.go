package scheduler_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/blob"
	"github.com/wharfml/wharf/local"
	"github.com/wharfml/wharf/pyenv"
	"github.com/wharfml/wharf/scheduler"
	"github.com/wharfml/wharf/snapshot"
	"github.com/wharfml/wharf/sqlite"
	"github.com/wharfml/wharf/sqlstore"
)

// fixture is a scheduler on a real SQLite store and blob store, running
// steps as real processes.
type fixture struct {
	t      testing.TB
	db     *sqlstore.DB
	blobs  wharf.BlobStore
	sched  *scheduler.Scheduler
	cancel context.CancelFunc
	dir    string
	// now, when set, is the clock of the schedulers the fixture starts.
	now func() time.Time
	// envs, when set, builds Python environments.
	envs *pyenv.Builder
	// gpus, when set, are the host's GPUs as the schedulers see them.
	gpus *local.GPUs
}

// noScan is the fixture's ScanInterval: longer than any test, so that
// every test also checks that jobs advance on the scheduler's own
// wake-ups (a submission, a step's end, a cancel, a retry's backoff)
// rather than on the periodic scan of the store, which never comes.
const noScan = 24 * time.Hour

func newFixture(t testing.TB) *fixture {
	t.Helper()
	dir := t.TempDir()
	db, err := sqlite.Open(t.Context(), filepath.Join(dir, "wharf.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	blobs, err := blob.NewFS(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if _, err := db.PutWorkspace(ctx, &wharf.Workspace{Name: "ws"}); err != nil {
		t.Fatal(err)
	}
	c := &wharf.Compute{Workspace: "ws", Name: "cpu-cluster", MaxInstances: 2}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if _, err := db.PutCompute(ctx, c); err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, db: db, blobs: blobs, dir: dir}
	f.start()
	return f
}

func (f *fixture) start() {
	ctx, cancel := context.WithCancel(context.Background())
	f.sched = &scheduler.Scheduler{Store: f.db, Blobs: f.blobs, Exec: &local.Executor{KillGrace: time.Second},
		WorkDir: filepath.Join(f.dir, "jobs"), TrackingURI: func(ws string) string { return "http://127.0.0.1:1/mlflow/" + ws },
		Now: f.now, Envs: f.envs, GPUs: f.gpus, ScanInterval: noScan}
	if err := f.sched.Start(ctx); err != nil {
		f.t.Fatal(err)
	}
	f.cancel = cancel
	f.t.Cleanup(f.stop)
}

// setMaxInstances resizes cpu-cluster.
func (f *fixture) setMaxInstances(n int) {
	f.t.Helper()
	c, err := f.db.FindCompute(f.t.Context(), "ws", "cpu-cluster")
	if err != nil {
		f.t.Fatal(err)
	}
	c.MaxInstances = n
	if _, err := f.db.PutCompute(f.t.Context(), c); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) stop() {
	if f.cancel != nil {
		f.cancel()
		f.sched.Wait()
		f.cancel = nil
	}
}

// wait polls the store until the job ends; jobs here take well under a
// second, the bound only keeps a broken scheduler from hanging the suite.
func (f *fixture) wait(name string) *wharf.Job {
	f.t.Helper()
	return f.waitFor(name, "end", func(j *wharf.Job) bool { return wharf.JobTerminal(j.Status) })
}

// waitFor polls the store until the job is as ok wants, what says how in
// the failure.
func (f *fixture) waitFor(name, what string, ok func(*wharf.Job) bool) *wharf.Job {
	f.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		j, err := f.db.FindJob(f.t.Context(), "ws", name)
		if err != nil {
			f.t.Fatal(err)
		}
		if ok(j) {
			return j
		}
		time.Sleep(10 * time.Millisecond)
	}
	f.t.Fatalf("job %s did not %s", name, what)
	return nil
}

func (f *fixture) steps(name string) map[string]*wharf.Job {
	f.t.Helper()
	js, err := f.db.ListJobs(f.t.Context(), "ws", name, 0)
	if err != nil {
		f.t.Fatal(err)
	}
	out := map[string]*wharf.Job{}
	for _, j := range js {
		out[j.Step] = j
	}
	return out
}

func lit(s string) *string { return &s }

// chain is a three-step pipeline: gen writes a greeting built from its
// literal input, upper upper-cases it, count counts its characters.
func chain(greeting string) *scheduler.Submission {
	return &scheduler.Submission{Type: wharf.JobTypePipeline, ExperimentName: "chain",
		Pipeline: &scheduler.PipelineSpec{Outputs: map[string]scheduler.StepOutputRef{"result": {Step: "count", Output: "n"}}},
		Steps: []scheduler.SubmittedStep{
			{Name: "gen", Spec: scheduler.StepSpec{Compute: "cpu-cluster", Deterministic: true,
				Command: `printf '%s' "${{inputs.greeting}}" > ${{outputs.text}}/greeting.txt && echo generated`,
				Inputs:  map[string]scheduler.InputSpec{"greeting": {Type: "string", Literal: lit(greeting)}},
				Outputs: map[string]scheduler.OutputSpec{"text": {Type: "uri_folder"}}}},
			{Name: "upper", Spec: scheduler.StepSpec{Compute: "cpu-cluster", Deterministic: true,
				Command: `tr a-z A-Z < ${{inputs.text}}/greeting.txt > ${{outputs.text}}/upper.txt`,
				Inputs:  map[string]scheduler.InputSpec{"text": {Type: "uri_folder", Step: "gen", Output: "text"}},
				Outputs: map[string]scheduler.OutputSpec{"text": {Type: "uri_folder"}}}},
			{Name: "count", Spec: scheduler.StepSpec{Compute: "cpu-cluster", Deterministic: true,
				Command: `wc -c < ${{inputs.text}}/upper.txt | tr -d ' ' > ${{outputs.n}}/n.txt; test -n "$MLFLOW_RUN_ID"`,
				Inputs:  map[string]scheduler.InputSpec{"text": {Type: "uri_folder", Step: "upper", Output: "text"}},
				Outputs: map[string]scheduler.OutputSpec{"n": {Type: "uri_folder", Parent: "result"}}}},
		}}
}

func (f *fixture) submit(sub *scheduler.Submission) *wharf.Job {
	f.t.Helper()
	j, err := f.sched.Submit(f.t.Context(), "ws", "alice", sub)
	if err != nil {
		f.t.Fatal(err)
	}
	return j
}

func (f *fixture) readOutput(o wharf.JobOutput, file string) string {
	f.t.Helper()
	dest := filepath.Join(f.t.TempDir(), "out")
	if err := snapshot.Materialize(f.t.Context(), o.Digest, f.blobs, dest); err != nil {
		f.t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dest, file))
	if err != nil {
		f.t.Fatal(err)
	}
	return string(b)
}

func TestPipelineRunsReusesAndRerunsDownstream(t *testing.T) {
	f := newFixture(t)
	first := f.wait(f.submit(chain("hello")).Name)
	if first.Status != wharf.JobCompleted {
		t.Fatalf("pipeline %s: %s", first.Status, first.Error)
	}
	steps := f.steps(first.Name)
	if got := f.readOutput(steps["upper"].Outputs["text"], "upper.txt"); got != "HELLO" {
		t.Errorf("upper wrote %q", got)
	}
	if got := f.readOutput(first.Outputs["result"], "n.txt"); strings.TrimSpace(got) != "5" {
		t.Errorf("pipeline output result = %q, want 5", got)
	}
	for name, st := range steps {
		if st.ReusedFrom != "" || len(st.Attempts) != 1 || st.RunID == "" {
			t.Errorf("step %s: reused %q, %d attempts, run %q", name, st.ReusedFrom, len(st.Attempts), st.RunID)
			continue
		}
		// The process lies within its attempt.
		a := st.Attempts[0]
		if a.ProcessStarted == nil || a.ProcessEnded == nil || a.ProcessStarted.Before(a.Started) ||
			a.ProcessEnded.Before(*a.ProcessStarted) || a.Ended.Before(*a.ProcessEnded) {
			t.Errorf("step %s: attempt %v–%v, process %v–%v", name, a.Started, a.Ended, a.ProcessStarted, a.ProcessEnded)
		}
	}
	log, err := os.ReadFile(f.sched.LogPath("ws", steps["gen"].Name, 1))
	if err != nil || !strings.Contains(string(log), "generated") {
		t.Errorf("gen log %q, %v", log, err)
	}
	run, err := f.db.FindRun(t.Context(), "ws", steps["count"].RunID)
	if err != nil || run.Status != "FINISHED" || run.Tags["mlflow.parentRunId"] == "" {
		t.Errorf("count's run: %+v, %v", run, err)
	}

	// The same submission again reuses every step.
	second := f.wait(f.submit(chain("hello")).Name)
	if second.Status != wharf.JobCompleted {
		t.Fatalf("second pipeline %s", second.Status)
	}
	for name, st := range f.steps(second.Name) {
		if st.ReusedFrom != steps[name].Name || len(st.Attempts) != 0 {
			t.Errorf("step %s of the resubmission: reused from %q (want %s), %d attempts", name, st.ReusedFrom, steps[name].Name, len(st.Attempts))
		}
	}
	if second.Outputs["result"].Digest != first.Outputs["result"].Digest {
		t.Error("reused pipeline has a different output")
	}

	// A changed input re-runs its step and everything downstream of it.
	third := f.wait(f.submit(chain("world")).Name)
	for name, st := range f.steps(third.Name) {
		if st.ReusedFrom != "" || len(st.Attempts) != 1 {
			t.Errorf("step %s after an input change: reused from %q, %d attempts", name, st.ReusedFrom, len(st.Attempts))
		}
	}
	// The upper-cased text is the same, so count's input content is the
	// same as in the first run: it is reused even though upper ran.
	fourth := f.wait(f.submit(chain("HELLO")).Name)
	st4 := f.steps(fourth.Name)
	if st4["gen"].ReusedFrom != "" || st4["upper"].ReusedFrom != "" || st4["count"].ReusedFrom == "" {
		t.Errorf("content-addressed reuse: gen %q upper %q count %q", st4["gen"].ReusedFrom, st4["upper"].ReusedFrom, st4["count"].ReusedFrom)
	}
}

func TestFailureRetriesThenCancelsDownstream(t *testing.T) {
	f := newFixture(t)
	sub := chain("x")
	sub.Steps[0].Spec.Command = `echo attempt; exit 3`
	sub.Steps[0].Spec.MaxRetries = 2
	j := f.wait(f.submit(sub).Name)
	if j.Status != wharf.JobFailed {
		t.Fatalf("pipeline %s, want Failed", j.Status)
	}
	steps := f.steps(j.Name)
	gen := steps["gen"]
	if gen.Status != wharf.JobFailed || len(gen.Attempts) != 3 {
		t.Fatalf("gen %s with %d attempts, want Failed after 3", gen.Status, len(gen.Attempts))
	}
	for i, a := range gen.Attempts {
		if a.ExitCode == nil || *a.ExitCode != 3 {
			t.Errorf("attempt %d exit %v", i+1, a.ExitCode)
		}
		if _, err := os.Stat(f.sched.LogPath("ws", gen.Name, i+1)); err != nil {
			t.Errorf("attempt %d log kept: %v", i+1, err)
		}
	}
	for _, name := range []string{"upper", "count"} {
		if steps[name].Status != wharf.JobCanceled || len(steps[name].Attempts) != 0 {
			t.Errorf("%s: %s with %d attempts, want Canceled and never run", name, steps[name].Status, len(steps[name].Attempts))
		}
	}
	if len(gen.Outputs) != 0 {
		t.Error("a failed step has outputs")
	}
}

func TestCancelStopsRunningStep(t *testing.T) {
	f := newFixture(t)
	sub := chain("x")
	marker := filepath.Join(t.TempDir(), "pid")
	sub.Steps[0].Spec.Command = `echo $$ > ` + marker + `; sleep 300`
	j := f.submit(sub)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(marker); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("step never started")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := f.sched.Cancel(t.Context(), "ws", j.Name); err != nil {
		t.Fatal(err)
	}
	done := f.wait(j.Name)
	if done.Status != wharf.JobCanceled {
		t.Fatalf("pipeline %s, want Canceled", done.Status)
	}
	steps := f.steps(j.Name)
	if steps["gen"].Status != wharf.JobCanceled || steps["upper"].Status != wharf.JobCanceled {
		t.Errorf("steps gen %s upper %s", steps["gen"].Status, steps["upper"].Status)
	}
	b, _ := os.ReadFile(marker)
	var pid int
	for _, c := range strings.TrimSpace(string(b)) {
		pid = pid*10 + int(c-'0')
	}
	if pid > 0 && syscall.Kill(pid, 0) == nil {
		if p, err := local.LookupProcess(pid); err == nil && p.PID == pid {
			t.Errorf("process %d still alive after cancel", pid)
		}
	}
}

func TestValidationRejectsBadSubmissions(t *testing.T) {
	f := newFixture(t)
	cases := map[string]func(s *scheduler.Submission){
		"missing compute": func(s *scheduler.Submission) { s.Steps[1].Spec.Compute = "gpu-cluster" },
		"missing step": func(s *scheduler.Submission) {
			s.Steps[1].Spec.Inputs["text"] = scheduler.InputSpec{Type: "uri_folder", Step: "nope", Output: "text"}
		},
		"missing output": func(s *scheduler.Submission) {
			s.Steps[1].Spec.Inputs["text"] = scheduler.InputSpec{Type: "uri_folder", Step: "gen", Output: "nope"}
		},
		"cycle": func(s *scheduler.Submission) {
			s.Steps[0].Spec.Inputs["back"] = scheduler.InputSpec{Type: "uri_folder", Step: "count", Output: "n"}
		},
		"unuploaded content": func(s *scheduler.Submission) { s.Steps[0].Spec.CodeDigest = "sha256:" + strings.Repeat("0", 64) },
		"duplicate step":     func(s *scheduler.Submission) { s.Steps[2].Name = "gen" },
		"bad pipeline output": func(s *scheduler.Submission) {
			s.Pipeline.Outputs["x"] = scheduler.StepOutputRef{Step: "gen", Output: "nope"}
		},
	}
	for name, mutate := range cases {
		sub := chain("x")
		mutate(sub)
		_, err := f.sched.Submit(t.Context(), "ws", "alice", sub)
		if wharf.ErrorCode(err) != wharf.EINVALID {
			t.Errorf("%s: %v, want EINVALID", name, err)
		}
	}
	if jobs, err := f.db.ListJobs(t.Context(), "ws", "", 0); err != nil || len(jobs) != 0 {
		t.Errorf("rejected submissions stored %d jobs (%v)", len(jobs), err)
	}
	sub := chain("x")
	sub.Steps[0].Spec.Inputs["back"] = scheduler.InputSpec{Type: "uri_folder", Step: "count", Output: "n"}
	_, err := f.sched.Submit(t.Context(), "ws", "alice", sub)
	if err == nil || !strings.Contains(err.Error(), "cycle") || !strings.Contains(err.Error(), "gen") ||
		!strings.Contains(err.Error(), "upper") || !strings.Contains(err.Error(), "count ->") {
		t.Errorf("cycle error does not name the cycle: %v", err)
	}
}

// TestRecoveryRerunsInterruptedStep stands in for a server that died while
// a step ran: the step is stored as Running with the process group of a
// live process, as the previous server would have left it. Start must kill
// that process and run the step again.
func TestRecoveryRerunsInterruptedStep(t *testing.T) {
	f := newFixture(t)
	f.stop()
	sub := chain("hi")
	j := f.submit(sub)
	orphan := exec.Command("sleep", "300")
	orphan.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := orphan.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { orphan.Wait(); close(exited) }()
	p, err := local.LookupProcess(orphan.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	gen := j.Name + "_gen"
	if _, err := f.db.UpdateJob(t.Context(), "ws", gen, func(j *wharf.Job) error {
		j.Status = wharf.JobRunning
		j.Attempts = []wharf.JobAttempt{{Number: 1, Status: wharf.JobRunning, Started: time.Now(), PID: p.PID, PGID: p.PGID, ProcStart: p.StartTime}}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	f.start()
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		orphan.Process.Kill()
		t.Fatal("the interrupted step's process was not killed")
	}
	done := f.wait(j.Name)
	if done.Status != wharf.JobCompleted {
		t.Fatalf("pipeline after recovery: %s %s", done.Status, done.Error)
	}
	st := f.steps(j.Name)["gen"]
	if len(st.Attempts) != 2 || !strings.HasPrefix(st.Attempts[0].Error, "interrupted") || st.Attempts[1].Status != wharf.JobCompleted {
		t.Errorf("gen attempts after recovery: %+v", st.Attempts)
	}
}

func TestRerunFromFailedKeepsCompletedSteps(t *testing.T) {
	f := newFixture(t)
	flag := filepath.Join(t.TempDir(), "fixed")
	sub := chain("hi")
	// gen is not deterministic, so only --from-failed may keep its result.
	sub.Steps[0].Spec.Deterministic = false
	sub.Steps[2].Spec.Command = `test -f ` + flag + ` || exit 4; ` + sub.Steps[2].Spec.Command
	failed := f.wait(f.submit(sub).Name)
	if failed.Status != wharf.JobFailed {
		t.Fatalf("first run %s", failed.Status)
	}
	before := f.steps(failed.Name)
	if err := os.WriteFile(flag, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	re, err := f.sched.Rerun(t.Context(), "ws", failed.Name, "bob", true)
	if err != nil {
		t.Fatal(err)
	}
	done := f.wait(re.Name)
	if done.Status != wharf.JobCompleted || done.Tags["wharf.rerun_of"] != failed.Name {
		t.Fatalf("rerun %s, tags %v", done.Status, done.Tags)
	}
	after := f.steps(re.Name)
	for _, name := range []string{"gen", "upper"} {
		if after[name].ReusedFrom != before[name].Name || len(after[name].Attempts) != 0 {
			t.Errorf("%s in the rerun: reused from %q, %d attempts", name, after[name].ReusedFrom, len(after[name].Attempts))
		}
	}
	if after["count"].ReusedFrom != "" || len(after["count"].Attempts) != 1 || after["count"].Status != wharf.JobCompleted {
		t.Errorf("count in the rerun: %s, reused %q", after["count"].Status, after["count"].ReusedFrom)
	}
	// A plain rerun runs everything again.
	all, err := f.sched.Rerun(t.Context(), "ws", re.Name, "bob", false)
	if err != nil {
		t.Fatal(err)
	}
	f.wait(all.Name)
	for name, st := range f.steps(all.Name) {
		if st.ReusedFrom != "" || len(st.Attempts) != 1 {
			t.Errorf("full rerun %s: reused %q", name, st.ReusedFrom)
		}
	}
	if _, err := f.sched.Rerun(t.Context(), "ws", all.Name, "bob", true); wharf.ErrorCode(err) != wharf.EINVALID {
		t.Errorf("rerun --from-failed of a completed job: %v", err)
	}
}

// fanOut is a pipeline of n independent steps; each appends "start" and
// "end" lines to a shared file around a short pause, so the file shows
// how many ran at once.
func fanOut(n int, trace string) *scheduler.Submission {
	sub := &scheduler.Submission{Type: wharf.JobTypePipeline, Pipeline: &scheduler.PipelineSpec{}}
	for i := 0; i < n; i++ {
		sub.Steps = append(sub.Steps, scheduler.SubmittedStep{Name: "s" + strconv.Itoa(i), Spec: scheduler.StepSpec{
			Compute: "cpu-cluster", ForceRerun: true,
			Command: `echo start >> ` + trace + `; sleep 0.2; echo end >> ` + trace,
		}})
	}
	return sub
}

func maxConcurrent(t *testing.T, trace string) int {
	t.Helper()
	b, err := os.ReadFile(trace)
	if err != nil {
		t.Fatal(err)
	}
	cur, most := 0, 0
	for _, l := range strings.Fields(string(b)) {
		if l == "start" {
			cur++
		} else {
			cur--
		}
		most = max(most, cur)
	}
	return most
}

func TestClusterRunsAtMostMaxInstancesStepsAtOnce(t *testing.T) {
	f := newFixture(t) // cpu-cluster has max_instances 2
	trace := filepath.Join(t.TempDir(), "trace")
	j := f.wait(f.submit(fanOut(6, trace)).Name)
	if j.Status != wharf.JobCompleted {
		t.Fatalf("fan-out %s", j.Status)
	}
	if most := maxConcurrent(t, trace); most > 2 || most < 1 {
		t.Errorf("%d steps ran at once on a cluster of 2", most)
	}
	// Shrinking the cluster applies to the next steps.
	f.setMaxInstances(1)
	trace1 := filepath.Join(t.TempDir(), "trace")
	f.wait(f.submit(fanOut(4, trace1)).Name)
	if most := maxConcurrent(t, trace1); most != 1 {
		t.Errorf("%d steps ran at once on a cluster of 1", most)
	}
}

func TestTimeoutFailsTheAttempt(t *testing.T) {
	f := newFixture(t)
	sub := &scheduler.Submission{Type: wharf.JobTypeCommand, Steps: []scheduler.SubmittedStep{{Name: "main",
		Spec: scheduler.StepSpec{Compute: "cpu-cluster", Command: "sleep 60", TimeoutSeconds: 1}}}}
	j := f.wait(f.submit(sub).Name)
	if j.Status != wharf.JobFailed || !strings.Contains(j.Error, "timed out after 1 seconds") {
		t.Errorf("job %s: %s", j.Status, j.Error)
	}
}

// TestUnresolvableDependencyFailsInPreparing builds a real environment
// with pip: the job fails before its command runs, with pip's own words.
func TestUnresolvableDependencyFailsInPreparing(t *testing.T) {
	f := newFixture(t)
	f.stop()
	f.envs = &pyenv.Builder{CacheDir: filepath.Join(f.dir, "envs")}
	f.start()
	sub := &scheduler.Submission{Type: wharf.JobTypeCommand, Steps: []scheduler.SubmittedStep{{Name: "main",
		Spec: scheduler.StepSpec{Compute: "cpu-cluster", Command: "echo must-not-run",
			Environment: scheduler.EnvSpec{Pip: []string{"wharf-no-such-package-xyz==1.0"}}}}}}
	j := f.wait(f.submit(sub).Name)
	if j.Status != wharf.JobFailed || len(j.Attempts) != 1 {
		t.Fatalf("job %s with %d attempts", j.Status, len(j.Attempts))
	}
	if !strings.Contains(j.Error, "preparing the environment failed") || !strings.Contains(j.Error, "wharf-no-such-package-xyz") {
		t.Errorf("error %q does not carry pip's message", j.Error)
	}
	log, _ := os.ReadFile(f.sched.LogPath("ws", j.Name, 1))
	if strings.Contains(string(log), "must-not-run\n") && !strings.Contains(string(log), "running:") {
		t.Error("the command ran")
	}
	if strings.Contains(string(log), "[wharf] running:") {
		t.Errorf("the command was started after a failed preparation:\n%s", log)
	}
}

// TestStepErrorFileIsReadOnlyAsItsOwnFile: a step's reason for failing,
// written to $WHARF_STEP_ERROR_FILE, joins its error; a link put there in
// its place is not followed, so a step cannot have the server read a file
// of its own (a key, say) into the job's error.
func TestStepErrorFileIsReadOnlyAsItsOwnFile(t *testing.T) {
	f := newFixture(t)
	secret := filepath.Join(t.TempDir(), "server-key")
	if err := os.WriteFile(secret, []byte("top-secret-key-material\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ command, want, never string }{
		{`echo "3 mini-batches failed" > "$WHARF_STEP_ERROR_FILE"; exit 1`, ": 3 mini-batches failed", ""},
		{`ln -s ` + secret + ` "$WHARF_STEP_ERROR_FILE"; exit 1`, "exited with code 1", "top-secret"},
	} {
		sub := &scheduler.Submission{Type: wharf.JobTypeCommand, Steps: []scheduler.SubmittedStep{{Name: "main",
			Spec: scheduler.StepSpec{Compute: "cpu-cluster", Command: tc.command}}}}
		j := f.wait(f.submit(sub).Name)
		if j.Status != wharf.JobFailed || !strings.Contains(j.Error, tc.want) || (tc.never != "" && strings.Contains(j.Error, tc.never)) {
			t.Errorf("%s: job %s: %q, want Failed with %q", tc.command, j.Status, j.Error, tc.want)
		}
	}
}

// TestFileOutputIsNeverALinkFollowed: a uri_file output that the step
// made a link (to a file of the server's, say) fails the step rather than
// being stored as the output.
func TestFileOutputIsNeverALinkFollowed(t *testing.T) {
	f := newFixture(t)
	secret := filepath.Join(t.TempDir(), "server-key")
	if err := os.WriteFile(secret, []byte("top-secret-key-material\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	sub := &scheduler.Submission{Type: wharf.JobTypeCommand, Steps: []scheduler.SubmittedStep{{Name: "main",
		Spec: scheduler.StepSpec{Compute: "cpu-cluster", Command: `ln -s ` + secret + ` ${{outputs.model}}`,
			Outputs: map[string]scheduler.OutputSpec{"model": {Type: "uri_file"}}}}}}
	j := f.wait(f.submit(sub).Name)
	if j.Status != wharf.JobFailed || !strings.Contains(j.Error, "is a link, not a regular file") || len(j.Outputs) != 0 {
		t.Errorf("job %s: %q, outputs %v; want Failed refusing the link", j.Status, j.Error, j.Outputs)
	}
}
