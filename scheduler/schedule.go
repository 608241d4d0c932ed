package scheduler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/wharfml/wharf"
	"github.com/wharfml/wharf/jobspec"
)

// errNotDue ends a schedule update that found the firing already taken.
var errNotDue = errors.New("schedule not due")

// maxFoldedFirings bounds the count of missed firings, for a minutely
// schedule after a long outage.
const maxFoldedFirings = 100000

// PrepareSchedule checks a schedule's trigger and job and sets its next
// run. A trigger without a start time starts at creation.
func (s *Scheduler) PrepareSchedule(ctx context.Context, sc *wharf.Schedule) error {
	var trig jobspec.Trigger
	if err := json.Unmarshal(sc.Trigger, &trig); err != nil {
		return wharf.Errorf(wharf.EINVALID, "trigger: %s", err.Error()).WithField("trigger")
	}
	// The job is resolved once now, so that a schedule that could never
	// fire is refused at once; every firing resolves it again.
	now := s.Now().UTC()
	if _, err := s.scheduledSubmission(ctx, sc, NewJobName(), now); err != nil {
		return prefixField(err, "create_job")
	}
	if trig.StartTime.IsZero() {
		trig.StartTime = now
		b, err := json.Marshal(&trig)
		if err != nil {
			return err
		}
		sc.Trigger = b
	}
	sc.NextRun = nil
	if next := trig.Next(now); !next.IsZero() {
		next = next.UTC()
		sc.NextRun = &next
	}
	return nil
}

// fireSchedules submits the job of every schedule that is due.
//
// Policy for firings missed while the server was down: they are folded
// into one run made as soon as the server is back (counted in Missed), and
// the schedule continues from the next firing after now. A firing is
// claimed (next run moved on) before its job is submitted, so a crash
// between the two loses that one run rather than submitting it twice.
func (s *Scheduler) fireSchedules(ctx context.Context) error {
	now := s.Now().UTC()
	due, err := s.Store.DueSchedules(ctx, now)
	if err != nil {
		return err
	}
	for _, sc := range due {
		var trig jobspec.Trigger
		if err := json.Unmarshal(sc.Trigger, &trig); err != nil {
			s.Logger.Error("schedule has an unreadable trigger", "schedule", sc.Name, "err", err)
			continue
		}
		// fired is when the firing being made was due: the last one
		// due by now, when several were missed.
		var fired time.Time
		_, err := s.Store.UpdateSchedule(ctx, sc.Workspace, sc.Name, func(x *wharf.Schedule) error {
			if !x.Enabled || x.NextRun == nil || x.NextRun.After(now) {
				return errNotDue
			}
			missed := 0
			fired = *x.NextRun
			for ; missed < maxFoldedFirings; missed++ {
				n := trig.Next(fired)
				if n.IsZero() || n.After(now) {
					break
				}
				fired = n
			}
			x.Missed += missed
			x.LastRun = &now
			x.NextRun = nil
			if next := trig.Next(now); !next.IsZero() {
				next = next.UTC()
				x.NextRun = &next
			}
			return nil
		})
		if errors.Is(err, errNotDue) {
			continue
		}
		if err != nil {
			return err
		}
		if _, err := s.submitScheduled(ctx, sc, fired); err != nil && !isRefusal(err) {
			return err
		}
	}
	return nil
}

// refusal is a scheduled job the workspace would not take, which is
// recorded on the schedule rather than failing the loop.
type refusal struct{ err error }

func (r refusal) Error() string { return r.err.Error() }
func (r refusal) Unwrap() error { return r.err }

func isRefusal(err error) bool {
	var r refusal
	return errors.As(err, &r)
}

// submitScheduled submits a schedule's job as fired at trigger and
// records the job, or why it was refused, as the schedule's last job.
func (s *Scheduler) submitScheduled(ctx context.Context, sc *wharf.Schedule, trigger time.Time) (*wharf.Job, error) {
	name := NewJobName()
	sub, err := s.scheduledSubmission(ctx, sc, name, trigger)
	var j *wharf.Job
	if err == nil {
		sub.Name = name
		sub.Tags = maps.Clone(sub.Tags)
		if sub.Tags == nil {
			sub.Tags = map[string]string{}
		}
		sub.Tags["wharf.schedule"] = sc.Name
		j, err = s.Submit(ctx, sc.Workspace, sc.CreatedBy, sub)
	}
	result := ""
	if err != nil {
		s.Logger.Error("scheduled job was refused", "schedule", sc.Name, "err", err)
		result = fmt.Sprintf("refused: %s", wharf.ErrorMessage(err))
		err = refusal{err}
	} else {
		result = j.Name
	}
	if _, uerr := s.Store.UpdateSchedule(ctx, sc.Workspace, sc.Name, func(x *wharf.Schedule) error {
		x.LastJob = result
		return nil
	}); uerr != nil {
		return nil, uerr
	}
	return j, err
}

// TriggerSchedule submits a schedule's job now, once, as `az ml schedule
// trigger` does, whether or not the schedule is enabled; its firings go
// on as before.
func (s *Scheduler) TriggerSchedule(ctx context.Context, workspace, name string) (*wharf.Job, error) {
	sc, err := s.Store.FindSchedule(ctx, workspace, name)
	if err != nil {
		return nil, err
	}
	j, err := s.submitScheduled(ctx, sc, s.Now().UTC())
	var r refusal
	if errors.As(err, &r) {
		return nil, r.err
	}
	return j, err
}

// EnableSchedule enables or disables a schedule: a disabled one has no
// next run, an enabled one fires next at its trigger's next time from
// now (firings missed while it was disabled are not made up).
func (s *Scheduler) EnableSchedule(ctx context.Context, workspace, name string, enabled bool) (*wharf.Schedule, error) {
	now := s.Now().UTC()
	return s.Store.UpdateSchedule(ctx, workspace, name, func(x *wharf.Schedule) error {
		var trig jobspec.Trigger
		if err := json.Unmarshal(x.Trigger, &trig); err != nil {
			return wharf.Errorf(wharf.EINTERNAL, "schedule %s has an unreadable trigger: %v", name, err)
		}
		x.Enabled, x.NextRun = enabled, nil
		if next := trig.Next(now); enabled && !next.IsZero() {
			next = next.UTC()
			x.NextRun = &next
		}
		return nil
	})
}

// scheduleTick is how often schedules are checked: their firings are
// minutes apart at the finest.
const scheduleTick = 5 * time.Second

// scheduledSubmission is what a schedule submits now, as job name at
// trigger: its job document, with the expressions of a firing expanded
// (see jobspec.ExpandScheduleExpressions), resolved against the workspace
// as it is at this moment. Schedules stored before documents were kept
// hold a resolved submission, which is submitted as it was stored.
func (s *Scheduler) scheduledSubmission(ctx context.Context, sc *wharf.Schedule, name string, trigger time.Time) (*Submission, error) {
	if isStoredSubmission(sc.Job) {
		var sub Submission
		if err := json.Unmarshal(sc.Job, &sub); err != nil {
			return nil, wharf.Errorf(wharf.EINVALID, "%s", err.Error())
		}
		if err := s.validate(ctx, sc.Workspace, &sub); err != nil {
			return nil, err
		}
		return &sub, nil
	}
	if s.Resolve == nil {
		return nil, wharf.Errorf(wharf.EUNAVAILABLE, "this server cannot resolve job documents")
	}
	doc, err := jobspec.ExpandScheduleExpressions(sc.Job, name, trigger)
	if err != nil {
		return nil, wharf.Errorf(wharf.EINVALID, "the job document is not valid JSON: %v", err)
	}
	return s.Resolve(ctx, sc.Workspace, doc)
}

// isStoredSubmission tells a resolved submission (steps with their specs)
// from a job document (a command or jobs).
func isStoredSubmission(job json.RawMessage) bool {
	var probe struct {
		Steps   json.RawMessage `json:"steps"`
		Command json.RawMessage `json:"command"`
		Jobs    json.RawMessage `json:"jobs"`
	}
	return json.Unmarshal(job, &probe) == nil && probe.Steps != nil && probe.Command == nil && probe.Jobs == nil
}

// prefixField puts a problem's field paths below prefix, for a job
// document nested in a request.
func prefixField(err error, prefix string) error {
	var we *wharf.Error
	if !errors.As(err, &we) || we.Code != wharf.EINVALID {
		return err
	}
	out := *we
	out.Field = joinField(prefix, we.Field)
	out.Details = nil
	for _, d := range we.Details {
		d.Field = joinField(prefix, d.Field)
		out.Details = append(out.Details, d)
	}
	return &out
}

func joinField(prefix, field string) string {
	if field == "" {
		return prefix
	}
	return prefix + "." + field
}
