// Package scheduler runs jobs: it moves pipeline steps through the az ml
// status vocabulary as their inputs become ready, reuses earlier results,
// queues steps on their compute cluster, and runs each attempt through an
// executor.
//
// The store is the only source of truth. Every transition is one
// UpdateJob, and the scheduler's memory holds nothing a restart could not
// rebuild from the store: after a crash, Start finds the steps that were
// running, stops what is left of their processes, and retries or fails
// them by their retry policy.
package scheduler

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/local"
	"github.com/wharfml/wharf/pyenv"
	"github.com/wharfml/wharf/sandbox"
)

// Executor runs one attempt of a step. *local.Executor is the one Wharf
// ships; a cluster executor plugs in here.
type Executor interface {
	Run(ctx context.Context, t *local.Task, started func(local.Process)) local.Result
}

// Scheduler runs the jobs in a store.
type Scheduler struct {
	Store  wharf.Store
	Blobs  wharf.BlobStore
	Exec   Executor
	Envs   *pyenv.Builder
	Logger *slog.Logger
	// WorkDir holds each attempt's code, inputs, outputs and log.
	WorkDir string
	// TrackingURI returns the MLflow tracking URI of a workspace, and
	// Token the token a job's processes log to it with: a job token,
	// limited to the job's workspace and to what a job does, for the
	// principal who submitted it.
	TrackingURI func(workspace string) string
	Token       func(principalID, workspace, job string, ttl time.Duration) (string, error)
	// Resolve turns a job document into a submission, resolving what it
	// refers to as the workspace holds it now; schedule firings and reruns
	// call it, so they see data registered since the job was written.
	Resolve func(ctx context.Context, workspace string, document json.RawMessage) (*Submission, error)
	// Now is the clock; tests may replace it.
	Now func() time.Time
	// WarmDir, when set, holds the zygotes Warm starts (warm Python
	// processes that steps fork their model workers from); steps get it
	// as WHARF_WARM_DIR. It must be short enough for socket paths.
	WarmDir string
	// Sandbox, when set, is how steps are isolated: the scheduler hands
	// each attempt's folders to its user and tells the executor which
	// folders the attempt may reach. It must be the executor's sandbox.
	Sandbox *sandbox.Sandbox

	slots   local.Slots
	wake    chan struct{}
	mu      sync.Mutex
	running map[string]context.CancelFunc // step key -> its attempt's cancel
	wg      sync.WaitGroup
	ctx     context.Context

	lastScheduleCheck time.Time

	warmMu  sync.Mutex             // guards zygotes, and serializes warming them
	zygotes map[string]*warmZygote // by socket

	warmingMu sync.Mutex
	warming   map[string]chan struct{} // by workspace/component, closed when Warm is done

	// warmShare is how sandboxed zygotes see the jobs that fork from
	// them (see warmsandbox.go); warmScopes names, by workspace/component,
	// the share folder and WarmDir subfolder of each one's zygote.
	warmShare  *sandbox.Share
	warmScopes map[string]string
}

// Start recovers what a previous server left unfinished and starts the
// scheduling loop, which runs until ctx is done. Wait waits for it and for
// every attempt to end.
func (s *Scheduler) Start(ctx context.Context) error {
	if s.Logger == nil {
		s.Logger = slog.Default()
	}
	if s.Now == nil {
		s.Now = time.Now
	}
	if s.Exec == nil {
		s.Exec = &local.Executor{}
	}
	s.wake = make(chan struct{}, 1)
	s.running = map[string]context.CancelFunc{}
	s.ctx = ctx
	if err := os.MkdirAll(s.WorkDir, 0o700); err != nil {
		return fmt.Errorf("scheduler: work dir: %w", err)
	}
	// Models a previous server warmed; what is warmed now is put again.
	_ = os.RemoveAll(s.warmModels())
	s.startWarmShare()
	if err := s.recover(ctx); err != nil {
		return err
	}
	s.wg.Add(1)
	go s.loop(ctx)
	return nil
}

// Wait blocks until the loop and every attempt have ended.
func (s *Scheduler) Wait() { s.wg.Wait() }

// Wake asks the loop to look at the jobs now, after a submission or a
// cancel, instead of at its next tick.
func (s *Scheduler) Wake() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// pollInterval bounds how long a change the loop was not told about (a
// job created by another server on the same PostgreSQL) waits.
const pollInterval = time.Second

func (s *Scheduler) loop(ctx context.Context) {
	defer s.wg.Done()
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	for {
		if err := s.pass(ctx); err != nil && ctx.Err() == nil {
			s.Logger.Error("scheduling pass failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
		case <-t.C:
		}
	}
}

// pass fires due schedules and advances every unfinished job once.
func (s *Scheduler) pass(ctx context.Context) error {
	if now := s.Now(); now.Sub(s.lastScheduleCheck) >= scheduleTick {
		s.lastScheduleCheck = now
		if err := s.fireSchedules(ctx); err != nil {
			s.Logger.Error("firing schedules failed", "err", err)
		}
	}
	jobs, err := s.Store.ListUnfinishedJobs(ctx)
	if err != nil {
		return err
	}
	byParent := map[string][]*wharf.Job{}
	for _, j := range jobs {
		if j.Parent != "" {
			byParent[j.Workspace+"/"+j.Parent] = append(byParent[j.Workspace+"/"+j.Parent], j)
		}
	}
	for _, j := range jobs {
		switch {
		case j.Parent != "":
			// Steps are advanced with their pipeline.
		case j.Type == wharf.JobTypePipeline:
			if err := s.advancePipeline(ctx, j); err != nil {
				s.Logger.Error("advance pipeline", "job", j.Name, "err", err)
			}
		default:
			if err := s.advanceStep(ctx, j, nil, nil); err != nil {
				s.Logger.Error("advance job", "job", j.Name, "err", err)
			}
		}
	}
	return nil
}

// advancePipeline starts the steps whose inputs are ready, cancels the ones
// that can no longer run, and sets the pipeline's own status from its
// steps'.
func (s *Scheduler) advancePipeline(ctx context.Context, p *wharf.Job) error {
	var spec PipelineSpec
	if err := json.Unmarshal(p.Spec, &spec); err != nil {
		return s.fail(ctx, p, "the pipeline's stored definition cannot be read: "+err.Error())
	}
	steps, err := s.Store.ListJobs(ctx, p.Workspace, p.Name, 0)
	if err != nil {
		return err
	}
	byStep := map[string]*wharf.Job{}
	for _, st := range steps {
		byStep[st.Step] = st
	}
	cancelling := p.Status == wharf.JobCancelRequested
	failed := false
	for _, st := range steps {
		if st.Status == wharf.JobFailed {
			failed = true
		}
	}
	for _, st := range steps {
		if wharf.JobTerminal(st.Status) {
			continue
		}
		switch {
		case cancelling:
			if err := s.cancelStep(ctx, st, "the pipeline was canceled"); err != nil {
				return err
			}
		case failed && !spec.ContinueOnStepFailure:
			if err := s.cancelStep(ctx, st, "another step failed and continue_on_step_failure is false"); err != nil {
				return err
			}
		default:
			if err := s.advanceStep(ctx, st, p, byStep); err != nil {
				return err
			}
		}
	}
	// Re-read: the steps may have moved on.
	if steps, err = s.Store.ListJobs(ctx, p.Workspace, p.Name, 0); err != nil {
		return err
	}
	return s.settlePipeline(ctx, p, &spec, steps)
}

// settlePipeline derives the pipeline's status from its steps'.
func (s *Scheduler) settlePipeline(ctx context.Context, p *wharf.Job, spec *PipelineSpec, steps []*wharf.Job) error {
	done, completed, canceled, failedSteps := 0, 0, 0, []string{}
	started := false
	var firstStart *time.Time
	for _, st := range steps {
		if st.StartedAt != nil && (firstStart == nil || st.StartedAt.Before(*firstStart)) {
			firstStart = st.StartedAt
		}
		switch st.Status {
		case wharf.JobCompleted:
			completed++
			done++
		case wharf.JobFailed:
			failedSteps = append(failedSteps, st.Step)
			done++
		case wharf.JobCanceled:
			canceled++
			done++
		}
		if st.Status != wharf.JobNotStarted {
			started = true
		}
	}
	now := s.Now().UTC()
	_, err := s.Store.UpdateJob(ctx, p.Workspace, p.Name, func(j *wharf.Job) error {
		if wharf.JobTerminal(j.Status) {
			return nil
		}
		if started && j.StartedAt == nil {
			// The pipeline started when its first step did, which may be
			// before this pass saw it.
			j.StartedAt = &now
			if firstStart != nil {
				j.StartedAt = firstStart
			}
		}
		switch {
		case done < len(steps):
			if started && j.Status != wharf.JobCancelRequested {
				j.Status = wharf.JobRunning
			}
			return nil
		case j.Status == wharf.JobCancelRequested:
			j.Status = wharf.JobCanceled
		case len(failedSteps) > 0:
			j.Status = wharf.JobFailed
			j.Error = fmt.Sprintf("step %s failed", failedSteps[0])
			if len(failedSteps) > 1 {
				j.Error = fmt.Sprintf("steps %v failed", failedSteps)
			}
		case canceled > 0:
			j.Status = wharf.JobCanceled
		default:
			j.Status = wharf.JobCompleted
			j.Outputs = map[string]wharf.JobOutput{}
			byStep := map[string]*wharf.Job{}
			for _, st := range steps {
				byStep[st.Step] = st
			}
			for name, ref := range spec.Outputs {
				if st := byStep[ref.Step]; st != nil {
					if o, ok := st.Outputs[ref.Output]; ok {
						j.Outputs[name] = o
					}
				}
			}
		}
		j.EndedAt = &now
		return nil
	})
	if err != nil {
		return err
	}
	pj, err := s.Store.FindJob(ctx, p.Workspace, p.Name)
	if err == nil && wharf.JobTerminal(pj.Status) {
		s.endRun(ctx, pj)
	}
	return nil
}

// stepKey identifies a step in the running map.
func stepKey(j *wharf.Job) string { return j.Workspace + "/" + j.Name }

// advanceStep starts a step whose dependencies have completed, unless it
// is already running here. parent and siblings are nil for a top-level
// command job.
func (s *Scheduler) advanceStep(ctx context.Context, st, parent *wharf.Job, siblings map[string]*wharf.Job) error {
	key := stepKey(st)
	s.mu.Lock()
	cancel, active := s.running[key]
	s.mu.Unlock()
	if st.Status == wharf.JobCancelRequested {
		if active {
			cancel()
			return nil
		}
		return s.cancelStep(ctx, st, "canceled by request")
	}
	if active {
		return nil
	}
	var spec StepSpec
	if err := json.Unmarshal(st.Spec, &spec); err != nil {
		return s.fail(ctx, st, "the step's stored definition cannot be read: "+err.Error())
	}
	for _, d := range spec.Deps {
		dep := siblings[d]
		if dep == nil {
			return s.fail(ctx, st, fmt.Sprintf("upstream step %s does not exist", d))
		}
		switch dep.Status {
		case wharf.JobCompleted:
		case wharf.JobFailed, wharf.JobCanceled:
			return s.cancelStep(ctx, st, fmt.Sprintf("upstream step %s ended %s", d, dep.Status))
		default:
			return nil
		}
	}
	if st.Status != wharf.JobNotStarted && st.Status != wharf.JobQueued {
		// A step in Starting..Finalizing that is not running here was
		// left by a previous server; recover() dealt with those, so this
		// is one whose retry waits for its backoff.
		if st.Status != wharf.JobQueued {
			return nil
		}
	}
	if wait := s.retryWait(st, &spec); wait > 0 {
		return nil
	}
	attemptCtx, cancelAttempt := context.WithCancel(s.ctx)
	s.mu.Lock()
	s.running[key] = cancelAttempt
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer func() {
			s.mu.Lock()
			delete(s.running, key)
			s.mu.Unlock()
			cancelAttempt()
			s.Wake()
		}()
		if err := s.runStep(attemptCtx, st, parent, siblings, &spec); err != nil && s.ctx.Err() == nil {
			s.Logger.Error("step failed to run", "job", st.Name, "err", err)
			_ = s.fail(context.WithoutCancel(attemptCtx), st, err.Error())
		}
	}()
	return nil
}

// retryWait is how much longer a step must wait before its next attempt.
func (s *Scheduler) retryWait(st *wharf.Job, spec *StepSpec) time.Duration {
	n := len(st.Attempts)
	if n == 0 || spec.RetryBackoffSeconds <= 0 {
		return 0
	}
	last := st.Attempts[n-1]
	if last.Ended == nil {
		return 0
	}
	backoff := time.Duration(spec.RetryBackoffSeconds) * time.Second << (n - 1)
	return time.Until(last.Ended.Add(backoff))
}

// cancelStep ends a step that will not run, with the reason. A step
// running here is stopped instead; its attempt records the end.
func (s *Scheduler) cancelStep(ctx context.Context, st *wharf.Job, reason string) error {
	s.mu.Lock()
	stop, active := s.running[stepKey(st)]
	s.mu.Unlock()
	if active {
		if st.Status != wharf.JobCancelRequested {
			if _, err := s.Store.UpdateJob(ctx, st.Workspace, st.Name, func(j *wharf.Job) error {
				if !wharf.JobTerminal(j.Status) {
					j.Status = wharf.JobCancelRequested
					j.Error = reason
				}
				return nil
			}); err != nil {
				return err
			}
		}
		stop()
		return nil
	}
	now := s.Now().UTC()
	j, err := s.Store.UpdateJob(ctx, st.Workspace, st.Name, func(j *wharf.Job) error {
		if wharf.JobTerminal(j.Status) {
			return nil
		}
		j.Status = wharf.JobCanceled
		j.Error = reason
		j.EndedAt = &now
		return nil
	})
	if err == nil {
		s.endRun(ctx, j)
	}
	return err
}

// fail ends a job as Failed with the reason.
func (s *Scheduler) fail(ctx context.Context, st *wharf.Job, reason string) error {
	now := s.Now().UTC()
	j, err := s.Store.UpdateJob(ctx, st.Workspace, st.Name, func(j *wharf.Job) error {
		if wharf.JobTerminal(j.Status) {
			return nil
		}
		j.Status = wharf.JobFailed
		j.Error = reason
		j.EndedAt = &now
		return nil
	})
	if err == nil {
		s.endRun(ctx, j)
	}
	return err
}

// Cancel asks for a job to stop: a pipeline's running steps are stopped,
// the others are never started.
func (s *Scheduler) Cancel(ctx context.Context, workspace, name string) (*wharf.Job, error) {
	j, err := s.Store.UpdateJob(ctx, workspace, name, func(j *wharf.Job) error {
		if wharf.JobTerminal(j.Status) {
			return wharf.Errorf(wharf.ECONFLICT, "job %s has already ended (%s)", name, j.Status)
		}
		j.Status = wharf.JobCancelRequested
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.Wake()
	return j, nil
}

// LogPath is where an attempt's log is written.
func (s *Scheduler) LogPath(workspace, job string, attempt int) string {
	return filepath.Join(s.jobDir(workspace, job), "attempt-"+strconv.Itoa(attempt)+".log")
}

func (s *Scheduler) jobDir(workspace, job string) string {
	return filepath.Join(s.WorkDir, workspace, job)
}
