package wharf

import (
	"context"
	"encoding/json"
	"time"
)

// Schedule submits a job on a cron or recurrence trigger, for scheduled
// retraining.
type Schedule struct {
	Workspace   string            `json:"-"`
	Name        string            `json:"name"`
	DisplayName string            `json:"display_name,omitempty"`
	Description string            `json:"description,omitempty"`
	Tags        map[string]string `json:"tags"`
	Enabled     bool              `json:"is_enabled"`
	// Trigger is the trigger as written (type, expression or frequency,
	// start and end, time zone).
	Trigger json.RawMessage `json:"trigger"`
	// Job is the job submission the schedule makes, its content pinned
	// when the schedule was created.
	Job       json.RawMessage `json:"create_job"`
	CreatedBy string          `json:"created_by"`
	CreatedAt time.Time       `json:"created_at"`
	// NextRun is the next firing; nil when the trigger has no more.
	NextRun *time.Time `json:"next_run_time,omitempty"`
	LastRun *time.Time `json:"last_run_time,omitempty"`
	LastJob string     `json:"last_job,omitempty"`
	// Missed counts firings that fell while the server was down and were
	// folded into the one run made on its return.
	Missed int `json:"missed_runs"`
}

// ScheduleService stores schedules.
type ScheduleService interface {
	// PutSchedule creates or replaces a schedule and reports whether it
	// was created.
	PutSchedule(ctx context.Context, s *Schedule) (bool, error)
	FindSchedule(ctx context.Context, workspace, name string) (*Schedule, error)
	ListSchedules(ctx context.Context, workspace string) ([]*Schedule, error)
	DeleteSchedule(ctx context.Context, workspace, name string) error
	// DueSchedules returns the enabled schedules, in every workspace,
	// whose next run is at or before now.
	DueSchedules(ctx context.Context, now time.Time) ([]*Schedule, error)
	// UpdateSchedule is a read-modify-write in one transaction.
	UpdateSchedule(ctx context.Context, workspace, name string, fn func(s *Schedule) error) (*Schedule, error)
}
