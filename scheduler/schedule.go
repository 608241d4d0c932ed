package scheduler

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
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
	if m := monitorDocument(sc.Job); m != nil {
		if s.Monitor == nil {
			return wharf.Errorf(wharf.EUNAVAILABLE, "this server does not run model monitors")
		}
		if err := s.Monitor.Check(ctx, sc.Workspace, m); err != nil {
			return prefixField(err, "create_monitor")
		}
	} else if _, err := s.scheduledSubmission(ctx, sc, NewJobName(), now); err != nil {
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
// Policy for firings missed while no server ran the scheduler: they are
// folded into one run made as soon as one does (counted in Missed), and
// the schedule continues from the next firing after now.
//
// A firing is made exactly once, across crashes and a change of the
// server that runs the scheduler: its job's name is drawn from the
// schedule and the firing's due time, so it is submitted only if no job of
// that name exists yet, and the firing is claimed (next run moved on) only
// after. A scheduler that dies between the two leaves the claim to the
// next, which finds the job and does not submit it again; one that lost
// its lease is refused both writes (fencing).
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
		dueAt := *sc.NextRun
		// fired is when the firing being made was due: the last one
		// due by now, when several were missed.
		fired, missed := lastDue(&trig, dueAt, now)
		name := firingJobName(sc, dueAt)
		result := name
		if _, err := s.Store.FindJob(ctx, sc.Workspace, name); wharf.IsNotFound(err) {
			j, err := s.submitScheduled(ctx, sc, name, fired, dueAt)
			switch {
			case isRefusal(err):
				result = refusedResult(err)
			case err != nil:
				return err
			default:
				result = j.Name
			}
		} else if err != nil {
			return err
		}
		_, err = s.Store.UpdateSchedule(ctx, sc.Workspace, sc.Name, func(x *wharf.Schedule) error {
			if x.NextRun == nil || !x.NextRun.Equal(dueAt) {
				return errNotDue
			}
			x.Missed += missed
			x.LastRun = &now
			x.LastJob = result
			x.NextRun = nil
			if next := trig.Next(now); x.Enabled && !next.IsZero() {
				next = next.UTC()
				x.NextRun = &next
			}
			return nil
		})
		if err != nil && !errors.Is(err, errNotDue) {
			return err
		}
	}
	return nil
}

// lastDue is the last firing of trig due by now, counting from the
// firing due at first, and how many firings before it were missed.
func lastDue(trig *jobspec.Trigger, first, now time.Time) (time.Time, int) {
	fired, missed := first, 0
	for ; missed < maxFoldedFirings; missed++ {
		n := trig.Next(fired)
		if n.IsZero() || n.After(now) {
			break
		}
		fired = n
	}
	return fired, missed
}

// firingJobName is the name of the job of a schedule's firing due at due,
// drawn from both (and from when the schedule was made, so that a schedule
// made again under its old name fires anew).
func firingJobName(sc *wharf.Schedule, due time.Time) string {
	seed := sha256.Sum256([]byte(sc.Workspace + "\x00" + sc.Name + "\x00" + sc.CreatedAt.UTC().Format(time.RFC3339Nano) +
		"\x00" + due.UTC().Format(time.RFC3339Nano)))
	i := 0
	return jobName(func(n int) int {
		v := int(binary.BigEndian.Uint16(seed[i:]))
		i += 2
		return v % n
	})
}

// FiringTag names, on a job a schedule fired, the time the firing was due.
const FiringTag = "wharf.schedule_due"

// refusal is a scheduled job the workspace would not take, which is
// recorded on the schedule rather than failing the loop.
type refusal struct{ err error }

func (r refusal) Error() string { return r.err.Error() }
func (r refusal) Unwrap() error { return r.err }

func isRefusal(err error) bool {
	var r refusal
	return errors.As(err, &r)
}

// refusedResult is what a schedule records as its last job when the
// workspace refused it.
func refusedResult(err error) string {
	return fmt.Sprintf("refused: %s", wharf.ErrorMessage(err))
}

// submitScheduled submits a schedule's job as name, fired at trigger (for
// a firing due at due; zero for a trigger by hand): a model monitor's
// monitor job, or the job its document makes. A job the workspace refuses
// is logged and returned as a refusal.
func (s *Scheduler) submitScheduled(ctx context.Context, sc *wharf.Schedule, name string, trigger, due time.Time) (*wharf.Job, error) {
	var j *wharf.Job
	var err error
	if m := monitorDocument(sc.Job); m != nil {
		j, err = s.submitMonitor(ctx, sc, name, trigger, due, m)
	} else {
		var sub *Submission
		if sub, err = s.scheduledSubmission(ctx, sc, name, trigger); err == nil {
			sub.Name = name
			sub.Tags = maps.Clone(sub.Tags)
			if sub.Tags == nil {
				sub.Tags = map[string]string{}
			}
			sub.Tags["wharf.schedule"] = sc.Name
			if !due.IsZero() {
				sub.Tags[FiringTag] = due.UTC().Format(time.RFC3339)
			}
			j, err = s.Submit(ctx, sc.Workspace, sc.CreatedBy, sub)
		}
	}
	if err != nil && !errors.Is(err, wharf.ErrFenced) {
		s.Logger.Error("scheduled job was refused", "schedule", sc.Name, "err", err)
		return nil, refusal{err}
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
	j, err := s.submitScheduled(ctx, sc, NewJobName(), s.Now().UTC(), time.Time{})
	result := ""
	if err == nil {
		result = j.Name
	} else {
		result = refusedResult(err)
	}
	if _, uerr := s.Store.UpdateSchedule(ctx, sc.Workspace, sc.Name, func(x *wharf.Schedule) error {
		x.LastJob = result
		return nil
	}); uerr != nil {
		return nil, uerr
	}
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
