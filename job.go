package wharf

import (
	"context"
	"encoding/json"
	"time"
)

// Job statuses, the vocabulary of az ml.
const (
	JobNotStarted      = "NotStarted"
	JobQueued          = "Queued"
	JobStarting        = "Starting"
	JobPreparing       = "Preparing"
	JobRunning         = "Running"
	JobFinalizing      = "Finalizing"
	JobCancelRequested = "CancelRequested"
	JobCompleted       = "Completed"
	JobFailed          = "Failed"
	JobCanceled        = "Canceled"
)

// JobTerminal reports whether a status is final.
func JobTerminal(status string) bool {
	return status == JobCompleted || status == JobFailed || status == JobCanceled
}

// Job types.
const (
	JobTypeCommand  = "command"
	JobTypePipeline = "pipeline"
	JobTypeSweep    = "sweep"
)

// Job is a command job, a pipeline job, a sweep job, one step of a
// pipeline (a command or sweep job whose Parent is the pipeline), or one
// trial of a sweep (a command job whose Parent is the sweep).
type Job struct {
	Workspace string `json:"-"`
	Name      string `json:"name"`
	// Parent is the pipeline job of a step or the sweep job of a trial,
	// "" for a top-level job.
	Parent string `json:"parent,omitempty"`
	// Step is the step's name in its pipeline, or the trial's in its
	// sweep (trial_0, trial_1, ...).
	Step           string            `json:"step,omitempty"`
	Type           string            `json:"type"`
	DisplayName    string            `json:"display_name"`
	ExperimentName string            `json:"experiment_name"`
	Description    string            `json:"description,omitempty"`
	Tags           map[string]string `json:"tags"`
	Status         string            `json:"status"`
	Compute        string            `json:"compute,omitempty"`
	// Spec is what runs: the resolved plan of a pipeline or the step of a
	// command job, as the scheduler reads it.
	Spec json.RawMessage `json:"spec,omitempty"`
	// Document is a top-level job as submitted: the CLI v2 job schema as
	// JSON, with uploaded content named by datastore URI. Jobs stored
	// before documents were kept have none.
	Document json.RawMessage `json:"document,omitempty"`
	// Resolved is the data a top-level job's steps read, by "step.input"
	// ("input" for a command job), as resolved when the job was created:
	// which version @latest was, what a datastore folder held.
	Resolved map[string]JobValue `json:"resolved,omitempty"`
	// ExperimentID and RunID are the tracking run the job logs into.
	ExperimentID string `json:"experiment_id,omitempty"`
	RunID        string `json:"run_id,omitempty"`
	// ReuseKey hashes everything a step's result depends on; ReusedFrom
	// names the earlier job whose outputs it took, and ReuseNote says why
	// it was or was not reused.
	ReuseKey   string `json:"reuse_key,omitempty"`
	ReusedFrom string `json:"reused_from,omitempty"`
	ReuseNote  string `json:"reuse_note,omitempty"`
	// Inputs are the resolved values a step ran with: literal text, or the
	// digest of a data input.
	Inputs  map[string]JobValue  `json:"inputs,omitempty"`
	Outputs map[string]JobOutput `json:"outputs,omitempty"`
	// Artifacts are a command job's or step's default artifacts, what it
	// left in ./outputs and ./logs of its working directory, as one folder
	// (outputs/... and logs/...); nil when it left nothing there.
	Artifacts *JobOutput   `json:"artifacts,omitempty"`
	Attempts  []JobAttempt `json:"attempts,omitempty"`
	Error     string       `json:"error,omitempty"`
	// Parameters are a sweep trial's hyperparameters, as its command
	// received them.
	Parameters map[string]string `json:"parameters,omitempty"`
	// BestTrial is, for a sweep that has ended, its best trial; the
	// sweep's Outputs are that trial's.
	BestTrial *JobBestTrial `json:"best_trial,omitempty"`
	// Properties are what Azure ML records of a job beside its fields:
	// a sweep's best_child_run_id names its best trial.
	Properties map[string]string `json:"properties,omitempty"`
	// SubmittedBy is the principal that created the job; its processes
	// log to tracking with that principal's rights.
	SubmittedBy string     `json:"submitted_by"`
	CreatedAt   time.Time  `json:"created_at"`
	StartedAt   *time.Time `json:"started_at,omitempty"`
	EndedAt     *time.Time `json:"ended_at,omitempty"`
}

// JobValue is one resolved input of a step.
type JobValue struct {
	Type string `json:"type"`
	// Value is a literal's text.
	Value string `json:"value,omitempty"`
	// Digest and Kind identify data content: a blob ("file") or a folder
	// snapshot manifest ("folder").
	Digest string `json:"digest,omitempty"`
	Kind   string `json:"kind,omitempty"`
	// Source says where data came from: an asset reference, a datastore
	// URI or an upstream output (step.output).
	Source string `json:"source,omitempty"`
}

// JobOutput is a committed output of a job: a folder snapshot or a file.
type JobOutput struct {
	Type   string `json:"type"`
	Kind   string `json:"kind"`
	Digest string `json:"digest"`
	Size   int64  `json:"size"`
	Files  int    `json:"files"`
}

// JobBestTrial is a sweep's best trial: the one whose last value of the
// primary metric is best by the objective's goal.
type JobBestTrial struct {
	Name       string            `json:"name"`
	RunID      string            `json:"run_id,omitempty"`
	Parameters map[string]string `json:"parameters"`
	Metric     string            `json:"metric"`
	Value      float64           `json:"value"`
}

// JobAttempt is one execution of a step, kept with its log after a retry.
type JobAttempt struct {
	Number   int        `json:"number"`
	Status   string     `json:"status"`
	ExitCode *int       `json:"exit_code,omitempty"`
	Error    string     `json:"error,omitempty"`
	Started  time.Time  `json:"started"`
	Ended    *time.Time `json:"ended,omitempty"`
	// PID, PGID and ProcStart identify the process while it runs, so a
	// restarted server can find and stop what its predecessor left.
	PID       int    `json:"pid,omitempty"`
	PGID      int    `json:"pgid,omitempty"`
	ProcStart uint64 `json:"proc_start,omitempty"`
	// Ranks are the processes of a distributed attempt while they run,
	// each identified as PID, PGID and ProcStart identify a single one.
	Ranks []AttemptProcess `json:"ranks,omitempty"`
	// Machine names the machine (host name and boot) the process runs
	// on: only a server on the same machine may stop what is left of it.
	Machine string `json:"machine,omitempty"`
	// Server is where the other servers reach the server that ran the
	// attempt (its peer URL), which holds the attempt's log.
	Server string `json:"server,omitempty"`
	// Cluster is set for an attempt on a Ray-backed cluster: the task
	// and driver that run it, which a restarted server follows.
	Cluster *ClusterAttempt `json:"cluster,omitempty"`
	// ProcessStarted and ProcessEnded bound the attempt's process, from
	// just before it was started to its exit; unset when no process ran. Started to Ended is the whole attempt, so the
	// difference is what staging, the environment and saving outputs
	// cost around the user's command.
	ProcessStarted *time.Time `json:"process_started,omitempty"`
	ProcessEnded   *time.Time `json:"process_ended,omitempty"`
}

// JobFilter narrows SearchJobs; an empty field matches every job.
type JobFilter struct {
	Status         string
	ExperimentName string
	Compute        string
	SubmittedBy    string
}

// JobFacets are the values a workspace's jobs hold in JobFilter's fields,
// for a list's filter choices.
type JobFacets struct {
	Statuses, ExperimentNames, Computes, SubmittedBy []string
}

// AttemptProcess identifies one process of an attempt while it runs.
type AttemptProcess struct {
	PID       int    `json:"pid"`
	PGID      int    `json:"pgid"`
	ProcStart uint64 `json:"proc_start"`
}

// JobService stores jobs. The scheduler changes a job only through
// UpdateJob, whose read-modify-write runs in one transaction, so the state
// on disk is always one a reader can act on after a crash.
type JobService interface {
	// CreateJobs stores a job and, for a pipeline, its steps, together.
	CreateJobs(ctx context.Context, jobs []*Job) error
	FindJob(ctx context.Context, workspace, name string) (*Job, error)
	// ListJobs returns the workspace's top-level jobs newest first, or,
	// with parent set, that pipeline's steps in creation order. A limit
	// of 0 is 1000 top-level jobs, or every step.
	ListJobs(ctx context.Context, workspace, parent string, limit int) ([]*Job, error)
	// SearchJobs returns a page of at most limit top-level jobs that
	// match f, newest first, and the token of the next page ("" after
	// the last); pageToken is the token of the page to read, "" for the
	// first.
	SearchJobs(ctx context.Context, workspace string, f JobFilter, limit int, pageToken string) ([]*Job, string, error)
	// JobFacets returns the values the workspace's top-level jobs hold in
	// the fields JobFilter filters by, sorted, at most limit of each.
	JobFacets(ctx context.Context, workspace string, limit int) (*JobFacets, error)
	// ListUnfinishedJobs returns every job in any workspace whose status
	// is not terminal, oldest first: the scheduler's work list.
	ListUnfinishedJobs(ctx context.Context) ([]*Job, error)
	// UpdateJob applies fn to the stored job and saves the result
	// atomically; an error from fn leaves the job unchanged.
	UpdateJob(ctx context.Context, workspace, name string, fn func(j *Job) error) (*Job, error)
	// FindReusableJob returns the newest completed job with that reuse
	// key, or ENOTFOUND.
	FindReusableJob(ctx context.Context, workspace, reuseKey string) (*Job, error)
}
