package scheduler_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/scheduler"
)

// noopStep is a step that runs `true` and reads the out output of each
// upstream, as bench/pipeline.sh's steps do.
func noopStep(name string, ups ...string) scheduler.SubmittedStep {
	in := map[string]scheduler.InputSpec{}
	for i, u := range ups {
		in[fmt.Sprintf("in%04d", i)] = scheduler.InputSpec{Type: "uri_folder", Step: u, Output: "out"}
	}
	return scheduler.SubmittedStep{Name: name, Spec: scheduler.StepSpec{Compute: "cpu-cluster", Command: "true",
		ForceRerun: true, Inputs: in, Outputs: map[string]scheduler.OutputSpec{"out": {Type: "uri_folder"}}}}
}

// noopChain is n no-op steps, each reading the one before.
func noopChain(n int) *scheduler.Submission {
	sub := &scheduler.Submission{Type: wharf.JobTypePipeline, Pipeline: &scheduler.PipelineSpec{ForceRerun: true}}
	sub.Steps = append(sub.Steps, noopStep("s1"))
	for i := 2; i <= n; i++ {
		sub.Steps = append(sub.Steps, noopStep(fmt.Sprintf("s%d", i), fmt.Sprintf("s%d", i-1)))
	}
	return sub
}

// noopFanOut is one start step, width no-op branches that read it, and a
// join that reads every branch.
func noopFanOut(width int) *scheduler.Submission {
	sub := &scheduler.Submission{Type: wharf.JobTypePipeline, Pipeline: &scheduler.PipelineSpec{ForceRerun: true}}
	sub.Steps = append(sub.Steps, noopStep("start"))
	var branches []string
	for i := 0; i < width; i++ {
		b := fmt.Sprintf("b%04d", i)
		branches = append(branches, b)
		sub.Steps = append(sub.Steps, noopStep(b, "start"))
	}
	sub.Steps = append(sub.Steps, noopStep("join", branches...))
	return sub
}

// reusable turns force_rerun off and marks every step deterministic, so
// that a second submission reuses every step.
func reusable(sub *scheduler.Submission) *scheduler.Submission {
	sub.Pipeline.ForceRerun = false
	for i := range sub.Steps {
		sub.Steps[i].Spec.ForceRerun, sub.Steps[i].Spec.Deterministic = false, true
	}
	return sub
}

// benchPipeline runs the submission b.N times, one after the other, on a
// cluster of 16 slots, unsandboxed: the scheduler's and the store's own
// cost per pipeline, with the no-op processes, for profiling (go test
// -bench . -cpuprofile). bench/pipeline.sh measures the whole server. One
// unmeasured submission comes first, which fills the cache for reused
// runs.
func benchPipeline(b *testing.B, sub func() *scheduler.Submission) {
	f := newFixture(b)
	f.setMaxInstances(16)
	f.wait(f.submit(sub()).Name)
	b.ResetTimer()
	var server time.Duration
	for range b.N {
		j := f.wait(f.submit(sub()).Name)
		if j.Status != wharf.JobCompleted {
			b.Fatalf("pipeline %s: %s", j.Status, j.Error)
		}
		server += j.EndedAt.Sub(j.CreatedAt)
	}
	// What the store says, without the wait's polling interval.
	b.ReportMetric(float64(server.Microseconds())/1000/float64(b.N), "job-ms/op")
}

// BenchmarkChain4 is bench/pipeline.sh's chain: 4 no-op steps.
func BenchmarkChain4(b *testing.B) {
	benchPipeline(b, func() *scheduler.Submission { return noopChain(4) })
}

// BenchmarkFanOut200 is bench/pipeline.sh's fan-out: 1 + 200 + 1 steps.
func BenchmarkFanOut200(b *testing.B) {
	benchPipeline(b, func() *scheduler.Submission { return noopFanOut(200) })
}

// BenchmarkFanOut200Reused is the fan-out resubmitted: every step reused.
func BenchmarkFanOut200Reused(b *testing.B) {
	benchPipeline(b, func() *scheduler.Submission { return reusable(noopFanOut(200)) })
}

// BenchmarkFanOut1000 is bench/pipeline.sh's wide fan-out: 1 + 1000 + 1
// steps.
func BenchmarkFanOut1000(b *testing.B) {
	benchPipeline(b, func() *scheduler.Submission { return noopFanOut(1000) })
}
