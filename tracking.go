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
	// ModelInputs lists logged models the run consumed (MLflow 3); only
	// FindRun fills it, as MLflow's get_run alone returns them.
	ModelInputs []*ModelInput
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

// MetricSample is a metric history as read for a chart.
type MetricSample struct {
	Points []*Metric
	// Exact is true when Points is the whole history, false when it is
	// a sample of it.
	Exact bool
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

// ModelInput links a run to a logged model it consumed.
type ModelInput struct {
	ModelID string
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
	// Datasets restricts a logged-model search to models with metrics
	// on one of these datasets, and its metric filters to metrics on
	// them.
	Datasets []DatasetRef
	// OrderFields orders a logged-model search, in place of OrderBy:
	// MLflow's order_by objects, whose metric fields may name a dataset.
	OrderFields []OrderField
}

// DatasetRef names a dataset: by name, and by digest when Digest is set.
type DatasetRef struct{ Name, Digest string }

// OrderField is one order_by entry of a logged-model search: an attribute
// or "metrics.<key>", the latter taking the model's latest value of the
// metric, on Dataset when its name is set.
type OrderField struct {
	Field     string
	Ascending bool
	Dataset   DatasetRef
}

// DatasetSummary is one dataset used in an experiment, with the context
// a run used it in ("" when none), as MLflow's UI lists them.
type DatasetSummary struct {
	ExperimentID string
	Name         string
	Digest       string
	Context      string
	HasContext   bool
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
	// LogInputs records the datasets and the logged models a run used.
	LogInputs(ctx context.Context, workspace, runID string, inputs []*DatasetInput, models []*ModelInput) error
	LogOutputs(ctx context.Context, workspace, runID string, outputs []*ModelOutput) error
	// MetricHistory returns every value of a key, ordered by step then
	// timestamp.
	MetricHistory(ctx context.Context, workspace, runID, key string, maxResults int, pageToken string) ([]*Metric, string, error)
	// MetricHistoryBulk returns the history of key in the runs that
	// exist among runIDs, ordered by run id, timestamp, step and value,
	// at most maxResults values in all.
	MetricHistoryBulk(ctx context.Context, workspace string, runIDs []string, key string, maxResults int) ([]*Metric, error)
	// MetricHistoryBulkInterval samples the history of key in each run,
	// in the order given, as MLflow's UI charts it: at most maxResults
	// values per run spread evenly over the history (within
	// [startStep, endStep] when steps is non-nil), the last value always
	// among them. Ids that name no run of the workspace add nothing.
	MetricHistoryBulkInterval(ctx context.Context, workspace string, runIDs []string, key string, maxResults int, steps *[2]int64) ([]*Metric, error)
	// MetricHistorySample reads a run's history of key for a chart, in
	// order: whole when it holds at most exact values, else a sample of
	// n values (the first and the last among them) found at a cost that
	// does not grow with the history's length. ENOTFOUND for no such run.
	MetricHistorySample(ctx context.Context, workspace, runID, key string, n, exact int) (*MetricSample, error)
	// SearchDatasets lists the datasets runs of the experiments used, at
	// most 1000.
	SearchDatasets(ctx context.Context, workspace string, experimentIDs []string) ([]*DatasetSummary, error)
}
