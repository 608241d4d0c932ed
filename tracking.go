package wharf

import "context"

// Lifecycle stages, run statuses and view types use MLflow's names, because
// the unchanged mlflow client sends and expects them.
const (
	LifecycleActive  = "active"
	LifecycleDeleted = "deleted"

	RunRunning   = "RUNNING"
	RunScheduled = "SCHEDULED"
	RunFinished  = "FINISHED"
	RunFailed    = "FAILED"
	RunKilled    = "KILLED"

	ViewActiveOnly  = 1
	ViewDeletedOnly = 2
	ViewAll         = 3

	// DefaultExperimentID is the experiment every workspace has, as every
	// MLflow server has experiment "0".
	DefaultExperimentID = "0"
)

// Experiment groups runs. IDs are decimal strings unique within a workspace;
// each workspace is its own MLflow namespace.
type Experiment struct {
	Workspace        string
	ID               string
	Name             string
	ArtifactLocation string
	LifecycleStage   string
	CreationTime     int64 // ms since the epoch, as MLflow counts
	LastUpdateTime   int64
	Tags             map[string]string
}

// Run is one execution that logs params, metrics and tags.
type Run struct {
	Workspace      string
	ID             string // 32 lowercase hex
	ExperimentID   string
	Name           string
	UserID         string
	Status         string
	StartTime      int64
	EndTime        int64 // 0 while unset
	ArtifactURI    string
	LifecycleStage string
	Params         map[string]string
	Tags           map[string]string
	// Metrics holds the latest value of each key: highest step, then
	// latest timestamp, then largest value, MLflow's rule.
	Metrics []*Metric
	Inputs  []*DatasetInput
	// ModelOutputs lists logged models the run produced (MLflow 3).
	ModelOutputs []*ModelOutput
}

// Metric is one logged value.
type Metric struct {
	Key           string
	Value         float64
	Timestamp     int64
	Step          int64
	RunID         string
	ModelID       string
	DatasetName   string
	DatasetDigest string
}

// Dataset describes data a run consumed (mlflow.log_input).
type Dataset struct {
	Name       string
	Digest     string
	SourceType string
	Source     string
	Schema     string
	Profile    string
}

// DatasetInput is a dataset used by a run, with context tags such as
// mlflow.data.context=training.
type DatasetInput struct {
	Dataset Dataset
	Tags    map[string]string
}

// ModelOutput links a run to a logged model it produced.
type ModelOutput struct {
	ModelID string
	Step    int64
}

// Param is one run parameter; written once, never changed.
type Param struct{ Key, Value string }

// SearchQuery is a filtered, ordered, paged search in MLflow's syntax.
type SearchQuery struct {
	// ExperimentIDs restricts run and logged-model searches.
	ExperimentIDs []string
	Filter        string
	OrderBy       []string
	ViewType      int
	MaxResults    int
	PageToken     string
}

// TrackingService is MLflow's tracking store, per workspace.
type TrackingService interface {
	// CreateExperiment assigns ID and times; ECONFLICT for a taken name.
	CreateExperiment(ctx context.Context, e *Experiment) error
	// FindExperiment returns ENOTFOUND for an unknown id. Experiment "0"
	// is created on first use in each workspace.
	FindExperiment(ctx context.Context, workspace, id string) (*Experiment, error)
	FindExperimentByName(ctx context.Context, workspace, name string) (*Experiment, error)
	SearchExperiments(ctx context.Context, workspace string, q SearchQuery) ([]*Experiment, string, error)
	RenameExperiment(ctx context.Context, workspace, id, newName string) error
	// SetExperimentLifecycle deletes (soft) or restores an experiment.
	SetExperimentLifecycle(ctx context.Context, workspace, id, stage string) error
	SetExperimentTag(ctx context.Context, workspace, id, key, value string) error
	DeleteExperimentTag(ctx context.Context, workspace, id, key string) error

	// CreateRun assigns ID, artifact URI and defaults; fills an empty name
	// and mirrors it into tag mlflow.runName.
	CreateRun(ctx context.Context, r *Run) error
	FindRun(ctx context.Context, workspace, runID string) (*Run, error)
	// UpdateRun changes status, end time and name (each when non-empty).
	UpdateRun(ctx context.Context, workspace, runID, status string, endTime int64, name string) (*Run, error)
	SetRunLifecycle(ctx context.Context, workspace, runID, stage string) error
	SearchRuns(ctx context.Context, workspace string, q SearchQuery) ([]*Run, string, error)
	// LogBatch writes metrics, params and tags in one transaction. A param
	// logged again with a different value is EINVALID and nothing of the
	// batch is written.
	LogBatch(ctx context.Context, workspace, runID string, metrics []*Metric, params []*Param, tags map[string]string) error
	DeleteRunTag(ctx context.Context, workspace, runID, key string) error
	LogInputs(ctx context.Context, workspace, runID string, inputs []*DatasetInput) error
	LogOutputs(ctx context.Context, workspace, runID string, outputs []*ModelOutput) error
	// MetricHistory returns every value of a key, ordered by step then
	// timestamp.
	MetricHistory(ctx context.Context, workspace, runID, key string, maxResults int, pageToken string) ([]*Metric, string, error)
}
