package scheduler

import (
	"context"
	"sync"
	"time"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/local"
)

// passingAfter is how long an attempt may stay in a passing status
// (Starting, Preparing, Finalizing) before that status is written. A no-op
// step goes through all three in a few milliseconds: writing each would
// cost every step three store writes that a poller (the CLI looks every
// 300 ms) would almost never see, while a step that stages a large input,
// builds an environment or saves large outputs still shows where it is.
const passingAfter = 100 * time.Millisecond

// attemptRec is the attempt runStep is running, with what of it the store
// does not hold yet. A step that gets its compute slot at once and runs
// quickly is written twice: Running with its process, and its end.
type attemptRec struct {
	s *Scheduler
	n int
	// started is when the attempt got its compute slot, the Started of
	// its record; zero before.
	started time.Time
	// fields are the step's fields for this run (its inputs, reuse note,
	// compute), written with the first write and nil once they were.
	fields func(j *wharf.Job)
	// timer writes a passing status once it has lasted; wg is done when
	// that write is done or will never happen.
	timer *time.Timer
	wg    sync.WaitGroup
}

// apply puts into j what the attempt has not written yet, and returns the
// attempt's record in j, made when it is not there.
func (a *attemptRec) apply(j *wharf.Job) *wharf.JobAttempt {
	if a.fields != nil {
		a.fields(j)
	}
	if r := lastAttempt(j, a.n); r != nil {
		return r
	}
	j.Attempts = append(j.Attempts, wharf.JobAttempt{Number: a.n, Started: a.started})
	return &j.Attempts[len(j.Attempts)-1]
}

// passing puts the attempt in a passing status, written only if the
// attempt is still in it after passingAfter.
func (a *attemptRec) passing(ctx context.Context, st *wharf.Job, status string) {
	a.settle()
	ctx = context.WithoutCancel(ctx)
	snap := *st
	a.wg.Add(1)
	a.timer = time.AfterFunc(passingAfter, func() {
		defer a.wg.Done()
		_, _ = a.write(ctx, &snap, status, nil)
	})
}

// settle cancels a passing status not written yet, or waits for its write
// under way, so that it never lands after the write that follows it.
// Every write of the attempt's runStep comes after it.
func (a *attemptRec) settle() {
	if a.timer == nil {
		return
	}
	if a.timer.Stop() {
		a.wg.Done()
	}
	a.wg.Wait()
	a.timer = nil
}

// set writes the attempt's status now, with its process once that is
// known.
func (a *attemptRec) set(ctx context.Context, st *wharf.Job, status string, p *local.Process) (*wharf.Job, error) {
	a.settle()
	return a.write(ctx, st, status, p)
}

// addRank writes the attempt Running with one more of its distributed
// processes, so that a server that dies from here on finds each of them
// to stop. Calls must not overlap.
func (a *attemptRec) addRank(ctx context.Context, st *wharf.Job, p local.Process) {
	a.settle()
	_, _ = a.write(ctx, st, wharf.JobRunning, nil, func(r *wharf.JobAttempt) {
		r.Ranks = append(r.Ranks, wharf.AttemptProcess{PID: p.PID, PGID: p.PGID, ProcStart: p.StartTime})
		r.Machine = local.Machine()
	})
}

func (a *attemptRec) write(ctx context.Context, st *wharf.Job, status string, p *local.Process, more ...func(r *wharf.JobAttempt)) (*wharf.Job, error) {
	j, err := a.s.update(ctx, st.Workspace, st.Name, func(j *wharf.Job) error {
		keepRun(j, st)
		if j.Status == wharf.JobCancelRequested && status != wharf.JobFinalizing {
			// Keep the request visible; the attempt is being stopped.
			status = wharf.JobCancelRequested
		}
		r := a.apply(j)
		r.Status = status
		if p != nil {
			r.PID, r.PGID, r.ProcStart, r.Machine = p.PID, p.PGID, p.StartTime, local.Machine()
			r.Server = a.s.Server
		}
		for _, m := range more {
			m(r)
		}
		j.Status = status
		return nil
	})
	if err == nil {
		a.fields = nil
	}
	return j, err
}
