package scheduler

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/big"
	"slices"
	"strings"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/snapshot"
)

// Submission is a job as a client submits it: YAML already parsed, local
// files already uploaded and asset references resolved to what they pin.
type Submission struct {
	Name           string            `json:"name,omitempty"`
	Type           string            `json:"type"`
	DisplayName    string            `json:"display_name,omitempty"`
	ExperimentName string            `json:"experiment_name,omitempty"`
	Description    string            `json:"description,omitempty"`
	Tags           map[string]string `json:"tags,omitempty"`
	// Pipeline is set for pipeline jobs.
	Pipeline *PipelineSpec `json:"pipeline,omitempty"`
	// Steps holds the steps of a pipeline, or the one step of a command
	// job.
	Steps []SubmittedStep `json:"steps"`
	// Document is the job as its author wrote it (the CLI v2 schema as
	// JSON, local content replaced by where it was uploaded), kept on the
	// job so that it can be shown, resubmitted and resolved again.
	Document json.RawMessage `json:"document,omitempty"`
}

// SubmittedStep is one step of a submission.
type SubmittedStep struct {
	Name        string   `json:"name"`
	DisplayName string   `json:"display_name,omitempty"`
	Spec        StepSpec `json:"spec"`
}

// Submit checks a submission against the workspace and stores it as jobs
// the scheduler will run. Everything that can be checked before anything
// runs is checked here, and nothing is stored unless all of it passes.
func (s *Scheduler) Submit(ctx context.Context, workspace, principal string, sub *Submission) (*wharf.Job, error) {
	if err := s.validate(ctx, workspace, sub); err != nil {
		return nil, err
	}
	name := sub.Name
	if name == "" {
		name = NewJobName()
	}
	if sub.ExperimentName == "" {
		sub.ExperimentName = "Default"
	}
	display := sub.DisplayName
	if display == "" {
		display = name
	}
	top := &wharf.Job{Workspace: workspace, Name: name, Type: sub.Type, DisplayName: display,
		ExperimentName: sub.ExperimentName, Description: sub.Description, Tags: sub.Tags,
		Status: wharf.JobNotStarted, SubmittedBy: principal, Document: sub.Document, Resolved: resolved(sub)}
	jobs := []*wharf.Job{top}
	if sub.Type == wharf.JobTypeCommand || sub.Type == wharf.JobTypeSweep {
		spec, err := json.Marshal(sub.Steps[0].Spec)
		if err != nil {
			return nil, err
		}
		top.Spec, top.Compute = spec, sub.Steps[0].Spec.Compute
	} else {
		spec, err := json.Marshal(sub.Pipeline)
		if err != nil {
			return nil, err
		}
		top.Spec = spec
		for _, st := range sub.Steps {
			spec, err := json.Marshal(st.Spec)
			if err != nil {
				return nil, err
			}
			display := st.DisplayName
			if display == "" {
				display = st.Name
			}
			typ := wharf.JobTypeCommand
			if st.Spec.Sweep != nil {
				typ = wharf.JobTypeSweep
			}
			jobs = append(jobs, &wharf.Job{Workspace: workspace, Name: StepJobName(name, st.Name), Parent: name, Step: st.Name,
				Type: typ, DisplayName: display, ExperimentName: sub.ExperimentName,
				Status: wharf.JobNotStarted, Compute: st.Spec.Compute, Spec: spec, SubmittedBy: principal,
				Tags: stepTags(st.Name)})
		}
	}
	if err := s.Store.CreateJobs(ctx, jobs); err != nil {
		return nil, err
	}
	s.track(jobs)
	return top, nil
}

// StepJobName is the name of the job that runs step of pipeline job
// parent. A step of a pipeline component is named by its path
// (train_and_eval/train), whose slashes become '-', which step names
// never hold, so that the job's name is a valid name.
func StepJobName(parent, step string) string {
	return parent + "_" + strings.ReplaceAll(step, "/", "-")
}

// ComponentStepTag names, on the job of a step of a pipeline component,
// the pipeline component step it belongs to.
const ComponentStepTag = "wharf.pipeline_component_step"

// stepTags are the tags a step's job starts with.
func stepTags(step string) map[string]string {
	tags := map[string]string{}
	if i := strings.LastIndex(step, "/"); i >= 0 {
		tags[ComponentStepTag] = step[:i]
	}
	return tags
}

// validateStepName checks a step name: a name, or the path of a step of
// a pipeline component, names joined by '/'.
func validateStepName(field, name string) error {
	for _, part := range strings.Split(name, "/") {
		if err := wharf.ValidateName(field, part); err != nil {
			if part == name {
				return err
			}
			return wharf.Errorf(wharf.EINVALID, "%s %q is not a valid step path: each part needs 1-63 letters, digits, '-' or '_', starting with a letter or digit", field, name).WithField(field)
		}
	}
	return nil
}

// resolved lists the data each step of a submission reads, as resolved
// when it was made, by "step.input" ("input" for a command job).
func resolved(sub *Submission) map[string]wharf.JobValue {
	out := map[string]wharf.JobValue{}
	for _, st := range sub.Steps {
		for name, in := range st.Spec.Inputs {
			if in.Digest == "" && in.URL == "" {
				continue
			}
			key := name
			if sub.Type == wharf.JobTypePipeline {
				key = st.Name + "." + name
			}
			out[key] = wharf.JobValue{Type: in.Type, Digest: in.Digest, Kind: in.Kind, Source: in.Source}
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

func (s *Scheduler) validate(ctx context.Context, workspace string, sub *Submission) error {
	switch sub.Type {
	case wharf.JobTypeCommand, wharf.JobTypeSweep:
		if len(sub.Steps) != 1 {
			return wharf.Errorf(wharf.EINVALID, "a %s job has exactly one step, got %d", sub.Type, len(sub.Steps)).WithField("steps")
		}
		if sub.Pipeline != nil {
			return wharf.Errorf(wharf.EINVALID, "a %s job has no pipeline settings", sub.Type).WithField("pipeline")
		}
		if (sub.Type == wharf.JobTypeSweep) != (sub.Steps[0].Spec.Sweep != nil) {
			return wharf.Errorf(wharf.EINVALID, "a sweep job, and only a sweep job, has sweep settings").WithField("steps[0].spec.sweep")
		}
	case wharf.JobTypePipeline:
		if len(sub.Steps) == 0 {
			return wharf.Errorf(wharf.EINVALID, "a pipeline job needs at least one step").WithField("steps")
		}
		if sub.Pipeline == nil {
			sub.Pipeline = &PipelineSpec{}
		}
	default:
		return wharf.Errorf(wharf.EINVALID, "type %q is not command, pipeline or sweep", sub.Type).WithField("type")
	}
	if sub.Name != "" {
		if err := wharf.ValidateName("name", sub.Name); err != nil {
			return err
		}
	}
	steps := map[string]*StepSpec{}
	for i := range sub.Steps {
		st := &sub.Steps[i]
		field := fmt.Sprintf("steps[%d]", i)
		if err := validateStepName(field+".name", st.Name); err != nil {
			return err
		}
		if steps[st.Name] != nil {
			return wharf.Errorf(wharf.EINVALID, "step %s appears twice", st.Name).WithField(field + ".name")
		}
		steps[st.Name] = &st.Spec
	}
	// Steps of one pipeline mostly share a compute and a code folder:
	// each is looked up once.
	computes, blobs := map[string]bool{}, map[string]bool{}
	mustBlob := func(digest, step, field string) error {
		if blobs[digest] {
			return nil
		}
		if err := s.mustBlob(ctx, workspace, digest, step, field); err != nil {
			return err
		}
		blobs[digest] = true
		return nil
	}
	for i := range sub.Steps {
		st := &sub.Steps[i]
		field := fmt.Sprintf("steps[%d].spec", i)
		if strings.TrimSpace(st.Spec.Command) == "" {
			return wharf.Errorf(wharf.EINVALID, "step %s has no command", st.Name).WithField(field + ".command")
		}
		if err := validSweep(st.Spec.Sweep); err != nil {
			return wharf.Errorf(wharf.EINVALID, "step %s: %v", st.Name, err).WithField(field + ".sweep")
		}
		if !computes[st.Spec.Compute] {
			if _, err := s.Store.FindCompute(ctx, workspace, st.Spec.Compute); err != nil {
				if wharf.ErrorCode(err) == wharf.ENOTFOUND {
					return wharf.Errorf(wharf.EINVALID, "step %s: compute %q does not exist in workspace %s",
						st.Name, st.Spec.Compute, workspace).WithField(field + ".compute")
				}
				return err
			}
			computes[st.Spec.Compute] = true
		}
		if st.Spec.CodeDigest != "" {
			if err := mustBlob(st.Spec.CodeDigest, st.Name, field+".code_digest"); err != nil {
				return err
			}
		}
		deps := map[string]bool{}
		for name, in := range st.Spec.Inputs {
			f := field + ".inputs." + name
			switch {
			case in.Step != "":
				up := steps[in.Step]
				if up == nil {
					return wharf.Errorf(wharf.EINVALID, "step %s input %s reads step %s, which does not exist",
						st.Name, name, in.Step).WithField(f)
				}
				if _, ok := up.Outputs[in.Output]; !ok {
					return wharf.Errorf(wharf.EINVALID, "step %s input %s reads output %s of step %s, which has no such output",
						st.Name, name, in.Output, in.Step).WithField(f)
				}
				deps[in.Step] = true
			case in.Digest != "":
				if err := mustBlob(in.Digest, st.Name, f); err != nil {
					return err
				}
			}
		}
		st.Spec.Deps = st.Spec.Deps[:0]
		for d := range deps {
			st.Spec.Deps = append(st.Spec.Deps, d)
		}
		slices.Sort(st.Spec.Deps)
		if sub.Pipeline != nil && sub.Pipeline.ForceRerun {
			st.Spec.ForceRerun = true
		}
	}
	if cycle := findCycle(steps); len(cycle) > 0 {
		return wharf.Errorf(wharf.EINVALID, "the steps depend on each other in a cycle: %s",
			strings.Join(cycle, " -> ")).WithField("steps")
	}
	if sub.Pipeline != nil {
		for name, ref := range sub.Pipeline.Outputs {
			up := steps[ref.Step]
			if up == nil {
				return wharf.Errorf(wharf.EINVALID, "pipeline output %s is bound to step %s, which does not exist", name, ref.Step).WithField("pipeline.outputs." + name)
			}
			if _, ok := up.Outputs[ref.Output]; !ok {
				return wharf.Errorf(wharf.EINVALID, "pipeline output %s is bound to %s.%s, which does not exist", name, ref.Step, ref.Output).WithField("pipeline.outputs." + name)
			}
		}
	}
	return nil
}

// mustBlob checks that content a step names is stored and that the
// workspace holds it, snapshot files included: a job must not read, and
// then publish as its outputs, content it knows only by digest.
func (s *Scheduler) mustBlob(ctx context.Context, workspace, digest, step, field string) error {
	err := snapshot.CheckReferenced(ctx, s.Store, s.Blobs, workspace, digest, field)
	var we *wharf.Error
	if errors.As(err, &we) && we.Code == wharf.EINVALID {
		return wharf.Errorf(wharf.EINVALID, "step %s: %s", step, we.Message).WithField(field)
	}
	return err
}

// findCycle returns the steps of a dependency cycle, first repeated at the
// end, or nil when the graph is acyclic.
func findCycle(steps map[string]*StepSpec) []string {
	const (
		unseen = iota
		onPath
		done
	)
	state := map[string]int{}
	var path []string
	var visit func(n string) []string
	visit = func(n string) []string {
		state[n] = onPath
		path = append(path, n)
		for _, d := range steps[n].Deps {
			switch state[d] {
			case onPath:
				i := slices.Index(path, d)
				return append(slices.Clone(path[i:]), d)
			case unseen:
				if c := visit(d); c != nil {
					return c
				}
			}
		}
		path = path[:len(path)-1]
		state[n] = done
		return nil
	}
	for _, n := range sortedKeys(steps) {
		if state[n] == unseen {
			if c := visit(n); c != nil {
				return c
			}
		}
	}
	return nil
}

var (
	nameAdjectives = []string{"amber", "brave", "calm", "clever", "eager", "gentle", "happy", "honest", "keen", "lively",
		"lucid", "mellow", "nimble", "plucky", "quiet", "quirky", "rapid", "sharp", "silly", "steady", "sunny", "tidy",
		"upbeat", "vivid", "witty", "zesty"}
	nameNouns = []string{"anchor", "barge", "buoy", "cargo", "crane", "dock", "ferry", "harbor", "hull", "keel",
		"lantern", "mast", "oar", "pier", "quay", "raft", "rope", "sail", "skiff", "tide", "wave", "yacht"}
)

// NewJobName returns a name in az ml's style, two words and a random
// suffix, e.g. calm_ferry_k3x9q2m1.
func NewJobName() string {
	return jobName(func(n int) int {
		i, _ := rand.Int(rand.Reader, big.NewInt(int64(n)))
		return int(i.Int64())
	})
}

// jobName builds a name in NewJobName's style from draw, which returns a
// number in [0, n).
func jobName(draw func(n int) int) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	suffix := make([]byte, 8)
	for i := range suffix {
		suffix[i] = alphabet[draw(len(alphabet))]
	}
	return nameAdjectives[draw(len(nameAdjectives))] + "_" + nameNouns[draw(len(nameNouns))] + "_" + string(suffix)
}

// Rerun submits a finished job again under a new name. With fromFailed,
// the steps that completed keep their results (whether or not they are
// deterministic) and only the others run, with what depends on them;
// without it, every step runs again, reuse off. Either way it runs on the
// data the job resolved: a rerun repeats the job, where submitting its
// document again resolves @latest and datastore folders afresh.
func (s *Scheduler) Rerun(ctx context.Context, workspace, name, principal string, fromFailed bool) (*wharf.Job, error) {
	orig, err := s.Store.FindJob(ctx, workspace, name)
	if err != nil {
		return nil, err
	}
	if !wharf.JobTerminal(orig.Status) {
		return nil, wharf.Errorf(wharf.ECONFLICT, "job %s is still %s; rerun it once it has ended", name, orig.Status)
	}
	if fromFailed && orig.Status == wharf.JobCompleted {
		return nil, wharf.Errorf(wharf.EINVALID, "job %s completed; nothing failed to rerun", name).WithField("from_failed")
	}
	newName := NewJobName()
	top := &wharf.Job{Workspace: workspace, Name: newName, Type: orig.Type, DisplayName: orig.DisplayName,
		ExperimentName: orig.ExperimentName, Description: orig.Description, Tags: maps.Clone(orig.Tags),
		Status: wharf.JobNotStarted, Compute: orig.Compute, SubmittedBy: principal, Spec: orig.Spec,
		Document: orig.Document, Resolved: orig.Resolved}
	if top.Tags == nil {
		top.Tags = map[string]string{}
	}
	top.Tags["wharf.rerun_of"] = name
	jobs := []*wharf.Job{top}
	now := s.Now().UTC()
	if orig.Type == wharf.JobTypeCommand || orig.Type == wharf.JobTypeSweep {
		// A sweep's trials are made as it runs: it is rerun whole.
		if !fromFailed || orig.Type == wharf.JobTypeSweep {
			spec, err := forceRerun(orig.Spec)
			if err != nil {
				return nil, err
			}
			top.Spec = spec
		}
	} else {
		steps, err := s.Store.ListJobs(ctx, workspace, name, 0)
		if err != nil {
			return nil, err
		}
		for _, st := range steps {
			j := &wharf.Job{Workspace: workspace, Name: StepJobName(newName, st.Step), Parent: newName, Step: st.Step,
				Type: st.Type, DisplayName: st.DisplayName, ExperimentName: st.ExperimentName, Status: wharf.JobNotStarted,
				Compute: st.Compute, Spec: st.Spec, SubmittedBy: principal, Tags: stepTags(st.Step)}
			switch {
			case fromFailed && st.Status == wharf.JobCompleted:
				origin := st.Name
				if st.ReusedFrom != "" {
					origin = st.ReusedFrom
				}
				j.Status, j.Outputs, j.Inputs, j.ReuseKey = wharf.JobCompleted, st.Outputs, st.Inputs, st.ReuseKey
				j.ReusedFrom, j.ReuseNote = origin, "reused: it completed in "+name+", which was rerun from its failed steps"
				j.RunID, j.ExperimentID, j.Artifacts = st.RunID, st.ExperimentID, st.Artifacts
				j.StartedAt, j.EndedAt = &now, &now
			case !fromFailed:
				spec, err := forceRerun(st.Spec)
				if err != nil {
					return nil, err
				}
				j.Spec = spec
			}
			jobs = append(jobs, j)
		}
	}
	if err := s.Store.CreateJobs(ctx, jobs); err != nil {
		return nil, err
	}
	s.track(jobs)
	return top, nil
}

// forceRerun turns reuse off in a stored step spec.
func forceRerun(raw json.RawMessage) (json.RawMessage, error) {
	var spec StepSpec
	if err := json.Unmarshal(raw, &spec); err != nil {
		return nil, err
	}
	spec.ForceRerun = true
	return json.Marshal(spec)
}
