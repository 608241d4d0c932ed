package scheduler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"strconv"
	"time"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/sweep"
)

// A sweep runs its trial again and again, each time with hyperparameters
// sampled from its search space, as child jobs (Parent: the sweep) made
// one at a time: sampling may depend on what earlier trials reported, so
// unlike a pipeline's steps they cannot be made at submission. Everything
// a pass decides follows from the sweep's stored spec and its stored
// trials (their parameters, statuses and logged metrics): a trial's
// number is its place in the sweep, its values are derived from the seed
// and the trials before it, and it is stored before it runs, so a server
// that restarts mid-sweep neither repeats nor loses one.

// DefaultSweepPollInterval is how often the metrics of running trials are
// read while an early termination policy watches them.
const DefaultSweepPollInterval = 2 * time.Second

// metricPage is how many values of a trial's primary metric are read.
const metricPage = 100000

// sweepStarted reports whether a job is a pipeline's sweep step that its
// pipeline has started: from then on it is tracked on its own.
func sweepStarted(j *wharf.Job) bool {
	return j.Type == wharf.JobTypeSweep && j.Status != wharf.JobNotStarted && j.Status != wharf.JobQueued
}

func validSweep(c *sweep.Config) error {
	if c == nil {
		return nil
	}
	switch {
	case len(c.SearchSpace) == 0:
		return errors.New("the search space is empty")
	case c.Objective.PrimaryMetric == "":
		return errors.New("the objective has no primary metric")
	case c.Limits.MaxTotalTrials < 1 || c.Limits.MaxConcurrentTrials < 1:
		return errors.New("max_total_trials and max_concurrent_trials must be 1 or more")
	case c.Sampling.Type == sweep.Grid && c.GridSize() < 0:
		return errors.New("grid sampling needs every hyperparameter to be a choice")
	}
	return nil
}

// startSweepStep starts a pipeline's sweep step once its upstream steps
// have completed: it records the data it reads from them, which its
// trials take, and is tracked on its own from then on.
func (s *Scheduler) startSweepStep(ctx context.Context, st *wharf.Job, deps map[string]*wharf.Job) error {
	var spec StepSpec
	if err := json.Unmarshal(st.Spec, &spec); err != nil {
		return s.fail(ctx, st, "the sweep's stored definition cannot be read: "+err.Error())
	}
	values, _, err := resolveInputs(&spec, deps)
	if err != nil {
		return s.fail(ctx, st, err.Error())
	}
	now := s.Now().UTC()
	j, err := s.update(ctx, st.Workspace, st.Name, func(j *wharf.Job) error {
		if j.Status != wharf.JobNotStarted {
			return nil
		}
		j.Status, j.StartedAt, j.Inputs = wharf.JobRunning, &now, values
		return nil
	})
	if err != nil {
		return err
	}
	s.trackSweep(j)
	return nil
}

// trackSweep has the loop track a sweep step that has just started.
func (s *Scheduler) trackSweep(j *wharf.Job) {
	cp := *j
	t := newTracked(&cp)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.active == nil || s.active[t.key] != nil {
		return
	}
	s.gen++
	t.seen = s.gen
	s.active[t.key] = t
	s.markLocked(t.key)
}

// cancelSweep asks a sweep to stop: its pass cancels its trials and then
// ends it.
func (s *Scheduler) cancelSweep(ctx context.Context, sw *wharf.Job, reason string) error {
	if _, err := s.update(ctx, sw.Workspace, sw.Name, func(j *wharf.Job) error {
		if !wharf.JobTerminal(j.Status) && j.Status != wharf.JobCancelRequested {
			j.Status = wharf.JobCancelRequested
			j.Error = reason
		}
		return nil
	}); err != nil {
		return err
	}
	s.markDirty(sw.Workspace + "/" + sw.Name)
	return nil
}

// trialState is what a pass knows of one trial.
type trialState struct {
	job     *wharf.Job
	running bool
	stop    context.CancelFunc
	// values are its reports of the primary metric, in order.
	values []float64
}

// advanceSweep moves a sweep on: it starts it, stops trials an early
// termination policy, a cancel or the timeout rules out, makes and starts
// new trials while the limits allow, and ends the sweep once no trial is
// left to run, with its best trial's outputs as its own.
func (s *Scheduler) advanceSweep(ctx context.Context, t *tracked) error {
	s.mu.Lock()
	if s.active[t.key] != t {
		s.mu.Unlock()
		return nil
	}
	sw := *t.job
	if wharf.JobTerminal(sw.Status) {
		delete(s.active, t.key)
		s.mu.Unlock()
		return nil
	}
	spec, specErr := t.sweepSpec.get(sw.Spec)
	trials := make([]*trialState, 0, len(t.steps))
	for _, ts := range t.steps {
		stop, running := s.running[ts.key]
		trials = append(trials, &trialState{job: ts.job, running: running, stop: stop})
	}
	s.mu.Unlock()
	if specErr == nil && (spec == nil || spec.Sweep == nil) {
		specErr = errors.New("it has no sweep settings")
	}
	if specErr != nil {
		return s.endSweep(ctx, t, wharf.JobFailed, "the sweep's stored definition cannot be read: "+specErr.Error(), nil)
	}
	cfg := spec.Sweep
	now := s.Now().UTC()

	if sw.Status == wharf.JobNotStarted || sw.StartedAt == nil {
		j, err := s.update(ctx, sw.Workspace, sw.Name, func(j *wharf.Job) error {
			if j.Status == wharf.JobNotStarted {
				j.Status = wharf.JobRunning
			}
			if j.StartedAt == nil {
				j.StartedAt = &now
			}
			return nil
		})
		if err != nil {
			return err
		}
		sw = *j
	}
	if sw.RunID == "" {
		var parent *wharf.Job
		if sw.Parent != "" {
			p, err := s.Store.FindJob(ctx, sw.Workspace, sw.Parent)
			if err != nil {
				return err
			}
			if parent, err = s.pipelineRun(ctx, p); err != nil {
				return err
			}
		}
		if _, err := s.ensureRun(ctx, &sw, parent); err != nil {
			return err
		}
	}

	// Why no more trials are to start, if none are.
	stopping := ""
	switch {
	case sw.Status == wharf.JobCancelRequested:
		stopping = sw.Error
		if stopping == "" {
			stopping = "the sweep was canceled"
		}
	case cfg.Limits.TimeoutSeconds > 0:
		deadline := sw.StartedAt.Add(time.Duration(cfg.Limits.TimeoutSeconds) * time.Second)
		if !now.Before(deadline) {
			stopping = fmt.Sprintf("the sweep reached its timeout of %d seconds (limits.timeout)", cfg.Limits.TimeoutSeconds)
		} else {
			s.wakeSweepAt(t, deadline)
		}
	}

	if err := s.readTrialMetrics(ctx, sw.Workspace, cfg, trials); err != nil {
		return err
	}
	for _, tr := range trials {
		j := tr.job
		switch {
		case wharf.JobTerminal(j.Status):
		case stopping != "":
			if err := s.stopTrial(ctx, tr, stopping); err != nil {
				return err
			}
		case j.Status == wharf.JobCancelRequested:
			if err := s.stopTrial(ctx, tr, "canceled by request"); err != nil {
				return err
			}
		}
	}
	if stopping == "" && cfg.EarlyTermination != nil {
		hist := make([]sweep.History, len(trials))
		for i, tr := range trials {
			hist[i] = sweep.History{Trial: tr.job.Name, Values: tr.values,
				Running: !wharf.JobTerminal(tr.job.Status) && tr.job.Status != wharf.JobCancelRequested}
		}
		for _, tr := range trials {
			if why, ok := cfg.EarlyTermination.Terminate(cfg.Objective, hist)[tr.job.Name]; ok {
				if err := s.stopTrial(ctx, tr, why); err != nil {
					return err
				}
			}
		}
	}

	// New trials, while the limits and the sampler allow.
	unfinished := 0
	for _, tr := range trials {
		if !wharf.JobTerminal(tr.job.Status) {
			unfinished++
		}
	}
	exhausted := stopping != ""
	for !exhausted && len(trials) < cfg.Limits.MaxTotalTrials && unfinished < cfg.Limits.MaxConcurrentTrials {
		obs := make([]sweep.Observation, len(trials))
		for i, tr := range trials {
			obs[i] = observation(cfg, tr)
		}
		a, ok := cfg.Next(len(trials), obs)
		if !ok {
			exhausted = true
			break
		}
		j, err := s.createTrial(ctx, t, &sw, spec, len(trials), a)
		if err != nil {
			return err
		}
		trials = append(trials, &trialState{job: j})
		unfinished++
	}
	if len(trials) >= cfg.Limits.MaxTotalTrials {
		exhausted = true
	}
	if !exhausted && cfg.Sampling.Type == sweep.Grid && len(trials) >= cfg.GridSize() {
		exhausted = true
	}

	// Start what is ready to run.
	for _, tr := range trials {
		j := tr.job
		if tr.running || (j.Status != wharf.JobNotStarted && j.Status != wharf.JobQueued) {
			continue
		}
		trialSpec, err := decodeSpec(j.Spec)
		if err != nil {
			if err := s.fail(ctx, j, "the trial's stored definition cannot be read: "+err.Error()); err != nil {
				return err
			}
			continue
		}
		if wait := s.retryWait(j, trialSpec); wait > 0 {
			s.wakeSweepAt(t, now.Add(wait))
			continue
		}
		parent := sw
		cp := *j
		s.launch(&cp, &parent, nil, trialSpec)
		tr.running = true
	}

	unfinished = 0
	for _, tr := range trials {
		if !wharf.JobTerminal(tr.job.Status) {
			unfinished++
		}
	}
	if unfinished > 0 || !exhausted {
		if cfg.EarlyTermination != nil && unfinished > 0 {
			s.pollSweep(t)
		}
		return nil
	}
	return s.settleSweep(ctx, t, &sw, cfg, trials, stopping)
}

// observation is what the sampler knows of a trial: its values and, once
// it completed, its last report of the primary metric.
func observation(cfg *sweep.Config, tr *trialState) sweep.Observation {
	o := sweep.Observation{Params: sweep.Assignment{}}
	for _, p := range cfg.SearchSpace {
		text := tr.job.Parameters[p.Name]
		kind := sweep.KindString
		for _, v := range p.Values {
			if v.Text == text {
				kind = v.Kind
			}
		}
		if p.Type != sweep.Choice {
			kind = sweep.KindFloat
		}
		o.Params[p.Name] = sweep.Literal{Kind: kind, Text: text}
	}
	if n := len(tr.values); n > 0 && tr.job.Status == wharf.JobCompleted {
		o.Value, o.HasValue = tr.values[n-1], true
	}
	return o
}

// readTrialMetrics reads each trial's reports of the primary metric from
// its tracking run.
func (s *Scheduler) readTrialMetrics(ctx context.Context, workspace string, cfg *sweep.Config, trials []*trialState) error {
	for _, tr := range trials {
		if tr.job.RunID == "" {
			continue
		}
		ms, _, err := s.Store.MetricHistory(ctx, workspace, tr.job.RunID, cfg.Objective.PrimaryMetric, metricPage, "")
		if err != nil && !wharf.IsNotFound(err) {
			return err
		}
		tr.values = tr.values[:0]
		for _, m := range ms {
			if !math.IsNaN(m.Value) {
				tr.values = append(tr.values, m.Value)
			}
		}
	}
	return nil
}

// stopTrial cancels a trial with the reason: one running here is asked to
// stop and its attempt records the end; any other ends at once.
func (s *Scheduler) stopTrial(ctx context.Context, tr *trialState, reason string) error {
	if tr.running {
		if tr.job.Status == wharf.JobCancelRequested && tr.job.Error != "" {
			tr.stop()
			return nil
		}
		j, err := s.update(ctx, tr.job.Workspace, tr.job.Name, func(j *wharf.Job) error {
			if !wharf.JobTerminal(j.Status) {
				j.Status = wharf.JobCancelRequested
				j.Error = reason
			}
			return nil
		})
		if err != nil {
			return err
		}
		tr.job = j
		tr.stop()
		return nil
	}
	if err := s.cancelStep(ctx, tr.job, reason); err != nil {
		return err
	}
	j, err := s.Store.FindJob(ctx, tr.job.Workspace, tr.job.Name)
	if err == nil {
		tr.job = j
	}
	return err
}

// createTrial stores trial number n of a sweep with its values: the
// sweep's trial with each value as the input of its parameter's name (and
// in AZUREML_SWEEP_<name>, as Azure ML sets it), and the data the sweep
// read from upstream steps fixed. A trial that a previous server stored
// already is taken as it is.
func (s *Scheduler) createTrial(ctx context.Context, t *tracked, sw *wharf.Job, tmpl *StepSpec, n int, a sweep.Assignment) (*wharf.Job, error) {
	raw, err := json.Marshal(tmpl)
	if err != nil {
		return nil, err
	}
	var spec StepSpec
	if err := json.Unmarshal(raw, &spec); err != nil {
		return nil, err
	}
	spec.Sweep, spec.Deps = nil, nil
	// Every trial is an experiment of its own, and its run a child of the
	// sweep's: none takes an earlier job's result.
	spec.ForceRerun = true
	if spec.EnvVars == nil {
		spec.EnvVars = map[string]string{}
	}
	params := map[string]string{}
	for name, l := range a {
		text := l.Text
		in := spec.Inputs[name]
		in.Literal = &text
		if in.Type == "" {
			in.Type = "string"
		}
		spec.Inputs[name] = in
		spec.EnvVars["AZUREML_SWEEP_"+name] = text
		params[name] = text
	}
	for name, in := range spec.Inputs {
		if in.Step == "" {
			continue
		}
		v, ok := sw.Inputs[name]
		if !ok {
			return nil, fmt.Errorf("sweep %s has no value for input %s from step %s", sw.Name, name, in.Step)
		}
		in.Step, in.Output = "", ""
		in.Digest, in.Kind, in.Source = v.Digest, v.Kind, v.Source
		spec.Inputs[name] = in
	}
	specJSON, err := json.Marshal(spec)
	if err != nil {
		return nil, err
	}
	step := "trial_" + strconv.Itoa(n)
	j := &wharf.Job{Workspace: sw.Workspace, Name: sw.Name + "_" + strconv.Itoa(n), Parent: sw.Name, Step: step,
		Type: wharf.JobTypeCommand, DisplayName: sw.DisplayName + " " + step, ExperimentName: sw.ExperimentName,
		Status: wharf.JobNotStarted, Compute: spec.Compute, Spec: specJSON, SubmittedBy: sw.SubmittedBy,
		Tags: map[string]string{}, Parameters: params}
	if err := s.Store.CreateJobs(ctx, []*wharf.Job{j}); err != nil {
		if wharf.ErrorCode(err) != wharf.ECONFLICT {
			return nil, err
		}
		if j, err = s.Store.FindJob(ctx, sw.Workspace, j.Name); err != nil {
			return nil, err
		}
	}
	cp := *j
	s.mu.Lock()
	s.gen++
	ts := &trackedStep{key: stepKey(&cp), job: &cp, seen: s.gen}
	if t.byName == nil {
		t.byName = map[string]*trackedStep{}
	}
	if t.byName[cp.Step] == nil {
		t.steps = append(t.steps, ts)
		t.byName[cp.Step] = ts
		t.pending = append(t.pending, ts)
	}
	s.mu.Unlock()
	return j, nil
}

func decodeSpec(raw json.RawMessage) (*StepSpec, error) {
	var spec StepSpec
	if err := json.Unmarshal(raw, &spec); err != nil {
		return nil, err
	}
	return &spec, nil
}

// settleSweep ends a sweep whose trials have all ended: Completed with its
// best trial when one completed with the primary metric, Failed when none
// did, Canceled when it was canceled or ran out of time.
func (s *Scheduler) settleSweep(ctx context.Context, t *tracked, sw *wharf.Job, cfg *sweep.Config, trials []*trialState, stopping string) error {
	var best *trialState
	failed := 0
	for _, tr := range trials {
		if tr.job.Status == wharf.JobFailed {
			failed++
		}
		if tr.job.Status != wharf.JobCompleted || len(tr.values) == 0 {
			continue
		}
		if best == nil || cfg.Objective.Better(tr.values[len(tr.values)-1], best.values[len(best.values)-1]) {
			best = tr
		}
	}
	var bt *wharf.JobBestTrial
	var outputs map[string]wharf.JobOutput
	if best != nil {
		bt = &wharf.JobBestTrial{Name: best.job.Name, RunID: best.job.RunID, Parameters: maps.Clone(best.job.Parameters),
			Metric: cfg.Objective.PrimaryMetric, Value: best.values[len(best.values)-1]}
		outputs = best.job.Outputs
	}
	status, reason := wharf.JobCompleted, ""
	switch {
	case sw.Status == wharf.JobCancelRequested || stopping != "":
		status, reason = wharf.JobCanceled, stopping
	case best != nil:
	case len(trials) > 0 && failed == len(trials):
		status, reason = wharf.JobFailed, fmt.Sprintf("all %d trials failed", failed)
	default:
		status = wharf.JobFailed
		reason = fmt.Sprintf("no trial completed with the primary metric %s logged", cfg.Objective.PrimaryMetric)
	}
	return s.endSweep(ctx, t, status, reason, func(j *wharf.Job) {
		if bt == nil {
			return
		}
		j.BestTrial = bt
		j.Outputs = outputs
		if j.Properties == nil {
			j.Properties = map[string]string{}
		}
		j.Properties["best_child_run_id"] = bt.Name
		j.Properties["best_child_run_metric"] = strconv.FormatFloat(bt.Value, 'g', -1, 64)
		if b, err := json.Marshal(bt.Parameters); err == nil {
			j.Properties["best_child_run_parameters"] = string(b)
		}
	})
}

// endSweep writes a sweep's end, closes its run and forgets it.
func (s *Scheduler) endSweep(ctx context.Context, t *tracked, status, reason string, fill func(j *wharf.Job)) error {
	now := s.Now().UTC()
	s.mu.Lock()
	sw := t.job
	s.mu.Unlock()
	j, err := s.update(ctx, sw.Workspace, sw.Name, func(j *wharf.Job) error {
		if wharf.JobTerminal(j.Status) {
			return nil
		}
		j.Status, j.Error, j.EndedAt = status, reason, &now
		if fill != nil {
			fill(j)
		}
		return nil
	})
	if err != nil {
		return err
	}
	s.endRun(ctx, j)
	s.forget(t.key)
	return nil
}

// pollSweep has the loop look at a sweep again after the poll interval,
// for the metrics its running trials log meanwhile.
func (s *Scheduler) pollSweep(t *tracked) {
	every := s.SweepPollInterval
	if every <= 0 {
		every = DefaultSweepPollInterval
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if t.polling {
		return
	}
	t.polling = true
	time.AfterFunc(every, func() {
		s.mu.Lock()
		t.polling = false
		s.mu.Unlock()
		s.markDirty(t.key)
	})
}

// wakeSweepAt has the loop look at a sweep again at a time: its timeout,
// or the end of a trial's retry backoff.
func (s *Scheduler) wakeSweepAt(t *tracked, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !t.timerAt.IsZero() && !at.Before(t.timerAt) {
		return // an earlier wake-up is due; it looks again
	}
	t.timerAt = at
	time.AfterFunc(time.Until(at), func() {
		s.mu.Lock()
		if t.timerAt.Equal(at) {
			t.timerAt = time.Time{}
		}
		s.mu.Unlock()
		s.markDirty(t.key)
	})
}
