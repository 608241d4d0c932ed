package scheduler

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/wharfml/wharf"
)

// The loop's memory of the jobs in flight.
//
// A pass used to read every unfinished job, and every step of every
// unfinished pipeline, from the store and decode them all: its cost grew
// with the work in flight times the rate of changes, so that a fan-out of
// 200 steps decoded some 80,000 step documents. The loop now keeps the
// unfinished top-level jobs and their steps as it last read or wrote them
// (tracked), decodes each spec once, and on a pass looks only at the jobs
// marked dirty since the one before. A job is marked dirty when it is
// submitted, when one of its steps ends, starts or is asked to stop, when
// it is cancelled, and when a retry's backoff is over.
//
// The memory is a copy, never the truth: every change is written to the
// store first (update), and the copy is refreshed from what the store
// returned. Start builds it from the store, and a full scan rebuilds it
// every ScanInterval and on Wake, which also picks up changes made behind
// the scheduler's back.

// DefaultScanInterval is how often the loop rebuilds its memory from the
// store when ScanInterval is zero. Jobs advance on the changes the
// scheduler is told of; the scan is a safety net, and it bounds how long a
// change made behind its back (by hand in the database, say) waits.
const DefaultScanInterval = 30 * time.Second

// tracked is an unfinished top-level job: a pipeline with its steps, or a
// command job, which is its own one step.
type tracked struct {
	// key, pipe and created are the job's workspace/name, whether it is
	// a pipeline and when it was created, which never change; job and
	// the rest are guarded by the scheduler's mu.
	key     string
	pipe    bool
	sweep   bool
	created time.Time
	job     *wharf.Job
	// seen is the scheduler's gen when job was last set, so that a scan
	// does not replace a newer copy with what it read before.
	seen     uint64
	pipeline decoded[PipelineSpec]
	// steps are a pipeline's steps in creation order, or the command
	// job itself; pending those a pass last saw unfinished (a step that
	// has ended never changes again), and failed whether one failed.
	steps   []*trackedStep
	byName  map[string]*trackedStep
	pending []*trackedStep
	failed  bool
	// runMu serializes creating a pipeline's tracking run, which every
	// step that starts needs and the first ones need at once.
	runMu sync.Mutex
	// For a sweep, whose steps are its trials: its decoded spec, and
	// whether a wake-up is pending to look at the trials' metrics again
	// or at the sweep's timeout.
	sweepSpec decoded[StepSpec]
	polling   bool
	timerAt   time.Time
}

// trackedStep is one step of a tracked job.
type trackedStep struct {
	key  string // its key in the running map
	job  *wharf.Job
	seen uint64
	spec decoded[StepSpec]
	// retrying is set while a wake-up for the end of its retry backoff
	// is pending.
	retrying bool
}

// decoded caches the decoding of a stored spec, keyed by its bytes:
// specs do not change after submission, so each is decoded once.
type decoded[T any] struct {
	raw json.RawMessage
	v   *T
	err error
}

func (d *decoded[T]) get(raw json.RawMessage) (*T, error) {
	if (d.v != nil || d.err != nil) && bytes.Equal(d.raw, raw) {
		return d.v, d.err
	}
	var v T
	d.raw, d.v, d.err = raw, nil, json.Unmarshal(raw, &v)
	if d.err == nil {
		d.v = &v
	}
	return d.v, d.err
}

func newTracked(j *wharf.Job) *tracked {
	if j.Type == wharf.JobTypeSweep {
		// A sweep, even one that is a pipeline's step, is tracked on its
		// own, with its trials as its steps.
		return &tracked{key: j.Workspace + "/" + j.Name, sweep: true, created: j.CreatedAt, job: j}
	}
	return &tracked{key: topKey(j), pipe: j.Type == wharf.JobTypePipeline, created: j.CreatedAt, job: j}
}

func (t *tracked) isPipeline() bool { return t.pipe }

// setSteps sets the steps from the store's list, keeping each one's
// decoded spec and, where the scheduler updated it after gen start, its
// newer copy.
func (t *tracked) setSteps(jobs []*wharf.Job, start, gen uint64) {
	steps := make([]*trackedStep, 0, len(jobs))
	byName := make(map[string]*trackedStep, len(jobs))
	for _, j := range jobs {
		ts := t.byName[j.Step]
		switch {
		case ts == nil:
			ts = &trackedStep{key: stepKey(j), job: j, seen: gen}
		case ts.seen <= start:
			ts.job, ts.seen = j, gen
		}
		steps = append(steps, ts)
		byName[j.Step] = ts
	}
	t.steps, t.byName = steps, byName
	t.pending, t.failed = slices.Clone(steps), false
}

// topKey names the top-level job a job is or belongs to.
func topKey(j *wharf.Job) string {
	if j.Parent != "" {
		return j.Workspace + "/" + j.Parent
	}
	return j.Workspace + "/" + j.Name
}

// track adds jobs just created, a top-level job first and then its steps,
// and has the loop look at them.
func (s *Scheduler) track(jobs []*wharf.Job) {
	if len(jobs) == 0 {
		return
	}
	top := *jobs[0]
	t := newTracked(&top)
	switch {
	case t.sweep:
		// Its trials are made as it goes.
	case t.isPipeline():
		steps := make([]*wharf.Job, 0, len(jobs)-1)
		for _, j := range jobs[1:] {
			cp := *j
			steps = append(steps, &cp)
		}
		t.setSteps(steps, 0, 0)
	default:
		t.steps = []*trackedStep{{key: stepKey(&top), job: &top}}
		t.pending = t.steps
	}
	key := t.key
	s.mu.Lock()
	if s.active == nil {
		// Not running: Start's scan finds the jobs in the store, or the
		// server that runs the scheduler does.
		s.mu.Unlock()
		s.tellElsewhere()
		return
	}
	s.gen++
	t.seen = s.gen
	for _, ts := range t.steps {
		ts.seen = s.gen
	}
	s.active[key] = t
	s.markLocked(key)
	s.mu.Unlock()
}

// update changes a job in the store, as Store.UpdateJob, and refreshes the
// loop's copy from the result.
func (s *Scheduler) update(ctx context.Context, workspace, name string, fn func(j *wharf.Job) error) (*wharf.Job, error) {
	j, err := s.Store.UpdateJob(ctx, workspace, name, fn)
	if err == nil {
		s.saw(j)
	}
	return j, err
}

// saw refreshes the copy of a job the scheduler has just written. A step
// that ended, that is asked to stop, or that is the first of its pipeline
// to start marks the pipeline dirty: the pass then starts or cancels what
// depends on it and sets the pipeline's status.
func (s *Scheduler) saw(j *wharf.Job) {
	cp := *j
	key := topKey(j)
	s.mu.Lock()
	defer s.mu.Unlock()
	if j.Type == wharf.JobTypeSweep && j.Parent != "" {
		// A sweep step is its pipeline's step and a job tracked on its
		// own: both copies are refreshed.
		if st := s.active[j.Workspace+"/"+j.Name]; st != nil {
			s.gen++
			sw := cp
			st.job, st.seen = &sw, s.gen
		}
	}
	t := s.active[key]
	if t == nil {
		return
	}
	s.gen++
	var ts *trackedStep
	if j.Parent == "" {
		t.job, t.seen = &cp, s.gen
		if t.isPipeline() || t.sweep {
			// The pipeline's own status is the pass's to set.
			return
		}
		ts = t.steps[0]
	} else if ts = t.byName[j.Step]; ts == nil {
		return
	}
	was := ts.job.Status
	ts.job, ts.seen = &cp, s.gen
	if was != cp.Status && (wharf.JobTerminal(cp.Status) || cp.Status == wharf.JobCancelRequested ||
		(was == wharf.JobNotStarted && t.job.StartedAt == nil)) {
		s.markLocked(key)
	}
}

// markDirty has the loop look at a top-level job on its next pass, which
// it wakes. A job it does not know of has the pass read every job from the
// store first.
func (s *Scheduler) markDirty(key string) {
	s.mu.Lock()
	if s.active == nil {
		s.mu.Unlock()
		s.tellElsewhere()
		return
	}
	defer s.mu.Unlock()
	if s.active[key] == nil {
		s.rescan = true
		s.poke()
		return
	}
	s.markLocked(key)
}

// tellElsewhere tells the server that runs the scheduler, if it is not
// this one, that jobs changed.
func (s *Scheduler) tellElsewhere() {
	if s.Elsewhere != nil {
		s.Elsewhere()
	}
}

// markLocked marks a job dirty and wakes the loop; s.mu is held.
func (s *Scheduler) markLocked(key string) {
	s.dirty[key] = true
	s.poke()
}

// poke wakes the loop, unless it is already due to run; s.mu is held.
func (s *Scheduler) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// scan rebuilds the loop's memory from the store: every unfinished
// top-level job, with all of a pipeline's steps, each marked dirty. A copy
// the scheduler changed while the scan was reading is newer than what the
// scan read, and is kept.
func (s *Scheduler) scan(ctx context.Context) error {
	s.mu.Lock()
	start := s.gen
	s.mu.Unlock()
	jobs, err := s.Store.ListUnfinishedJobs(ctx)
	if err != nil {
		return err
	}
	type found struct {
		top   *wharf.Job
		steps []*wharf.Job
	}
	var tops []found
	for _, j := range jobs {
		if (j.Parent != "" && !sweepStarted(j)) || j.Type == wharf.JobTypeMonitor {
			// Monitor jobs run outside the step machinery.
			continue
		}
		f := found{top: j}
		if j.Type == wharf.JobTypePipeline || j.Type == wharf.JobTypeSweep {
			if f.steps, err = s.Store.ListJobs(ctx, j.Workspace, j.Name, 0); err != nil {
				return err
			}
		}
		tops = append(tops, f)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gen++
	next := make(map[string]*tracked, len(tops))
	for _, f := range tops {
		key := topKey(f.top)
		if f.top.Type == wharf.JobTypeSweep {
			key = f.top.Workspace + "/" + f.top.Name
		}
		t := s.active[key]
		switch {
		case t == nil:
			t = newTracked(f.top)
			t.seen = s.gen
		case t.seen <= start:
			t.job, t.seen = f.top, s.gen
		}
		if t.isPipeline() || t.sweep {
			t.setSteps(f.steps, start, s.gen)
		} else if len(t.steps) == 0 || t.steps[0].seen <= start {
			t.steps = []*trackedStep{{key: stepKey(t.job), job: t.job, seen: t.seen, spec: stepCache(t.steps)}}
			t.pending = t.steps
		}
		next[key] = t
	}
	for key, t := range s.active {
		// Tracked since the scan began reading (a submission), or
		// changed since: the scan's list may predate it.
		if next[key] == nil && t.seen > start {
			next[key] = t
		}
	}
	s.active = next
	clear(s.dirty)
	for key := range next {
		s.dirty[key] = true
	}
	return nil
}

// stepCache keeps a command job's decoded spec across a scan.
func stepCache(steps []*trackedStep) decoded[StepSpec] {
	if len(steps) == 0 {
		return decoded[StepSpec]{}
	}
	return steps[0].spec
}

// forget drops a job that has ended from the loop's memory.
func (s *Scheduler) forget(key string) {
	s.mu.Lock()
	delete(s.active, key)
	delete(s.dirty, key)
	s.mu.Unlock()
}

// takeDirty returns the dirty jobs, oldest first, and clears the set.
func (s *Scheduler) takeDirty() []*tracked {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*tracked, 0, len(s.dirty))
	for key := range s.dirty {
		if t := s.active[key]; t != nil {
			out = append(out, t)
		}
	}
	clear(s.dirty)
	// Oldest first, as the slots of a compute are handed out in the
	// order steps ask for them.
	slices.SortFunc(out, func(a, b *tracked) int {
		if c := a.created.Compare(b.created); c != 0 {
			return c
		}
		return strings.Compare(a.key, b.key)
	})
	return out
}

// What a pass does to a step, decided from the loop's memory with s.mu
// held and carried out after.
type actionKind int

const (
	actStart      actionKind = iota // run an attempt (or reuse)
	actCancel                       // cancel the step, or stop its attempt
	actFail                         // fail the job: its stored definition is unusable
	actStartSweep                   // start a pipeline's sweep step
)

type action struct {
	kind   actionKind
	job    *wharf.Job
	reason string
	// For actStart: the step's spec, its pipeline (nil for a command
	// job) and its upstream steps by name.
	spec   *StepSpec
	parent *wharf.Job
	deps   map[string]*wharf.Job
}

// advance moves one tracked job on: it starts the steps whose inputs are
// ready, cancels the ones that can no longer run, and sets a pipeline's
// own status from its steps'. A job that has ended is forgotten.
func (s *Scheduler) advance(ctx context.Context, t *tracked) error {
	key := t.key
	s.mu.Lock()
	if s.active[key] != t {
		s.mu.Unlock()
		return nil
	}
	if wharf.JobTerminal(t.job.Status) {
		delete(s.active, key)
		s.mu.Unlock()
		return nil
	}
	if t.sweep {
		s.mu.Unlock()
		return s.advanceSweep(ctx, t)
	}
	acts := s.plan(t, key)
	s.mu.Unlock()
	for _, a := range acts {
		var err error
		switch a.kind {
		case actStart:
			s.launch(a.job, a.parent, a.deps, a.spec)
		case actStartSweep:
			err = s.startSweepStep(ctx, a.job, a.deps)
		case actCancel:
			err = s.cancelStep(ctx, a.job, a.reason)
		case actFail:
			err = s.fail(ctx, a.job, a.reason)
		}
		if err != nil {
			return err
		}
	}
	if t.isPipeline() {
		return s.settle(ctx, t)
	}
	return nil
}

// plan decides what a pass does to each unfinished step of a tracked job.
// s.mu is held.
func (s *Scheduler) plan(t *tracked, key string) []action {
	top := t.job
	var spec *PipelineSpec
	if t.isPipeline() {
		var err error
		if spec, err = t.pipeline.get(top.Spec); err != nil {
			return []action{{kind: actFail, job: top, reason: "the pipeline's stored definition cannot be read: " + err.Error()}}
		}
	}
	cancelling := t.isPipeline() && top.Status == wharf.JobCancelRequested
	// Steps that ended leave pending for good; a failure among them
	// decides what happens to the rest in this same pass.
	t.pending = slices.DeleteFunc(t.pending, func(ts *trackedStep) bool {
		t.failed = t.failed || ts.job.Status == wharf.JobFailed
		return wharf.JobTerminal(ts.job.Status)
	})
	failed := t.failed
	var acts []action
	cancel := func(st *wharf.Job, reason string) {
		acts = append(acts, action{kind: actCancel, job: st, reason: reason})
	}
	for _, ts := range t.pending {
		st := ts.job
		stop, active := s.running[ts.key]
		if !active && s.inFlightOnCluster(st) != nil {
			// A previous server's attempt still running on a Ray
			// cluster: followed first, then stopped if it is to be.
			if stepSpec, err := ts.spec.get(st.Spec); err == nil {
				if deps, _ := t.upstreams(stepSpec); deps != nil {
					acts = append(acts, t.start(st, stepSpec, deps))
					continue
				}
			}
		}
		switch {
		case cancelling:
			cancel(st, "the pipeline was canceled")
			continue
		case failed && t.isPipeline() && !spec.ContinueOnStepFailure:
			cancel(st, "another step failed and continue_on_step_failure is false")
			continue
		case st.Status == wharf.JobCancelRequested && active:
			stop()
			continue
		case st.Status == wharf.JobCancelRequested:
			cancel(st, "canceled by request")
			continue
		case active:
			continue
		}
		stepSpec, err := ts.spec.get(st.Spec)
		if err != nil {
			acts = append(acts, action{kind: actFail, job: st, reason: "the step's stored definition cannot be read: " + err.Error()})
			continue
		}
		deps, why := t.upstreams(stepSpec)
		switch {
		case why != "":
			if deps == nil {
				acts = append(acts, action{kind: actFail, job: st, reason: why})
			} else {
				cancel(st, why)
			}
			continue
		case deps == nil:
			continue // an upstream has not completed yet
		case st.Status != wharf.JobNotStarted && st.Status != wharf.JobQueued:
			// A step in Starting..Finalizing that is not running here
			// was left by a previous server; recover() queued those.
			continue
		}
		if wait := s.retryWait(st, stepSpec); wait > 0 {
			if !ts.retrying {
				ts.retrying = true
				time.AfterFunc(wait, func() {
					s.mu.Lock()
					ts.retrying = false
					s.mu.Unlock()
					s.markDirty(key)
				})
			}
			continue
		}
		if st.Type == wharf.JobTypeSweep {
			cp := *st
			acts = append(acts, action{kind: actStartSweep, job: &cp, deps: deps})
			continue
		}
		acts = append(acts, t.start(st, stepSpec, deps))
	}
	return acts
}

// start is the action that runs a step, with copies of the step and its
// pipeline, which the pass goes on changing. s.mu is held.
func (t *tracked) start(st *wharf.Job, spec *StepSpec, deps map[string]*wharf.Job) action {
	var parent *wharf.Job
	if t.isPipeline() {
		cp := *t.job
		parent = &cp
	}
	cp := *st
	return action{kind: actStart, job: &cp, spec: spec, parent: parent, deps: deps}
}

// upstreams returns the steps a step reads from, once all have completed;
// nil while one has not. why is set when the step can never run: an
// upstream that does not exist (deps nil: the step fails) or that failed
// or was cancelled (deps not nil: the step is cancelled).
func (t *tracked) upstreams(spec *StepSpec) (deps map[string]*wharf.Job, why string) {
	for _, d := range spec.Deps {
		up := t.byName[d]
		if up == nil {
			return nil, fmt.Sprintf("upstream step %s does not exist", d)
		}
		switch up.job.Status {
		case wharf.JobCompleted:
		case wharf.JobFailed, wharf.JobCanceled:
			return map[string]*wharf.Job{}, fmt.Sprintf("upstream step %s ended %s", d, up.job.Status)
		default:
			return nil, ""
		}
	}
	// All have completed; a join checks its upstreams on every pass,
	// so the map is made only now.
	deps = make(map[string]*wharf.Job, len(spec.Deps))
	for _, d := range spec.Deps {
		deps[d] = t.byName[d].job
	}
	return deps, ""
}

// launch starts a step's attempt in the background.
func (s *Scheduler) launch(st, parent *wharf.Job, deps map[string]*wharf.Job, spec *StepSpec) {
	key := stepKey(st)
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
			// Whatever the attempt ended in, the pass decides what
			// comes next: a retry, what depends on it, the pipeline's
			// status.
			s.markDirty(topKey(st))
		}()
		err := s.runStep(attemptCtx, st, parent, deps, spec)
		switch {
		case err == nil || s.ctx.Err() != nil:
		case attemptCtx.Err() != nil:
			// Cancelled while it was being set up: a store call gave
			// up, which is the cancel's doing, not a failure.
			_ = s.interrupted(st, &attemptRec{s: s, n: len(st.Attempts) + 1}, "canceled")
		default:
			s.Logger.Error("step failed to run", "job", st.Name, "err", err)
			_ = s.fail(context.WithoutCancel(attemptCtx), st, err.Error())
		}
	}()
}

// settle derives a pipeline's status from its steps' and writes it when it
// changed. A pipeline that has ended closes its run and is forgotten.
func (s *Scheduler) settle(ctx context.Context, t *tracked) error {
	key := t.key
	s.mu.Lock()
	p := t.job
	spec := t.pipeline.v
	if spec == nil || len(t.pending) > 0 && p.StartedAt != nil &&
		(p.Status == wharf.JobRunning || p.Status == wharf.JobCancelRequested) {
		// Steps are left to run and the pipeline is known to run:
		// nothing to change, and no need to look at every step.
		s.mu.Unlock()
		return nil
	}
	steps := make([]*wharf.Job, len(t.steps))
	for i, ts := range t.steps {
		steps[i] = ts.job
	}
	s.mu.Unlock()
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
	if done < len(steps) && (!started || p.StartedAt != nil &&
		(p.Status == wharf.JobRunning || p.Status == wharf.JobCancelRequested)) {
		return nil // nothing to change
	}
	now := s.Now().UTC()
	j, err := s.update(ctx, p.Workspace, p.Name, func(j *wharf.Job) error {
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
	if wharf.JobTerminal(j.Status) {
		s.endRun(ctx, j)
		s.forget(key)
	}
	return nil
}

// pipelineRun returns the pipeline with its tracking run, creating the run
// if it has none yet. Its first steps start together; the lock makes them
// share one run.
func (s *Scheduler) pipelineRun(ctx context.Context, p *wharf.Job) (*wharf.Job, error) {
	if p.RunID != "" {
		return p, nil
	}
	s.mu.Lock()
	t := s.active[topKey(p)]
	s.mu.Unlock()
	if t != nil {
		t.runMu.Lock()
		defer t.runMu.Unlock()
		s.mu.Lock()
		cp := *t.job
		s.mu.Unlock()
		if cp.RunID != "" {
			return &cp, nil
		}
	}
	cp := *p
	if _, err := s.ensureRun(ctx, &cp, nil); err != nil {
		return nil, err
	}
	return &cp, nil
}
