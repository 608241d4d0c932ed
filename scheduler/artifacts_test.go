package scheduler_test

import (
	"io"
	"strings"
	"testing"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/mlflow"
	"github.com/wharfml/wharf/scheduler"
)

func commandJob(command string, outputs map[string]scheduler.OutputSpec) *scheduler.Submission {
	return &scheduler.Submission{Type: wharf.JobTypeCommand, Steps: []scheduler.SubmittedStep{{Name: "main",
		Spec: scheduler.StepSpec{Compute: "cpu-cluster", Command: command, Outputs: outputs}}}}
}

// TestDefaultArtifactsAreKeptAndLogged: ./outputs and ./logs exist when
// the command starts; what it writes there is kept as one folder and
// logged to the job's run under the same paths.
func TestDefaultArtifactsAreKeptAndLogged(t *testing.T) {
	f := newFixture(t)
	j := f.wait(f.submit(commandJob(`echo weights > outputs/model.txt && mkdir logs/deep && echo step > logs/deep/extra.log`, nil)).Name)
	if j.Status != wharf.JobCompleted {
		t.Fatalf("job %s: %s", j.Status, j.Error)
	}
	if j.Artifacts == nil || j.Artifacts.Files != 2 {
		t.Fatalf("default artifacts %+v, want 2 files", j.Artifacts)
	}
	if got := f.readOutput(*j.Artifacts, "outputs/model.txt"); got != "weights\n" {
		t.Errorf("outputs/model.txt: %q", got)
	}
	if got := f.readOutput(*j.Artifacts, "logs/deep/extra.log"); got != "step\n" {
		t.Errorf("logs/deep/extra.log: %q", got)
	}
	run, err := f.db.FindRun(t.Context(), "ws", j.RunID)
	if err != nil {
		t.Fatal(err)
	}
	root, ok := mlflow.ArtifactRoot(run.ArtifactURI)
	if !ok {
		t.Fatalf("run artifact URI %q", run.ArtifactURI)
	}
	arts, err := f.db.ListArtifacts(t.Context(), "ws", root)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, a := range arts {
		got[strings.TrimPrefix(a.Path, root+"/")] = a.Digest
	}
	want, _, _ := f.blobs.Put(t.Context(), strings.NewReader("weights\n"))
	if len(got) != 2 || got["outputs/model.txt"] != want || got["logs/deep/extra.log"] == "" {
		t.Errorf("run artifacts %v, want outputs/model.txt (%s) and logs/deep/extra.log", got, want)
	}

	// A job that writes nothing there has no default artifacts.
	empty := f.wait(f.submit(commandJob(`test -d outputs && test -d logs`, nil)).Name)
	if empty.Status != wharf.JobCompleted || empty.Artifacts != nil {
		t.Errorf("a job that left nothing: %s %q, artifacts %+v", empty.Status, empty.Error, empty.Artifacts)
	}
}

// TestFileOutputFeedsFileInput: a uri_file output names a file to write
// in a folder that exists; the committed output is that file, which a
// downstream uri_file input reads.
func TestFileOutputFeedsFileInput(t *testing.T) {
	f := newFixture(t)
	sub := &scheduler.Submission{Type: wharf.JobTypePipeline, Pipeline: &scheduler.PipelineSpec{},
		Steps: []scheduler.SubmittedStep{
			{Name: "write", Spec: scheduler.StepSpec{Compute: "cpu-cluster",
				Command: `test ! -e ${{outputs.model}} && test -d "$(dirname ${{outputs.model}})" && echo coef=2 > ${{outputs.model}}`,
				Outputs: map[string]scheduler.OutputSpec{"model": {Type: "uri_file"}}}},
			{Name: "read", Spec: scheduler.StepSpec{Compute: "cpu-cluster",
				Command: `test -f ${{inputs.model}} && cp ${{inputs.model}} ${{outputs.out}}/copy.txt`,
				Inputs:  map[string]scheduler.InputSpec{"model": {Type: "uri_file", Step: "write", Output: "model"}},
				Outputs: map[string]scheduler.OutputSpec{"out": {Type: "uri_folder"}}}},
		}}
	p := f.wait(f.submit(sub).Name)
	steps := f.steps(p.Name)
	if p.Status != wharf.JobCompleted {
		t.Fatalf("pipeline %s: %s (write: %s, read: %s)", p.Status, p.Error, steps["write"].Error, steps["read"].Error)
	}
	o := steps["write"].Outputs["model"]
	if o.Kind != scheduler.KindFile || o.Files != 1 {
		t.Errorf("uri_file output %+v, want a file", o)
	}
	rc, _, err := f.blobs.Open(t.Context(), o.Digest)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != "coef=2\n" {
		t.Errorf("stored output %q", b)
	}
	if got := f.readOutput(steps["read"].Outputs["out"], "copy.txt"); got != "coef=2\n" {
		t.Errorf("downstream read %q", got)
	}
}

// TestUnwrittenFileOutputFailsTheAttempt: a step that exits 0 without
// writing its uri_file output fails, saying which output it left out.
func TestUnwrittenFileOutputFailsTheAttempt(t *testing.T) {
	f := newFixture(t)
	j := f.wait(f.submit(commandJob(`true`, map[string]scheduler.OutputSpec{"model": {Type: "uri_file"}})).Name)
	if j.Status != wharf.JobFailed {
		t.Fatalf("job %s, want Failed", j.Status)
	}
	if !strings.Contains(j.Error, "output model is a uri_file and the step wrote no file") {
		t.Errorf("error %q", j.Error)
	}
	if j.Outputs != nil || j.Artifacts != nil {
		t.Errorf("a failed job kept outputs %v, artifacts %v", j.Outputs, j.Artifacts)
	}
}
