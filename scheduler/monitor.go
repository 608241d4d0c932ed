package scheduler

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"time"

	"github.com/wharfml/wharf"
)

// MonitorRunner computes a monitor job's signals. It runs in the server
// with the server's access to collected data, and reads no user code: a
// custom signal's or pre-processing component is run as a sandboxed step.
type MonitorRunner interface {
	// Check refuses a monitor definition that could never run (a
	// document that is not one).
	Check(ctx context.Context, workspace string, monitor json.RawMessage) error
	// Run computes every signal of job (its Spec a MonitorSpec), records
	// the results and their alerts, writes what it does to log, and
	// returns the tags the job gets (the breach tag when a signal
	// breached). An error fails the job.
	Run(ctx context.Context, job *wharf.Job, log io.Writer) (map[string]string, error)
}

// MonitorSpec is the Spec of a monitor job: the schedule's monitor and
// when it fired.
type MonitorSpec struct {
	Schedule string          `json:"schedule"`
	Fired    time.Time       `json:"fired"`
	Monitor  json.RawMessage `json:"create_monitor"`
}

// monitorDocument returns the create_monitor of a schedule's job document,
// nil when the schedule makes ordinary jobs.
func monitorDocument(job json.RawMessage) json.RawMessage {
	var probe struct {
		Monitor json.RawMessage `json:"create_monitor"`
	}
	if json.Unmarshal(job, &probe) != nil {
		return nil
	}
	return probe.Monitor
}

// submitMonitor stores a monitor schedule's firing as a monitor job and
// starts it.
func (s *Scheduler) submitMonitor(ctx context.Context, sc *wharf.Schedule, name string, fired, due time.Time, monitor json.RawMessage) (*wharf.Job, error) {
	if s.Monitor == nil {
		return nil, wharf.Errorf(wharf.EUNAVAILABLE, "this server does not run model monitors")
	}
	spec, err := json.Marshal(MonitorSpec{Schedule: sc.Name, Fired: fired.UTC(), Monitor: monitor})
	if err != nil {
		return nil, err
	}
	tags := maps.Clone(sc.Tags)
	if tags == nil {
		tags = map[string]string{}
	}
	tags["wharf.schedule"] = sc.Name
	if !due.IsZero() {
		tags[FiringTag] = due.UTC().Format(time.RFC3339)
	}
	display := sc.DisplayName
	if display == "" {
		display = sc.Name
	}
	j := &wharf.Job{Workspace: sc.Workspace, Name: name, Type: wharf.JobTypeMonitor, DisplayName: display,
		ExperimentName: sc.Name, Description: sc.Description, Tags: tags, Status: wharf.JobQueued,
		Compute: "serverless", Spec: spec, SubmittedBy: sc.CreatedBy}
	if err := s.Store.CreateJobs(ctx, []*wharf.Job{j}); err != nil {
		return nil, err
	}
	s.startMonitor(j)
	return j, nil
}

// startMonitor runs a monitor job in the background.
func (s *Scheduler) startMonitor(j *wharf.Job) {
	ctx := s.ctx
	if ctx == nil {
		ctx = context.Background()
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.runMonitor(ctx, j); err != nil && ctx.Err() == nil {
			s.Logger.Error("monitor job", "job", j.Name, "err", err)
		}
	}()
}

// runMonitor runs one monitor job to its end. A server that stops during
// the run leaves the job Running; the next one runs it again, and the
// results, stored once per job, are not recorded (or alerted) twice.
func (s *Scheduler) runMonitor(ctx context.Context, j *wharf.Job) error {
	now := s.Now().UTC()
	j, err := s.Store.UpdateJob(ctx, j.Workspace, j.Name, func(x *wharf.Job) error {
		x.Status = wharf.JobRunning
		if x.StartedAt == nil {
			x.StartedAt = &now
		}
		x.Attempts = append(x.Attempts, wharf.JobAttempt{Number: len(x.Attempts) + 1, Status: wharf.JobRunning, Started: now})
		return nil
	})
	if err != nil {
		return err
	}
	attempt := len(j.Attempts)
	logPath := s.LogPath(j.Workspace, j.Name, attempt)
	if err := os.MkdirAll(filepath.Dir(logPath), 0o700); err != nil {
		return err
	}
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	tags, runErr := s.Monitor.Run(ctx, j, logf)
	if runErr != nil {
		fmt.Fprintf(logf, "monitor failed: %s\n", wharf.ErrorMessage(runErr))
	}
	logf.Close()
	if ctx.Err() != nil {
		// Stopped with the server: run again by the next one.
		return ctx.Err()
	}
	end := s.Now().UTC()
	_, err = s.Store.UpdateJob(context.WithoutCancel(ctx), j.Workspace, j.Name, func(x *wharf.Job) error {
		x.Status, x.EndedAt = wharf.JobCompleted, &end
		if runErr != nil {
			x.Status, x.Error = wharf.JobFailed, wharf.ErrorMessage(runErr)
		}
		if x.Tags == nil {
			x.Tags = map[string]string{}
		}
		maps.Copy(x.Tags, tags)
		if n := len(x.Attempts); n > 0 {
			x.Attempts[n-1].Status, x.Attempts[n-1].Ended, x.Attempts[n-1].Error = x.Status, &end, x.Error
		}
		return nil
	})
	return err
}
