package scheduler_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/scheduler"
)

// The scheduler's loop advances a job only when it is told the job
// changed; its periodic scan of the store never comes in these tests (the
// fixture's ScanInterval is a day). Each test here would hang, and fail at
// the fixture's wait, if one of those wake-ups were missed.

// step is a pipeline step on cpu-cluster running command, reading the
// out output of each upstream.
func step(name, command string, ups ...string) scheduler.SubmittedStep {
	st := noopStep(name, ups...)
	st.Spec.Command = command
	return st
}

func pipeline(steps ...scheduler.SubmittedStep) *scheduler.Submission {
	return &scheduler.Submission{Type: wharf.JobTypePipeline, Pipeline: &scheduler.PipelineSpec{}, Steps: steps}
}

// A step's end starts what depends on it, fan-out and fan-in included,
// with more ready steps than slots so that steps end while others wait.
func TestStepEndStartsItsDependants(t *testing.T) {
	f := newFixture(t) // 2 slots
	sub := pipeline(step("start", "true"))
	var branches []string
	for _, b := range []string{"b1", "b2", "b3", "b4", "b5"} {
		sub.Steps = append(sub.Steps, step(b, "true", "start"))
		branches = append(branches, b)
	}
	sub.Steps = append(sub.Steps, step("join", "true", branches...), step("after", "true", "join"))
	j := f.wait(f.submit(sub).Name)
	if j.Status != wharf.JobCompleted {
		t.Fatalf("pipeline %s: %s", j.Status, j.Error)
	}
	steps := f.steps(j.Name)
	for name, st := range steps {
		if st.Status != wharf.JobCompleted || len(st.Attempts) != 1 {
			t.Errorf("step %s: %s with %d attempts", name, st.Status, len(st.Attempts))
		}
	}
	for _, b := range branches {
		if steps["join"].Attempts[0].Started.Before(*steps[b].EndedAt) {
			t.Errorf("join started before %s ended", b)
		}
	}
	if j.StartedAt == nil || j.StartedAt.After(steps["start"].Attempts[0].Started) {
		t.Errorf("pipeline started at %v, its first step at %v", j.StartedAt, steps["start"].Attempts[0].Started)
	}
}

// A failed attempt's retry is woken when its backoff is over.
func TestRetryStartsAfterItsBackoff(t *testing.T) {
	f := newFixture(t)
	marker := filepath.Join(t.TempDir(), "failed-once")
	st := step("flaky", `test -f `+marker+` || { touch `+marker+`; exit 5; }`)
	st.Spec.MaxRetries, st.Spec.RetryBackoffSeconds = 1, 1
	j := f.wait(f.submit(pipeline(st, step("next", "true", "flaky"))).Name)
	if j.Status != wharf.JobCompleted {
		t.Fatalf("pipeline %s: %s", j.Status, j.Error)
	}
	a := f.steps(j.Name)["flaky"].Attempts
	if len(a) != 2 || a[0].Status != wharf.JobFailed || a[1].Status != wharf.JobCompleted {
		t.Fatalf("attempts %+v", a)
	}
	if gap := a[1].Started.Sub(*a[0].Ended); gap < time.Second {
		t.Errorf("the retry started %v after the failure, before its 1 s backoff", gap)
	}
}

// A pipeline shows Running while its first step runs, and a cancel stops
// that step and cancels the rest.
func TestPipelineRunsThenCancels(t *testing.T) {
	f := newFixture(t)
	j := f.submit(pipeline(step("long", "sleep 300"), step("next", "true", "long")))
	f.waitStatus(j.Name, wharf.JobRunning)
	if _, err := f.sched.Cancel(t.Context(), "ws", j.Name); err != nil {
		t.Fatal(err)
	}
	done := f.wait(j.Name)
	steps := f.steps(j.Name)
	if done.Status != wharf.JobCanceled || steps["long"].Status != wharf.JobCanceled || steps["next"].Status != wharf.JobCanceled {
		t.Errorf("pipeline %s, long %s, next %s; want all Canceled", done.Status, steps["long"].Status, steps["next"].Status)
	}
}

// Cancelling one step of a pipeline by its own name stops it and cancels
// what depends on it.
func TestCancellingAStepCancelsItsDependants(t *testing.T) {
	f := newFixture(t)
	j := f.submit(pipeline(step("long", "sleep 300"), step("next", "true", "long"), step("last", "true", "next")))
	f.waitStatus(j.Name+"_long", wharf.JobRunning)
	if _, err := f.sched.Cancel(t.Context(), "ws", j.Name+"_long"); err != nil {
		t.Fatal(err)
	}
	done := f.wait(j.Name)
	steps := f.steps(j.Name)
	if done.Status != wharf.JobCanceled {
		t.Errorf("pipeline %s, want Canceled", done.Status)
	}
	for _, name := range []string{"long", "next", "last"} {
		if steps[name].Status != wharf.JobCanceled {
			t.Errorf("%s: %s, want Canceled", name, steps[name].Status)
		}
	}
}

// With continue_on_step_failure, a failure cancels only what depends on
// the failed step, all the way down, and the other steps run. The failure
// comes last, so that nothing but the cancellations themselves can wake
// the loop to cancel the next step down.
func TestContinueOnStepFailureCancelsOnlyDependants(t *testing.T) {
	f := newFixture(t)
	sub := pipeline(step("bad", "sleep 0.5; exit 2"), step("b", "true", "bad"), step("c", "true", "b"),
		step("other", "true"), step("other2", "true", "other"))
	sub.Pipeline.ContinueOnStepFailure = true
	j := f.wait(f.submit(sub).Name)
	if j.Status != wharf.JobFailed {
		t.Errorf("pipeline %s, want Failed", j.Status)
	}
	want := map[string]string{"bad": wharf.JobFailed, "b": wharf.JobCanceled, "c": wharf.JobCanceled,
		"other": wharf.JobCompleted, "other2": wharf.JobCompleted}
	for name, st := range f.steps(j.Name) {
		if st.Status != want[name] {
			t.Errorf("%s: %s, want %s", name, st.Status, want[name])
		}
	}
}

// A command job (no pipeline) runs and ends on its own wake-ups too, and a
// command job's timeout fails it.
func TestCommandJobs(t *testing.T) {
	f := newFixture(t)
	ok := f.wait(f.submit(&scheduler.Submission{Type: wharf.JobTypeCommand,
		Steps: []scheduler.SubmittedStep{step("main", "true")}}).Name)
	if ok.Status != wharf.JobCompleted || ok.RunID == "" {
		t.Errorf("command job %s, run %q", ok.Status, ok.RunID)
	}
	st := step("main", "sleep 60")
	st.Spec.TimeoutSeconds = 1
	slow := f.wait(f.submit(&scheduler.Submission{Type: wharf.JobTypeCommand, Steps: []scheduler.SubmittedStep{st}}).Name)
	if slow.Status != wharf.JobFailed {
		t.Errorf("timed-out command job %s", slow.Status)
	}
}

// Jobs written to the store behind the scheduler's back are found by
// Wake, which reads the store as a scan does.
func TestWakeFindsJobsCreatedInTheStore(t *testing.T) {
	f := newFixture(t)
	f.stop()
	// Submitted to a stopped scheduler: stored, never tracked.
	j := f.submit(chain("behind"))
	f.start()
	f.wait(j.Name) // Start's own scan
	other := &scheduler.Scheduler{Store: f.db, Blobs: f.blobs, WorkDir: filepath.Join(f.dir, "unused")}
	second, err := other.Submit(t.Context(), "ws", "alice", chain("behind, again"))
	if err != nil {
		t.Fatal(err)
	}
	f.sched.Wake()
	if done := f.wait(second.Name); done.Status != wharf.JobCompleted {
		t.Errorf("job stored behind the scheduler's back: %s %s", done.Status, done.Error)
	}
	if _, err := os.Stat(filepath.Join(f.dir, "unused")); err == nil {
		t.Error("the scheduler that only submitted ran something")
	}
}

// waitStatus polls the store until the job has the status.
func (f *fixture) waitStatus(name, status string) {
	f.t.Helper()
	j := f.waitFor(name, "become "+status, func(j *wharf.Job) bool { return j.Status == status || wharf.JobTerminal(j.Status) })
	if j.Status != status {
		f.t.Fatalf("job %s ended %s before it was %s", name, j.Status, status)
	}
}
