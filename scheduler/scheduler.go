// Package scheduler runs jobs: it moves pipeline steps through the az ml
// status vocabulary as their inputs become ready, reuses earlier results,
// queues steps on their compute cluster, and runs each attempt through an
// executor.
//
// The store is the only source of truth. Every transition is one
// UpdateJob, and the scheduler's memory holds nothing a restart could not
// rebuild from the store: after a crash, Start finds the steps that were
// running, stops what is left of their processes, and retries or fails
// them by their retry policy. What the loop does keep in memory (the jobs
// in flight, their decoded specs, which of them changed) is a copy it
// refreshes on every write and rebuilds from the store at start and
// periodically; see active.go.
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
	Store wharf.Store
	Blobs wharf.BlobStore
	Exec  Executor
	// Cluster runs the steps whose compute is a Ray cluster; without it
	// such steps fail.
	Cluster ClusterExecutor
	Envs    *pyenv.Builder
	Logger  *slog.Logger
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
	// GPUs are the host's GPUs, which steps that ask for some get a
	// share of (CUDA_VISIBLE_DEVICES); nil finds them with nvidia-smi.
	GPUs *local.GPUs
	// SweepPollInterval is how often the metrics of a sweep's running
	// trials are read while an early termination policy watches them;
	// zero is DefaultSweepPollInterval.
	SweepPollInterval time.Duration
	// ScanInterval is how often the loop reads every unfinished job from
	// the store again, as at start; zero is DefaultScanInterval. Jobs
	// advance on the changes the scheduler makes or is told of, so this
	// only bounds how long a change made behind its back waits.
	ScanInterval time.Duration

	slots   local.Slots
	wake    chan struct{}
	mu      sync.Mutex
	running map[string]context.CancelFunc // step key -> its attempt's cancel
	wg      sync.WaitGroup
	ctx     context.Context

	// Guarded by mu (see active.go): the unfinished top-level jobs by
	// workspace/name, those a pass is to look at, whether it is to read
	// every job from the store first, and a count of the changes to
	// active.
	active map[string]*tracked
	dirty  map[string]bool
	rescan bool
	gen    uint64

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
	// Server, when set, is where the other servers sharing the store
	// reach this one; each attempt records it, since its log is here.
	Server string
	// Elsewhere, when set, is told that jobs changed while this
	// scheduler is not running: another server sharing the store runs
	// the scheduler, and must look at them (see Wake).
	Elsewhere func()
	// Monitor runs the jobs of model monitor schedules; without it such
	// schedules are refused.
	Monitor MonitorRunner
	// BlobEndpoints maps Azure storage account names to the endpoint a
	// folder input at https://<account>.blob.core.windows.net/... is read
	// from instead (Azurite, Azure Stack, a private endpoint).
	BlobEndpoints map[string]string
}

// Start recovers what a previous server left unfinished and starts the
// scheduling loop, which runs until ctx is done. Wait waits for it and for
// every attempt to end; Start may then be called again (a server that
// lost the scheduler's lease and took it back).
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
	if s.GPUs == nil {
		s.GPUs = &local.GPUs{}
	}
	s.mu.Lock()
	if s.wake == nil {
		s.wake = make(chan struct{}, 1)
	}
	s.running = map[string]context.CancelFunc{}
	s.active, s.dirty, s.rescan = map[string]*tracked{}, map[string]bool{}, true
	s.mu.Unlock()
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

// Wake asks the loop to read every unfinished job from the store now, as
// it does at start and every ScanInterval, and to check the schedules: for
// a change made to the store behind the scheduler's back. Submit, Rerun,
// Cancel and the end of a step wake it by themselves.
func (s *Scheduler) Wake() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rescan = true
	s.poke()
}

func (s *Scheduler) scanInterval() time.Duration {
	if s.ScanInterval > 0 {
		return s.ScanInterval
	}
	return DefaultScanInterval
}

func (s *Scheduler) loop(ctx context.Context) {
	defer s.wg.Done()
	defer func() {
		// Jobs submitted from now on are another server's to run.
		s.mu.Lock()
		s.active = nil
		s.mu.Unlock()
	}()
	scan := time.NewTicker(s.scanInterval())
	defer scan.Stop()
	schedules := time.NewTicker(scheduleTick)
	defer schedules.Stop()
	for {
		if err := s.pass(ctx); err != nil && ctx.Err() == nil {
			s.Logger.Error("scheduling pass failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
		case <-schedules.C:
		case <-scan.C:
			s.mu.Lock()
			s.rescan = true
			s.mu.Unlock()
		}
	}
}

// pass fires due schedules and advances every job that changed since the
// last pass, after reading them all from the store when a scan is due.
func (s *Scheduler) pass(ctx context.Context) error {
	if now := s.Now(); now.Sub(s.lastScheduleCheck) >= scheduleTick {
		s.lastScheduleCheck = now
		if err := s.fireSchedules(ctx); err != nil {
			s.Logger.Error("firing schedules failed", "err", err)
		}
	}
	s.mu.Lock()
	rescan := s.rescan
	s.rescan = false
	s.mu.Unlock()
	if rescan {
		if err := s.scan(ctx); err != nil {
			s.mu.Lock()
			s.rescan = true
			s.mu.Unlock()
			return err
		}
	}
	for _, t := range s.takeDirty() {
		if err := s.advance(ctx, t); err != nil {
			s.Logger.Error("advance job", "job", t.key, "err", err)
		}
	}
	return nil
}

// stepKey identifies a step in the running map.
func stepKey(j *wharf.Job) string { return j.Workspace + "/" + j.Name }

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
	if st.Type == wharf.JobTypeSweep && st.Status != wharf.JobNotStarted {
		// A sweep that started stops its trials first.
		return s.cancelSweep(ctx, st, reason)
	}
	s.mu.Lock()
	stop, active := s.running[stepKey(st)]
	s.mu.Unlock()
	if active {
		if st.Status != wharf.JobCancelRequested {
			if _, err := s.update(ctx, st.Workspace, st.Name, func(j *wharf.Job) error {
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
	j, err := s.update(ctx, st.Workspace, st.Name, func(j *wharf.Job) error {
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
	j, err := s.update(ctx, st.Workspace, st.Name, func(j *wharf.Job) error {
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
	j, err := s.update(ctx, workspace, name, func(j *wharf.Job) error {
		if wharf.JobTerminal(j.Status) {
			return wharf.Errorf(wharf.ECONFLICT, "job %s has already ended (%s)", name, j.Status)
		}
		j.Status = wharf.JobCancelRequested
		return nil
	})
	if err != nil {
		return nil, err
	}
	if j.Type == wharf.JobTypeSweep {
		s.markDirty(j.Workspace + "/" + j.Name)
	}
	s.markDirty(topKey(j))
	return j, nil
}

// LogPath is where an attempt's log is written.
func (s *Scheduler) LogPath(workspace, job string, attempt int) string {
	return filepath.Join(s.jobDir(workspace, job), "attempt-"+strconv.Itoa(attempt)+".log")
}

func (s *Scheduler) jobDir(workspace, job string) string {
	return filepath.Join(s.WorkDir, workspace, job)
}
