package scheduler

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/pyenv"
)

// Run statuses of the MLflow API.
const (
	runRunning  = "RUNNING"
	runFinished = "FINISHED"
	runFailed   = "FAILED"
	runKilled   = "KILLED"
)

// tokenTTL is how long a step's tracking token lasts when the step has no
// timeout: long enough for a long training run. The token is revoked
// sooner, when the step ends (the server refuses job tokens of ended jobs).
const tokenTTL = 24 * time.Hour

// hostVars are passed from the server's environment to a step that runs
// with the host's own tools.
var hostVars = []string{"PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "USER", "SSL_CERT_FILE", "SSL_CERT_DIR"}

// processEnv is the complete environment of a step's process: the host's
// basics, the Python environment, the tracking variables that make the
// unchanged mlflow client log into the step's own run, and the job's
// environment_variables last, so the user has the final word.
func (s *Scheduler) processEnv(ctx context.Context, st, parent *wharf.Job, spec *StepSpec, env *pyenv.Env, attemptDir string) ([]string, error) {
	vars := baseVars(env)
	if s.Sandbox != nil {
		// Temporary files go to the attempt's own folder on disk rather
		// than the sandbox's in-memory /tmp; the host's home is not in
		// the sandbox. confine mounts the folder.
		vars["TMPDIR"] = attemptTmp(attemptDir)
		vars["HOME"] = attemptTmp(attemptDir)
	}
	run, err := s.ensureRun(ctx, st, parent)
	if err != nil {
		return nil, err
	}
	if s.TrackingURI != nil {
		vars["MLFLOW_TRACKING_URI"] = s.TrackingURI(st.Workspace)
	}
	vars["MLFLOW_RUN_ID"] = run.ID
	vars["MLFLOW_EXPERIMENT_ID"] = run.ExperimentID
	vars["MLFLOW_EXPERIMENT_NAME"] = st.ExperimentName
	if s.Token != nil && st.SubmittedBy != "" {
		ttl := tokenTTL
		if spec.TimeoutSeconds > 0 {
			// The attempt is stopped at its timeout; a minute more covers the
			// kill grace period and clock skew. The token dies sooner, when
			// the job ends.
			ttl = time.Duration(spec.TimeoutSeconds)*time.Second + time.Minute
		}
		tok, err := s.Token(st.SubmittedBy, st.Workspace, st.Name, ttl)
		if err != nil {
			return nil, err
		}
		vars["MLFLOW_TRACKING_TOKEN"] = tok
	}
	// Steps can call the wharf binary itself (its built-in trainers) as
	// $WHARF or, found last on PATH, as wharf.
	if exe, err := os.Executable(); err == nil {
		vars["WHARF"] = exe
		vars["PATH"] = strings.TrimSuffix(vars["PATH"]+":"+filepath.Dir(exe), ":")
		vars["PATH"] = strings.TrimPrefix(vars["PATH"], ":")
	}
	// A folder that outlives attempts, for work a retry can resume.
	state := filepath.Join(s.jobDir(st.Workspace, st.Name), "state")
	if err := os.MkdirAll(state, 0o700); err != nil {
		return nil, err
	}
	vars["WHARF_JOB_STATE_DIR"] = state
	// Where Wharf's own step programs say why they failed, for the
	// step's error (see failureReason).
	vars["WHARF_STEP_ERROR_FILE"] = s.errorFile(st)
	// The names Azure ML sets, which scripts written for it read.
	vars["AZUREML_RUN_ID"] = st.Name
	vars["WHARF_JOB_NAME"] = st.Name
	vars["WHARF_WORKSPACE"] = st.Workspace
	if s.Sandbox == nil && s.WarmDir != "" {
		// Zygotes run outside any sandbox, so only unsandboxed steps may
		// fork workers from them.
		vars["WHARF_WARM_DIR"] = s.WarmDir
	}
	return environ(vars, spec), nil
}

// baseVars are the variables of a step's process that come from the host
// and its Python environment.
func baseVars(env *pyenv.Env) map[string]string {
	vars := map[string]string{}
	for _, k := range hostVars {
		if v, ok := os.LookupEnv(k); ok {
			vars[k] = v
		}
	}
	if env != nil {
		for _, kv := range env.Environ(os.Getenv("PATH")) {
			if k, v, ok := strings.Cut(kv, "="); ok {
				vars[k] = v
			}
		}
	}
	vars["PYTHONUNBUFFERED"] = "1"
	return vars
}

// environ adds the step's own environment_variables to vars, last, and
// returns them as a sorted environment.
func environ(vars map[string]string, spec *StepSpec) []string {
	for k, v := range spec.EnvVars {
		vars[k] = v
	}
	out := make([]string, 0, len(vars))
	for k, v := range vars {
		out = append(out, k+"="+v)
	}
	slices.Sort(out)
	return out
}

// ensureRun returns the step's tracking run, creating it (and the
// experiment, and the pipeline's parent run) on first use. The run id is
// stored on the job, so retries log into the same run: a pipeline's here,
// a step's by the write that records its process (keepRun), which saves
// a write per step. A parent given with its run (see pipelineRun) is
// taken as it is, its experiment too.
func (s *Scheduler) ensureRun(ctx context.Context, st, parent *wharf.Job) (*wharf.Run, error) {
	if st.RunID != "" {
		run, err := s.Store.FindRun(ctx, st.Workspace, st.RunID)
		if err == nil {
			if run.Status != runRunning {
				_, _ = s.Store.UpdateRun(ctx, st.Workspace, run.ID, runRunning, 0, "")
			}
			return run, nil
		}
		if wharf.ErrorCode(err) != wharf.ENOTFOUND {
			return nil, err
		}
	}
	tags := map[string]string{
		"mlflow.runName":     st.DisplayName,
		"mlflow.user":        st.SubmittedBy,
		"mlflow.source.type": "JOB",
		"mlflow.source.name": st.Name,
		"wharf.job":          st.Name,
	}
	expID := ""
	if parent != nil {
		if parent.RunID == "" {
			if _, err := s.ensureRun(ctx, parent, nil); err != nil {
				return nil, err
			}
		}
		tags["mlflow.parentRunId"] = parent.RunID
		if parent.Type == wharf.JobTypeSweep {
			tags["wharf.sweep"] = parent.Name
			tags["wharf.trial"] = st.Step
		} else {
			tags["wharf.pipeline"] = parent.Name
			tags["wharf.step"] = st.Step
		}
		if parent.ExperimentName == st.ExperimentName {
			expID = parent.ExperimentID
		}
	}
	if expID == "" {
		exp, err := s.experiment(ctx, st.Workspace, st.ExperimentName)
		if err != nil {
			return nil, err
		}
		expID = exp.ID
	}
	run := &wharf.Run{Workspace: st.Workspace, ExperimentID: expID, Name: st.DisplayName, UserID: st.SubmittedBy,
		StartTime: s.Now().UnixMilli(), Tags: tags}
	if run.Name == "" {
		run.Name = st.Name
		tags["mlflow.runName"] = st.Name
	}
	if err := s.Store.CreateRun(ctx, run); err != nil {
		return nil, err
	}
	if st.Type == wharf.JobTypePipeline || st.Type == wharf.JobTypeSweep {
		if _, err := s.update(ctx, st.Workspace, st.Name, func(j *wharf.Job) error {
			j.RunID, j.ExperimentID = run.ID, run.ExperimentID
			return nil
		}); err != nil {
			return nil, err
		}
	}
	st.RunID, st.ExperimentID = run.ID, run.ExperimentID
	return run, nil
}

// experiment finds or creates the named experiment.
func (s *Scheduler) experiment(ctx context.Context, workspace, name string) (*wharf.Experiment, error) {
	if name == "" {
		name = "Default"
	}
	e, err := s.Store.FindExperimentByName(ctx, workspace, name)
	if err == nil {
		return e, nil
	}
	if wharf.ErrorCode(err) != wharf.ENOTFOUND {
		return nil, err
	}
	e = &wharf.Experiment{Workspace: workspace, Name: name}
	if err := s.Store.CreateExperiment(ctx, e); err != nil {
		if wharf.ErrorCode(err) == wharf.ECONFLICT {
			return s.Store.FindExperimentByName(ctx, workspace, name)
		}
		return nil, err
	}
	return e, nil
}

// endRun closes a finished job's run with the matching status. Failures
// are logged, not returned: the job's own status is what counts.
func (s *Scheduler) endRun(ctx context.Context, j *wharf.Job) {
	if j == nil || j.RunID == "" || j.ReusedFrom != "" || !wharf.JobTerminal(j.Status) {
		return
	}
	status := runFinished
	switch j.Status {
	case wharf.JobFailed:
		status = runFailed
	case wharf.JobCanceled:
		status = runKilled
	}
	if _, err := s.Store.UpdateRun(context.WithoutCancel(ctx), j.Workspace, j.RunID, status, s.Now().UnixMilli(), ""); err != nil {
		s.Logger.Warn("closing the tracking run failed", "job", j.Name, "run", j.RunID, "err", err)
	}
}
