package scheduler

import (
	"context"
	"fmt"
	"strings"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/local"
)

// maxInterruptions is how many times a step is re-run after a server stop
// cut it short. Interruptions are not the step's fault, so they do not use
// up its retries; the cap stops a step that brings the server down (say,
// by exhausting memory) from doing so forever.
const maxInterruptions = 3

// interruptedPrefix starts the error of an attempt a server stop cut short.
const interruptedPrefix = "interrupted"

// recover deals with the steps a previous server left in flight: what is
// left of their processes is killed, the attempt is recorded as
// interrupted, and the step is queued again, or failed once it has been
// interrupted maxInterruptions times.
func (s *Scheduler) recover(ctx context.Context) error {
	jobs, err := s.Store.ListUnfinishedJobs(ctx)
	if err != nil {
		return err
	}
	for _, j := range jobs {
		if j.Type == wharf.JobTypeMonitor {
			// Run again: what it recorded before the stop is kept
			// and not recorded twice.
			if s.Monitor != nil {
				s.startMonitor(j)
			}
			continue
		}
		if j.Type == wharf.JobTypePipeline || j.Type == wharf.JobTypeSweep {
			// Their state is their steps' and trials'.
			continue
		}
		switch j.Status {
		case wharf.JobStarting, wharf.JobPreparing, wharf.JobRunning, wharf.JobFinalizing, wharf.JobCancelRequested, wharf.JobQueued:
		default:
			continue
		}
		if s.inFlightOnCluster(j) != nil {
			// Its Ray task goes on without the server; the loop follows
			// it (see followOnCluster).
			continue
		}
		if n := len(j.Attempts); n > 0 {
			a := j.Attempts[n-1]
			procs := a.Ranks
			if a.PGID > 0 {
				procs = append(procs, wharf.AttemptProcess{PID: a.PID, PGID: a.PGID, ProcStart: a.ProcStart})
			}
			// Process ids mean nothing on another machine (another
			// server sharing the store ran it, and died with it).
			if a.Machine != "" && a.Machine != local.Machine() {
				procs = nil
			}
			for _, p := range procs {
				killed, err := local.KillOrphan(local.Process{PID: p.PID, PGID: p.PGID, StartTime: p.ProcStart})
				if err != nil {
					s.Logger.Warn("stopping a process left by the previous server failed", "job", j.Name, "pid", p.PID, "err", err)
				} else if killed {
					s.Logger.Info("stopped a process left by the previous server", "job", j.Name, "pid", p.PID)
				}
			}
		}
		if err := s.markInterrupted(ctx, j); err != nil {
			return err
		}
	}
	return nil
}

func (s *Scheduler) markInterrupted(ctx context.Context, j *wharf.Job) error {
	now := s.Now().UTC()
	_, err := s.update(ctx, j.Workspace, j.Name, func(j *wharf.Job) error {
		interrupted := 0
		for i := range j.Attempts {
			a := &j.Attempts[i]
			if a.Ended == nil {
				a.Status = wharf.JobFailed
				a.Error = interruptedPrefix + ": the server stopped while the step was " + j.Status
				a.Ended = &now
				a.PID, a.PGID, a.ProcStart, a.Ranks, a.Machine = 0, 0, 0, nil, ""
			}
			if strings.HasPrefix(a.Error, interruptedPrefix) {
				interrupted++
			}
		}
		switch {
		case j.Status == wharf.JobCancelRequested:
			j.Status = wharf.JobCanceled
			j.Error = "canceled by request"
			j.EndedAt = &now
		case interrupted > maxInterruptions:
			j.Status = wharf.JobFailed
			j.Error = fmt.Sprintf("interrupted by %d server stops; not run again", interrupted)
			j.EndedAt = &now
		default:
			j.Status = wharf.JobQueued
		}
		return nil
	})
	return err
}
