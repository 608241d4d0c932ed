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
	if _, err := s.scheduledSubmission(ctx, sc); err != nil {
		return prefixField(err, "create_job")
	}
	now := s.Now().UTC()
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
		_, err := s.Store.UpdateSchedule(ctx, sc.Workspace, sc.Name, func(x *wharf.Schedule) error {
			if !x.Enabled || x.NextRun == nil || x.NextRun.After(now) {
				return errNotDue
			}
			missed := 0
			for t := *x.NextRun; missed < maxFoldedFirings; missed++ {
				n := trig.Next(t)
				if n.IsZero() || n.After(now) {
					break
				}
				t = n
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
		result := ""
		sub, err := s.scheduledSubmission(ctx, sc)
		var j *wharf.Job
		if err == nil {
			sub.Name = ""
			sub.Tags = maps.Clone(sub.Tags)
			if sub.Tags == nil {
				sub.Tags = map[string]string{}
			}
			sub.Tags["wharf.schedule"] = sc.Name
			j, err = s.Submit(ctx, sc.Workspace, sc.CreatedBy, sub)
		}
		if err != nil {
			s.Logger.Error("scheduled job was refused", "schedule", sc.Name, "err", err)
			result = fmt.Sprintf("refused: %s", wharf.ErrorMessage(err))
		} else {
			result = j.Name
		}
		if _, err := s.Store.UpdateSchedule(ctx, sc.Workspace, sc.Name, func(x *wharf.Schedule) error {
			x.LastJob = result
			return nil
		}); err != nil {
			return err
		}
	}
	return nil
}

// scheduleTick is how often schedules are checked: their firings are
// minutes apart at the finest.
const scheduleTick = 5 * time.Second

// scheduledSubmission is what a schedule submits now: its job document
// resolved against the workspace as it is at this moment. Schedules
// stored before documents were kept hold a resolved submission, which
// is submitted as it was stored.
func (s *Scheduler) scheduledSubmission(ctx context.Context, sc *wharf.Schedule) (*Submission, error) {
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
	return s.Resolve(ctx, sc.Workspace, sc.Job)
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
