package scheduler

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/blob"
	"github.com/wharfml/wharf/jobspec"
	"github.com/wharfml/wharf/local"
	"github.com/wharfml/wharf/mlflow"
	"github.com/wharfml/wharf/pyenv"
	"github.com/wharfml/wharf/sandbox"
	"github.com/wharfml/wharf/snapshot"
)

// runStep runs one attempt of a step, or reuses an earlier result. deps
// are the completed steps it reads from, by name.
func (s *Scheduler) runStep(ctx context.Context, st, parent *wharf.Job, deps map[string]*wharf.Job, spec *StepSpec) error {
	values, resolved, err := resolveInputs(spec, deps)
	if err != nil {
		return err
	}
	key := reuseKey(spec, resolved)
	if f := s.inFlightOnCluster(st); f != nil {
		return s.followOnCluster(ctx, st, spec, f, key)
	}
	note := ""
	switch fetched := urlInputs(spec); {
	case fetched != "":
		// What a URL holds is known only once it is downloaded: the
		// step neither takes an earlier result nor leaves its own.
		note = "not reused: input " + fetched + " is read from a URL when the step runs, so its content is not known beforehand"
		key = ""
	case !spec.Deterministic:
		note = "not reused: the component is not deterministic (is_deterministic: false)"
	case spec.ForceRerun:
		note = "not reused: force_rerun is set"
	default:
		prev, err := s.Store.FindReusableJob(ctx, st.Workspace, key)
		switch {
		case err == nil && prev.Name != st.Name:
			return s.reuse(ctx, st, spec, prev, key, values)
		case err != nil && wharf.ErrorCode(err) != wharf.ENOTFOUND:
			return err
		}
		note = "not reused: no earlier completed step had the same definition, code, environment and input content"
	}

	compute, err := s.Store.FindCompute(ctx, st.Workspace, spec.Compute)
	if err != nil {
		return fmt.Errorf("compute %s: %w", spec.Compute, err)
	}
	attempt := len(st.Attempts) + 1
	now := s.Now().UTC()
	at := &attemptRec{s: s, n: attempt, fields: func(j *wharf.Job) {
		j.ReuseKey, j.ReuseNote, j.Inputs = "", note, values
		j.Compute = spec.Compute
		if j.StartedAt == nil {
			j.StartedAt = &now
		}
	}}
	defer at.settle()
	logPath := s.LogPath(st.Workspace, st.Name, attempt)
	if err := os.MkdirAll(filepath.Dir(logPath), 0o700); err != nil {
		return err
	}
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	say := func(format string, args ...any) {
		fmt.Fprintf(logf, "[wharf] "+format+"\n", args...)
	}
	say("attempt %d of step %s queued on compute %s (at most %d at once)", attempt, st.Name, compute.Name, compute.MaxInstances)

	onCluster := compute.Type == wharf.ComputeTypeRay
	if why := s.tooFewGPUs(spec, compute); why != "" && !onCluster {
		// Waiting would never end.
		return s.failQueued(ctx, st, at, why, logf)
	}

	// Only a step that waits for its slot (or its GPUs) is recorded as
	// Queued; one that gets it at once is next written as Running, or as
	// Starting if staging takes a while (see attemptRec).
	queued := func() error {
		if at.fields == nil {
			return nil // written already
		}
		st, err = s.update(ctx, st.Workspace, st.Name, func(j *wharf.Job) error {
			j.Status = wharf.JobQueued
			at.fields(j)
			return nil
		})
		if err == nil {
			at.fields = nil
		}
		return err
	}
	slot := st.Workspace + "/" + compute.Name
	release, free := s.slots.TryAcquire(slot, compute.MaxInstances)
	if !free {
		if err := queued(); err != nil {
			return err
		}
		if release, err = s.slots.Acquire(ctx, slot, compute.MaxInstances); err != nil {
			return s.interrupted(st, at, "canceled while queued")
		}
	}
	defer release()
	if onCluster {
		// Ray places the task on the cluster's own resources.
		return s.runOnCluster(ctx, st, parent, spec, compute, at, values, key, release, logf)
	}
	perGPU, _ := gpusPerInstance(spec, compute)
	gpus, free := s.GPUs.TryAcquire(perGPU * instances(spec))
	if !free {
		say("waiting for %d GPUs held by other steps", perGPU*instances(spec))
		if err := queued(); err != nil {
			return err
		}
		if gpus, err = s.GPUs.Acquire(ctx, perGPU*instances(spec)); err != nil {
			return s.interrupted(st, at, "canceled while queued")
		}
	}
	defer s.GPUs.Release(gpus)
	at.started = s.Now().UTC()
	at.passing(ctx, st, wharf.JobStarting)
	dir := filepath.Join(s.jobDir(st.Workspace, st.Name), "attempt-"+strconv.Itoa(attempt))
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	staging := time.Now()
	workDir, inputPaths, outputPaths, verified, err := s.stage(ctx, dir, spec, values)
	if err != nil {
		return s.attemptFailed(ctx, st, at, spec, nil, "staging inputs: "+err.Error(), logf)
	}
	// What the step reads, by content: a datastore path's bytes as they
	// were when the job was submitted.
	for _, name := range sortedKeys(values) {
		if v := values[name]; v.Digest != "" && v.Source != "" {
			say("input %s: %s %s, from %s", name, v.Kind, v.Digest, v.Source)
		} else if v.Digest != "" {
			say("input %s: %s %s", name, v.Kind, v.Digest)
		}
	}
	say("inputs staged in %.1f s", time.Since(staging).Seconds())

	// Preparing is a status of its own only where there is something to
	// prepare, a Python environment to build or find; an image's steps
	// run with the host's tools at once.
	if e := spec.Environment; e.PythonVersion != "" || len(e.Pip) > 0 || len(e.Conda) > 0 {
		at.passing(ctx, st, wharf.JobPreparing)
	}
	say("preparing environment %s", envName(spec.Environment))
	if note := spec.Environment.Note; note != "" {
		say("%s", note)
	}
	if s.awaitWarm(ctx, st.Workspace, spec.Component) {
		say("waited for the warm Python process being prepared for %s", spec.Component)
	}
	var env *pyenv.Env
	if s.Envs != nil {
		env, err = s.Envs.Ensure(ctx, pyenv.Spec{PythonVersion: spec.Environment.PythonVersion,
			Pip: spec.Environment.Pip, Conda: spec.Environment.Conda}, logf)
		if err != nil {
			if ctx.Err() != nil {
				return s.interrupted(st, at, "canceled while preparing")
			}
			return s.attemptFailed(ctx, st, at, spec, nil, "preparing the environment failed: "+err.Error(), logf)
		}
	}
	if s.Envs != nil {
		// What the step installs goes into a layer of its own, not
		// into the host's Python or the shared environment.
		if env, err = pyenv.Overlay(ctx, filepath.Join(dir, "venv"), env, s.Envs.HostPython); err != nil {
			return s.attemptFailed(ctx, st, at, spec, nil, "preparing the environment failed: "+err.Error(), logf)
		}
	}
	command, runEnv, bad, err := s.commandAndEnv(ctx, st, parent, spec, env, dir, inputPaths, outputPaths)
	if bad != nil {
		return s.attemptFailed(ctx, st, at, spec, nil, "rendering the command: "+bad.Error(), logf)
	}
	if err != nil {
		return err
	}
	task := &local.Task{ID: st.Name + "#" + strconv.Itoa(attempt), Argv: []string{"/bin/sh", "-c", command},
		Dir: workDir, Env: runEnv, LogPath: logPath, Timeout: time.Duration(spec.TimeoutSeconds) * time.Second}
	if err := s.confine(task, dir, st, env); err != nil {
		return s.attemptFailed(ctx, st, at, spec, nil, "preparing the sandbox: "+err.Error(), logf)
	}
	if s.Sandbox != nil && len(gpus) > 0 {
		task.Mounts = append(task.Mounts, gpuDevices()...)
	}
	if s.Sandbox != nil {
		withdraw, err := s.shareWithZygote(task, st.Workspace, spec.Component, st.Name)
		if err != nil {
			return s.attemptFailed(ctx, st, at, spec, nil, "sharing the job with its warm Python process: "+err.Error(), logf)
		}
		defer withdraw()
	}
	_ = os.Remove(s.errorFile(st))
	say("running: %s", command)
	// Running is recorded with the process, before Run acts on it, so
	// that a server that dies from here on finds the process to stop.
	at.settle()
	var res local.Result
	who := "the command"
	if spec.Distribution == nil {
		if visible, hide := s.visibleGPUs(gpus, spec, 0); hide {
			task.Env = withVars(task.Env, map[string]string{"CUDA_VISIBLE_DEVICES": visible}, spec)
		}
		res = s.Exec.Run(ctx, task, func(p local.Process) {
			_, _ = at.set(context.WithoutCancel(ctx), st, wharf.JobRunning, &p)
		})
	} else if spec.Distribution.Type == "mpi" {
		var failed *rankFailure
		if res, failed, err = s.runMPIStep(ctx, task, spec, command, gpus,
			func(label string) string { return s.rankLogPath(st.Workspace, st.Name, attempt, label) },
			logf, func(p local.Process) { at.addRank(context.WithoutCancel(ctx), st, p) }); err != nil {
			return s.attemptFailed(ctx, st, at, spec, nil, err.Error(), logf)
		}
		if failed != nil {
			who = failed.Label
		}
	} else {
		ranks, err := planRanks(spec.Distribution, freeLocalPort)
		if err != nil {
			return s.attemptFailed(ctx, st, at, spec, nil, err.Error(), logf)
		}
		say("starting %d processes (distribution %s, %d instances)", len(ranks), spec.Distribution.Type, instances(spec))
		var failed *rankFailure
		res, failed = s.runRanks(ctx, task, ranks,
			func(label string) string { return s.rankLogPath(st.Workspace, st.Name, attempt, label) },
			func(r rank) []string {
				vars := r.Env
				if visible, hide := s.visibleGPUs(gpus, spec, r.Node); hide {
					vars["CUDA_VISIBLE_DEVICES"] = visible
				}
				return withVars(task.Env, vars, spec)
			}, logf, func(p local.Process) { at.addRank(context.WithoutCancel(ctx), st, p) })
		if failed != nil {
			who = failed.Label
			if res.Err != nil {
				res.Err = fmt.Errorf("%s: %w", who, res.Err)
			}
		}
	}
	return s.finishAttempt(ctx, st, at, spec, &res, who, verified, key, dir, workDir, outputPaths, release, logf)
}

// finishAttempt ends an attempt by how its command ended: failed, cancelled,
// timed out, or completed with its outputs saved. who names the process
// in a failure ("the command", "rank 1").
func (s *Scheduler) finishAttempt(ctx context.Context, st *wharf.Job, at *attemptRec, spec *StepSpec, res *local.Result, who string,
	verified func() error, key, dir, workDir string, outputPaths map[string]string, release func(), logf io.Writer) error {
	switch {
	case res.Err != nil:
		return s.attemptFailed(ctx, st, at, spec, res, res.Err.Error(), logf)
	case res.Canceled:
		if s.ctx.Err() != nil {
			// The server is stopping: the attempt is left as it is and
			// the next server recovers it.
			return nil
		}
		return s.interrupted(st, at, "canceled")
	case res.TimedOut:
		return s.attemptFailed(ctx, st, at, spec, res,
			fmt.Sprintf("timed out after %d seconds (limits.timeout)", spec.TimeoutSeconds), logf)
	case res.ExitCode != 0:
		return s.attemptFailed(ctx, st, at, spec, res, fmt.Sprintf("%s exited with code %d", who, res.ExitCode)+s.failureReason(st), logf)
	}

	return s.completeAttempt(ctx, st, at, spec, res, verified, key, dir, workDir, outputPaths, release, logf)
}

// completeAttempt ends an attempt whose command exited 0: it saves the
// outputs and default artifacts and records the step Completed.
// release gives the attempt's compute slot back.
func (s *Scheduler) completeAttempt(ctx context.Context, st *wharf.Job, at *attemptRec, spec *StepSpec, res *local.Result,
	verified func() error, key, dir, workDir string, outputPaths map[string]string, release func(), logf io.Writer) error {
	say := func(format string, args ...any) {
		fmt.Fprintf(logf, "[wharf] "+format+"\n", args...)
	}
	if err := verified(); err != nil {
		// Linked inputs were being verified while the step ran; what it
		// made from a corrupt one is not kept.
		return s.attemptFailed(ctx, st, at, spec, res, "verifying inputs: "+err.Error(), logf)
	}
	at.passing(ctx, st, wharf.JobFinalizing)
	outputs, err := s.commitOutputs(ctx, st.Workspace, spec, outputPaths)
	if err == nil {
		err = s.recordOutputPaths(ctx, st, spec, outputs)
	}
	var artifacts *wharf.JobOutput
	if err == nil {
		artifacts, err = s.commitArtifacts(ctx, st, workDir)
	}
	if err != nil {
		return s.attemptFailed(ctx, st, at, spec, res, "saving outputs: "+err.Error(), logf)
	}
	say("completed; outputs saved")
	end := s.Now().UTC()
	code := 0
	at.settle()
	done, err := s.update(ctx, st.Workspace, st.Name, func(j *wharf.Job) error {
		a := at.apply(j)
		a.Status, a.ExitCode, a.Ended = wharf.JobCompleted, &code, &end
		a.ProcessStarted, a.ProcessEnded = processTimes(res)
		keepRun(j, st)
		j.Status = wharf.JobCompleted
		j.Outputs = outputs
		j.Artifacts = artifacts
		j.ReuseKey = key
		j.EndedAt = &end
		j.Error = ""
		return nil
	})
	if err != nil {
		return err
	}
	// The attempt is over: its slot goes to the next step now, not
	// after its run is closed and its folder cleaned.
	release()
	s.endRun(ctx, done)
	_ = os.RemoveAll(filepath.Join(dir, "outputs"))
	return nil
}

// commandAndEnv renders the step's command and builds its process's
// environment. The step's run is created here and recorded on the job with
// the process (keepRun), not in a write of its own. bad is the step's
// mistake (its command does not render); err is the server's.
func (s *Scheduler) commandAndEnv(ctx context.Context, st, parent *wharf.Job, spec *StepSpec, env *pyenv.Env, dir string,
	inputPaths, outputPaths map[string]string) (command string, runEnv []string, bad, err error) {
	if command, bad = jobspec.RenderCommand(spec.Command, inputPaths, outputPaths); bad != nil {
		return "", nil, bad, nil
	}
	if parent != nil {
		if parent, err = s.pipelineRun(ctx, parent); err != nil {
			return "", nil, nil, err
		}
	}
	runEnv, err = s.processEnv(ctx, st, parent, spec, env, dir)
	return command, runEnv, nil, err
}

// resolveInputs gives each input its value for this run: literal text,
// data fixed at submission, or the digest of the upstream output.
func resolveInputs(spec *StepSpec, siblings map[string]*wharf.Job) (map[string]wharf.JobValue, map[string]string, error) {
	values := map[string]wharf.JobValue{}
	resolved := map[string]string{}
	for name, in := range spec.Inputs {
		switch {
		case in.Step != "":
			up := siblings[in.Step]
			if up == nil {
				return nil, nil, fmt.Errorf("input %s: upstream step %s does not exist", name, in.Step)
			}
			out, ok := up.Outputs[in.Output]
			if !ok {
				return nil, nil, fmt.Errorf("input %s: step %s produced no output %s", name, in.Step, in.Output)
			}
			values[name] = wharf.JobValue{Type: in.Type, Digest: out.Digest, Kind: out.Kind, Source: in.Step + "." + in.Output}
			resolved[name] = "data:" + out.Digest
		case in.Digest != "":
			values[name] = wharf.JobValue{Type: in.Type, Digest: in.Digest, Kind: in.Kind, Source: in.Source}
			resolved[name] = "data:" + in.Digest
		case in.URL != "":
			values[name] = wharf.JobValue{Type: in.Type, Kind: KindFile, Source: in.Source}
			resolved[name] = "url:" + in.URL
		case in.Literal != nil:
			values[name] = wharf.JobValue{Type: in.Type, Value: *in.Literal}
			resolved[name] = "lit:" + *in.Literal
		}
	}
	return values, resolved, nil
}

// reuse completes a step with the outputs of an earlier identical one,
// filed under this step's own output paths, which may differ from the
// earlier one's: a later job reading a path finds them there.
func (s *Scheduler) reuse(ctx context.Context, st *wharf.Job, spec *StepSpec, prev *wharf.Job, key string, values map[string]wharf.JobValue) error {
	origin := prev.Name
	if prev.ReusedFrom != "" {
		origin = prev.ReusedFrom
	}
	if err := s.recordOutputPaths(ctx, st, spec, prev.Outputs); err != nil {
		return err
	}
	now := s.Now().UTC()
	done, err := s.update(ctx, st.Workspace, st.Name, func(j *wharf.Job) error {
		j.Status = wharf.JobCompleted
		j.Outputs = prev.Outputs
		j.Artifacts = prev.Artifacts
		j.ReuseKey = key
		j.ReusedFrom = origin
		j.ReuseNote = "reused: same definition, code, environment and input content as " + origin
		j.Inputs = values
		j.RunID, j.ExperimentID = prev.RunID, prev.ExperimentID
		if j.StartedAt == nil {
			j.StartedAt = &now
		}
		j.EndedAt = &now
		return nil
	})
	if err == nil && done.Parent == "" {
		s.endRun(ctx, done)
	}
	return err
}

// processTimes is when a process started and exited, both nil when none
// was started. The exit, not the moment its group was found gone: that
// is looked for only after the write that records the process, which a
// quick process does not wait for.
func processTimes(r *local.Result) (started, ended *time.Time) {
	if r.Started.IsZero() || r.Exited.IsZero() {
		return nil, nil
	}
	s, e := r.Started.UTC(), r.Exited.UTC()
	return &s, &e
}

// keepRun records on j the tracking run that st, the scheduler's copy of
// the step, was given and the store may not hold yet (see ensureRun).
func keepRun(j, st *wharf.Job) {
	if j.RunID == "" && st.RunID != "" {
		j.RunID, j.ExperimentID = st.RunID, st.ExperimentID
	}
}

func lastAttempt(j *wharf.Job, n int) *wharf.JobAttempt {
	if len(j.Attempts) == 0 || j.Attempts[len(j.Attempts)-1].Number != n {
		return nil
	}
	return &j.Attempts[len(j.Attempts)-1]
}

// errorFile is where a step's command may write why it failed: Wharf's
// own step programs (parallel-run) do, so that the step's error says more
// than an exit code. It is in the job's state folder, which the step may
// write.
func (s *Scheduler) errorFile(st *wharf.Job) string {
	return filepath.Join(s.jobDir(st.Workspace, st.Name), "state", "step-error.txt")
}

// failureReason is ": " and the first line of the step's error file, or
// "" when it wrote none.
func (s *Scheduler) failureReason(st *wharf.Job) string {
	f, err := openRegularNoFollow(s.errorFile(st))
	if err != nil {
		return ""
	}
	defer f.Close()
	b, _ := io.ReadAll(io.LimitReader(f, 2048))
	line, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	if line == "" {
		return ""
	}
	return ": " + line
}

// openRegularNoFollow opens a file that user code may have written, for
// the server to read, only if it is a regular file itself: the step could
// have put a link to the server's own files there (or a FIFO, which would
// block the read). The check holds for the file opened, not just the name.
func openRegularNoFollow(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	return f, nil
}

// attemptFailed ends an attempt as failed; the step is queued again while
// retries remain, and fails otherwise. ran is how its process ended, nil
// when it failed before one was started.
func (s *Scheduler) attemptFailed(ctx context.Context, st *wharf.Job, at *attemptRec, spec *StepSpec, ran *local.Result, reason string, log io.Writer) error {
	if s.ctx.Err() != nil {
		// The scheduler is stopping (the server shuts down, or hands
		// the scheduler to another): whatever failed may have failed for
		// that, so the attempt is left as it is and the next scheduler
		// recovers it, as an interruption rather than a failure.
		return nil
	}
	at.settle()
	n := at.n
	fmt.Fprintf(log, "[wharf] attempt %d failed: %s\n", n, reason)
	var code *int
	if ran != nil && ran.Err == nil {
		code = &ran.ExitCode
	}
	now := s.Now().UTC()
	ctx = context.WithoutCancel(ctx)
	done, err := s.update(ctx, st.Workspace, st.Name, func(j *wharf.Job) error {
		a := at.apply(j)
		a.Status, a.ExitCode, a.Error, a.Ended = wharf.JobFailed, code, reason, &now
		a.PID, a.PGID, a.ProcStart, a.Ranks, a.Machine = 0, 0, 0, nil, ""
		keepRun(j, st)
		if ran != nil {
			a.ProcessStarted, a.ProcessEnded = processTimes(ran)
		}
		switch {
		case j.Status == wharf.JobCancelRequested:
			j.Status = wharf.JobCanceled
			j.EndedAt = &now
		case failures(j) <= spec.MaxRetries:
			j.Status = wharf.JobQueued
			j.Error = fmt.Sprintf("attempt %d failed: %s; retrying (%d of %d retries)", n, reason, failures(j), spec.MaxRetries)
		default:
			j.Status = wharf.JobFailed
			j.Error = reason
			j.EndedAt = &now
		}
		return nil
	})
	if err != nil {
		return err
	}
	if done.Status == wharf.JobQueued {
		fmt.Fprintf(log, "[wharf] retrying: %d of %d retries\n", n, spec.MaxRetries)
	}
	s.endRun(ctx, done)
	return nil
}

// failures counts the attempts that failed by themselves, leaving out the
// ones a server stop interrupted.
func failures(j *wharf.Job) int {
	n := 0
	for _, a := range j.Attempts {
		if a.Status == wharf.JobFailed && !strings.HasPrefix(a.Error, interruptedPrefix) {
			n++
		}
	}
	return n
}

// interrupted ends an attempt that was canceled: its record, once it had
// its compute slot (at.started), and the step.
func (s *Scheduler) interrupted(st *wharf.Job, at *attemptRec, reason string) error {
	at.settle()
	ctx := context.WithoutCancel(s.ctx)
	now := s.Now().UTC()
	done, err := s.update(ctx, st.Workspace, st.Name, func(j *wharf.Job) error {
		a := lastAttempt(j, at.n)
		if a == nil && !at.started.IsZero() {
			a = at.apply(j)
		}
		if a != nil {
			a.Status, a.Error, a.Ended = wharf.JobCanceled, reason, &now
			a.PID, a.PGID, a.ProcStart, a.Ranks, a.Machine = 0, 0, 0, nil, ""
		}
		keepRun(j, st)
		if !wharf.JobTerminal(j.Status) {
			if j.Status == wharf.JobCancelRequested && j.Error != "" {
				reason = j.Error
			}
			j.Status = wharf.JobCanceled
			j.Error = reason
			j.EndedAt = &now
		}
		return nil
	})
	if err == nil {
		s.endRun(ctx, done)
	}
	return err
}

// stage lays out an attempt: the code snapshot as the working directory,
// with ./outputs and ./logs in it, each data input, and an empty folder
// per output (for a uri_file output, the folder its file goes in). It
// returns the
// working directory and the text each input and output placeholder
// renders to.
func (s *Scheduler) stage(ctx context.Context, dir string, spec *StepSpec, values map[string]wharf.JobValue) (
	workDir string, inputs, outputs map[string]string, verified func() error, err error) {
	workDir = filepath.Join(dir, "code")
	if spec.CodeDigest != "" {
		if err := snapshot.Materialize(ctx, spec.CodeDigest, s.Blobs, workDir); err != nil {
			return "", nil, nil, nil, fmt.Errorf("code: %w", err)
		}
	}
	// ./outputs and ./logs, as Azure ML makes them: what the step leaves
	// there is kept as its default artifacts (see commitArtifacts).
	for _, d := range artifactDirs {
		if err := os.MkdirAll(filepath.Join(workDir, d), 0o700); err != nil {
			return "", nil, nil, nil, err
		}
	}
	// Linked inputs are verified in the background; verified waits.
	var checks []<-chan error
	verified = func() error {
		var errs []error
		for _, c := range checks {
			errs = append(errs, <-c)
		}
		return errors.Join(errs...)
	}
	inputs = map[string]string{}
	for name, v := range values {
		if in := spec.Inputs[name]; in.URL != "" {
			var p string
			if in.Kind == KindFolder {
				p, err = s.fetchFolderInput(ctx, in.URL, filepath.Join(dir, "inputs"), name)
			} else {
				p, err = fetchInput(ctx, atEndpoint(in.URL, s.BlobEndpoints), filepath.Join(dir, "inputs", name), in.FileName, name)
				if err == nil && !strings.EqualFold(in.Type, "uri_file") {
					// A file given to a folder input: the folder that holds it.
					p = filepath.Dir(p)
				}
			}
			if err != nil {
				return "", nil, nil, nil, fmt.Errorf("input %s: %w", name, err)
			}
			inputs[name] = p
			continue
		}
		if v.Digest == "" {
			inputs[name] = v.Value
			continue
		}
		dest := filepath.Join(dir, "inputs", name)
		switch v.Kind {
		case KindFolder:
			check, err := s.stageFolder(ctx, v.Digest, dest, spec.Inputs[name].Link)
			if err != nil {
				return "", nil, nil, nil, fmt.Errorf("input %s: %w", name, err)
			}
			if check != nil {
				checks = append(checks, check)
			}
			inputs[name] = dest
			if strings.EqualFold(v.Type, "uri_file") {
				// A uri_file bound to an upstream folder output is the
				// one file in it.
				if f, err := soleFile(dest); err == nil {
					inputs[name] = f
				}
			}
		default:
			fileName := spec.Inputs[name].FileName
			if fileName == "" {
				fileName = name
			}
			path := filepath.Join(dest, fileName)
			check, err := s.stageFile(ctx, v.Digest, path, spec.Inputs[name].Link)
			if err != nil {
				return "", nil, nil, nil, fmt.Errorf("input %s: %w", name, err)
			}
			if check != nil {
				checks = append(checks, check)
			}
			inputs[name] = path
			if !strings.EqualFold(v.Type, "uri_file") {
				inputs[name] = dest
			}
		}
	}
	outputs = outputPathsOf(dir, spec)
	for name := range spec.Outputs {
		if err := os.MkdirAll(filepath.Join(dir, "outputs", name), 0o700); err != nil {
			return "", nil, nil, nil, err
		}
	}
	return workDir, inputs, outputs, verified, nil
}

// outputPathsOf is where each output of an attempt whose folder is dir
// is written: a folder, or for a uri_file output the file, in a folder
// of its own.
func outputPathsOf(dir string, spec *StepSpec) map[string]string {
	outputs := map[string]string{}
	for name, o := range spec.Outputs {
		p := filepath.Join(dir, "outputs", name)
		outputs[name] = p
		if isFileOutput(o) {
			outputs[name] = filepath.Join(p, name)
		}
	}
	return outputs
}

// stageFolder puts a folder input at dest: its files hard links when the
// input allows it and the store can (then the returned channel gets the
// outcome of verifying them, which runs meanwhile), else verified copies.
func (s *Scheduler) stageFolder(ctx context.Context, digest, dest string, link bool) (<-chan error, error) {
	l, ok := s.Blobs.(wharf.BlobFileLinker)
	if !ok || !link {
		return nil, snapshot.Materialize(ctx, digest, s.Blobs, dest)
	}
	linked, err := snapshot.MaterializeLinked(ctx, digest, s.Blobs, dest)
	if err != nil {
		return nil, err
	}
	check := make(chan error, 1)
	go func() {
		for _, d := range linked {
			if err := l.Verify(ctx, d); err != nil {
				check <- err
				return
			}
		}
		check <- nil
	}()
	return check, nil
}

// stageFile puts a file input at path: a hard link when the input allows
// it and the store can (then the returned channel gets the outcome of
// verifying the blob, which runs meanwhile), else a verified copy.
func (s *Scheduler) stageFile(ctx context.Context, digest, path string, link bool) (<-chan error, error) {
	if l, ok := s.Blobs.(wharf.BlobFileLinker); ok && link {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, err
		}
		err := l.LinkFile(ctx, digest, path)
		if err == nil {
			check := make(chan error, 1)
			go func() { check <- l.Verify(ctx, digest) }()
			return check, nil
		}
		if wharf.ErrorCode(err) == wharf.ENOTFOUND {
			return nil, err
		}
		// Another filesystem, say: copy instead.
	}
	return nil, s.copyBlob(ctx, digest, path)
}

func soleFile(dir string) (string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", err
	}
	if len(entries) != 1 || entries[0].IsDir() {
		return "", errors.New("not exactly one file")
	}
	return filepath.Join(dir, entries[0].Name()), nil
}

// copyBlob writes a file input into the attempt's folder. A store that can
// copy to a file itself is asked to, since a large input is on the path
// to the job starting and a kernel copy with a parallel hash is faster
// than streaming it through here.
func (s *Scheduler) copyBlob(ctx context.Context, digest, path string) error {
	if c, ok := s.Blobs.(wharf.BlobFileCopier); ok {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return err
		}
		return c.CopyFile(ctx, digest, path, 0o600)
	}
	rc, _, err := s.Blobs.Open(ctx, digest)
	if err != nil {
		return err
	}
	defer rc.Close()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, rc); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// commitOutputs stores every output folder as a snapshot, and a uri_file
// output as its file. Outputs become visible only with the step's
// Completed status, in the same update, so a failed or killed step leaves
// none behind.
func (s *Scheduler) commitOutputs(ctx context.Context, workspace string, spec *StepSpec, paths map[string]string) (map[string]wharf.JobOutput, error) {
	out := map[string]wharf.JobOutput{}
	for name, p := range paths {
		if isFileOutput(spec.Outputs[name]) {
			o, err := s.commitFile(ctx, workspace, name, p)
			if err != nil {
				return nil, err
			}
			out[name] = o
			continue
		}
		m, err := snapshot.Take(p)
		if err != nil {
			return nil, fmt.Errorf("output %s: %w", name, err)
		}
		if err := snapshot.Upload(ctx, m, p, s.Blobs); err != nil {
			return nil, fmt.Errorf("output %s: %w", name, err)
		}
		// The output is the workspace's content, downloaded through it
		// manifest and files alike (see wharf.BlobRefService).
		if err := s.Store.AddBlobRefs(ctx, workspace, m.Digests()); err != nil {
			return nil, fmt.Errorf("output %s: %w", name, err)
		}
		digest := m.Digest
		var size int64
		for _, f := range m.Files {
			size += f.Size
		}
		out[name] = wharf.JobOutput{Type: spec.Outputs[name].Type, Kind: KindFolder, Digest: digest,
			Size: size, Files: len(m.Files)}
	}
	return out, nil
}

// isFileOutput reports whether an output is a file rather than a folder.
func isFileOutput(o OutputSpec) bool { return strings.EqualFold(o.Type, "uri_file") }

// commitFile stores the file a uri_file output names.
func (s *Scheduler) commitFile(ctx context.Context, workspace, name, p string) (wharf.JobOutput, error) {
	var none wharf.JobOutput
	// Not through a link: the step could name a file of the server's.
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if errors.Is(err, syscall.ELOOP) {
		return none, fmt.Errorf("output %s is a uri_file and ${{outputs.%s}} (%s) is a link, not a regular file", name, name, p)
	}
	if errors.Is(err, fs.ErrNotExist) {
		return none, fmt.Errorf("output %s is a uri_file and the step wrote no file at ${{outputs.%s}} (%s)", name, name, p)
	}
	if err != nil {
		return none, fmt.Errorf("output %s: %w", name, err)
	}
	defer f.Close()
	if info, err := f.Stat(); err != nil {
		return none, fmt.Errorf("output %s: %w", name, err)
	} else if !info.Mode().IsRegular() {
		return none, fmt.Errorf("output %s is a uri_file and ${{outputs.%s}} (%s) is not a regular file", name, name, p)
	}
	digest, size, err := s.Blobs.Put(ctx, f)
	if err != nil {
		return none, fmt.Errorf("output %s: %w", name, err)
	}
	if err := s.Store.AddBlobRefs(ctx, workspace, []string{digest}); err != nil {
		return none, fmt.Errorf("output %s: %w", name, err)
	}
	return wharf.JobOutput{Type: "uri_file", Kind: KindFile, Digest: digest, Size: size, Files: 1}, nil
}

// artifactDirs are the folders of a step's working directory whose files
// are its default artifacts.
var artifactDirs = []string{"outputs", "logs"}

// commitArtifacts stores what the step left in ./outputs and ./logs as
// one folder, and logs each file to the step's run under the same path,
// as Azure ML uploads them. A step that left nothing there costs a look
// at two empty folders.
func (s *Scheduler) commitArtifacts(ctx context.Context, st *wharf.Job, workDir string) (*wharf.JobOutput, error) {
	m, err := snapshot.TakeUnder(workDir, artifactDirs...)
	if err != nil || m == nil {
		return nil, err
	}
	if err := snapshot.Upload(ctx, m, workDir, s.Blobs); err != nil {
		return nil, err
	}
	if err := s.Store.AddBlobRefs(ctx, st.Workspace, m.Digests()); err != nil {
		return nil, err
	}
	if st.RunID != "" {
		run, err := s.Store.FindRun(ctx, st.Workspace, st.RunID)
		if err != nil {
			return nil, err
		}
		if root, ok := mlflow.ArtifactRoot(run.ArtifactURI); ok {
			now := s.Now().UnixMilli()
			for _, f := range m.Files {
				if err := s.Store.PutArtifact(ctx, &wharf.Artifact{Workspace: st.Workspace, Path: root + "/" + f.Path,
					Digest: f.Digest, Size: f.Size, UpdatedAt: now}); err != nil {
					return nil, fmt.Errorf("logging %s to the run: %w", f.Path, err)
				}
			}
		}
	}
	return &wharf.JobOutput{Type: "uri_folder", Kind: KindFolder, Digest: m.Digest, Size: m.Size(), Files: len(m.Files)}, nil
}

func envName(e EnvSpec) string {
	switch {
	case e.Ref != "":
		return e.Ref
	case e.Image != "":
		return e.Image
	}
	return "(inline)"
}

// recordOutputPaths files each output under its datastore path, as Azure
// ML stores outputs, so later jobs and data assets can name it by URI:
// the output's own path, else <datastore>/azureml/<job>/<output>. On an
// azure_blob or s3 datastore the output lands in its container or bucket
// under that path too, where other tools reading it find it.
func (s *Scheduler) recordOutputPaths(ctx context.Context, st *wharf.Job, spec *StepSpec, outputs map[string]wharf.JobOutput) error {
	datastore := spec.Datastore
	if datastore == "" {
		stores, err := s.Store.ListDatastores(ctx, st.Workspace)
		if err != nil {
			return err
		}
		for _, d := range stores {
			if d.IsDefault {
				datastore = d.Name
			}
		}
	}
	for name, o := range outputs {
		ds, p := datastore, "azureml/"+st.Name+"/"+name
		explicit := spec.Outputs[name].Path
		if explicit == "" && datastore == "" {
			continue // without a default datastore, such an output is kept by job only
		}
		if explicit != "" {
			explicit = outputPathExpr.ReplaceAllStringFunc(explicit, func(m string) string {
				switch strings.TrimSpace(m[3 : len(m)-2]) {
				case "name":
					return st.Name
				case "output_name":
					return name
				case "default_datastore":
					return datastore
				}
				return m
			})
			u, err := jobspec.ParseDatastoreURI(explicit)
			if err != nil {
				return fmt.Errorf("output %s: %w", name, err)
			}
			ds, p = u.Datastore, u.Path
		}
		// Wharf's own record of the path follows once every file is in
		// the container.
		if err := blob.WriteDatastorePath(ctx, s.Store, s.Blobs, st.Workspace, ds, p, o.Digest, o.Kind == KindFolder); err != nil {
			return fmt.Errorf("output %s at azureml://datastores/%s/paths/%s: %w", name, ds, p, err)
		}
		if err := s.Store.PutDatastoreFile(ctx, &wharf.DatastoreFile{Workspace: st.Workspace, Datastore: ds, Path: p,
			Digest: o.Digest, Kind: o.Kind}); err != nil {
			return fmt.Errorf("output %s at azureml://datastores/%s/paths/%s: %w", name, ds, p, err)
		}
	}
	return nil
}

// outputPathExpr matches the expressions an output path may hold:
// ${{name}}, ${{output_name}}, ${{default_datastore}}.
var outputPathExpr = regexp.MustCompile(`\$\{\{\s*[a-z_]+\s*\}\}`)

// confine tells the executor what an attempt's sandbox holds — its code
// and outputs (writable), inputs (read-only), the job's state folder, a
// TMPDIR and HOME of its own under the attempt (processEnv points them
// there), its Python environment and the wharf
// binary — and hands the writable folders to the sandbox's user. Nothing
// else of the data folder is reachable from inside.
func (s *Scheduler) confine(task *local.Task, dir string, st *wharf.Job, env *pyenv.Env) error {
	if s.Sandbox == nil {
		return nil
	}
	tmp := attemptTmp(dir)
	state := filepath.Join(s.jobDir(st.Workspace, st.Name), "state")
	inputs := filepath.Join(dir, "inputs")
	outputs := filepath.Join(dir, "outputs")
	for _, d := range []string{tmp, state, inputs, outputs} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
	}
	if err := s.Sandbox.Own(task.Dir, inputs, outputs, tmp, state); err != nil {
		return err
	}
	task.Mounts = []sandbox.Mount{
		{Path: task.Dir, Writable: true},
		{Path: inputs},
		{Path: outputs, Writable: true},
		{Path: state, Writable: true},
		{Path: tmp, Writable: true},
	}
	if env != nil {
		// An overlay (see pyenv.Overlay) is the step's own to install
		// into; the environment it is layered on is shared.
		overlay := isOverlay(dir, env)
		task.Mounts = append(task.Mounts, sandbox.Mount{Path: env.Dir, Writable: overlay})
		if env.Base != nil {
			task.Mounts = append(task.Mounts, sandbox.Mount{Path: env.Base.Dir})
		}
		if overlay {
			if err := s.Sandbox.Own(env.Dir); err != nil {
				return err
			}
		}
	}
	if exe, err := os.Executable(); err == nil {
		task.Mounts = append(task.Mounts, sandbox.Mount{Path: exe})
	}
	return nil
}

// isOverlay reports whether env is the overlay made in an attempt's
// folder dir.
func isOverlay(dir string, env *pyenv.Env) bool {
	return filepath.Dir(env.Dir) == filepath.Clean(dir)
}

// attemptTmp is a sandboxed attempt's TMPDIR and HOME.
func attemptTmp(attemptDir string) string { return filepath.Join(attemptDir, "tmp") }
